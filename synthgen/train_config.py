"""Training settings, each declared once: its default, its help and its choices feed both `TrainConfig`
(what `train` reads) and `synthgen build-adapter`'s options (`click_options`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from .errors import InputError

OBJECTIVES = ("q", "mixed", "paper")
SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "fp32", "bf16", "both")
ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _opt(default, help: str, **cli):
    """A setting that is also a `build-adapter` option: `cli` may give choices, type (for a None default) or flag."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class TrainConfig:
    steps: int = _opt(60, "Maximum optimiser steps.")
    lr: float = _opt(5e-4, "AdamW learning rate (docs/adapters.md measures 5e-4 to 2e-3).")
    lr_schedule: str = _opt("constant", "cosine: from --lr down to --lr/10 at --steps.", choices=SCHEDULES)
    rank: int = _opt(8, "LoRA rank.")
    alpha: int | None = _opt(None, "LoRA alpha (default: 2 x rank).", type=int)
    target_modules: list[str] = field(default_factory=lambda: list(ALL_PROJECTIONS))
    layers: int | None = _opt(None, "LoRA on the top N decoder layers only (default: all): the frozen layers below run once "
                                    "per prompt and trie node, not every step.", type=int)
    prompts_per_step: int = _opt(2, "Prompts (one packed pass each) per step.")
    max_targets: int = _opt(1000, "Targets per pass; bigger lists are subsampled.")
    gamma: float = _opt(0.02, "Stop early when loss <= (1+gamma)·H(p*) for every list.")
    objective: str = _opt("q", "q: for the trie-constrained sampler's Q (generation's default decode); paper: for free "
                               "sampling's P; mixed: Q + --mass-weight x P's mass term.", choices=OBJECTIVES)
    mass_weight: float = _opt(0.1, "--objective mixed: weight of the term that keeps P's mass on the list.")
    keep_weight: float = _opt(0.0, "Weight of KL(base || adapter) on general text, added to every step: holds capability.")
    precision: str = _opt("auto", "Training forward/backward: auto (bf16 autocast where the CPU has a bf16 path or on a GPU, "
                                  "else fp32); both: the mean loss of an fp32 and a bf16 pass (right in both engine dtypes).",
                          choices=PRECISIONS)
    seed: int = _opt(0, "Seeds LoRA init and prompt/target sampling.")
    checkpoint_every: int = 10
    audit_prompts: int | None = _opt(None, "Card audit and the stop rule's whole-list check on the first N prompts "
                                           "(default: all).", type=int)
    init_from: str | None = _opt(None, "Start from this adapter's weights (same base, rank), e.g. for more steps.",
                                 type="dir", flag="--init")

    def __post_init__(self):
        if self.alpha is None:
            self.alpha = 2 * self.rank
        if self.audit_prompts is not None and self.audit_prompts < 1:
            raise InputError(f"`audit_prompts` must be >= 1, got {self.audit_prompts}")
        if self.layers is not None and self.layers < 1:
            raise InputError(f"`layers` must be >= 1, got {self.layers}")
        for name in ("steps", "rank", "alpha", "prompts_per_step", "max_targets", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise InputError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise InputError(f"`lr` must be > 0, got {self.lr}")
        if self.lr_schedule not in SCHEDULES:
            raise InputError(f"`lr_schedule` must be one of {', '.join(SCHEDULES)}, got {self.lr_schedule!r}")
        if not self.gamma >= 0:
            raise InputError(f"`gamma` must be >= 0, got {self.gamma}")
        if self.objective not in OBJECTIVES:
            raise InputError(f"`objective` must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if not 0 <= self.mass_weight <= 1:
            raise InputError(f"`mass_weight` must be in [0, 1], got {self.mass_weight}")
        if not 0 <= self.keep_weight <= 10:
            raise InputError(f"`keep_weight` must be in [0, 10], got {self.keep_weight}")
        if self.precision not in PRECISIONS:
            raise InputError(f"`precision` must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def resolved_precision(self) -> str:
        """bf16 autocast measured 1.37-1.53x faster per step on an AMX Xeon with the loss within 0.005
        nats and gradients at cosine >= 0.9998 (benchmarks/train_dtype.py, retired after commit fb4044b); a CPU without bf16
        units runs it emulated, so auto keeps fp32 there. The audit is fp32 either way."""
        if self.precision != "auto":
            return self.precision
        import torch

        from .engine import dtype as D

        return "bf16" if torch.cuda.is_available() or D.has_bf16_path(D.cpu_flags()) else "fp32"

    def lr_at(self, step: int) -> float:
        """The learning rate of optimiser step `step` (0-based): cosine ends at lr/10 on the last step."""
        if self.lr_schedule == "constant" or self.steps == 1:
            return self.lr
        return self.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(step, self.steps - 1) / (self.steps - 1))))

    @property
    def mass_term(self) -> float | None:
        """w in - sum_t p*(t) [log Q(t) + w log M(t)]; None for the paper's loss (no Q needed)."""
        return {"q": 0.0, "mixed": self.mass_weight, "paper": None}[self.objective]


def click_options(func):
    """`synthgen build-adapter`'s training options, one per TrainConfig setting with a help text (same name, default)."""
    import click

    for f in reversed(fields(TrainConfig)):
        meta = f.metadata
        if "help" not in meta:
            continue
        kw = {"default": f.default, "help": meta["help"], "show_default": f.default is not None}
        if "choices" in meta:
            kw["type"] = click.Choice(meta["choices"])
        elif meta.get("type") == "dir":
            kw["type"] = click.Path(file_okay=False)
        elif "type" in meta:
            kw["type"] = meta["type"]
        func = click.option(meta.get("flag", "--" + f.name.replace("_", "-")), f.name, **kw)(func)
    return func
