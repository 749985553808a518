"""Load a dataset (JSONL, JSONL.gz, JSON, CSV/TSV, Parquet or a saved Hugging Face dataset folder, ours or
anyone's) and decide how to report each field.

Fields come from the run's `FILE.meta.json` (written by `synthgen generate`: kinds, valid lists,
adapters and so target distributions), or `fields=[...]`, or are inferred (strings with a median
of <= 6 words are categorical, longer ones free text).
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

META_KEYS = {"index", "seed", "errors", "attempts"}
PLACE_HINTS = ("place", "city", "location", "birthplace", "hometown")


@dataclass
class Dataset:
    path: str
    rows: list[dict]
    bad_lines: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)
    meta: dict | None = None


def load_dataset(path: str | Path, split: str | None = None) -> Dataset:
    """`split`: which split of a saved DatasetDict (needed where it holds more than one)."""
    p = Path(path)
    if not p.exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", str(path)) and not p.suffix:
        rows = _hub_rows(str(path), split)
        if not rows:
            raise InputError(f"{str(path)!r} has no records")
        return Dataset(str(path), rows, [], None)
    if not p.exists():
        raise InputError(f"{str(path)!r} does not exist")
    meta = None
    meta_path = Path(f"{p}.meta.json")
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = None
    if p.is_dir() or p.suffix.lower() in (".csv", ".tsv", ".json"):
        rows = _hf_rows(p, split) if p.is_dir() else _csv_rows(p) if p.suffix.lower() != ".json" else _json_rows(p)
        if not rows:
            raise InputError(f"{str(path)!r} has no records")
        return Dataset(str(p), rows, [], meta)
    if split is not None:
        raise InputError(f"--split {split}: {str(path)!r} is one file, not a dataset with splits")
    if p.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            rows = pq.read_table(p).to_pylist()
        except Exception as e:  # pyarrow raises several types for a bad file
            raise InputError(f"{str(path)!r} is not a readable Parquet file ({e.__class__.__name__}: {e})") from None
        if not rows:
            raise InputError(f"{str(path)!r} has no records")
        return Dataset(str(p), rows, [], meta)
    rows, bad = [], []
    opener = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rt", encoding="utf-8", errors="replace") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError as e:
                    bad.append((i, f"not JSON ({e.msg})"))
                    continue
                if not isinstance(rec, dict):
                    bad.append((i, f"a JSON {type(rec).__name__}, not an object"))
                    continue
                rows.append(rec)
    except OSError as e:
        raise InputError(f"cannot read {str(path)!r}: {e.strerror or e}") from None
    if not rows:
        why = f" ({len(bad)} malformed line(s), first at line {bad[0][0]}: {bad[0][1]})" if bad else ""
        raise InputError(f"{str(path)!r} has no records{why}")
    return Dataset(str(p), rows, bad, meta)


def _hf_rows(p: Path, split: str | None) -> list[dict]:
    """A folder written by `datasets`' save_to_disk (synthgen's own --format hf output is one)."""
    try:
        import datasets
    except ImportError:
        raise InputError(f"{str(p)!r} is a folder: reading a saved Hugging Face dataset needs `pip install datasets`") from None
    try:
        ds = datasets.load_from_disk(str(p))
    except (FileNotFoundError, ValueError, OSError) as e:
        raise InputError(f"{str(p)!r} is a folder but not a saved Hugging Face dataset (datasets.load_from_disk: "
                         f"{str(e).splitlines()[0][:200]})") from None
    return _split_rows(ds, str(p), split)


def _hub_rows(name: str, split: str | None) -> list[dict]:
    """A Hugging Face hub id ("owner/name") already in this machine's `datasets` cache, read offline (synthgen never
    reaches the hub at run time)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        import datasets
        import huggingface_hub.constants
    except ImportError:
        raise InputError(f"{name!r}: reading a Hugging Face dataset needs `pip install datasets`") from None
    datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True  # imported before: offline still
    try:
        ds = datasets.load_dataset(name)
    except Exception as e:  # datasets raises many types (ConnectionError offline, FileNotFoundError, ValueError)
        raise InputError(f"{name!r} is not a file here, nor a Hugging Face dataset in this machine's cache (read offline: "
                         f"{e.__class__.__name__}); download it once with datasets.load_dataset({name!r})") from None
    return _split_rows(ds, name, split)


def _split_rows(ds, where: str, split: str | None) -> list[dict]:
    import datasets

    if isinstance(ds, datasets.DatasetDict):
        names = list(ds)
        if split is None and len(names) != 1:
            raise InputError(f"{where!r} holds the splits {', '.join(names)}: choose one with --split")
        if (split or names[0]) not in ds:
            raise InputError(f"{where!r} has no split {split!r} (it has {', '.join(names)})")
        ds = ds[split or names[0]]
    elif split is not None:
        raise InputError(f"--split {split}: {where!r} is one dataset, without splits")
    return ds.to_list()


def _csv_rows(p: Path) -> list[dict]:
    """CSV or TSV with a header row; every value a string as the file has it (an empty cell: missing)."""
    import csv

    try:
        with open(p, newline="", encoding="utf-8", errors="replace") as f:
            reader = csv.DictReader(f, delimiter="\t" if p.suffix.lower() == ".tsv" else ",")
            if not reader.fieldnames:
                return []
            rows = []
            for row in reader:
                if None in row or None in row.values():  # more cells than the header, or fewer
                    extra = row.get(None)
                    cells = len(reader.fieldnames) + len(extra) if extra else sum(v is not None for v in row.values())
                    raise InputError(f"{str(p)!r}, line {reader.line_num}: {cells} cells where the header has "
                                     f"{len(reader.fieldnames)} (a broken row)")
                rows.append({k: (v if v != "" else None) for k, v in row.items()})
            return rows
    except (OSError, csv.Error) as e:
        raise InputError(f"cannot read {str(p)!r} as {p.suffix[1:].upper()}: {e}") from None


def _json_rows(p: Path) -> list[dict]:
    """A JSON array of objects (or JSON Lines saved as .json)."""
    text = p.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as e:
            raise InputError(f"{str(p)!r} is neither a JSON array nor JSON Lines ({e})") from None
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), [data])  # {"data": [...]}: the list inside
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InputError(f"{str(p)!r}: expected a JSON array of objects (one per record)")
    return data


@dataclass
class FieldSpec:
    name: str
    kind: str  # categorical | text
    valid: dict | None = None  # casefold -> canonical, when a list is known
    target: dict | None = None  # value -> p*, when a target distribution is known
    place: bool = False
    source: str = "inferred"
    target_note: str | None = None  # why there is no target distribution (so no KL), when there is none
    conditional: dict | None = None  # the template's field when its list depends on earlier fields (joints.py)
    checks: dict | None = None  # text: what the template says it must agree with in its record (synthgen/checks.py)
    start: str | None = None  # text: the template's forced opening (the topic check reads what follows it)


def _target_from_adapter(name: str, template_path: str | None) -> dict | None:
    from ..lists import load_spec, load_targets
    from ..paths import spec_file

    path = spec_file(name, Path(template_path) if template_path else None)
    if path is None:
        return None
    try:
        items, p = load_targets(load_spec(path))
    except InputError:
        return None
    return dict(zip(items, p.tolist()))


def _target_from_choices(name: str, choices, base: Path) -> dict | None:
    """The distribution `adapter: auto` trains for: the field's list, with its source's weights
    where it has them (auto.field_spec: frequency, top TOP_K), else uniform."""
    from ..auto import TOP_K
    from ..choices import choices_spec
    from ..lists import ListSpec, load_targets

    try:
        spec = choices_spec(choices, name, base)
    except InputError:
        return None
    if spec is not None:  # choices: {spec: NAME}: that spec's own target
        items, p = load_targets(spec)
        return dict(zip(items, p.tolist()))
    source = {"inline": choices} if isinstance(choices, list) else dict(choices)
    for weighting in ("frequency", "uniform"):
        try:
            items, p = load_targets(ListSpec(name=name, source=source, prompts=["-"], path=str(base / "template.yaml"),
                                             weighting=weighting, top_k=TOP_K))
        except InputError:
            continue
        return dict(zip(items, p.tolist()))
    return None


def _list_lookup(ref: str) -> tuple[dict, dict | None]:
    """`builtin:NAME` / a builtin name / a list spec YAML -> (valid lookup, target distribution)."""
    from ..lists import load_spec, load_targets
    from ..lists.sources import BUILTINS, builtin

    name = ref.split(":", 1)[1] if ref.startswith("builtin:") else ref
    if name in BUILTINS:
        items, weights = builtin(name)  # a builtin with real frequencies is its own target; one without: uniform
        tot = sum(weights) if weights else 0
        target = {i: w / tot for i, w in zip(items, weights)} if tot else {i: 1 / len(items) for i in items}
    else:
        if not ref.endswith((".yaml", ".yml")) and not Path(ref).exists():
            raise InputError(f"--target: {ref!r} is neither a built-in list ({', '.join(BUILTINS)}) nor a list spec file")
        items, p = load_targets(load_spec(ref))
        target = dict(zip(items, p.tolist()))
    return {i.strip().casefold(): i.strip() for i in items}, target


def configure(ds: Dataset, fields: list[str] | None = None, lists: dict[str, str] | None = None,
              geo: list[str] | None = None) -> list[FieldSpec]:
    present = Counter(k for r in ds.rows for k in r if k not in META_KEYS)
    if not present:
        raise InputError(f"{ds.path!r}: records have no fields besides {', '.join(sorted(META_KEYS))}")
    tmpl = (ds.meta or {}).get("template") or {}
    by_meta = {f["name"]: f for f in tmpl.get("fields", [])}
    names = fields or ([n for n in by_meta if n in present] or [k for k, _ in present.most_common()])
    missing = [n for n in names if n not in present]
    if missing:
        raise InputError(f"{ds.path!r}: no record has field(s) {', '.join(missing)} (fields: {', '.join(present)})")
    specs = []
    for name in names:
        m = by_meta.get(name)
        if m:
            kind = "text" if m["kind"] == "text" else "categorical"
            hint = any(h in name.lower() for h in PLACE_HINTS)
            spec = FieldSpec(name, kind, source="template", place=m.get("match", "place" if hint else None) == "place",
                             checks=m.get("checks") if kind == "text" else None,
                             start=m.get("start") if kind == "text" else None)
            if m["kind"] == "choice" and m.get("choices") is not None:
                from ..choices import choice_lookup
                from ..template import Field

                f = Field(name=name, kind="choice", prompt="-", choices=m["choices"])
                base = Path(tmpl.get("path") or ".").parent
                try:
                    spec.valid = choice_lookup(f, name, base)
                except InputError:
                    spec.valid = None
            if m.get("given"):  # a list per record: the target is each record's own list (report/joints.py)
                spec.conditional = m
            elif m.get("adapter"):
                # auto: trained on the field's own list; a named or path adapter: its spec, else the field's list
                auto = m["adapter"] == "auto"
                spec.target = None if auto else _target_from_adapter(m["adapter"], tmpl.get("path"))
                if spec.target is None and m.get("choices") is not None:
                    spec.target = _target_from_choices(name, m["choices"], Path(tmpl.get("path") or ".").parent)
                    if spec.target is not None and not auto:
                        spec.target_note = (f"target: the field's own list (adapter {m['adapter']!r} has no list spec "
                                            f"{Path(m['adapter']).name}.yaml beside it; --target {name}=SPEC.yaml sets another)")
                if spec.target is None:
                    spec.target_note = (f"no KL: adapter {m['adapter']!r} has no list spec {Path(m['adapter']).name}.yaml "
                                        f"in an adapters directory; add --target {name}=SPEC.yaml")
        else:
            vals = [r.get(name) for r in ds.rows if isinstance(r.get(name), str)]
            words = sorted(len(v.split()) for v in vals) or [0]
            kind = "text" if words[len(words) // 2] > 6 else "categorical"
            spec = FieldSpec(name, kind)
        if lists and name in lists:  # the target; validity stays the template's list where the run had one
            valid, spec.target = _list_lookup(lists[name])
            spec.valid = valid if spec.valid is None else spec.valid
            spec.kind, spec.source, spec.target_note = "categorical", f"list {lists[name]}", None
        if spec.kind == "categorical" and spec.target is None and spec.target_note is None and not spec.conditional:
            # (a conditional field's target, the mixture of each record's own list, is set by report.analyse)
            spec.target_note = f"no KL: no target distribution (give one: --target {name}=LIST)"
        if (geo and name in geo) or (geo is None and not m and kind == "categorical"
                                     and any(h in name.lower() for h in PLACE_HINTS)):
            spec.place = True
        specs.append(spec)
    for g in geo or []:
        if g not in names:
            raise InputError(f"--geo {g}: not one of the reported fields ({', '.join(names)})")
    return specs


def parse_check_options(items) -> dict[str, dict]:
    """`--checks FIELD=YAML` options -> {field: checks} (a text field's `checks:` as a template writes
    it, e.g. 'bio={mentions: [name], pronouns: sex}'); a malformed one is a one-line error."""
    import yaml

    from .. import schema

    out = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--checks {item!r}: use FIELD=CHECKS, e.g. 'bio={{mentions: [name], pronouns: sex}}'")
        k, v = (x.strip() for x in item.split("=", 1))
        try:
            data = yaml.safe_load(v)
        except yaml.YAMLError as e:
            raise InputError(f"--checks {k}: not YAML ({str(e).splitlines()[0]})") from None
        out[k] = schema.validate(schema.TextChecks, data, f"--checks {k}").model_dump(exclude_defaults=True)
    return out


def parse_list_options(items) -> dict[str, str]:
    """`--target FIELD=LIST` options (also spelled --list) -> {field: list}; a malformed one is a one-line error."""
    out = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--target {item!r}: use FIELD=LIST (a builtin list name or a spec YAML)")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out
