"""This machine's ceiling for a model, as measured by `benchmarks/roofline.py`, and how close a run came.

The benchmark measures the matmul peak at the model's shapes and divides by the FLOPs per token;
it stores the result under SYNTHGEN_HOME/roofline.json, keyed by CPU, threads, model and dtype.
A run then reports utilisation = the time its computed tokens take at the ceiling / its time (the
ceiling of the dtype it ran). The dtype a machine runs (`engine/dtype.py`) is stored there too.
"""

from __future__ import annotations

from pathlib import Path

from .machine import load_entry, save_entry


def save_ceiling(model: str, dtype: str, ceiling: dict) -> Path:
    """`ceiling`: {"prefill_tokens_per_s": .., "decode_tokens_per_s": ..}."""
    return save_entry(model, dtype, {k: round(float(v), 1) for k, v in ceiling.items()})


def load_ceiling(model: str, dtype: str | None) -> dict | None:
    """The stored ceiling for this machine, model and dtype; None where it was never measured."""
    if dtype is None:
        return None
    got = load_entry(model, dtype)
    ok = isinstance(got, dict) and all(got.get(k, 0) > 0 for k in ("prefill_tokens_per_s", "decode_tokens_per_s"))
    return got if ok else None


def seconds_at_ceiling(ceiling: dict, computed_prompt_tokens: int, decoded_tokens: int) -> float:
    """How long these tokens take at the machine's peak (prefill and decode cost different FLOPs)."""
    return (computed_prompt_tokens / ceiling["prefill_tokens_per_s"]
            + decoded_tokens / ceiling["decode_tokens_per_s"])
