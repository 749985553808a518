"""A list spec: a short YAML file naming a target list, its weighting and its prompts.

    name: first_names
    source: {builtin: first_names, where: {sex: F}}   # or inline: [...], range: {start, stop, only},
                                                      # dates: {start, stop} (ISO), csv: {...}
    weighting: frequency          # uniform | frequency | a number a for frequency^a
    top_k: 1000                   # keep the K heaviest items
    prompts:                      # paraphrases; training samples among them
      - "Pick a random first name. Answer with the name only."

A conditional spec names `variables` that its prompts use, and its source's `where` may use them
too: the target depends on their value (a first name given sex and birth decade). One adapter is
trained over every combination; `expand` gives one plain spec per combination.

    source: {builtin: first_names_by_decade, where: {sex: "{gender}", decade: "{decade}"}}
    variables:
      gender: {female: F, male: M}    # the prompt's value -> the source's spelling
      decade: [1940, 1950, 1960]      # the same in both
    prompts:
      - "Pick a random first name for a {gender} person born in the {decade}s. Answer with the name only."

Unknown keys are errors, not silently ignored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import schema
from ..errors import InputError, parse_yaml
from . import sources

_SOURCE_KINDS = schema.SOURCE_KINDS


@dataclass
class ListSpec:
    name: str = field(metadata={"help": "short identifier; also the default adapter directory name"})
    source: dict = field(metadata={"help": "builtin | inline | range | csv"})
    prompts: list[str] = field(metadata={"help": "paraphrased prompts that ask for one item"})
    weighting: str | float = field(default="uniform", metadata={"help": "uniform | frequency | exponent a"})
    top_k: int | None = field(default=None, metadata={"help": "keep the K heaviest items"})
    description: str = ""
    variables: dict | None = field(default=None, metadata={"help": "name -> values (a list, or value -> source spelling)"})
    path: str | None = None  # where it was loaded from (not a YAML key)
    condition: dict | None = None  # set by expand(): this spec's variable values (not a YAML key)

    def __post_init__(self):  # what the YAML may say: synthgen.schema.SpecFile
        schema.validate(schema.SpecFile, {k: getattr(self, k) for k in schema.SpecFile.model_fields},
                        f"spec {self.path or self.name!r}")

    def digest(self) -> str:
        """Hash of what defines the training problem (recorded in the adapter card)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("path", "description")
             and not (k in ("variables", "condition") and v is None)}  # digests of plain specs unchanged
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_spec(path: str | Path) -> ListSpec:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read spec {str(path)!r}: {e.strerror}") from None
    where = f"spec {str(path)!r}"
    data = parse_yaml(raw, where)
    if not isinstance(data, dict):
        raise InputError(f"{where} must be a YAML mapping with name, source and prompts")
    schema.validate(schema.SpecFile, data, where)
    return ListSpec(**data, path=str(p))  # (the YAML's own values: a spec's digest does not change)


def _placeholders(text: str, where: str) -> list[str]:
    import string

    try:
        return [r for _, r, _, _ in string.Formatter().parse(text) if r is not None]
    except ValueError as e:
        raise InputError(f"{where}: bad placeholder in {text!r} ({e})") from None


def expand(spec: ListSpec) -> list[ListSpec]:
    """One plain spec per combination of a conditional spec's variables (the spec itself if it has
    none): its prompts rendered with the values, its `where` with their source spellings."""
    import itertools

    if not spec.variables:
        return [spec]
    where = f"spec {spec.path or spec.name!r}"
    spell = {name: {str(k): str(v) for k, v in (values.items() if isinstance(values, dict) else zip(values, values))}
             for name, values in spec.variables.items()}  # value -> the source's spelling
    src_where = spec.source.get("where") if isinstance(spec.source.get("where"), dict) else {}
    used_where = {r for v in src_where.values() if isinstance(v, str) for r in _placeholders(v, where)}
    for prompt in spec.prompts:
        refs = set(_placeholders(prompt, where))
        if refs - set(spell):
            raise InputError(f"{where}: prompt {prompt!r} uses {{{sorted(refs - set(spell))[0]}}}, which is not a variable")
        if set(spell) - refs:
            raise InputError(f"{where}: variable {sorted(set(spell) - refs)[0]!r} is not used by prompt {prompt!r}")
    if used_where - set(spell):
        raise InputError(f"{where}: `where` uses {{{sorted(used_where - set(spell))[0]}}}, which is not a variable")
    out = []
    names = list(spell)
    for combo in itertools.product(*(list(spell[n]) for n in names)):
        values = dict(zip(names, combo))
        spelled = {n: spell[n][v] for n, v in values.items()}
        source = dict(spec.source)
        if src_where:
            source["where"] = {k: v.format(**spelled) if isinstance(v, str) else v for k, v in src_where.items()}
        label = ",".join(f"{n}={v}" for n, v in values.items())
        one = ListSpec(name=f"{spec.name}({label})", source=source, prompts=[p.format(**values) for p in spec.prompts],
                       weighting=spec.weighting, top_k=spec.top_k, description=spec.description, path=spec.path,
                       condition=values)
        try:
            load_targets(one)
        except InputError as e:
            raise InputError(f"{where}: for {label}: {e}") from None
        out.append(one)
    return out


def raw_items(spec: ListSpec, base: Path):
    src = spec.source
    kind = next(iter(src.keys() & _SOURCE_KINDS))
    extra = set(src) - {kind, "where", "column", "weight", "starts_with"}
    if extra:
        raise InputError(f"spec {spec.name!r}: unknown source key(s) {', '.join(sorted(extra))}")
    if kind != "csv" and set(src) & {"column", "weight"}:
        raise InputError(f"spec {spec.name!r}: `column` and `weight` pick a csv file's columns; a {kind} source has none")
    if kind == "builtin":
        return sources.builtin(src["builtin"], src.get("where"))
    if kind == "dates":
        r = src["dates"]
        if not isinstance(r, dict) or {"start", "stop"} - set(r):
            raise InputError(f"spec {spec.name!r}: dates needs start and stop (ISO dates)")
        return sources.date_range(r["start"], r["stop"])
    if kind == "range":
        r = src["range"]
        if not isinstance(r, dict) or {"start", "stop"} - set(r):
            raise InputError(f"spec {spec.name!r}: range needs start and stop")
        return sources.number_range(r["start"], r["stop"], r.get("only"))
    if kind == "csv":
        opts = dict(src)
        if isinstance(src["csv"], dict):  # the nested form: csv: {path: F, column: C, weight: W, where: {...}}
            nested = src["csv"]
            unknown = set(nested) - {"path", "column", "weight", "where"}
            if unknown or "path" not in nested:
                raise InputError(f"spec {spec.name!r}: csv takes a path (csv: FILE, column: ...) or "
                                 f"{{path: FILE, column: ..., weight: ..., where: ...}}"
                                 + (f"; unknown key(s) {', '.join(sorted(unknown))}" if unknown else "; no path given"))
            opts = {**opts, **nested, "csv": nested["path"]}
        if not isinstance(opts["csv"], (str, Path)):
            raise InputError(f"spec {spec.name!r}: csv must be a file path, got {opts['csv']!r}")
        path = Path(opts["csv"])
        path = path if path.is_absolute() else base / path
        return sources.read_csv(path, opts.get("column", "item"), opts.get("weight"), opts.get("where"))
    items = src["inline"]
    if isinstance(items, dict):  # inline {item: weight}
        return [str(k) for k in items], list(items.values())
    if not isinstance(items, list):
        raise InputError(f"spec {spec.name!r}: inline must be a list of items or a mapping item -> weight")
    return [str(i) for i in items], None


def load_targets(spec: ListSpec) -> tuple[list[str], np.ndarray]:
    """Items and the target distribution p* (sums to 1), after weighting and top-K."""
    if spec.variables:
        raise InputError(f"spec {spec.name!r} is conditional (variables {', '.join(spec.variables)}): it has one list "
                         "per value; use synthgen.lists.expand(spec)")
    base = Path(spec.path).parent if spec.path else Path.cwd()
    items, raw = raw_items(spec, base)
    items = [i.strip() for i in items]
    prefix = spec.source.get("starts_with")
    if prefix:
        keep = [i for i, item in enumerate(items) if item.lower().startswith(str(prefix).lower())]
        items, raw = [items[i] for i in keep], (None if raw is None else [raw[i] for i in keep])
    if not items:
        raise InputError(f"spec {spec.name!r}: the list is empty (check the source and its `where` filter)")
    if raw is None:
        if spec.weighting not in ("uniform",):
            raise InputError(f"spec {spec.name!r}: weighting {spec.weighting!r} needs weights, but the source has none")
        w = np.ones(len(items))
    else:
        try:
            w = np.asarray(raw, dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"spec {spec.name!r}: weights must be numbers") from None
        bad = ~np.isfinite(w) | (w <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"spec {spec.name!r}: weight of {items[i]!r} is {raw[i]!r}; weights must be finite and > 0")
    if spec.top_k is not None and spec.top_k < len(items):
        keep = np.argsort(-w, kind="stable")[: spec.top_k]
        keep.sort()
        items, w = [items[i] for i in keep], w[keep]
    if spec.weighting == "uniform":
        w = np.ones(len(items))
    elif spec.weighting != "frequency":
        w = w ** float(spec.weighting)
    return items, w / w.sum()
