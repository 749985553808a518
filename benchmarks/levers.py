"""Engine-setting levers for the biography run, each measured on the same records (issue #13).

Every configuration makes records 0..N-1 of `synthgen biographies --seed 0` the way a run does
(`generate.local_fill_blocks`: blocks of --block-size, the prefix cache emptied per block, the
pipelined generator), in its own process with its own engine, one after the other. Per
configuration it prints wall time, records/s and the ratio to the first configuration, computed
tokens per record and /s, utilisation (where `benchmarks/roofline.py` measured this machine), and
how full vLLM's batches were: requests per engine step and the share of time spent in steps that
ran fewer than 90 % of max_num_seqs requests (ramp-up and block-end drains). A digest of the
records tells which settings change them.

A configuration is `name:key=value,...` with keys `seqs` (vLLM max_num_seqs), `window` (records
in flight, default = seqs), `block` (records per block, default --block-size), `kv` (whole GiB of KV
cache, VLLM_CPU_KVCACHE_SPACE), `dtype` (float32, bfloat16, float16; default: what a run chooses),
`bind` (VLLM_CPU_OMP_THREADS_BIND: a CPU list such as 0-1 or 0, or nobind), `wait` (active or
passive: OMP_WAIT_POLICY, and KMP_BLOCKTIME=0 for passive) and `spin` (GOMP_SPINCOUNT: how long an
idle OpenMP thread spins before it sleeps; torch's libgomp reads it at start). `--beside K` runs K single-thread
CPU-bound processes (a busy loop each) beside every configuration: generation on a shared machine.

    .venv/bin/python benchmarks/levers.py [--n 1024] [--block-size 1024] [--out out/levers] [--beside 1] \\
        [default:seqs=256 window2x:seqs=256,window=512 passive:wait=passive ...]
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT = ["default:seqs=256", "window2x:seqs=256,window=512", "seqs512:seqs=512,kv=2"]
DTYPES = ("float32", "bfloat16", "float16")


def parse(spec: str, block_size: int) -> dict:
    name, _, rest = spec.partition(":")
    cfg = {"name": name, "seqs": 256, "window": None, "block": block_size, "kv": None, "dtype": None, "bind": None,
           "wait": None, "spin": None}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in cfg or key == "name":
            sys.exit(f"{spec!r}: unknown key {key!r} (use seqs, window, block, kv, dtype, bind, wait, spin)")
        if key in ("dtype", "bind", "wait"):
            ok = {"dtype": DTYPES, "wait": ("active", "passive")}.get(key)
            if ok and value not in ok:
                sys.exit(f"{spec!r}: {key} must be one of {', '.join(ok)}, got {value!r}")
            cfg[key] = value
            continue
        if not value.isdigit() or int(value) < 1:
            sys.exit(f"{spec!r}: {key} must be a whole number >= 1, got {value!r}")
        cfg[key] = int(value)
    cfg["window"] = cfg["window"] or cfg["seqs"]
    return cfg


def one(cfg: dict, n: int) -> dict:
    """Runs in a child process: the engine's settings are fixed at its start."""
    if cfg["kv"]:
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(cfg["kv"])
    if cfg["bind"]:
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = cfg["bind"]
    if cfg["wait"]:
        os.environ["OMP_WAIT_POLICY"] = cfg["wait"].upper()
        if cfg["wait"] == "passive":
            os.environ["KMP_BLOCKTIME"] = "0"
    if cfg.get("spin"):
        os.environ["GOMP_SPINCOUNT"] = str(cfg["spin"])
    from vllm.v1.core.sched import scheduler

    steps = []  # (time, scheduled tokens, requests) per engine step
    original = scheduler.Scheduler.schedule

    def schedule(self, *a, **k):
        out = original(self, *a, **k)
        if out.total_num_scheduled_tokens:
            steps.append((time.perf_counter(), out.total_num_scheduled_tokens, len(out.num_scheduled_tokens)))
        return out

    scheduler.Scheduler.schedule = schedule
    from synthgen.engine.vllm_engine import VLLMEngine
    from synthgen.generate import Fill, Stats, compile_tries, local_fill_blocks
    from synthgen.roofline import load_ceiling, seconds_at_ceiling
    from synthgen.template import load_template

    template = load_template("biography")
    engine = VLLMEngine(max_loras=max(1, len(set(template.adapters().values()))), max_num_seqs=cfg["seqs"],
                        dtype=cfg["dtype"])
    tries = compile_tries(template, engine.tokenizer)
    blocks = [range(b, min(n, b + cfg["block"])) for b in range(0, n, cfg["block"])]
    stats = Stats()
    t0 = time.perf_counter()
    records = sorted(local_fill_blocks(engine, template, blocks, 0, Fill(tries=tries, window=cfg["window"]), stats=stats),
                     key=lambda r: r["index"])
    seconds = time.perf_counter() - t0
    steps.append((t0 + seconds, 0, 0))
    part = sum(b[0] - a[0] for a, b in zip(steps, steps[1:]) if a[2] < 0.9 * engine.max_num_seqs)
    computed_prompt = stats.computed_prompt_tokens
    row = {**cfg, "dtype": engine.dtype, "n": n, "seconds": seconds, "records_per_s": n / seconds, "steps": len(steps) - 1,
           "requests_per_step": sum(s[2] for s in steps) / max(1, len(steps) - 1), "part_full_share": part / seconds,
           "computed_per_record": (computed_prompt + stats.tokens) / n,
           "computed_tokens_per_s": (computed_prompt + stats.tokens) / seconds,
           "complete": sum(all(v is None for v in r["errors"].values()) for r in records) / n,
           "digest": hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()[:12]}
    ceiling = load_ceiling(engine.model, engine.dtype)
    if ceiling is not None:
        row["utilisation"] = seconds_at_ceiling(ceiling, computed_prompt, stats.tokens) / seconds
    engine.close()
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="*", default=DEFAULT)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--block-size", type=int, default=1024)
    ap.add_argument("--out", default="out/levers")
    ap.add_argument("--beside", type=int, default=0, help="single-thread busy loops running beside each configuration")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one configuration, in a child
    args = ap.parse_args()
    if args.one:
        print("ROW " + json.dumps(one(json.loads(args.one), args.n)), flush=True)
        return
    if args.n < 1 or args.block_size < 1:
        ap.error("--n and --block-size must be >= 1")
    cfgs = [parse(c, args.block_size) for c in args.configs]
    rows = []
    for cfg in cfgs:
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.beside)]
        try:
            r = subprocess.run([sys.executable, __file__, "--n", str(args.n), "--one", json.dumps(cfg)],
                               capture_output=True, text=True)
        finally:
            for b in busy:
                b.kill()
        got = [line[4:] for line in r.stdout.splitlines() if line.startswith("ROW ")]
        if r.returncode != 0 or not got:
            sys.exit(f"{cfg['name']}: failed\n{r.stderr[-3000:]}")
        row = json.loads(got[0]) | {"beside": args.beside}
        row["speed_vs_first"] = rows[0]["seconds"] / row["seconds"] if rows else 1.0
        rows.append(row)
        print(f"{row['name']:10} {row['dtype']:8} beside {args.beside} seqs {row['seqs']:4} window {row['window']:4} block {row['block']:5}: "
              f"{row['seconds']:6.1f} s  {row['records_per_s']:.3f} rec/s  x{row['speed_vs_first']:.3f}  "
              f"{row['computed_per_record']:.0f} computed tok/rec  {row['computed_tokens_per_s']:.0f} tok/s  "
              f"{row['requests_per_step']:.0f} req/step  part-full {row['part_full_share']:.0%}  "
              + (f"utilisation {row['utilisation']:.0%}  " if "utilisation" in row else "")
              + f"records {row['digest']}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"n": args.n, "rows": rows}, indent=2))
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
