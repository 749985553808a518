"""Inference engines behind one protocol (see base.py)."""

from .base import Completion, Engine, FakeEngine, Request, check_adapter, derive_seed

__all__ = ["Completion", "Engine", "FakeEngine", "Request", "check_adapter", "derive_seed", "create_engine", "start_engine"]


def create_engine(kind: str = "vllm", model: str | None = None, endpoints=(), **kwargs) -> Engine:
    """`vllm`: in-process vLLM; `openai`: running vLLM OpenAI servers at `endpoints`."""
    if kind == "vllm":
        from .vllm_engine import VLLMEngine

        return VLLMEngine(model, **kwargs)
    if kind == "openai":
        from .openai_engine import OpenAIEngine

        return OpenAIEngine(list(endpoints), model)
    from ..errors import InputError

    raise InputError(f"unknown engine {kind!r}: use vllm or openai")


def start_engine(kind: str = "vllm", model: str | None = None, endpoints=(), **kwargs) -> tuple[Engine, float]:
    """`create_engine` with what the libraries print while it starts sent to the engine log
    (quiet.py; `--verbose` shows it). Returns the engine and the seconds its start took."""
    import time

    from .quiet import engine_output

    t0 = time.perf_counter()
    with engine_output():
        eng = create_engine(kind, model, endpoints, **kwargs)
    return eng, time.perf_counter() - t0
