"""Running vLLM OpenAI-compatible servers (`vllm serve` / `python -m vllm.entrypoints.openai.api_server`).

The way to use a bigger machine or several: requests are sharded round-robin over the endpoints
and sent concurrently. An adapter is addressed by its directory name, so serve adapters with
`--lora-modules NAME=PATH` where NAME is the adapter directory's name (e.g. first_names).
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Sequence

from ..errors import EngineError, InputError
from .base import Completion, Engine, Progress, Request

MAX_RETRIES = 6  # per request, with exponential backoff (or the server's Retry-After): 429, 5xx, timeouts, resets


class OpenAIEngine(Engine):
    """Requests through the `openai` client: timeouts, retries with backoff on 429/5xx/connection
    errors, and one line (EngineError) once a request's retries are spent or a reply is not a
    completion. A retried request carries the same seed, so what is written does not change."""

    def __init__(self, endpoints: Sequence[str], model: str | None = None, *, concurrency: int = 16,
                 timeout: float = 600.0, api_key: str = "EMPTY", max_retries: int = MAX_RETRIES):
        if not endpoints:
            raise InputError("--engine openai needs at least one --endpoint URL")
        for e in endpoints:
            if not str(e).startswith(("http://", "https://")):
                raise InputError(f"--endpoint {e!r} is not a URL: give the server's address, e.g. http://127.0.0.1:8000")
        try:
            import openai
        except ImportError:
            raise EngineError("--engine openai needs the `openai` package: pip install openai") from None
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.endpoints = [e if e.endswith("/v1") else e + "/v1" for e in self.endpoints]
        self.timeout, self.max_retries, self.concurrency = timeout, max_retries, concurrency
        self._clients = [openai.OpenAI(base_url=e, api_key=api_key, timeout=timeout, max_retries=max_retries)
                         for e in self.endpoints]
        self.model = model or self._served_model(0)

    @property
    def tokenizer(self):
        """The served model's tokenizer, loaded locally (constrained decoding builds tries with it)."""
        if getattr(self, "_tokenizer", None) is None:
            try:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(self.model)
            except Exception as e:
                raise EngineError(f"constrained decoding needs the served model's tokenizer here, but "
                                  f"{self.model!r} does not load locally ({e.__class__.__name__}); "
                                  "serve a local model directory, or use decode: free") from None
        return self._tokenizer

    def _guarded(self, k: int, call):
        """`call()` on endpoint k; what the client raises once its retries are spent becomes one line."""
        import openai

        url = self.endpoints[k]
        try:
            return call()
        except openai.APIStatusError as e:
            body = (e.response.text if e.response is not None else str(e))[:300]
            raise EngineError(f"{url} answered HTTP {e.status_code}: {body}") from None
        except openai.APITimeoutError:
            raise EngineError(f"{url} did not answer within {self.timeout:g} s ({self.max_retries} retries)") from None
        except openai.APIConnectionError as e:
            cause = e.__cause__ or e
            raise EngineError(f"cannot reach {url}: {cause}: is the vLLM server running?") from None
        except (openai.APIError, AttributeError, IndexError, KeyError, TypeError, ValueError) as e:
            raise EngineError(f"{url} sent a reply that is not an OpenAI completion ({e.__class__.__name__}: "
                              f"{str(e)[:200]})") from None

    def _served_model(self, k: int) -> str:
        client = self._clients[k].with_options(max_retries=1)  # a dead address fails in a second, not after backoff
        models = self._guarded(k, lambda: list(client.models.list()))
        if not models:
            raise EngineError(f"{self.endpoints[k]} serves no model")
        # LoRA modules are listed too; the base model is the one whose parent is None
        base = [m.id for m in models if not getattr(m, "parent", None)]
        return (base or [models[0].id])[0]

    def check_adapters(self, adapters: Sequence[str]) -> None:
        """Every adapter is served (as its directory's name) by every endpoint, else one line naming
        all that are missing, before anything is written."""
        want = list(dict.fromkeys(Path(a).name for a in adapters))
        for k, url in enumerate(self.endpoints):
            client = self._clients[k].with_options(max_retries=1)
            served = {m.id for m in self._guarded(k, lambda: list(client.models.list()))}
            missing = [a for a in want if a not in served]
            if missing:
                raise EngineError(f"{url} does not serve the adapter(s) {', '.join(missing)} that the template needs "
                                  f"(it serves {', '.join(sorted(served)) or 'nothing'}); start a server with all of "
                                  f"them: synthgen serve TEMPLATE")

    def _one(self, i: int, req: Request) -> Completion:
        k = i % len(self.endpoints)
        messages = ([{"role": "system", "content": req.system}] if req.system is not None else []) + [
            {"role": "user", "content": req.prompt}]
        extra: dict = {}
        if req.prefill:  # vLLM's chat API continues a final assistant message
            messages.append({"role": "assistant", "content": req.prefill})
            extra |= {"continue_final_message": True, "add_generation_prompt": False}
        if req.min_p:
            extra["min_p"] = req.min_p  # a vLLM sampling parameter beyond OpenAI's
        if req.trie is not None:  # the server must run synthgen's trie processor (--logits-processors)
            extra["vllm_xargs"] = {"synthgen_trie": req.trie}
        kwargs = dict(model=Path(req.adapter).name if req.adapter else self.model, messages=messages,
                      max_tokens=req.max_tokens, temperature=req.temperature, top_p=req.top_p, n=1)
        if req.seed is not None:
            kwargs["seed"] = req.seed

        def call():
            res = self._clients[k].chat.completions.create(**kwargs, extra_body=extra or None)
            choice = res.choices[0]
            usage = res.usage
            details = getattr(usage, "prompt_tokens_details", None)  # vLLM: --enable-prompt-tokens-details
            return Completion(text=choice.message.content or "", finish_reason=choice.finish_reason or "length",
                              n_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                              prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                              cached_tokens=int(getattr(details, "cached_tokens", 0) or 0))

        try:
            return self._guarded(k, call)
        except EngineError as e:
            if req.trie is not None and " HTTP 400" in str(e) and "synthgen_trie" in str(e):
                # vLLM may print the path as <path>: name it, and where the server must find it
                raise EngineError(f"{e} (the request's trie: {req.trie}; the server reads it from its own disk: run it "
                                  "on this machine with `synthgen serve`, or share SYNTHGEN_HOME/tries with it)") from None
            raise

    def generate(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        out: list[Completion | None] = [None] * len(requests)
        with ThreadPoolExecutor(self.concurrency * len(self.endpoints)) as pool:
            futures = {pool.submit(self._one, i, r): i for i, r in enumerate(requests)}
            for fut in futures:  # in order; progress is approximate but monotone
                out[futures[fut]] = fut.result()
                if progress:
                    progress(1)
        return out  # type: ignore[return-value]

    # the stream form (base.StepEngine): requests run concurrently on a thread pool; a step returns
    # what finished (the order depends on the servers' timing)
    def submit(self, request: Request) -> int:
        if getattr(self, "_pool", None) is None:
            self._pool = ThreadPoolExecutor(self.concurrency * len(self.endpoints))
            self._futures: dict = {}
            self._tickets = 0
        self._tickets += 1
        self._futures[self._pool.submit(self._one, self._tickets, request)] = self._tickets
        return self._tickets

    def step(self) -> list[tuple[int, Completion]]:
        if not getattr(self, "_futures", None):
            return []
        done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
        return [(self._futures.pop(fut), fut.result()) for fut in done]

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        for c in getattr(self, "_clients", []):
            c.close()
