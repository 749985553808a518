"""The one seam between synthgen and an inference backend.

An engine generates chat prompts, each with its own sampling settings, an optional LoRA adapter
(a local peft directory) and its own seed: as one batch (`generate`), or as a stream (`submit` a
request, `step` the engine, collect what finished) so a caller can feed new requests while others
run. Backends: in-process vLLM (`VLLMEngine`), running vLLM OpenAI servers (`OpenAIEngine`), and
`FakeEngine` for tests. `stepper(engine)` gives any engine with only `generate` the stream form.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence, runtime_checkable

from ..errors import AdapterError


@dataclass(frozen=True, slots=True)
class Request:
    prompt: str  # the user turn; the model's chat template wraps it
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    min_p: float = 0.0  # drop tokens under min_p x the top token's probability (0: off)
    seed: int | None = None
    adapter: str | None = None  # path to a peft LoRA directory, or None for the base model
    system: str | None = None  # None: the chat template's default system prompt
    trie: str | None = None  # a decode trie file: the answer is constrained to its list (trie_processor.py)
    prefill: str | None = None  # the reply starts with this text (e.g. "Gender:"); the completion is what follows


@dataclass(slots=True)
class Completion:
    text: str
    finish_reason: str  # "stop": ended with end-of-turn; "length": hit max_tokens
    n_tokens: int = 0  # decoded
    prompt_tokens: int = 0
    cached_tokens: int = 0  # of the prompt, served from the prefix cache (not computed)


Progress = Callable[[int], None]  # called with the number of newly finished requests


@runtime_checkable
class Engine(Protocol):
    """What the generator uses. Engines subclass it for the defaults: no dtype or window known
    (the generator then uses DEFAULT_WINDOW), no prefix cache to reset, nothing to close."""

    model: str
    dtype: str | None = None  # what it computes in, where synthgen decided it (the run's settings record it)
    max_num_seqs: int | None = None  # requests it runs at once: the generator keeps that many records in flight
    tokenizer: Any = None  # the served model's, for decode tries (constrained decoding)

    def generate(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        """One completion per request, in order."""
        ...

    def reset_prefix_cache(self) -> None:
        """Forget cached prompt blocks between blocks (same batches from any start: generate.py)."""

    def check_adapters(self, adapters: Sequence[str]) -> None:
        """Raise EngineError naming, at once, every adapter (a directory) it cannot answer through.
        An in-process engine loads any adapter directory: nothing to check."""

    def close(self) -> None:
        """Free what it holds."""


@runtime_checkable
class BlockEngine(Protocol):
    """An engine that fills whole blocks of records on its own workers (distributed.RayPool): it
    compiles tries there and learns its dtype and window from their first records."""

    dtype: str | None
    max_num_seqs: int | None

    def fill_blocks(self, template, blocks: list[range], seed: int, fill, stats) -> Iterator[dict]: ...


@runtime_checkable
class StepEngine(Protocol):
    """The stream form. `submit` queues a request and returns its ticket; `step` runs the engine a
    little (one scheduler iteration for vLLM) and returns the (ticket, completion) pairs that
    finished, possibly none. With an in-process engine the same calls give the same batches."""

    def submit(self, request: Request) -> int: ...

    def step(self) -> list[tuple[int, Completion]]: ...


class _BatchStepper:
    """`generate` as a stream: each step runs everything submitted since the last step as one batch."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._queue: list[tuple[int, Request]] = []
        self._next = 0

    def submit(self, request: Request) -> int:
        self._next += 1
        self._queue.append((self._next, request))
        return self._next

    def step(self) -> list[tuple[int, Completion]]:
        batch, self._queue = self._queue, []
        outs = self.engine.generate([r for _, r in batch]) if batch else []
        return [(t, o) for (t, _), o in zip(batch, outs)]


def stepper(engine) -> StepEngine:
    return engine if isinstance(engine, StepEngine) else _BatchStepper(engine)


def derive_seed(*keys: object) -> int:
    """A stable 31-bit seed from a run seed and keys (record index, field, attempt...)."""
    digest = hashlib.blake2b(json.dumps(keys, default=str).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF


@dataclass(frozen=True)
class AdapterInfo:
    path: str
    base_model: str | None
    rank: int


def check_adapter(path: str | Path, model_dir: str | None = None) -> AdapterInfo:
    """Validate a peft LoRA directory before an engine sees it (clear errors, not engine crashes).

    With `model_dir`, an adapter built by synthgen for another base model is refused."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise AdapterError(f"adapter directory {str(path)!r} does not exist")
    cfg_file = p / "adapter_config.json"
    if not cfg_file.is_file():
        raise AdapterError(f"{str(path)!r} is not a LoRA adapter: no adapter_config.json")
    try:
        cfg = json.loads(cfg_file.read_text())
        rank = int(cfg["r"])
    except (ValueError, KeyError, TypeError) as e:
        raise AdapterError(f"{cfg_file} is corrupt ({e.__class__.__name__}: {e}): rebuild the adapter") from None
    if not any((p / f).is_file() for f in ("adapter_model.safetensors", "adapter_model.bin")):
        raise AdapterError(f"{str(path)!r} has no adapter weights (adapter_model.safetensors)")
    if model_dir is not None:
        from ..card import read_card
        from ..models import model_fingerprint

        card = read_card(p)
        want, have = (card.base_fingerprint if card else None), model_fingerprint(model_dir)
        if want and have and want != have:
            raise AdapterError(f"adapter {str(path)!r} was trained for base model {card.base_model!r}, "
                               f"not {model_dir!r}: use --model {card.base_model} or rebuild the adapter")
    return AdapterInfo(path=str(p.resolve()), base_model=cfg.get("base_model_name_or_path"), rank=rank)


class WordTokenizer:
    """FakeEngine's tokenizer: one stable token id per space-separated piece, <|im_end|> = 2
    (enough to compile tries; a word-sized token keeps items about as long as a real tokenizer's)."""

    eos_token_id = 2

    def get_vocab(self) -> dict[str, int]:
        return {"<|im_end|>": 2}

    @staticmethod
    def _id(piece: str) -> int:
        return 3 + int.from_bytes(hashlib.blake2b(piece.encode(), digest_size=6).digest(), "big")

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[self._id(p) for p in re.split(r"(?= )", t) if p] for t in texts]}


@dataclass
class FakeEngine(Engine):
    """For unit tests: answers from a queue (or a function of the request), records every request."""

    model: str = "fake"
    responder: Callable[[Request], str] | None = None
    queue: list[str] = field(default_factory=list)
    history: list[Request] = field(default_factory=list)
    tokenizer: WordTokenizer = field(default_factory=WordTokenizer)
    per_step: int | None = None  # stream form: requests answered per step, oldest first (None: all)
    _waiting: list = field(default_factory=list)
    _tickets: int = 0

    def enqueue(self, *texts: str) -> None:
        self.queue.extend(texts)

    def _answer(self, req: Request) -> Completion:
        self.history.append(req)
        if self.queue:
            text = self.queue.pop(0)
        elif self.responder is not None:
            text = self.responder(req)
        else:
            raise AssertionError("FakeEngine: no queued answer and no responder")
        if req.trie is not None:
            self._check_constrained(req.trie, text)
        return Completion(text=text, finish_reason="stop", n_tokens=len(text.split()))

    def generate(self, requests: Sequence[Request], progress: Progress | None = None) -> list[Completion]:
        out = [self._answer(req) for req in requests]
        if progress:
            progress(len(requests))
        return out

    def submit(self, request: Request) -> int:
        self._tickets += 1
        self._waiting.append((self._tickets, request))
        return self._tickets

    def step(self) -> list[tuple[int, Completion]]:
        k = len(self._waiting) if self.per_step is None else self.per_step
        batch, self._waiting = self._waiting[:k], self._waiting[k:]
        return [(t, self._answer(r)) for t, r in batch]

    def _check_constrained(self, trie_path: str, text: str) -> None:
        """A constrained engine can only produce list items: an answer off the trie is a test bug."""
        from ..targets import DecodeTrie

        trie = DecodeTrie.load(trie_path)
        ids = self.tokenizer([text])["input_ids"][0] + [self.tokenizer.eos_token_id]
        node = trie.walk(ids)
        if node < 0 or len(trie.allowed(node)):
            raise AssertionError(f"FakeEngine: {text!r} is not an item of the request's list (decode: constrained)")
