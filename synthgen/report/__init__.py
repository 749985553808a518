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

from ..entropy import entropy_bits
from ..errors import InputError
from .joints import conditional_stats, mixture_target
from .load import configure, load_dataset, parse_list_options
from .metrics import categorical_stats, compare_table, geography, mutual_information, public, rarefaction, text_stats

__all__ = ["Report", "analyse", "compare_table", "document", "entropy_bits", "load_dataset", "parse_list_options",
           "rarefaction", "write_outputs"]


@dataclass
class Report:
    summary: dict  # JSON-ready: file, records, malformed lines, fields, mutual_information, geography, seconds
    counts: dict[str, Counter] = field(default_factory=dict)  # categorical field -> counts of its valid values
    points: dict[str, Counter] = field(default_factory=dict)  # place field -> (lon, lat) -> records


def analyse(path: str | Path, fields=None, lists=None, geo=None) -> Report:
    t0 = time.perf_counter()
    ds = load_dataset(path)
    specs = configure(ds, fields, lists, geo)
    rep = Report(summary={})
    per_field, geos = [], []
    tpath = ((ds.meta or {}).get("template") or {}).get("path")
    for s in specs:
        if s.kind == "categorical":
            if s.conditional:
                s.target = mixture_target(ds.rows, s.conditional, tpath)
            st, rep.counts[s.name] = categorical_stats(ds, s)
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
    rep.summary = {"file": str(path), "records": len(ds.rows), "malformed_lines": len(ds.bad_lines),
                   "malformed_examples": [{"line": ln, "problem": why} for ln, why in ds.bad_lines[:10]],
                   "template": ((ds.meta or {}).get("template") or {}).get("name"),
                   "fields": per_field, "mutual_information": mis, "geography": geos,
                   "seconds": time.perf_counter() - t0}
    return rep


def document(main: Report, other: Report | None = None) -> dict:
    """The report as written to report.json and printed by `--json`."""
    doc = {"report": public(main.summary)}
    if other is not None:
        doc["compare"] = public(other.summary)
        doc["comparison"] = public(compare_table(main.summary, other.summary))
    return doc


def images(main: Report, other: Report | None = None) -> dict[str, bytes]:
    from .plots import rarefaction_plot, top_values_plot, world_map

    out = {"rarefaction.png": rarefaction_plot(main.summary, other.summary if other else None)}
    if (top := top_values_plot(main.summary, other.summary if other else None)) is not None:
        out["top_values.png"] = top
    for g in main.summary["geography"]:
        name = g["field"]
        out[f"map_{name}.png"] = world_map(main.points[name], f"{name}: {g['resolved']} geocoded ({g['countries']} countries)",
                                           other.points.get(name) if other else None, "compare")
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


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
        _atomic_write(d / name, data)
        written.append(str(d / name))
    _atomic_write(d / "report.json", json.dumps(document(main, other), indent=2, ensure_ascii=False).encode())
    _atomic_write(d / "report.html", to_html(main.summary, other.summary if other else None, pngs).encode())
    return written + [str(d / "report.json"), str(d / "report.html")]
