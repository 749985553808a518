"""`synthgen sample`: ask one prompt N times and count the answers, the quickest view of mode collapse."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .engine import Engine, Request, derive_seed
from .entropy import entropy_bits
from .errors import InputError


@dataclass
class SampleResult:
    prompt: str
    n: int
    counts: Counter  # answer (stripped) -> count
    unfinished: int  # answers cut at max_tokens (no end-of-turn)
    finished: Counter  # answers that ended with end-of-turn within max_tokens -> count

    @property
    def distinct_finished(self) -> int:
        """Distinct complete answers: cut-off rambling is not diversity."""
        return len(self.finished)

    @property
    def distinct(self) -> int:
        return len(self.counts)

    @property
    def top_share(self) -> float:
        return self.counts.most_common(1)[0][1] / self.n if self.counts else 0.0

    @property
    def entropy_bits(self) -> float:
        return entropy_bits(self.counts.values())

    def to_dict(self, top: int | None = None) -> dict:
        return {
            "prompt": self.prompt, "n": self.n, "distinct": self.distinct,
            "top_share": round(self.top_share, 4), "entropy_bits": round(self.entropy_bits, 4),
            "unfinished": self.unfinished, "distinct_finished": self.distinct_finished,
            "answers": [{"answer": a, "count": c, "share": round(c / self.n, 4), "finished": a in self.finished,
                         "finished_count": self.finished[a]}
                        for a, c in self.counts.most_common(top)],
        }


def sample(engine: Engine, prompt: str, n: int, *, seed: int = 0, adapter: str | None = None,
           temperature: float = 1.0, max_tokens: int = 16, progress=None) -> SampleResult:
    check_sample_args(prompt, n, temperature, max_tokens)
    # one seed per draw: vLLM's default seed is 0, so n>1 with one seed repeats across restarts
    requests = [Request(prompt=prompt, max_tokens=max_tokens, temperature=temperature,
                        seed=derive_seed(seed, "sample", i), adapter=adapter) for i in range(n)]
    completions = engine.generate(requests, progress=progress)
    counts = Counter(c.text.strip() for c in completions)
    finished = Counter(c.text.strip() for c in completions if c.finish_reason == "stop")
    return SampleResult(prompt=prompt, n=n, counts=counts, unfinished=n - finished.total(), finished=finished)


def check_sample_args(prompt: str, n: int, temperature: float = 1.0, max_tokens: int = 16) -> None:
    if not prompt.strip():
        raise InputError("the prompt is empty: give the question to ask, e.g. \"Pick a random number between 1 and 10.\"")
    if n < 1:
        raise InputError(f"--n must be >= 1, got {n}")
    if temperature < 0:
        raise InputError(f"--temperature must be >= 0, got {temperature}")
    if max_tokens < 1:
        raise InputError(f"--max-tokens must be >= 1, got {max_tokens}")
