"""Where list items and their real-world weights come from.

Shipped CSVs (synthgen/data/, derived by scripts/derive_lists.py; sources and licences there):
SSA first names (public domain), Census 2010 surnames (public domain), GeoNames cities and
countries (CC-BY-4.0, credit GeoNames), US cities by state (GeoNames), mimesis occupations (MIT), BLS
job titles and people employed per occupation and sex (BLS CPS 2022 table 11; public domain).
"""

from __future__ import annotations

import csv
import gzip
from importlib import resources
from pathlib import Path

from ..errors import InputError

# builtin name -> (csv file, item column, weight column or None)
BUILTINS = {
    "first_names": ("first_names.csv", "name", "count"),
    "first_names_by_decade": ("first_names_by_decade.csv", "name", "count"),  # columns sex, decade: where: filters
    "surnames": ("surnames.csv", "name", "count"),
    "birth_places": ("birth_places.csv", "place", "population"),
    "cities": ("birth_places.csv", "city", "population"),
    "countries": ("countries.csv", "name", "population"),
    "world_cities": ("world_cities.csv.gz", "place", "population"),
    "careers": ("careers.csv", "career", None),
    # people employed in the US per occupation and sex (BLS CPS 2022): column sex (F/M) for where: filters
    "careers_by_sex": ("careers_by_sex.csv", "career", "count"),
    "us_birth_places": ("us_birth_places.csv", "place", "population"),  # "City, State", GeoNames
    "us_states": ("us_birth_places.csv", "state", "population"),
    "job_titles": ("job_titles.csv", "title", None),
}


def read_csv(path: Path | str, column: str, weight: str | None, where: dict | None = None):
    """Items and weights (None when unweighted) from a CSV, keeping rows that match `where`."""
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise InputError(f"cannot read CSV {str(path)!r}: {e.strerror}") from None
    if not rows:
        return [], None
    for col in [column] + ([weight] if weight else []) + list(where or {}):
        if col not in rows[0]:
            raise InputError(f"CSV {str(path)!r} has no column {col!r} (columns: {', '.join(rows[0])})")
    for key, want in (where or {}).items():
        allowed = {str(w) for w in (want if isinstance(want, list) else [want])}
        rows = [r for r in rows if r[key] in allowed]
    items = [r[column] for r in rows]
    if weight is None:
        return items, None
    try:
        weights = [float(r[weight]) for r in rows]
    except ValueError as e:
        raise InputError(f"CSV {str(path)!r}: weight column {weight!r} is not numeric ({e})") from None
    return items, weights


# tables a prompt may look a value up in (a text field's `context`): the first column is the key
TABLES = {
    # what a person in each career of careers_by_sex does: the first sentence of its O*NET description
    # (O*NET 29, USDOL/ETA, CC BY 4.0; scripts/career_duties.py derives it)
    "career_duties": "career_duties.csv",
}


def table(name: str, column: str) -> dict[str, str]:
    """A shipped table's `column` by its first column's value."""
    if name not in TABLES:
        raise InputError(f"unknown table {name!r}: use one of {', '.join(TABLES)}")
    path = resources.files("synthgen") / "data" / TABLES[name]
    with open(str(path), newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    if column not in head[1:]:
        raise InputError(f"table {name!r} has no column {column!r} (columns: {', '.join(head[1:])})")
    i = head.index(column)
    return {r[0]: r[i] for r in rows[1:]}


def builtin(name: str, where: dict | None = None):
    if name not in BUILTINS:
        raise InputError(f"unknown list source {name!r}: use one of {', '.join(BUILTINS)}, inline, range or csv")
    file, column, weight = BUILTINS[name]
    path = resources.files("synthgen") / "data" / file
    items, weights = read_csv(Path(str(path)), column, weight, where)
    if weights is None:
        return list(dict.fromkeys(items)), None
    # the same name for both sexes (Taylor F, Taylor M): one target, counts summed; rows with a
    # zero count (uninhabited territories) are not answers
    merged: dict[str, float] = {}
    for item, w in zip(items, weights):
        if w > 0:
            merged[item] = merged.get(item, 0.0) + w
    return list(merged), list(merged.values())


def number_range(start: int, stop: int, only: str | None = None):
    nums = range(int(start), int(stop) + 1)
    checks = {
        None: lambda n: True, "even": lambda n: n % 2 == 0, "odd": lambda n: n % 2 == 1,
        "prime": lambda n: n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1)),
    }
    if only not in checks:
        raise InputError(f"range `only` must be even, odd or prime, got {only!r}")
    return [str(n) for n in nums if checks[only](n)], None


def date_range(start, stop):
    """Every day from start to stop (inclusive) as YYYY-MM-DD."""
    import datetime as dt

    try:
        a, b = (x if isinstance(x, dt.date) else dt.date.fromisoformat(str(x)) for x in (start, stop))
    except ValueError:
        raise InputError(f"dates start/stop must be ISO dates (YYYY-MM-DD), got {start!r}, {stop!r}") from None
    if b < a:
        raise InputError(f"dates: stop {b} is before start {a}")
    return [(a + dt.timedelta(days=i)).isoformat() for i in range((b - a).days + 1)], None
