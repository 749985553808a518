"""Inference engines behind one protocol (see base.py)."""

from .base import Completion, Engine, FakeEngine, Request, check_adapter, derive_seed

__all__ = ["Completion", "Engine", "FakeEngine", "Request", "check_adapter", "derive_seed", "create_engine"]


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
