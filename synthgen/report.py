"""Diversity report of a dataset (JSONL or Parquet): per-field validity and diversity, free-text
diversity, mutual information between fields, geography of places; optionally side by side with a
second dataset (`compare`).

Fields come from the run's `FILE.meta.json` (written by `synthgen generate`: kinds, valid lists,
adapters and so target distributions), or `fields=[...]`, or are inferred (strings with a median
of <= 6 words are categorical, longer ones free text). A categorical value is *valid* when it is in
the field's list (known from the template or `lists`), or, with no list, when it looks like a bare
value (1-5 words, one line, no colon or question mark). Invalid answers are counted and shown
apart, never counted as unique values.
"""

from __future__ import annotations

import base64
import gzip
import html
import io
import json
import math
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError

META_KEYS = {"index", "seed", "errors", "attempts"}
PLACE_HINTS = ("place", "city", "location", "birthplace", "hometown")


# --- loading ---------------------------------------------------------------------------------

@dataclass
class Dataset:
    path: str
    rows: list[dict]
    bad_lines: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)
    meta: dict | None = None


def load_dataset(path: str | Path) -> Dataset:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{str(path)!r} does not exist")
    if p.is_dir():
        raise InputError(f"{str(path)!r} is a directory: give a .jsonl or .parquet file")
    meta = None
    meta_path = Path(f"{p}.meta.json")
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = None
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


# --- field configuration ---------------------------------------------------------------------

@dataclass
class FieldSpec:
    name: str
    kind: str  # categorical | text
    valid: dict | None = None  # casefold -> canonical, when a list is known
    target: dict | None = None  # value -> p*, when a target distribution is known
    place: bool = False
    source: str = "inferred"


def _looks_like_value(s: str) -> bool:
    return 0 < len(s) <= 60 and "\n" not in s and ":" not in s and not s.endswith("?") and len(s.split()) <= 5


def _target_from_adapter(name: str, template_path: str | None) -> dict | None:
    from .lists import load_spec, load_targets
    from .template import adapter_dirs

    for d in adapter_dirs(Path(template_path) if template_path else None):
        spec_file = d / f"{name}.yaml"
        if spec_file.is_file():
            try:
                items, p = load_targets(load_spec(spec_file))
            except InputError:
                return None
            return dict(zip(items, p.tolist()))
    return None


def _list_lookup(ref: str) -> tuple[dict, dict | None]:
    """`builtin:NAME` / a builtin name / a list spec YAML -> (valid lookup, target distribution)."""
    from .lists import load_spec, load_targets
    from .lists.sources import BUILTINS, builtin

    name = ref.split(":", 1)[1] if ref.startswith("builtin:") else ref
    if name in BUILTINS:
        items, weights = builtin(name)  # a builtin with real frequencies is its own target
        tot = sum(weights) if weights else 0
        target = {i: w / tot for i, w in zip(items, weights)} if tot else None
    else:
        if not ref.endswith((".yaml", ".yml")) and not Path(ref).exists():
            raise InputError(f"--list: {ref!r} is neither a built-in list ({', '.join(BUILTINS)}) nor a list spec file")
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
            spec = FieldSpec(name, kind, source="template", place=m.get("match", "place" if hint else None) == "place")
            if m["kind"] == "choice" and m.get("choices") is not None:
                from .template import Field, _choices

                f = Field(name=name, kind="choice", prompt="-", choices=m["choices"])
                base = Path(tmpl.get("path") or ".").parent
                try:
                    spec.valid = _choices(f, name, base)
                except InputError:
                    spec.valid = None
            if m.get("adapter"):
                spec.target = _target_from_adapter(m["adapter"], tmpl.get("path"))
        else:
            vals = [r.get(name) for r in ds.rows if isinstance(r.get(name), str)]
            words = sorted(len(v.split()) for v in vals) or [0]
            kind = "text" if words[len(words) // 2] > 6 else "categorical"
            spec = FieldSpec(name, kind)
        if lists and name in lists:
            spec.valid, spec.target = _list_lookup(lists[name])
            spec.kind, spec.source = "categorical", f"list {lists[name]}"
        if (geo and name in geo) or (geo is None and not m and kind == "categorical"
                                     and any(h in name.lower() for h in PLACE_HINTS)):
            spec.place = True
        specs.append(spec)
    for g in geo or []:
        if g not in names:
            raise InputError(f"--geo {g}: not one of the reported fields ({', '.join(names)})")
    return specs


# --- metrics ---------------------------------------------------------------------------------

def entropy_bits(counts) -> float:
    c = np.asarray(list(counts), dtype=float)
    if c.sum() == 0:
        return 0.0
    p = c[c > 0] / c.sum()
    return float(-(p * np.log2(p)).sum())


def rarefaction(counts: list[int], points: int = 25) -> list[tuple[int, float]]:
    """Expected number of distinct values in a random subsample of m records (without replacement)."""
    from scipy.special import gammaln

    c = np.asarray(counts, dtype=float)
    n = int(c.sum())
    if n == 0:
        return []
    ms = sorted({int(round(x)) for x in np.geomspace(1, n, points)} | {n})
    out = []
    for m in ms:
        ok = (n - c) >= m
        log_miss = np.where(ok, gammaln(n - c + 1) - gammaln(n - c - m + 1) - gammaln(n + 1) + gammaln(n - m + 1), -np.inf)
        out.append((m, float((1 - np.exp(log_miss)).sum())))
    return out


def _value_of(v):
    if v is None:
        return None, "null"
    if isinstance(v, bool) or isinstance(v, (int, float)):
        return str(v), None
    if isinstance(v, str):
        return v.strip(), None
    return None, f"non-string value ({type(v).__name__})"


def categorical_stats(ds: Dataset, spec: FieldSpec) -> dict:
    n = len(ds.rows)
    valid, invalid, reasons = Counter(), Counter(), Counter()
    for r in ds.rows:
        if spec.name not in r:
            reasons["field missing"] += 1
            continue
        v, why = _value_of(r[spec.name])
        if v is None:
            err = (r.get("errors") or {}).get(spec.name) if isinstance(r.get("errors"), dict) else None
            reasons[(err.split(":")[0] if isinstance(err, str) else why)] += 1
            continue
        if spec.valid is not None:
            canon = spec.valid.get(v.casefold())
            if canon is None:
                invalid[v] += 1
                reasons["not in the list"] += 1
                continue
            valid[canon] += 1
        elif _looks_like_value(v):
            valid[v] += 1
        else:
            invalid[v] += 1
            reasons["not a bare value"] += 1
    n_valid = sum(valid.values())
    h = entropy_bits(valid.values())
    out = {
        "field": spec.name, "kind": "categorical", "source": spec.source, "records": n, "valid": n_valid,
        "valid_share": n_valid / n if n else 0.0, "invalid": n - n_valid, "invalid_reasons": dict(reasons.most_common(8)),
        "invalid_examples": [v for v, _ in invalid.most_common(5)],
        "unique": len(valid), "unique_ratio": len(valid) / n_valid if n_valid else 0.0,
        "entropy_bits": h, "normalized_entropy": h / math.log2(len(valid)) if len(valid) > 1 else 0.0,
        "top": [(v, c, c / n_valid) for v, c in valid.most_common(10)],
        "rarefaction": rarefaction(list(valid.values())),
        "list_size": len(spec.valid) if spec.valid is not None else None,
        "coverage": len(valid) / len(spec.valid) if spec.valid else None,
    }
    if spec.target:
        support = {k.casefold(): k for k in spec.target}
        inside = Counter()
        for v, c in valid.items():
            k = support.get(v.casefold())
            if k is not None:
                inside[k] += c
        tot = sum(inside.values())
        kl = sum((c / tot) * math.log2((c / tot) / spec.target[k]) for k, c in inside.items()) if tot else None
        out.update(target_size=len(spec.target), target_coverage=len(inside) / len(spec.target),
                   off_target_share=1 - tot / n_valid if n_valid else None, kl_to_target_bits=kl,
                   target_entropy_bits=entropy_bits(spec.target.values()))
    out["_counts"] = valid
    return out


_WORD = re.compile(r"\w+")


def _ngrams(tokens, n):
    return zip(*(tokens[i:] for i in range(n)))


def text_stats(ds: Dataset, spec: FieldSpec, sample: int = 1000, seed: int = 0) -> dict:
    texts, reasons = [], Counter()
    for r in ds.rows:
        v, why = _value_of(r.get(spec.name)) if spec.name in r else (None, "field missing")
        if not v:
            reasons[why or "empty"] += 1
        else:
            texts.append(v)
    n = len(ds.rows)
    out = {"field": spec.name, "kind": "text", "source": spec.source, "records": n, "valid": len(texts),
           "valid_share": len(texts) / n if n else 0.0, "invalid": n - len(texts), "invalid_reasons": dict(reasons)}
    if not texts:
        return out
    toks = [_WORD.findall(t.lower()) for t in texts]
    for k in (1, 2, 3):
        grams = [g for t in toks for g in _ngrams(t, k)]
        out[f"distinct_{k}"] = len(set(grams)) / len(grams) if grams else 0.0
    joined = "\n".join(texts).encode()
    out["compression_ratio"] = len(joined) / len(gzip.compress(joined, 9))
    c = Counter(texts)
    out["exact_duplicates"] = sum(v - 1 for v in c.values())
    out["mean_words"] = float(np.mean([len(t) for t in toks]))
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(texts), size=min(sample, len(texts)), replace=False)
    out["near_duplicates"] = _near_duplicates([toks[i] for i in idx])
    out["near_duplicate_sample"] = len(idx)
    out["ngram_vendi"] = _ngram_vendi([texts[i] for i in idx])
    out["vendi_sample"] = len(idx)
    return out


def _near_duplicates(toks: list[list[str]], threshold: float = 0.7) -> int:
    """Texts (in the sample) with another text of word-3-gram Jaccard >= threshold, exact copies excluded."""
    sh = [set(_ngrams(t, 3)) or {tuple(t)} for t in toks]
    index: dict = {}
    for i, s in enumerate(sh):
        for g in s:
            index.setdefault(g, []).append(i)
    near = set()
    for i, s in enumerate(sh):
        cands = Counter(j for g in s for j in index[g] if j != i)
        for j, inter in cands.items():
            if toks[i] != toks[j] and inter / len(s | sh[j]) >= threshold:
                near.add(i)
                break
    return len(near)


def _ngram_vendi(texts: list[str]) -> float | None:
    """n-gram Vendi score (Friedman & Dieng 2023) with the `vendi-score` package: the effective
    number of distinct texts, from the mean cosine similarity of 1..4-gram count vectors."""
    try:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize
        from vendi_score import vendi
    except ImportError:
        return None
    Ks = []
    for k in (1, 2, 3, 4):
        try:
            X = CountVectorizer(ngram_range=(k, k), token_pattern=r"\w+").fit_transform(texts)
        except ValueError:  # no k-grams at all (very short texts)
            continue
        X = normalize(X)
        Ks.append((X @ X.T).toarray())
    if not Ks:
        return None
    return float(vendi.score_K(np.mean(Ks, axis=0)))


def mutual_information(ds: Dataset, a: dict, b: dict, a_spec: FieldSpec, b_spec: FieldSpec, seed: int = 0) -> dict:
    """Plug-in MI (bits) between two categorical fields over records valid in both, next to the MI
    of the same values randomly re-paired (what finite samples give for independent fields)."""
    pairs = []
    for r in ds.rows:
        va, _ = _value_of(r.get(a_spec.name))
        vb, _ = _value_of(r.get(b_spec.name))
        if va is None or vb is None:
            continue
        ka = a_spec.valid.get(va.casefold()) if a_spec.valid is not None else va
        kb = b_spec.valid.get(vb.casefold()) if b_spec.valid is not None else vb
        if ka is None or kb is None or ka not in a["_counts"] or kb not in b["_counts"]:
            continue
        pairs.append((ka, kb))
    if len(pairs) < 2:
        return {"a": a_spec.name, "b": b_spec.name, "n": len(pairs), "mi_bits": None}

    def mi(ps):
        ha = entropy_bits(Counter(x for x, _ in ps).values())
        hb = entropy_bits(Counter(y for _, y in ps).values())
        return ha + hb - entropy_bits(Counter(ps).values()), ha, hb

    m, ha, hb = mi(pairs)
    rng = np.random.default_rng(seed)
    bs = [y for _, y in pairs]
    shuffled = []
    for _ in range(3):
        perm = rng.permutation(len(bs))
        shuffled.append(mi([(x, bs[j]) for (x, _), j in zip(pairs, perm)])[0])
    base = float(np.mean(shuffled))
    return {"a": a_spec.name, "b": b_spec.name, "n": len(pairs), "mi_bits": m, "shuffled_mi_bits": base,
            "excess_mi_bits": m - base, "normalized_mi": m / min(ha, hb) if min(ha, hb) > 0 else 0.0}


def geography(stats: dict) -> dict:
    from .geo import geocoder

    g = geocoder()
    by_country, by_continent, points = Counter(), Counter(), Counter()
    unresolved = Counter()
    for value, c in stats["_counts"].items():
        row = g.lookup(value)
        if row is None or "," not in value:
            unresolved[value] += c
            continue
        by_country[row["country"]] += c
        by_continent[row["continent"]] += c
        points[(row["lon"], row["lat"])] += c
    resolved = sum(by_country.values())
    return {"field": stats["field"], "resolved": resolved, "unresolved": sum(unresolved.values()),
            "unresolved_examples": [v for v, _ in unresolved.most_common(5)],
            "countries": len(by_country), "continents": len(by_continent),
            "country_entropy_bits": entropy_bits(by_country.values()),
            "continent_entropy_bits": entropy_bits(by_continent.values()),
            "top_countries": [(k, v, v / resolved) for k, v in by_country.most_common(10)] if resolved else [],
            "by_continent": dict(by_continent.most_common()), "_points": points}


# --- the report ------------------------------------------------------------------------------

def analyse(path: str | Path, fields=None, lists=None, geo=None) -> dict:
    t0 = time.perf_counter()
    ds = load_dataset(path)
    specs = configure(ds, fields, lists, geo)
    per_field, geos = [], []
    for s in specs:
        st = categorical_stats(ds, s) if s.kind == "categorical" else text_stats(ds, s)
        per_field.append(st)
        if s.place and s.kind == "categorical":
            geos.append(geography(st))
    cats = [(st, s) for st, s in zip(per_field, specs) if s.kind == "categorical"]
    mis = [mutual_information(ds, a, b, sa, sb) for i, (a, sa) in enumerate(cats) for b, sb in cats[i + 1:]]
    return {"file": str(path), "records": len(ds.rows), "malformed_lines": len(ds.bad_lines),
            "malformed_examples": [{"line": ln, "problem": why} for ln, why in ds.bad_lines[:10]],
            "template": ((ds.meta or {}).get("template") or {}).get("name"),
            "fields": per_field, "mutual_information": mis, "geography": geos,
            "seconds": time.perf_counter() - t0}


def compare_table(main: dict, other: dict) -> list[dict]:
    """Per shared field: the headline numbers of both datasets and main/other ratios."""
    rows = []
    theirs = {f["field"]: f for f in other["fields"]}
    for f in main["fields"]:
        o = theirs.get(f["field"])
        if o is None or o["kind"] != f["kind"]:
            continue
        # unique counts alone reward junk: realism (KL to the real-world target, top values) sits beside them
        keys = ("valid_share", "unique", "entropy_bits", "coverage", "kl_to_target_bits", "off_target_share") \
            if f["kind"] == "categorical" else ("valid_share", "distinct_2", "ngram_vendi", "compression_ratio")
        for k in keys:
            a, b = f.get(k), o.get(k)
            if a is None or b is None:
                continue
            rows.append({"field": f["field"], "metric": k, "value": a, "compare": b,
                         "ratio": (a / b) if b else None})
        if f["kind"] == "categorical":
            def top(x):
                return ", ".join(f"{v} {s:.1%}" for v, _, s in x["top"][:3])
            rows.append({"field": f["field"], "metric": "top 3", "value": top(f), "compare": top(o), "ratio": None})
    return rows


def public(report: dict) -> dict:
    """The JSON-serialisable report (internal counters dropped)."""
    def clean(o):
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items() if not k.startswith("_")}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if isinstance(o, float):
            return round(o, 6) if math.isfinite(o) else None
        return o
    return clean(report)


# --- pictures --------------------------------------------------------------------------------

def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def world_map(points: Counter, title: str, other: Counter | None = None, other_label: str = "compare") -> bytes:
    """Birth places on Natural Earth 1:110m countries (public domain, shipped), marker area ~ count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shapefile
    from matplotlib.collections import PolyCollection
    from importlib import resources

    shp = str(resources.files("synthgen") / "data" / "naturalearth" / "naturalearth_lowres.shp")
    polys = []
    with shapefile.Reader(shp) as sf:
        for shape in sf.shapes():
            pts, parts = shape.points, list(shape.parts) + [len(shape.points)]
            polys += [pts[parts[i]:parts[i + 1]] for i in range(len(parts) - 1)]
    fig, ax = plt.subplots(figsize=(11, 5.6))
    ax.add_collection(PolyCollection(polys, facecolors="#e8e8e8", edgecolors="#9a9a9a", linewidths=0.3))
    for pts, color, label in ((other, "#888888", other_label), (points, "#d62728", "this dataset")):
        if not pts:
            continue
        xy = np.array(list(pts.keys()))
        c = np.array(list(pts.values()), dtype=float)
        ax.scatter(xy[:, 0], xy[:, 1], s=6 + 40 * np.sqrt(c / c.max()), c=color, alpha=0.55, linewidths=0,
                   label=f"{label}: {len(pts)} places")
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 85)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig)


def rarefaction_plot(report: dict, other: dict | None = None) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = [f for f in report["fields"] if f["kind"] == "categorical" and f.get("rarefaction")]
    fig, ax = plt.subplots(figsize=(8, 5))
    theirs = {f["field"]: f for f in (other or {}).get("fields", [])}
    for i, f in enumerate(cats):
        color = f"C{i % 10}"
        m, u = zip(*f["rarefaction"])
        ax.plot(m, u, color=color, label=f["field"])
        o = theirs.get(f["field"])
        if o and o.get("rarefaction"):
            m2, u2 = zip(*o["rarefaction"])
            ax.plot(m2, u2, color=color, linestyle="--", alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("records sampled (N)")
    ax.set_ylabel("expected unique valid values")
    ax.set_title("Rarefaction" + (" (dashed: compare)" if other else ""))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


# --- outputs ---------------------------------------------------------------------------------

def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def images(report: dict, other: dict | None = None) -> dict[str, bytes]:
    out = {"rarefaction.png": rarefaction_plot(report, other)}
    theirs = {g["field"]: g for g in (other or {}).get("geography", [])}
    for g in report["geography"]:
        o = theirs.get(g["field"])
        out[f"map_{g['field']}.png"] = world_map(
            g["_points"], f"{g['field']}: {g['resolved']} geocoded ({g['countries']} countries)",
            o["_points"] if o else None, "compare")
    return out


def write_outputs(report: dict, out_dir: str | Path, other: dict | None = None) -> list[str]:
    d = Path(out_dir)
    if d.exists() and not d.is_dir():
        raise InputError(f"--out {str(out_dir)!r} is a file: give a directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create {str(out_dir)!r}: {e.strerror}") from None
    if not os.access(d, os.W_OK):
        raise InputError(f"cannot write to {str(out_dir)!r}")
    pngs = images(report, other)
    doc = {"report": public(report)}
    if other is not None:
        doc["compare"] = public(other)
        doc["comparison"] = public(compare_table(report, other))
    written = []
    for name, data in pngs.items():
        _atomic_write(d / name, data)
        written.append(str(d / name))
    _atomic_write(d / "report.json", json.dumps(doc, indent=2, ensure_ascii=False).encode())
    _atomic_write(d / "report.html", to_html(report, other, pngs).encode())
    return written + [str(d / "report.json"), str(d / "report.html")]


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return html.escape(str(v))


def _table(headers, rows) -> str:
    h = "".join(f"<th>{html.escape(x)}</th>" for x in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def to_html(report: dict, other: dict | None, pngs: dict[str, bytes]) -> str:
    """A self-contained page: tables and the PNGs embedded as data URIs."""
    parts = [f"<h1>synthgen diversity report</h1><p><b>{html.escape(report['file'])}</b>: {report['records']} records"
             f" ({report['malformed_lines']} malformed lines)"
             + (f"; compared with <b>{html.escape(other['file'])}</b> ({other['records']} records)" if other else "")
             + "</p>"]
    if other:
        parts.append("<h2>Side by side</h2>" + _table(["field", "metric", "this", "compare", "ratio"], [
            (r["field"], r["metric"], r["value"], r["compare"], r["ratio"]) for r in compare_table(report, other)]))
    cats = [f for f in report["fields"] if f["kind"] == "categorical"]
    parts.append("<h2>Categorical fields</h2>" + _table(
        ["field", "valid %", "unique valid", "unique ratio", "entropy bits", "norm. entropy", "coverage",
         "KL to target bits", "invalid", "top values"],
        [(f["field"], 100 * f["valid_share"], f["unique"], f["unique_ratio"], f["entropy_bits"],
          f["normalized_entropy"], f.get("coverage"), f.get("kl_to_target_bits"), f["invalid"],
          ", ".join(f"{v} {s:.1%}" for v, _, s in f["top"][:5])) for f in cats]))
    texts = [f for f in report["fields"] if f["kind"] == "text"]
    if texts:
        parts.append("<h2>Free text</h2>" + _table(
            ["field", "valid %", "distinct-1", "distinct-2", "distinct-3", "compression ratio", "exact dups",
             "near dups (sample)", "n-gram Vendi (sample)"],
            [(f["field"], 100 * f["valid_share"], f.get("distinct_1"), f.get("distinct_2"), f.get("distinct_3"),
              f.get("compression_ratio"), f.get("exact_duplicates"),
              f"{f.get('near_duplicates')} / {f.get('near_duplicate_sample')}", f.get("ngram_vendi"))
             for f in texts]))
    if report["mutual_information"]:
        parts.append("<h2>Mutual information between fields</h2>" + _table(
            ["fields", "records", "MI bits", "shuffled MI bits", "excess bits", "normalized MI"],
            [(f"{m['a']} ↔ {m['b']}", m["n"], m.get("mi_bits"), m.get("shuffled_mi_bits"), m.get("excess_mi_bits"),
              m.get("normalized_mi")) for m in report["mutual_information"]]))
    for g in report["geography"]:
        parts.append(f"<h2>Geography: {html.escape(g['field'])}</h2><p>{g['resolved']} geocoded, {g['unresolved']} "
                     f"unresolved; {g['countries']} countries (entropy {g['country_entropy_bits']:.2f} bits), "
                     f"{g['continents']} continents</p>" + _table(
                         ["country", "records", "share"], g["top_countries"]))
    for name, data in pngs.items():
        parts.append(f'<h3>{html.escape(name)}</h3><img alt="{html.escape(name)}" '
                     f'src="data:image/png;base64,{base64.b64encode(data).decode()}">')
    css = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
           "margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,"
           "th:first-child{text-align:left}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>synthgen report</title><style>{css}</style>"
            f"</head><body>{''.join(parts)}<p><small>Geocoding: GeoNames (CC-BY-4.0). Map: Natural Earth (public "
            f"domain).</small></p></body></html>")
