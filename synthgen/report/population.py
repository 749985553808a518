"""Do a record's names belong to the country it was born in?

A person born in Jinan, China called "Anthony Duncan" is not from one population. For each record
with a birth place (a place field the offline geocoder resolves) and a first and last name, the
report checks each name against its birth country's name lists:
- United States: the shipped SSA first names (the 2,500 most given of each sex, 1880-2017, and the
  500 most given per sex and decade) and the 5,000 most common Census 2010 surnames;
- elsewhere: Faker's person lists of that country's locales (Latin-script entries, romanised ones
  for Chinese, Japanese and Korean), where Faker has a locale for the country.
Records born where no list exists are counted apart, never guessed.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

FIRST_HINTS = ("first_name", "firstname", "given_name", "forename")
LAST_HINTS = ("last_name", "lastname", "surname", "family_name")


def _field(names, hints) -> str | None:
    return next((n for n in names if n.lower() in hints), None)


@lru_cache(maxsize=1)
def country_lists() -> dict[str, tuple[set[str], set[str], str]]:
    """ISO country code -> (first names, last names, source), casefolded."""
    from ..lists.sources import builtin

    def shipped(*names):
        return {item.casefold() for name in names for item in builtin(name)[0]}

    out = {"US": (shipped("first_names", "first_names_by_decade"), shipped("surnames"),
                  "SSA first names, Census 2010 surnames")}
    try:
        import importlib

        from faker.config import AVAILABLE_LOCALES
    except ImportError:
        return out
    for loc in AVAILABLE_LOCALES:
        iso = loc.split("_")[-1] if "_" in loc else None
        if not iso or len(iso) != 2 or iso == "US":
            continue
        try:
            p = importlib.import_module(f"faker.providers.person.{loc}").Provider
        except (ImportError, AttributeError):
            continue

        def names(*attrs):  # a tuple, or a name -> weight dict; some locales compute theirs (properties): skipped
            vals = [getattr(p, a, None) for a in attrs]
            return {n.casefold() for v in vals if isinstance(v, (tuple, list, dict)) for n in v
                    if isinstance(n, str) and n.isascii()}

        first = names("first_names", "first_names_female", "first_names_male", "first_romanized_names")
        last = names("last_names", "last_romanized_names")
        if first and last:
            f0, l0, src = out.get(iso, (set(), set(), "Faker"))
            out[iso] = (f0 | first, l0 | last, f"{src} {loc}")
    return out


def names_fit_place(rows: list[dict], field_names, place_field: str | None) -> dict | None:
    """Share of records whose first and last name are both in their birth country's lists."""
    from ..geo import geocoder

    first, last = _field(field_names, FIRST_HINTS), _field(field_names, LAST_HINTS)
    if not (first and last and place_field):
        return None
    lists, g = country_lists(), geocoder()
    checked = fit = first_ok = last_ok = unresolved = no_list = 0
    by_country: Counter = Counter()
    sources: set[str] = set()
    misfits: Counter = Counter()
    examples: list[str] = []
    for r in rows:
        fn, ln, place = r.get(first), r.get(last), r.get(place_field)
        if not all(isinstance(v, str) and v for v in (fn, ln, place)):
            continue
        row = g.lookup(place)
        if row is None:
            unresolved += 1
            continue
        if row["iso"] not in lists:
            no_list += 1
            continue
        f_names, l_names, src = lists[row["iso"]]
        sources.add(src)
        a, b = fn.casefold() in f_names, ln.casefold() in l_names
        checked += 1
        first_ok += a
        last_ok += b
        fit += a and b
        by_country[row["country"]] += 1
        if not (a and b):
            misfits[row["country"]] += 1
            if len(examples) < 5:
                examples.append(f"{fn} {ln}, born in {place}")
    if not (checked or no_list):
        return None
    return {"fields": [first, last, place_field], "checked": checked, "fit_share": fit / checked if checked else None,
            "first_in_lists": first_ok / checked if checked else None,
            "last_in_lists": last_ok / checked if checked else None,
            "no_list_for_country": no_list, "unresolved_place": unresolved,
            "countries": [(c, n, 1 - misfits[c] / n) for c, n in by_country.most_common(8)],
            "misfit_examples": examples,
            "sources": sorted(sources)}
