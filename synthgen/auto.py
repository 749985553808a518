"""`adapter: auto`: a diffuse adapter for a template field that has a list but no adapter.

Built once before generation and cached under SYNTHGEN_HOME/adapters/auto/<digest>, the digest
covering the list (items and weights), the field's prompt, the base model and the training
settings; a changed list or prompt builds a new one. The training problem is the field itself:
its list (weighted by the source's real frequencies when it has them, else uniform; the 1000
heaviest items, since the constraint still covers the whole list) and its prompt, rendered with
values drawn from the earlier fields it refers to (those must be choice or date fields).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np

from .choices import choices_spec
from .errors import InputError
from .template import Field, Template

AUTO = "auto"
TOP_K = 1000
N_PROMPTS = 4


def auto_config():
    from .train_config import TrainConfig

    # sized for a 2-core CPU: a minute or two for a 1000-item list, once per list + prompt + model; LoRA on
    # the top 8 layers, as the shipped adapters (the layers below run once per trie node, not every step)
    return TrainConfig(steps=30, rank=8, alpha=16, layers=8, prompts_per_step=1, max_targets=300, audit_prompts=1, seed=0)


def field_spec(template: Template, f: Field):
    """The list spec an auto adapter trains on (its prompts are the field prompt, rendered)."""
    from .lists import ListSpec
    from .lists.spec import raw_items

    base = Path(template.path).parent if template.path else Path.cwd()
    spec = choices_spec(f.choices, f"field {f.name!r}", base) if f.kind == "choice" else None
    if f.kind == "date":
        source = {"dates": {"start": f.min, "stop": f.max}}
    elif spec is not None:  # choices: {spec: NAME}: that list and weighting
        source, base = spec.source, Path(spec.path).parent
    else:
        source = {"inline": list(f.choices)} if isinstance(f.choices, list) else dict(f.choices)
    probe = ListSpec(name=f"auto_{f.name}", source=source, prompts=["-"], path=spec.path if spec else str(base / "template.yaml"))
    if f.given:
        source = dict(f.choices)
        probe.source = {**source, "where": {k: v for k, v in source["where"].items() if "{" not in str(v)} or None}
    _, weights = raw_items(probe, base)
    rng = np.random.default_rng(0)
    for dep in f.depends:
        d = template.field(dep)
        if d.kind == "text" or (d.kind == "date" and not (d.min and d.max)):
            raise InputError(f"field {f.name!r}: adapter: auto needs a prompt that refers only to choice fields "
                             f"and dates with min/max, not {dep!r}; give an adapter or drop the reference")
    if f.given:  # a conditional list: one training list per distinct filter, the field's prompt rendered for it
        return conditional_spec(template, f, source, weights, rng, probe.path)
    prompts = []
    for _ in range(N_PROMPTS):
        values = {}
        for dep in f.depends:
            items = template.field(dep).items()
            values[dep] = items[rng.integers(len(items))]
        prompts.append(f.render(values))
    if spec is not None:
        return ListSpec(name=f"auto_{f.name}", source=source, prompts=list(dict.fromkeys(prompts)), path=spec.path,
                        weighting=spec.weighting, top_k=spec.top_k)
    return ListSpec(name=f"auto_{f.name}", source=source, prompts=list(dict.fromkeys(prompts)), path=probe.path,
                    weighting="uniform" if weights is None else "frequency", top_k=TOP_K)


def conditional_spec(template: Template, f: Field, source: dict, weights, rng, path: str):
    from .lists import ListSpec

    missing = [g for g in f.given if g not in f.depends]
    if missing:
        raise InputError(f"field {f.name!r}: adapter: auto for a list that depends on {missing[0]!r} needs the prompt to "
                         f"name {{{missing[0]}}} (the adapter can only follow what its prompt says)")
    variables = {g: {v: f.value_map.get(g, {}).get(v, v) for v in f.given_values[g]} for g in f.given}
    for dep in f.depends:
        if dep not in variables:  # prompt-only fields: two of their values, so the adapter sees them vary
            items = template.field(dep).items()
            variables[dep] = {v: v for v in rng.choice(items, size=min(2, len(items)), replace=False).tolist()}
    return ListSpec(name=f"auto_{f.name}", source=source, prompts=[f.prompt], variables=variables, path=path,
                    weighting="uniform" if weights is None else "frequency", top_k=TOP_K)


def auto_dir(spec, model_dir: str) -> Path:
    from dataclasses import asdict

    from .lists import load_targets
    from .models import model_fingerprint, synthgen_home

    from .lists import expand

    lists = [(x.prompts, *load_targets(x)) for x in expand(spec)]
    h = hashlib.sha256(json.dumps([[(pr, items, np.round(p, 12).tolist()) for pr, items, p in lists],
                                   model_fingerprint(model_dir) or model_dir,
                                   {k: v for k, v in asdict(auto_config()).items() if k != "precision"}],
                                  default=str).encode()).hexdigest()[:16]
    return synthgen_home() / "adapters" / AUTO / f"{spec.name}-{h}"


def ensure_auto_adapters(template: Template, model_dir: str, *,
                         on_step: Callable | None = None, on_note: Callable[[str], None] | None = None
                         ) -> tuple[Template, list[str]]:
    """Resolve every `adapter: auto` field to a built adapter (training the missing ones).
    Returns the template with those adapters' paths (a new one; `template` is left as it is) and the
    fields it trained for."""
    from .card import read_card

    trained, paths = [], {}
    for f in template.fields:
        if f.adapter != AUTO or f.adapter_path:
            continue
        spec = field_spec(template, f)
        out = auto_dir(spec, model_dir)
        if not (out / "adapter_config.json").is_file():
            _build(model_dir, spec, out, f.name, on_step, on_note)
            trained.append(f.name)
        card = read_card(out)
        if on_note and card and card.lists:
            import numpy as np

            mean = lambda side, key: float(np.mean([x[side][key] for x in card.lists]))  # noqa: E731
            e500 = lambda side: float(np.mean([x[side]["q_expected_distinct"]["500"] for x in card.lists]))  # noqa: E731
            on_note(f"adapter: auto for {f.name!r}: KL(Q‖p*) {mean('base', 'kl_q_target_bits'):.2f} -> "
                    f"{mean('adapter', 'kl_q_target_bits'):.2f} bits, E[distinct in 500] under Q {e500('base'):.0f} -> "
                    f"{e500('adapter'):.0f} (Q: what constrained decoding samples; {out})")
        paths[f.name] = {"adapter_path": str(out)}
    return template.with_changes(paths), trained


def _build(model_dir: str, spec, out: Path, field: str, on_step, on_note) -> None:
    """Train one auto adapter; an interrupted earlier build of it is resumed from its checkpoint, or
    (no usable checkpoint) started over, said in one line."""
    import shutil

    from .output import recover
    from .train import train

    note = on_note or (lambda _: None)
    partial = out.with_name(out.name + ".partial")
    recover(partial)
    resume = (partial / "trainer_state.pt").is_file()
    if partial.exists() and not resume:
        note(f"adapter: auto for {field!r}: an interrupted build left no checkpoint: starting over")
        shutil.rmtree(partial)
    note(f"adapter: auto for {field!r}: " + ("resuming the interrupted build" if resume else "training")
         + f" on {spec.name} ({len(spec.prompts)} prompts) -> {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        train(model_dir, [spec], out, auto_config(), overwrite=True, resume=resume, on_step=on_step)
    except (InputError, OSError, RuntimeError, EOFError) as e:
        if not resume:
            raise
        note(f"adapter: auto for {field!r}: its checkpoint cannot be resumed ({e.__class__.__name__}): starting over")
        shutil.rmtree(partial, ignore_errors=True)
        train(model_dir, [spec], out, auto_config(), overwrite=True, on_step=on_step)
