"""Choice lists of template fields: a list, or any list-spec source, as a lookup (casefolded answer ->
the list's spelling); and lists that depend on earlier fields (a `where` with {placeholders}),
enumerated per distinct filter when the template loads. `f` is a template.Field."""

from __future__ import annotations

import re
import string
from pathlib import Path

from .errors import InputError

_STRIP = " \t\r\n\"'`*“”‘’"


def clean_answer(text: str) -> str:
    """An answer as the parsers see it: quotes, markdown, a final period and extra spaces removed."""
    s = text.strip().strip(_STRIP).rstrip(".!").strip(_STRIP)
    return re.sub(r"\s+", " ", s)


def templated(value) -> bool:
    return isinstance(value, str) and "{" in value


def choices_spec(c, where: str, base: Path):
    """`choices: {spec: NAME}`: the list spec NAME.yaml beside adapter NAME (or a .yaml path), so
    the field decodes inside exactly the list its adapter targets (the trie that `--objective q`
    trained for). None for other forms of `choices`."""
    from .lists import load_spec
    from .paths import spec_file

    if not (isinstance(c, dict) and "spec" in c):
        return None
    if set(c) != {"spec"} or not isinstance(c["spec"], str) or not c["spec"].strip():
        raise InputError(f"{where}: `choices: {{spec: NAME}}` takes only a list spec's name or path, got {c!r}")
    path = spec_file(c["spec"], base / "template.yaml")
    if path is None:
        raise InputError(f"{where}: no list spec {c['spec']!r} (looked for {Path(c['spec']).name.removesuffix('.yaml')}.yaml "
                         "beside the adapters and the template)")
    spec = load_spec(path)
    if spec.variables:
        raise InputError(f"{where}: spec {c['spec']!r} is conditional (variables {', '.join(spec.variables)}); "
                         "give its source with a `where` on earlier fields instead")
    return spec


def choice_lookup(f, where: str, base: Path, filters: dict | None = None) -> dict:
    """The list as a lookup (casefolded answer -> the list's spelling). `where` entries with
    {placeholders} are replaced by `filters` (their values for one condition), or dropped: the
    union over every condition."""
    from .lists.spec import ListSpec, raw_items

    from .lists import load_targets

    c = f.choices
    spec = choices_spec(c, where, base)
    if spec is not None:
        items, _ = load_targets(spec)
    elif isinstance(c, list):
        items = [str(i) for i in c]
    elif isinstance(c, dict):
        source = dict(c)
        if isinstance(c.get("where"), dict):
            fixed = {k: v for k, v in c["where"].items() if not templated(v)}
            source["where"] = {**fixed, **(filters or {})} or None
        spec = ListSpec(name=f.name, source=source, prompts=["-"], path=str(base / "template.yaml"))
        items, weights = raw_items(spec, base)
        bad = [(i, w) for i, w in zip(items, weights or ()) if not _positive(w)]
        if bad:
            raise InputError(f"{where}: the weight of {bad[0][0]!r} is {bad[0][1]!r}; weights must be finite numbers > 0")
    else:
        raise InputError(f"{where}: a choice field needs `choices`: a list, or a source such as {{builtin: first_names}}")
    lookup = {}
    for item in items:
        s = clean_answer(item)
        if s:
            lookup.setdefault(s.casefold(), s)
    if not lookup:
        raise InputError(f"{where}: `choices` is empty")
    return lookup


def _positive(w) -> bool:
    import math

    try:
        return math.isfinite(float(w)) and float(w) > 0
    except (TypeError, ValueError):
        return False


MAX_CONDITIONS = 5000


def conditional_lookups(f, where: str, base: Path, earlier: list) -> dict:
    """condition key -> lookup, for every combination of the earlier fields' values that a
    `where` placeholder refers to. Values are grouped by what they render to first (every
    birth date of a decade gives one `{birth_date:.3}0`), so the product stays small."""
    import itertools

    varying = {k: v for k, v in f.choices["where"].items() if templated(v)}
    fmt = string.Formatter()
    uses: dict[str, list[tuple[str, str | None]]] = {}  # field -> [(format spec, conversion)]
    for key, value in varying.items():
        try:
            parsed = [(r, spec, conv) for _, r, spec, conv in fmt.parse(value) if r is not None]
        except ValueError as e:
            raise InputError(f"{where}: bad placeholder in `where` {key}: {value!r} ({e})") from None
        for ref, spec, conv in parsed:
            by_name = {e.name: e for e in earlier}
            if ref not in by_name:
                raise InputError(f"{where}: `where` {key}: {value!r} refers to {{{ref}}}, which is not an earlier field"
                                 + (f" (earlier fields: {', '.join(by_name)})" if by_name else ""))
            d = by_name[ref]
            if d.kind == "text" or (d.kind == "date" and not (d.min and d.max)):
                raise InputError(f"{where}: the list can depend only on choice fields and dates with min and max, "
                                 f"not {ref!r}")
            uses.setdefault(ref, []).append((spec, conv))
    for name, mapping in f.value_map.items():
        if name not in uses:
            raise InputError(f"{where}: `map` names {name!r}, which no `where` placeholder uses")
        if not isinstance(mapping, dict):
            raise InputError(f"{where}: `map` {name}: must be a mapping value -> the source's spelling")
    groups = {}  # field -> {rendered parts: a representative value}
    for name, specs in uses.items():
        mapping = f.value_map.get(name, {})
        d = next(e for e in earlier if e.name == name)
        values = d.items()
        unmapped = [v for v in values if mapping and v not in mapping]
        if unmapped:
            raise InputError(f"{where}: `map` {name}: has no spelling for {unmapped[0]!r} "
                             f"(values of {name}: {', '.join(values[:8])}{' ...' if len(values) > 8 else ''})")
        seen: dict = {}
        for v in values:
            mv = mapping.get(v, v)
            parts = tuple(fmt.format_field(fmt.convert_field(mv, conv), spec or "") for spec, conv in specs)
            seen.setdefault(parts, v)
        groups[name] = list(seen.values())
    names = list(groups)
    total = 1
    for n in names:
        total *= len(groups[n])
    if total > MAX_CONDITIONS:
        raise InputError(f"{where}: the list depends on {total} combinations of {', '.join(names)}; at most "
                         f"{MAX_CONDITIONS} (one decode trie each)")
    f.given = tuple(names)
    f.given_values = groups
    lookups = {}
    for combo in itertools.product(*(groups[n] for n in names)):
        record = dict(zip(names, combo))
        key = f.condition(record)
        if key in lookups:
            continue
        filters = f.filters(record)
        shown = ", ".join(f"{k}={v!r}" for k, v in record.items())
        try:
            lookups[key] = choice_lookup(f, f"{where}: for {shown}", base, filters)
        except InputError as e:
            raise InputError(f"{e} (filter {filters}): a record with these values would have nothing to choose") from None
    return lookups


def context_table(name: str, c, fwhere: str, fields: list) -> tuple[str, dict]:
    """A `context` placeholder's (field, table): every value the field can take has a row."""
    from .lists.sources import table

    if any(f.name == name for f in fields):
        raise InputError(f"{fwhere}: `context.{name}` has the name of a field: name it otherwise")
    by = next((f for f in fields if f.name == c.by), None)
    if by is None or by.kind != "choice":
        raise InputError(f"{fwhere}: `context.{name}.by` must name an earlier choice field, got {c.by!r}")
    try:
        rows = table(c.builtin, name)
    except InputError as e:
        raise InputError(f"{fwhere}: {e}") from None
    missing = sorted({v for v in by.lookup().values() if v not in rows})
    if missing:
        raise InputError(f"{fwhere}: `context.{name}`: {len(missing)} value(s) of {c.by} have no row in table "
                         f"{c.builtin!r} (e.g. {missing[0]!r})")
    return c.by, rows
