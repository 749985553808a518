"""The timed workload of `dtype.measure`, in a child process per dtype (`python -m
synthgen.engine.dtype_probe DTYPE MODEL`): its own module so that dtype.py, which the engine reads
for its default, never imports the engine."""

from __future__ import annotations

import json
import sys
import time

from .dtype import PROBE_PROMPTS, PROBE_TOKENS


def probe(model: str, dtype: str) -> float:
    """Runs in a child: seconds for the workload, after one warm-up round (engine start excluded)."""
    from importlib.resources import files

    from .base import Request
    from .vllm_engine import VLLMEngine

    adapter = str(files("synthgen") / "adapters" / "first_names")
    engine = VLLMEngine(model, dtype=dtype, max_loras=1)
    # like a record's field: a shared instruction (prefix-cached after the warm-up) and a short
    # distinct tail, so computed tokens per request (~30) and decoded ones mix as in a biography run
    head = ("You are filling in one field of a fictional person's record. Pick a random first name "
            "for the person described below. Answer with the name only.")
    colours = ["red", "green", "blue", "amber", "violet", "teal", "grey", "gold"]

    def request(i):
        return Request(prompt=f"{head}\nPerson {i}: born in {1900 + i % 120}, likes {colours[i % 8]}.",
                       adapter=adapter, max_tokens=PROBE_TOKENS, temperature=1.0, seed=i)

    engine.generate([request(PROBE_PROMPTS + i) for i in range(32)])  # warm-up; caches the instruction
    t0 = time.perf_counter()
    engine.generate([request(i) for i in range(PROBE_PROMPTS)])
    seconds = time.perf_counter() - t0
    engine.close()
    return seconds


if __name__ == "__main__":
    dtype, model = sys.argv[1:3]
    print("ROW " + json.dumps({"dtype": dtype, "seconds": probe(model, dtype)}), flush=True)
