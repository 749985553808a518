"""Diversity report of a dataset (JSONL or Parquet, ours or anyone's): per-field validity and
diversity, free-text diversity, mutual information between fields, geography of places;
optionally side by side with a second dataset.

    load.py     records + meta -> Dataset, and how each field is reported (FieldSpec)
    metrics.py  one function per figure, JSON-ready dicts
    plots.py    PNGs (rarefaction, world map)
    html.py     the self-contained page

`analyse(path)` returns a `Report`: `summary` is the JSON document (what `--json` prints), `counts`
and `points` are the typed data the pictures need.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_atomic
from ..entropy import entropy_bits
from ..errors import InputError
from .joints import conditional_stats, joint_fields, mixture_target
from .load import configure, load_dataset, parse_check_options, parse_list_options
from .metrics import categorical_stats, compare_table, geography, mutual_information, public, rarefaction, text_stats
from .population import names_fit_place

__all__ = ["Report", "analyse", "analyse_pair", "compare_table", "document", "entropy_bits", "load_dataset", "parse_list_options",
           "rarefaction", "write_outputs"]


@dataclass
class Report:
    summary: dict  # JSON-ready: file, records, malformed lines, fields, mutual_information, geography, seconds
    counts: dict[str, Counter] = field(default_factory=dict)  # categorical field -> counts of its valid values
    points: dict[str, Counter] = field(default_factory=dict)  # place field -> (lon, lat) -> records
    targets: dict[str, dict] = field(default_factory=dict)  # categorical field -> its target distribution, where known


class Fallback(dict):
    """A text field's checks that apply only where the field has none of its own and its records have every field
    they name (a --compare file measured with the main file's checks)."""


def analyse(path: str | Path, fields=None, lists=None, geo=None, checks=None, split=None, template=None,
            joints=()) -> Report:
    """`checks`: {text field: checks} (as a template's `checks:`) that replace the template's, or that fill in
    where it has none (a `Fallback`); `template`: a
    template name or path whose fields (lists, targets, joints, checks) the file is read with, as
    if synthgen had made it with that template (another tool's file); `joints`: `--joint GIVEN:FIELD` items,
    FIELD judged against the shipped real joint with GIVEN (joints.joint_fields)."""
    t0 = time.perf_counter()
    ds = load_dataset(path, split)
    if template is not None:
        from ..template import load_template

        ds.meta = {**(ds.meta or {}), "template": load_template(template).describe()}
    specs = configure(ds, fields, lists, geo)
    for name, meta in joint_fields(ds.rows, joints, lists or {}).items():
        spec = next((s for s in specs if s.name == name), None)
        if spec is None:
            raise InputError(f"--joint {meta['given'][0]}:{name}: {name!r} is not among the reported fields (--fields)")
        spec.kind, spec.conditional, spec.target_note = "categorical", meta, None
    texts = {s.name: s for s in specs if s.kind == "text"}
    have = set().union(*(r.keys() for r in ds.rows[:100])) if ds.rows else set()
    for name, c in (checks or {}).items():
        if isinstance(c, Fallback):
            if name in texts and not texts[name].checks and _check_fields(c) <= have:
                texts[name].checks = dict(c)
            continue
        if name not in texts:
            raise InputError(f"--checks {name}: not a text field of {str(path)!r}"
                             + (f" (text fields: {', '.join(texts)})" if texts else " (it has no text field)"))
        texts[name].checks = c
    rep = Report(summary={})
    per_field, geos = [], []
    tpath = ((ds.meta or {}).get("template") or {}).get("path")
    for s in specs:
        if s.kind == "categorical":
            if s.conditional:
                s.target = mixture_target(ds.rows, s.conditional, tpath)
            st, rep.counts[s.name] = categorical_stats(ds, s)
            if s.target:
                rep.targets[s.name] = s.target
            if s.conditional:
                st["conditional"] = conditional_stats(ds.rows, s.conditional, tpath)
            if s.place:
                g, rep.points[s.name] = geography(s.name, rep.counts[s.name])
                geos.append(g)
        else:
            st = text_stats(ds, s)
        per_field.append(st)
    cats = [s for s in specs if s.kind == "categorical"]
    mis = [mutual_information(ds, a, b, rep.counts[a.name], rep.counts[b.name])
           for i, a in enumerate(cats) for b in cats[i + 1:]]
    place = next((s.name for s in specs if s.place), None)
    tmeta = (ds.meta or {}).get("template") or {}
    rep.summary = {"file": str(path), "records": len(ds.rows), "malformed_lines": len(ds.bad_lines),
                   "malformed_examples": [{"line": ln, "problem": why} for ln, why in ds.bad_lines[:10]],
                   "template": tmeta.get("name"), "population": tmeta.get("population") or None,
                   "fields": per_field, "mutual_information": mis, "geography": geos,
                   "names_fit_birth_country": names_fit_place(ds.rows, [s.name for s in specs], place),
                   "seconds": time.perf_counter() - t0}
    return rep


def analyse_pair(path, compare_with=None, options: dict | None = None) -> tuple[Report, Report | None]:
    """`synthgen report`'s options as given (fields: "a,b"; lists: F=L items (--target); geo; checks: F=YAML items;
    joints: G:F items; split; template): the file, and the --compare file measured with the same lists and the same
    checks (the main file's, where it has none of its own)."""
    o = options or {}
    fields = o.get("fields")
    args = ([f.strip() for f in fields.split(",") if f.strip()] if fields else None, parse_list_options(o.get("lists", ())),
            list(o.get("geo", ())) or None)
    flag_checks = parse_check_options(o.get("checks", ()))
    split, template, joints = o.get("split"), o.get("template"), o.get("joints", ())
    main = analyse(path, *args, checks=flag_checks, split=split, template=template, joints=joints)
    mine = {f["field"]: f["checks_spec"] for f in main.summary["fields"] if f.get("checks_spec")}
    theirs = {**{k: Fallback(v) for k, v in mine.items()}, **flag_checks}
    return main, (analyse(compare_with, *args, checks=theirs, split=split, template=template, joints=joints)
                  if compare_with else None)


def _check_fields(c: dict) -> set:
    years = c.get("years")
    return {*c.get("mentions", ()), *(x for x in (c.get("pronouns"), years.get("field") if isinstance(years, dict) else years) if x)}


def document(main: Report, other: Report | None = None) -> dict:
    """The report as written to report.json and printed by `--json`."""
    doc = {"report": public(main.summary)}
    if other is not None:
        doc["compare"] = public(other.summary)
        doc["comparison"] = public(compare_table(main.summary, other.summary))
    return doc


def images(main: Report, other: Report | None = None) -> dict[str, bytes]:
    from .plots import rarefaction_plot, target_fit_plot, world_map

    out = {"rarefaction.png": rarefaction_plot(main.summary, other.summary if other else None)}
    if (fit := target_fit_plot(main, other)) is not None:
        out["target_fit.png"] = fit
    for g in main.summary["geography"]:
        name = g["field"]
        out[f"map_{name}.png"] = world_map(main.points[name], f"{name}: {g['resolved']} geocoded ({g['countries']} countries)",
                                           other.points.get(name) if other else None, "compare")
    return out


def write_outputs(main: Report, out_dir: str | Path, other: Report | None = None) -> list[str]:
    """report.html (self-contained), report.json and the PNGs into `out_dir`, each written atomically."""
    from .html import to_html

    d = Path(out_dir)
    if d.exists() and not d.is_dir():
        raise InputError(f"--out {str(out_dir)!r} is a file: give a directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create {str(out_dir)!r}: {e.strerror}") from None
    if not os.access(d, os.W_OK):
        raise InputError(f"cannot write to {str(out_dir)!r}")
    pngs = images(main, other)
    written = []
    for name, data in pngs.items():
        write_atomic(d / name, data)
        written.append(str(d / name))
    write_atomic(d / "report.json", json.dumps(document(main, other), indent=2, ensure_ascii=False).encode())
    write_atomic(d / "report.html", to_html(main.summary, other.summary if other else None, pngs).encode())
    return written + [str(d / "report.json"), str(d / "report.html")]
