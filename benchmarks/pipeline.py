"""Field barriers vs record pipelining, on one engine in one run (issue #13).

The same records of a template (default: the biography, every field through its adapter) are made
twice per round on one in-process vLLM engine:

- `barrier`: every request of a wave in one batched `generate` call: all records' gender, then all
  first names, ... then the retries (what synthgen did before pipelining);
- `pipelined`: vLLM's engine loop, a record's next field submitted as soon as its previous one is
  done, `max_num_seqs` records in flight (what `synthgen generate/biographies` does now).

Rounds alternate the order (the machine is noisy). Prints wall time, records/s, requests and
tokens per record, computed tokens/s and, where `benchmarks/roofline.py` has measured this
machine, the share of its ceiling. Also checks that both ways give the same records' validity.

    .venv/bin/python benchmarks/pipeline.py [--n 256] [--rounds 2] [--template biography] [--out out/pipeline]
"""

import argparse
import json
import time
from pathlib import Path

from synthgen.engine.base import Engine


class _BatchOnly(Engine):
    """The engine with only `generate`: the generator then runs one batch per wave (barriers)."""

    def __init__(self, engine):
        self.engine, self.model, self.tokenizer = engine, engine.model, engine.tokenizer

    def generate(self, requests, progress=None):
        return self.engine.generate(requests, progress)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--template", default="biography")
    ap.add_argument("--out", default="out/pipeline")
    args = ap.parse_args()
    if args.n < 1 or args.rounds < 1:
        ap.error("--n and --rounds must be >= 1")

    from synthgen.engine.vllm_engine import VLLMEngine
    from synthgen.generate import Fill, Stats, compile_tries, fill_records
    from synthgen.roofline import load_ceiling, seconds_at_ceiling
    from synthgen.template import load_template

    template = load_template(args.template)
    t0 = time.perf_counter()
    engine = VLLMEngine(max_loras=max(1, len(set(template.adapters().values()))))
    start = time.perf_counter() - t0
    tries = compile_tries(template, engine.tokenizer)
    ceiling = load_ceiling(engine.model, engine.dtype)
    print(f"engine started in {start:.1f} s; max_num_seqs {engine.max_num_seqs}; "
          f"ceiling {'not measured (run benchmarks/roofline.py)' if ceiling is None else ceiling}", flush=True)
    rows = []
    for r in range(args.rounds):
        for mode in (("barrier", "pipelined") if r % 2 == 0 else ("pipelined", "barrier")):
            engine.reset_prefix_cache()
            stats = Stats()
            eng, window = (_BatchOnly(engine), args.n) if mode == "barrier" else (engine, engine.max_num_seqs)
            t = time.perf_counter()
            recs = fill_records(template, eng, list(range(args.n)), args.seed, Fill(tries=tries, window=window), stats=stats)
            dt = time.perf_counter() - t
            computed_prompt = stats.computed_prompt_tokens
            row = {"round": r, "mode": mode, "seconds": dt, "records_per_s": args.n / dt,
                   "requests_per_record": stats.requests / args.n,
                   "prompt_tokens_per_record": stats.prompt_tokens / args.n,
                   "cached_share": stats.cached_prompt_tokens / max(1, stats.prompt_tokens),
                   "decoded_per_record": stats.tokens / args.n,
                   "computed_tokens_per_s": (computed_prompt + stats.tokens) / dt,
                   "complete": sum(all(v is None for v in rec["errors"].values()) for rec in recs) / args.n}
            if ceiling is not None:
                row["utilisation"] = seconds_at_ceiling(ceiling, computed_prompt, stats.tokens) / dt
            rows.append(row)
            print(f"round {r} {mode:9}: {dt:6.1f} s  {row['records_per_s']:5.2f} rec/s  "
                  f"{row['requests_per_record']:.2f} req/rec  {row['computed_tokens_per_s']:5.0f} computed tok/s  "
                  f"cached {row['cached_share']:.0%}  complete {row['complete']:.1%}"
                  + (f"  utilisation {row['utilisation']:.0%}" if "utilisation" in row else ""), flush=True)
    engine.close()
    best = {m: min(x["seconds"] for x in rows if x["mode"] == m) for m in ("barrier", "pipelined")}
    print(f"\nbest of {args.rounds}: barrier {best['barrier']:.1f} s, pipelined {best['pipelined']:.1f} s: "
          f"pipelined/barrier speed {best['barrier'] / best['pipelined']:.2f}x")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"n": args.n, "template": args.template, "engine_start_s": start,
                                                  "max_num_seqs": engine.max_num_seqs, "ceiling": ceiling,
                                                  "rows": rows, "speedup": best["barrier"] / best["pipelined"]},
                                                 indent=2))


if __name__ == "__main__":
    main()
