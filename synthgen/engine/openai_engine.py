"""Running vLLM OpenAI-compatible servers (`vllm serve` / `python -m vllm.entrypoints.openai.api_server`).

The way to use a bigger machine or several: requests are sharded round-robin over the endpoints
and sent concurrently. An adapter is addressed by its directory name, so serve adapters with
`--lora-modules NAME=PATH` where NAME is the adapter directory's name (e.g. first_names).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Sequence

from ..errors import EngineError, InputError
from .base import Completion, Progress, Request


class OpenAIEngine:
    def __init__(self, endpoints: Sequence[str], model: str | None = None, *, concurrency: int = 16,
                 timeout: float = 600.0, api_key: str = "EMPTY"):
        if not endpoints:
            raise InputError("--engine openai needs at least one --endpoint URL")
        for e in endpoints:
            if not str(e).startswith(("http://", "https://")):
                raise InputError(f"--endpoint {e!r} is not a URL: give the server's address, e.g. http://127.0.0.1:8000")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.endpoints = [e if e.endswith("/v1") else e + "/v1" for e in self.endpoints]
        self.timeout = timeout
        self.api_key = api_key
        self.concurrency = concurrency
        self.model = model or self._served_model(self.endpoints[0])

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

    def _call(self, url: str, payload: dict | None = None) -> dict:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(url, data=data, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            body = e.read().decode(errors="replace")[:300]
            raise EngineError(f"{url} answered HTTP {e.code}: {body}") from None
        except (urllib.error.URLError, OSError) as e:
            raise EngineError(f"cannot reach {url}: {getattr(e, 'reason', e)}: is the vLLM server running?") from None

    def _served_model(self, endpoint: str) -> str:
        models = self._call(f"{endpoint}/models").get("data", [])
        if not models:
            raise EngineError(f"{endpoint} serves no model")
        # LoRA modules are listed too; the base model is the one whose parent is None
        base = [m["id"] for m in models if not m.get("parent")]
        return (base or [models[0]["id"]])[0]

    def _one(self, i: int, req: Request) -> Completion:
        endpoint = self.endpoints[i % len(self.endpoints)]
        messages = ([{"role": "system", "content": req.system}] if req.system is not None else []) + [
            {"role": "user", "content": req.prompt}]
        payload = {
            "model": Path(req.adapter).name if req.adapter else self.model,
            "messages": messages, "max_tokens": req.max_tokens, "temperature": req.temperature,
            "top_p": req.top_p, "n": 1,
        }
        if req.prefill:  # vLLM's chat API continues a final assistant message
            messages.append({"role": "assistant", "content": req.prefill})
            payload |= {"continue_final_message": True, "add_generation_prompt": False}
        if req.seed is not None:
            payload["seed"] = req.seed
        if req.trie is not None:  # the server must run synthgen's trie processor (--logits-processors)
            payload["vllm_xargs"] = {"synthgen_trie": req.trie}
        res = self._call(f"{endpoint}/chat/completions", payload)
        choice = res["choices"][0]
        usage = res.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}  # vLLM fills it with --enable-prompt-tokens-details
        return Completion(text=choice["message"]["content"] or "", finish_reason=choice.get("finish_reason") or "length",
                          n_tokens=int(usage.get("completion_tokens") or 0), prompt_tokens=int(usage.get("prompt_tokens") or 0),
                          cached_tokens=int(details.get("cached_tokens") or 0))

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
