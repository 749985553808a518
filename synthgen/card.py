"""The adapter card (`synthgen_adapter.json` beside the weights): what `build-adapter` did and the
exact audit of the result, as one typed record; its README; the guard against decoding a
Q-trained adapter without the trie."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import AdapterError

ADAPTER_CARD = "synthgen_adapter.json"
FREE_MASS_FLOOR = 0.1  # an adapter whose P puts less on its list is for constrained decoding only


@dataclass
class AdapterCard:
    """`lists`: per list its name, spec_hash, n_targets, target_entropy_bits, prompts and the audit
    (`audit.Audit.to_dict`) of the base model and of the adapter; `capability`: the perplexity
    guard; `config`: the TrainConfig; `stop_checks`: the stop rule's exact confirmations; `init`:
    the adapter training started from (--init)."""

    format: str
    base_model: str
    base_fingerprint: str | None
    lists: list[dict]
    capability: dict
    config: dict
    steps: int
    stopped_early: bool
    train_seconds: float
    training_precision: str | None = None
    history: list[dict] = field(default_factory=list)
    stop_checks: list[dict] = field(default_factory=list)
    init: dict | None = None

    @property
    def objective(self) -> str:
        return self.config.get("objective", "paper")  # cards before the Q objective were all paper

    @property
    def degraded(self) -> bool:
        return bool(self.capability.get("degraded"))

    def to_dict(self) -> dict:
        d = asdict(self)
        return d if self.init is not None else {k: v for k, v in d.items() if k != "init"}

    @classmethod
    def from_dict(cls, d: dict) -> "AdapterCard":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def write(self, directory: Path) -> None:
        (directory / ADAPTER_CARD).write_text(json.dumps(self.to_dict(), indent=2))


def read_card(adapter: str | Path) -> AdapterCard | None:
    """The card of the adapter directory `adapter`; None where it has none (a peft adapter from elsewhere)."""
    path = Path(adapter) / ADAPTER_CARD
    if not path.is_file():
        return None
    try:
        return AdapterCard.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError):
        raise AdapterError(f"{path} is corrupt: rebuild the adapter") from None


def capability_line(card: AdapterCard) -> str:
    """The capability check in one line: perplexity on a general paragraph, base vs adapter."""
    cap = card.capability
    verdict = "DEGRADED" if cap["degraded"] else "ok"
    return (f"capability check: {verdict}: perplexity on a general paragraph {cap['perplexity_base']:.2f} -> "
            f"{cap['perplexity_adapter']:.2f} (x{cap['perplexity_ratio']}, threshold x{cap['threshold']})")


LOSSES = {"q": "-sum_t p*(t) log Q(t | prompt), Q being what trie-constrained decoding samples (the list's trie, renormalised "
                "at each token)",
          "mixed": "-sum_t p*(t) [log Q(t | prompt) + w log M(t)], Q plus w x the mass P keeps on the list",
          "paper": "-sum_t p*(t) log P(t + end-of-turn | prompt), for free sampling"}


def adapter_readme(card: AdapterCard, name: str) -> str:
    """The adapter's README.md, generated from its card (synthgen_adapter.json)."""
    cfg, objective = card.config, card.objective
    lines = [f"# {name}: a synthgen diffuse LoRA adapter", "",
             f"Base model: `{card.base_model}`. Trained by `synthgen build-adapter` for {card.steps} steps "
             f"({card.train_seconds:.0f} s{', stopped early' if card.stopped_early else ''}) to spread the model's "
             f"answers over a list, objective `{objective}`: {LOSSES[objective]}"
             + (f", plus {cfg['keep_weight']} x KL(base || adapter) on general text" if cfg.get("keep_weight") else "")
             + ".", "",
             "| list | targets | KL(Q‖p*) bits: base -> adapter | H(Q) bits (target) | E[distinct] in 500 under Q "
             "| mass of P on the list |", "|---|---:|---|---|---|---|"]

    def get(r, key, fmt, n=None):  # int keys in a fresh card, str keys read back from JSON; cards before Q have none
        v = r.get(key)
        v = v if v is None or n is None else v.get(n, v.get(str(n)))
        return "—" if v is None else format(v, fmt)

    for x in card.lists:
        b, a = x["base"], x["adapter"]
        lines.append(f"| {x['name']} | {x['n_targets']} | {get(b, 'kl_q_target_bits', '.2f')} -> "
                     f"{get(a, 'kl_q_target_bits', '.2f')} | {get(a, 'q_entropy_bits', '.2f')} ({x['target_entropy_bits']:.2f}) "
                     f"| {get(b, 'q_expected_distinct', '.0f', 500)} -> {get(a, 'q_expected_distinct', '.0f', 500)} "
                     f"| {b['mass']:.3f} -> {a['mass']:.3f} |")
    if (w := free_decoding_warning_from(card, name)) is not None:
        lines += ["", f"**Constrained decoding only**: {w}."]
    lines += ["", capability_line(card) + ".", "",
              f"Settings: rank {cfg['rank']}, alpha {cfg['alpha']}, lr {cfg['lr']}"
              f"{' (cosine)' if cfg.get('lr_schedule') == 'cosine' else ''}, {cfg['prompts_per_step']} prompt(s) "
              f"per step, up to {cfg['max_targets']} targets per pass, seed {cfg['seed']}. Exact metrics, settings and the "
              "loss history are in `synthgen_adapter.json`; audit it with `synthgen audit SPEC --adapter DIR`.", "",
              "Use: name it as a template field's `adapter:` (decoded inside the list's trie by default), or "
              "`synthgen sample PROMPT --adapter DIR`; with vLLM, `LoRARequest(name, 1, DIR)` (peft format).", ""]
    return "\n".join(lines)


def free_decoding_warning(adapter: str | Path) -> str | None:
    """One line when sampling through `adapter` without the trie would mostly miss its list: an
    adapter trained for Q (--objective q) may put almost none of P's mass there (its card's audit says how much)."""
    card = read_card(adapter)
    return free_decoding_warning_from(card, Path(adapter).name) if card else None


def free_decoding_warning_from(card: AdapterCard, name: str) -> str | None:
    masses = [x["adapter"]["mass"] for x in card.lists if "adapter" in x]
    if not masses or min(masses) >= FREE_MASS_FLOOR:
        return None
    return (f"adapter {name!r} puts {min(masses):.1%} of its free-sampling mass on its list "
            f"(trained with --objective {card.objective}, for trie-constrained decoding): free decoding will mostly "
            "give invalid answers; decode it constrained, or rebuild it with --objective mixed")


def unaudited_prompt_warning(adapter: str | Path, prompt: str) -> str | None:
    """unaudited_prompt_warning_from for the adapter directory `adapter` (None where it has no card)."""
    card = read_card(adapter)
    return unaudited_prompt_warning_from(card, Path(adapter).name, prompt) if card else None


def unaudited_prompt_warning_from(card: AdapterCard, name: str, prompt: str) -> str | None:
    """One line when a template asks `adapter` in words its card did not audit: its KL to the target was
    measured on the card's prompts only, and another wording samples another distribution (the shipped
    biography asked surnames "for a person named {first_name}": 470 unique in 1,000 instead of ~481).
    `prompt` may hold {placeholders} (any text matches them: "born in the {birth_date:.3}0s")."""
    import re
    import string

    audited = [p for x in card.lists for p in x.get("prompts") or []]
    if not audited:
        return None
    try:
        parts = [re.escape(text) + ("(?s:.+)" if field is not None else "") for text, field, _, _ in string.Formatter().parse(prompt)]
    except ValueError:
        return None  # a bad placeholder: the template's own check says so
    pattern = re.compile("".join(parts))
    if any(pattern.fullmatch(p) for p in audited):
        return None
    return (f"adapter {name!r} is asked in words its card did not audit ({prompt!r}; it was audited on "
            f"{audited[0]!r}{' and others' if len(set(audited)) > 1 else ''}): what it samples here is unmeasured; "
            "ask an audited prompt, or measure this one with `synthgen audit SPEC --adapter DIR --prompt ...`")
