"""Biographies end to end: `synthgen biographies` on the embedded model, timed and measured.

Runs the shipped biography template (7 fields, each list field through its diffuse adapter) for N
records in one process: engine start + generation + write. Prints wall time, records/s, generated
tokens/s, requests, valid share per field and peak RSS of the process tree (vLLM's engine core is
a child process). Targets (issue #4): 10,000 records <= 30 min wall and <= 6 GiB peak RSS on a
2-core CPU; `--n 1000` is the quick check, and the 10k time is projected from it when not run.

    .venv/bin/python benchmarks/bench_biographies.py --n 1000 [--out /tmp/bench_bios.jsonl] [--no-adapters]
"""

import argparse
import json
import os
import tempfile
import time

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--block-size", type=int, default=512)
    ap.add_argument("--out", default=None, help="output JSONL (default: a temp file, deleted)")
    ap.add_argument("--no-adapters", action="store_true")
    args = ap.parse_args()

    from synthgen.engine.vllm_engine import VLLMEngine
    from synthgen.generate import Fill, PeakRSS, plan_run, run
    from synthgen.template import load_template

    tmp = None
    out = args.out
    if out is None:
        tmp = tempfile.TemporaryDirectory()
        out = os.path.join(tmp.name, "bios.jsonl")
    t = load_template("biography", use_adapters=not args.no_adapters)
    plan = plan_run(t, out, args.n, args.seed, use_adapters=not args.no_adapters, existing="overwrite")
    t0 = time.perf_counter()
    with PeakRSS() as rss:
        engine = VLLMEngine(max_loras=4)
        t_start = time.perf_counter() - t0

        def on_block(k):
            el = time.perf_counter() - t0
            print(f"  {k} records in {el:.0f}s ({k / (el - t_start):.2f} records/s after engine start)", flush=True)

        s = run(t, engine, plan, args.n, args.seed, Fill(use_adapters=not args.no_adapters, on_block=on_block), block_size=args.block_size)
        engine.close()
    wall = time.perf_counter() - t0
    gen = s.seconds
    result = {
        "n": args.n, "adapters": not args.no_adapters, "cpus": len(os.sched_getaffinity(0)), "dtype": engine.dtype,
        "wall_s": round(wall, 1), "engine_start_s": round(t_start, 1), "generate_s": round(gen, 1),
        "records_per_s": round(args.n / gen, 3), "tokens": s.tokens, "tokens_per_s": round(s.tokens / gen, 1),
        "requests": s.requests, "requests_per_s": round(s.requests / gen, 2),
        "peak_rss_gib": round(max(rss.peak, s.peak_rss_gib * 2**30) / 2**30, 2),
        "valid": {k: round(v, 3) for k, v in s.valid.items()},
        "first_try_valid": {k: round(v, 3) for k, v in s.first_try_valid.items()},
        "projected_10k_min": round((t_start + 10_000 / (args.n / gen)) / 60, 1),
    }
    print(json.dumps(result, indent=2))
    print(f"\n{args.n} biographies in {wall / 60:.1f} min wall ({result['records_per_s']} records/s, "
          f"{result['tokens_per_s']} tok/s, peak {result['peak_rss_gib']} GiB); "
          f"10k projected {result['projected_10k_min']} min (target <= 30 min, <= 6 GiB)")
