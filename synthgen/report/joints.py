"""What a perfect sampler of the target would score at this n, and fields against their real joint.

KL(empirical ‖ p*) of n draws from p* itself is > 0 and grows with the support (≈ (K − 1) / (2 n
ln 2) bits when n ≫ K; most of log2 K − H when n < K), so a KL→target means little without its
floor at the same n. Here the floor is simulated: the mean over `SIMS` samples of n draws from p*
(seeded), scored exactly as the data is.

A conditional field (a template choice list that depends on earlier fields: first names by sex
and birth decade) has a real joint with those fields, from its source's counts. For each field it
depends on, the report puts the data next to records drawn from the real joint with the same
conditions: the share of records whose value is given mostly under another value of that field
(a "male" named "Mary"), and the mutual information between the two.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ..entropy import entropy_bits, kl_bits

SIMS = 20
FLOOR_NOTE = f"floor: mean KL of {SIMS} simulated samples of the same n drawn from the target itself"


def kl_floor_bits(p: np.ndarray, n: int, sims: int = SIMS, seed: int = 0) -> float | None:
    """E[KL(empirical of n draws from p ‖ p)] in bits, simulated (p over the target's whole list)."""
    p = np.asarray(p, dtype=float)
    p = p / p.sum()
    if n <= 0:
        return None
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(sims):
        c = rng.multinomial(n, p)
        out.append(kl_bits(c[c > 0], p[c > 0]))
    return float(np.mean(out))


def expected_unique(p: np.ndarray, n: int) -> float:
    """Distinct values a perfect sampler of p gives in n draws: sum_i 1 - (1 - p_i)^n (exact)."""
    p = np.asarray(p, dtype=float)
    p = p / p.sum()
    return float((1 - np.exp(n * np.log1p(-np.minimum(p, 1 - 1e-15)))).sum())


def _mi(pairs) -> float:
    return (entropy_bits(Counter(a for a, _ in pairs).values()) + entropy_bits(Counter(b for _, b in pairs).values())
            - entropy_bits(Counter(pairs).values()))


class Conditional:
    """A template field's list per record: the source's weights under the record's filter."""

    def __init__(self, meta_field: dict, template_path: str | None):
        from ..template import Field

        self.f = Field(name=meta_field["name"], kind="choice", prompt="-", choices=meta_field["choices"],
                       value_map=meta_field.get("map") or {}, given=tuple(meta_field["given"]))
        self.base = Path(template_path).parent if template_path else Path.cwd()
        self._cache: dict[str, dict[str, float]] = {}

    def weights(self, record: dict) -> dict[str, float] | None:
        """item -> raw weight (source counts, or 1) of this record's list; None if a condition is missing."""
        from ..lists.spec import ListSpec, raw_items

        if any(record.get(g) is None for g in self.f.given):
            return None
        key = self.f.condition(record)
        if key not in self._cache:
            source = {**self.f.choices, "where": {**self.f.choices["where"], **self.f.filters(record)}}
            items, w = raw_items(ListSpec(name=self.f.name, source=source, prompts=["-"]), self.base)
            self._cache[key] = dict(zip(items, w or [1.0] * len(items)))
        return self._cache[key]

    def real_joint(self, g: str) -> dict[str, Counter]:
        """item -> {what g selects: the source's count}, over the whole source (every other condition
        summed): "Mary" -> {F: 4.1M, M: 15k}."""
        import csv
        import gzip
        from importlib import resources

        from ..lists.sources import BUILTINS

        c = self.f.choices
        if "builtin" in c:
            file, column, weight = BUILTINS[c["builtin"]]
            path = Path(str(resources.files("synthgen") / "data" / file))
        else:
            nested = c["csv"] if isinstance(c["csv"], dict) else {}
            path = Path(nested.get("path", c["csv"]))
            path = path if path.is_absolute() else self.base / path
            column, weight = nested.get("column", c.get("column", "item")), nested.get("weight", c.get("weight"))
        where = c["where"]
        fixed = {k: str(v) for k, v in where.items() if not (isinstance(v, str) and "{" in v)}
        cols = [k for k, v in where.items() if isinstance(v, str) and "{" + g in v]
        joint: dict[str, Counter] = defaultdict(Counter)
        with (gzip.open if path.suffix == ".gz" else open)(path, "rt", newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if all(row[k] == v for k, v in fixed.items()):
                    joint[row[column]]["|".join(row[k] for k in cols)] += float(row[weight]) if weight else 1.0
        return joint

    def part(self, record: dict, g: str) -> str:
        """What field `g` selects in the record's filter (the sex column's "F", the decade "1980")."""
        where = self.f.choices["where"]
        return "|".join(v for k, v in self.f.filters(record).items() if "{" + g in where[k])


def mixture_target(rows: list[dict], meta_field: dict, template_path: str | None) -> dict | None:
    """The field's target over all records: each record's own list (normalised), averaged."""
    cond = Conditional(meta_field, template_path)
    total: Counter = Counter()
    n = 0
    for r in rows:
        w = cond.weights(r)
        if not w:  # no condition, or one without a list (a birth decade the source does not cover)
            continue
        tot = sum(w.values())
        for item, c in w.items():
            total[item] += c / tot
        n += 1
    return {k: v / n for k, v in total.items()} if n else None


def conditional_stats(rows: list[dict], meta_field: dict, template_path: str | None, seed: int = 0) -> dict | None:
    """KL to the record's own list (vs its floor) and, per field the list depends on, the
    contradiction share and mutual information next to the real joint's at the same n.

    Every record with a value and its conditions counts (a free-decoded or older file may hold
    values outside the record's own list: their share is `outside_own_list`); KL to the own list
    is over the records inside it."""
    cond = Conditional(meta_field, template_path)
    name = meta_field["name"]
    recs = []
    for r in rows:
        w = cond.weights(r) if isinstance(r.get(name), str) else None
        if w:  # a condition without a list (a decade the source does not cover) cannot be judged
            recs.append((r, w))
    if len(recs) < 2:
        return None
    by_key: dict[str, list] = defaultdict(list)
    for r, w in recs:
        by_key[cond.f.condition(r)].append((r, w))
    rng = np.random.default_rng(seed)
    kl = floor = 0.0
    inside = 0
    sims = []  # per condition: SIMS rows of values drawn from its list, one per record
    for group in by_key.values():
        w = group[0][1]
        items = list(w)
        p = np.array([w[i] for i in items], dtype=float)
        p /= p.sum()
        index = {item: k for k, item in enumerate(items)}
        counts = Counter(r[name] for r, _ in group if r[name] in index)
        m = sum(counts.values())
        if m:
            kl += m * kl_bits(list(counts.values()), [p[index[v]] for v in counts])
            floor += m * kl_floor_bits(p, m, seed=seed)
            inside += m
        draws = rng.choice(len(items), size=(SIMS, len(group)), p=p)
        sims.append([[items[j] for j in row] for row in draws])
    n = len(recs)
    out = {"field": name, "given": list(cond.f.given), "n": n, "conditions": len(by_key),
           "outside_own_list": 1 - inside / n, "kl_to_own_list_bits": kl / inside if inside else None,
           "kl_floor_bits": floor / inside if inside else None, "note": FLOOR_NOTE, "joints": []}
    grouped = [x for group in by_key.values() for x in group]  # the order of `sims`
    sim_values = [[v for block in sims for v in block[s]] for s in range(SIMS)]
    for g in cond.f.given:
        joint = cond.real_joint(g)
        parts = [cond.part(r, g) for r, _ in grouped]

        def contradicts(item, part):  # the source gives `item` more often under another value of g
            c = joint.get(item)
            return bool(c) and c[part] < max(c.values())

        data_share = float(np.mean([contradicts(r[name], part) for (r, _), part in zip(grouped, parts)]))
        real_share = 0.0  # each condition's share of its list's mass that contradicts it, by records
        for group in by_key.values():
            w = group[0][1]
            part = cond.part(group[0][0], g)
            real_share += len(group) * sum(c for item, c in w.items() if contradicts(item, part)) / sum(w.values())
        data_mi = _mi(list(zip(parts, (r[name] for r, _ in grouped))))
        real_mi = [_mi(list(zip(parts, vals))) for vals in sim_values]
        out["joints"].append({"field": g, "contradiction_share": data_share, "real_contradiction_share": real_share / n,
                              "mi_bits": data_mi, "real_mi_bits": float(np.mean(real_mi)),
                              "real_mi_sd": float(np.std(real_mi))})
    return out


# --- `synthgen report --joint GIVEN:FIELD`: a shipped real joint for another tool's file ---------------------

SEXES = {"female": "F", "f": "F", "woman": "F", "male": "M", "m": "M", "man": "M"}
SHIPPED = {"first name": ("first_names_by_decade", ("sex", "date")), "career": ("careers_by_sex", ("sex",))}
LISTS = {"first_names": "first name", "first_names_by_decade": "first name", "careers": "career",
         "careers_by_sex": "career", "job_titles": "career"}
NO_JOINT = ("no real joint is shipped for {field!r}: the shipped ones are sex and birth date with a first name (SSA "
            "births) and sex with a career (BLS CPS 2022); say which list the field holds with --target {field}=first_names "
            "or --target {field}=careers")


def _role(rows: list[dict], name: str) -> str | None:
    """"sex" (female/male, F/M), "date" (YYYY-MM-DD...) or None, from 90 % of the field's values."""
    import re

    vals = [str(r[name]) for r in rows if r.get(name) not in (None, "")][:2000]
    if not vals:
        return None
    if sum(v.strip().casefold() in SEXES for v in vals) >= 0.9 * len(vals):
        return "sex"
    return "date" if sum(bool(re.match(r"\d{4}-\d\d", v.strip())) for v in vals) >= 0.9 * len(vals) else None


def joint_fields(rows: list[dict], items, targets: dict[str, str]) -> dict[str, dict]:
    """`--joint GIVEN:FIELD` options -> {FIELD: a template field whose list depends on the GIVEN fields}, so the
    report judges FIELD against the shipped real joint as it does a synthgen file's (a one-line error otherwise)."""
    from ..errors import InputError

    given: dict[str, list[str]] = defaultdict(list)
    for item in items:
        a, sep, b = (x.strip() for x in item.partition(":"))
        if not (sep and a and b):
            raise InputError(f"--joint {item!r}: use GIVEN:FIELD, e.g. --joint gender:first_name")
        given[b].append(a)
    have = set().union(*(r.keys() for r in rows[:1000]))
    out = {}
    for field, gs in given.items():
        for x in (field, *gs):
            if x not in have:
                raise InputError(f"--joint {gs[0]}:{field}: the file has no field {x!r} (fields: {', '.join(sorted(have))})")
        ref = targets.get(field, "")
        kind = LISTS.get(ref.split(":", 1)[-1]) or next((k for k in SHIPPED if k.replace(" ", "_") in field.casefold()), None)
        if kind is None:
            raise InputError(f"--joint {gs[0]}:{field}: " + NO_JOINT.format(field=field))
        builtin, roles = SHIPPED[kind]
        where, value_map = {}, {}
        for g in gs:
            role = _role(rows, g)
            if role not in roles or ("sex" if role == "sex" else "decade") in where:
                said = {"sex": "a sex", "date": "dates", None: "neither dates nor a sex (female/male)"}[role]
                raise InputError(f"--joint {g}:{field}: {g!r} holds {said}; the shipped real joint of a {kind} is with "
                                 + " and ".join({"sex": "a sex", "date": "a birth date"}[r] for r in roles) + " (once each)")
            if role == "sex":
                where["sex"] = "{" + g + "}"
                value_map[g] = {v: SEXES[v.strip().casefold()] for v in {str(r[g]) for r in rows if r.get(g) is not None}
                                if v.strip().casefold() in SEXES}
            else:
                where["decade"] = "{" + g + ":.3}0"
        out[field] = {"name": field, "kind": "choice", "choices": {"builtin": builtin, "where": where},
                      "given": gs, "map": value_map}
    return out
