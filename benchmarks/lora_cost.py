"""What LoRA costs the engine, and what compilation would give without it (issue #27, levers 2a/2b).

The same fixed workload in each configuration, each in its own process with its own engine, in
rounds (A B C A B C ...) so drift on a noisy machine hits every configuration alike:

    lora         LoRA on (as `synthgen generate` runs), every request through one shipped adapter
    lora-idle    LoRA on, no request uses an adapter
    base         LoRA off, eager (vLLM-CPU's graph mode is off whenever LoRA is on)
    compiled     LoRA off, torch.compile on (enforce_eager=False; its start-up time is printed)
    int8-lora    as lora, on the W8A8 int8 checkpoint of `benchmarks/int8.py --make` (lever 2c)
    int8-base    as base, on that checkpoint

A field phase with its adapter merged into the weights runs what `base` (or `compiled`) runs: the
same shapes, other weight values. So `base / lora` and `compiled / lora` bound what merging the
adapters would buy (lever 2a), before any cost of swapping weights between phases.

Workload: N distinct chat prompts (~40 tokens, a shared instruction that is prefix-cached) and T
decoded tokens each, forced (`min_tokens = max_tokens = T`, end-of-turn ignored) so that every
configuration computes exactly the same number of tokens; one warm-up call first.

    .venv/bin/python benchmarks/lora_cost.py [--n 256] [--tokens 32] [--rounds 2] [--adapter careers]
        [--configs lora,lora-idle,base,compiled]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {"lora": (True, True, True), "lora-idle": (True, False, True), "base": (False, False, True),
           "compiled": (False, False, False), "int8-lora": (True, True, True),
           "int8-base": (False, False, True)}  # name -> (enable_lora, through the adapter, eager)
INT8 = Path(__file__).resolve().parent.parent / "out" / "int8" / "model"
FIRST = ["Olivia", "Liam", "Amara", "Kenji", "Sofia", "Mateo", "Priya", "Noah", "Fatima", "Lukas", "Mei", "Omar"]
JOBS = ["baker", "pilot", "nurse", "teacher", "welder", "judge", "chemist", "farmer"]


def prompts(n: int) -> list[str]:
    return [f"Write one sentence about the life of a fictional person. Name: {FIRST[i % len(FIRST)]} "
            f"{chr(65 + i % 26)}. Born: {1930 + (i * 7) % 80}. Job: {JOBS[i % len(JOBS)]}. Case {i}."
            for i in range(n)]


def one(name: str, n: int, tokens: int, adapter: str) -> dict:
    """Runs in a child process: the engine's settings are fixed at its start."""
    from vllm import SamplingParams

    from synthgen.engine.vllm_engine import VLLMEngine
    from synthgen.paths import resolve_adapter

    enable_lora, through, eager = CONFIGS[name]
    t0 = time.perf_counter()
    model = str(INT8) if name.startswith("int8") else None
    if model and enable_lora:
        # vLLM-CPU's oneDNN int8 path drops layer.weight (prepacked in its handler) and the LoRA
        # wrapper reads weight.device: it cannot start. Measure past that bug, here only.
        import torch
        from vllm.lora.layers import base_linear

        base_linear._get_lora_device = lambda layer: torch.device("cpu")
    engine = VLLMEngine(model, enable_lora=enable_lora, enforce_eager=eager, max_loras=1)
    start = time.perf_counter() - t0
    lora = engine._lora_request(resolve_adapter(adapter, None)) if through else None
    ids = [{"prompt_token_ids": engine.prompt_ids(p)} for p in prompts(n)]

    def call(batch):
        params = [SamplingParams(temperature=1.0, seed=i, max_tokens=tokens, min_tokens=tokens, ignore_eos=True)
                  for i in range(len(batch))]
        t = time.perf_counter()
        out = engine.llm.generate(batch, params, lora_request=[lora] * len(batch) if lora else None, use_tqdm=False)
        return time.perf_counter() - t, out

    call(ids[:16])  # warm-up: first-call allocations, the prefix cache of the shared instruction
    engine.llm.reset_prefix_cache()
    seconds, out = call(ids)
    decoded = sum(len(o.outputs[0].token_ids) for o in out)
    prompt = sum(len(o.prompt_token_ids) for o in out)
    cached = sum(o.num_cached_tokens or 0 for o in out)
    engine.close()
    return {"name": name, "start_s": start, "seconds": seconds, "decoded": decoded, "prompt_tokens": prompt,
            "cached_prompt_tokens": cached, "dtype": engine.dtype,
            "tokens_per_s": (decoded + prompt - cached) / seconds}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--adapter", default="careers")
    ap.add_argument("--configs", default="lora,lora-idle,base,compiled")
    ap.add_argument("--out", default="out/lora_cost")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one configuration, in a child
    args = ap.parse_args()
    if args.one:
        print("ROW " + json.dumps(one(args.one, args.n, args.tokens, args.adapter)), flush=True)
        return
    names = args.configs.split(",")
    unknown = [c for c in names if c not in CONFIGS]
    if unknown or args.n < 1 or args.tokens < 1 or args.rounds < 1:
        ap.error(f"configs are {', '.join(CONFIGS)}; --n, --tokens, --rounds >= 1")
    if any(c.startswith("int8") for c in names) and not (INT8 / "config.json").is_file():
        ap.error(f"no int8 checkpoint at {INT8}: run `benchmarks/int8.py --make` first")
    rows = []
    for r in range(args.rounds):
        for name in names:
            p = subprocess.run([sys.executable, __file__, "--one", name, "--n", str(args.n), "--tokens", str(args.tokens),
                                "--adapter", args.adapter], capture_output=True, text=True, env=os.environ.copy())
            got = [line[4:] for line in p.stdout.splitlines() if line.startswith("ROW ")]
            if p.returncode != 0 or not got:
                sys.exit(f"{name}: failed\n{p.stderr[-3000:]}")
            row = json.loads(got[0]) | {"round": r}
            rows.append(row)
            print(f"round {r} {name:10} {row['dtype']:8} start {row['start_s']:5.1f} s  {row['seconds']:6.2f} s  "
                  f"{row['tokens_per_s']:6.0f} computed tok/s ({row['decoded']} decoded, "
                  f"{row['prompt_tokens'] - row['cached_prompt_tokens']} prompt computed)", flush=True)
    base = {r["round"]: r["seconds"] for r in rows if r["name"] == names[0]}
    print(f"\nspeed vs {names[0]} (same round), median over rounds:")
    summary = {}
    for name in names:
        ratios = [base[r["round"]] / r["seconds"] for r in rows if r["name"] == name]
        summary[name] = {"ratio_median": statistics.median(ratios), "ratios": ratios,
                         "start_s": [r["start_s"] for r in rows if r["name"] == name]}
        print(f"  {name:10} x{summary[name]['ratio_median']:.3f}  (rounds: {', '.join(f'{x:.3f}' for x in ratios)})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"args": vars(args), "rows": rows, "summary": summary}, indent=2))
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
