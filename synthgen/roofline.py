"""This machine's ceiling for a model, as measured by `benchmarks/roofline.py`, and how close a run came.

The benchmark measures the matmul peak at the model's shapes and divides by the FLOPs per token;
it stores the result under SYNTHGEN_HOME/roofline.json, keyed by CPU, threads, model and dtype.
A run then reports utilisation = the time its computed tokens take at the ceiling / its time.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return {"cpu": cpu, "threads": threads}


def _file() -> Path:
    from .models import synthgen_home

    return synthgen_home() / "roofline.json"


def _key(model: str, dtype: str) -> str:
    m = machine()
    return f"{m['cpu']}|{m['threads']}|{Path(model).name}|{dtype}"


def save_ceiling(model: str, dtype: str, ceiling: dict) -> Path:
    """`ceiling`: {"prefill_tokens_per_s": .., "decode_tokens_per_s": ..} (atomic update)."""
    path = _file()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        doc = {}
    doc[_key(model, dtype)] = {k: round(float(v), 1) for k, v in ceiling.items()}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)
    return path


def load_ceiling(model: str, dtype: str | None) -> dict | None:
    """The stored ceiling for this machine, model and dtype; None where it was never measured."""
    if dtype is None:
        return None
    try:
        got = json.loads(_file().read_text()).get(_key(model, dtype))
    except (OSError, ValueError):
        return None
    ok = isinstance(got, dict) and all(got.get(k, 0) > 0 for k in ("prefill_tokens_per_s", "decode_tokens_per_s"))
    return got if ok else None


def seconds_at_ceiling(ceiling: dict, computed_prompt_tokens: int, decoded_tokens: int) -> float:
    """How long these tokens take at the machine's peak (prefill and decode cost different FLOPs)."""
    return (computed_prompt_tokens / ceiling["prefill_tokens_per_s"]
            + decoded_tokens / ceiling["decode_tokens_per_s"])
