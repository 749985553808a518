"""Offline geocoding of "City, Country" over GeoNames (CC-BY-4.0), as a geopy `Geocoder`.

Every geopy geocoder calls a web service; this one reads the shipped table of all GeoNames cities
with >= 15,000 people (synthgen/data/world_cities.csv.gz) and never touches the network:

    >>> from synthgen.geo import GeoNamesOffline
    >>> GeoNamesOffline().geocode("Bombay, India").point      # alias -> Mumbai
    >>> GeoNamesOffline().geocode("Springfield, USA").raw["population"]  # most populous match

US places may also be written "City, State" (name or postal code: "Houston, Texas", "Houston, TX"):
they resolve through the shipped table of US cities by state (us_birth_places.csv), and so does
"City, USA", to the most populous city of that name in the country; such a row's `place` is "City,
State" and its `world_place` "City, United States".

Rules: the country part must resolve (name, ISO code or a common alias such as USA/UK), else
None; among cities of that name (or alias) in that country the most populous wins. A bare city
name resolves only when it is unambiguous (one city, or the largest is 10x the next): unresolved
places are counted by the report, never guessed.
"""

from __future__ import annotations

import csv
import gzip
import unicodedata
from functools import lru_cache
from importlib import resources

from geopy.geocoders.base import Geocoder
from geopy.location import Location

COUNTRY_ALIASES = {
    "usa": "US", "us": "US", "u.s.": "US", "u.s.a.": "US", "united states of america": "US", "america": "US",
    "the united states": "US", "uk": "GB", "u.k.": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "great britain": "GB", "britain": "GB", "northern ireland": "GB", "the united kingdom": "GB",
    "czech republic": "CZ", "the netherlands": "NL", "holland": "NL", "uae": "AE", "drc": "CD", "dr congo": "CD",
    "congo": "CG", "cote d'ivoire": "CI", "côte d'ivoire": "CI", "korea": "KR", "republic of korea": "KR",
    "burma": "MM", "persia": "IR", "turkiye": "TR", "türkiye": "TR", "east timor": "TL", "swaziland": "SZ",
    "macedonia": "MK", "palestine": "PS", "vatican city": "VA", "russian federation": "RU", "viet nam": "VN",
    "the philippines": "PH", "the bahamas": "BS", "the gambia": "GM", "cape verde": "CV", "cabo verde": "CV",
}


def fold(s: str) -> str:
    """Case- and accent-insensitive key: "São Paulo" == "sao paulo"."""
    s = unicodedata.normalize("NFKD", s.strip()).encode("ascii", "ignore").decode()
    return " ".join(s.casefold().replace(".", "").split())


@lru_cache(maxsize=1)
def _tables():
    path = resources.files("synthgen") / "data" / "world_cities.csv.gz"
    with gzip.open(str(path), "rt", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    countries: dict[str, str] = {}
    by_name: dict[str, list[dict]] = {}
    for r in rows:
        r["population"] = int(r["population"])
        r["lat"], r["lon"] = float(r["lat"]), float(r["lon"])
        countries.setdefault(fold(r["country"]), r["iso"])
        countries.setdefault(r["iso"].casefold(), r["iso"])
        names = [r["city"]] + [a for a in r["aliases"].split("|") if a]
        if r["city"].endswith(" City"):  # "New York City" is asked for as "New York"
            names.append(r["city"][:-5])
        for name in names:
            lst = by_name.setdefault(fold(name), [])
            if r not in lst:
                lst.append(r)
    for lst in by_name.values():
        lst.sort(key=lambda r: -r["population"])
    with open(str(resources.files("synthgen") / "data" / "countries.csv"), newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            countries.setdefault(fold(r["name"]), r["iso"])
            countries.setdefault(r["iso"].casefold(), r["iso"])
    for alias, iso in COUNTRY_ALIASES.items():
        countries.setdefault(fold(alias), iso)
    return by_name, countries


@lru_cache(maxsize=1)
def _us_tables():
    """({(city, state code): row}, {city: rows, most populous first}, {state name or code: code})."""
    path = resources.files("synthgen") / "data" / "us_birth_places.csv"
    with open(str(path), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_state, by_city, states = {}, {}, {}
    for r in rows:
        row = {"place": r["place"], "city": r["city"], "state": r["state"], "country": "United States", "iso": "US",
               "continent": "North America", "population": int(r["population"]), "lat": float(r["lat"]),
               "lon": float(r["lon"]), "world_place": f"{r['city']}, United States"}
        by_state[(fold(r["city"]), r["state_code"])] = row
        by_city.setdefault(fold(r["city"]), []).append(row)
        states[fold(r["state"])] = states[fold(r["state_code"])] = r["state_code"]
    for lst in by_city.values():
        lst.sort(key=lambda r: -r["population"])
    return by_state, by_city, states


def lookup_us(city: str, state: str | None = None) -> dict | None:
    """The US city row for ("Houston", "Texas"/"TX"), or the most populous "Houston" when state is None."""
    by_state, by_city, states = _us_tables()
    if state is None:
        return (by_city.get(fold(city)) or [None])[0]
    code = states.get(fold(state))
    return by_state.get((fold(city), code)) if code else None


def resolve_country(text: str) -> str | None:
    return _tables()[1].get(fold(text))


class GeoNamesOffline(Geocoder):
    """geopy Geocoder over the shipped GeoNames table; `geocode` never makes a network call."""

    def __init__(self):
        super().__init__(user_agent="synthgen-offline")

    def lookup(self, query: str) -> dict | None:
        """The GeoNames row for "City, Country" (or a bare unambiguous city), else None."""
        if not isinstance(query, str) or not query.strip():
            return None
        by_name, _ = _tables()
        parts = [p.strip() for p in query.split(",") if p.strip()]
        if not parts:
            return None
        if len(parts) == 1:
            cands = by_name.get(fold(parts[0]), [])
            if len(cands) == 1 or (len(cands) > 1 and cands[0]["population"] >= 10 * cands[1]["population"]):
                return cands[0]
            return None
        us = lookup_us(", ".join(parts[:-1]), parts[-1])  # "Atlanta, Georgia", "Atlanta, GA": the state first
        if us is not None:
            return us
        iso = resolve_country(parts[-1])
        if iso is None:
            return None
        if iso == "US" and (us := lookup_us(", ".join(parts[:-1]))) is not None:  # "Houston, USA"
            return us
        for city in (", ".join(parts[:-1]), parts[0]):  # "Springfield, Illinois, USA" -> Springfield
            for r in by_name.get(fold(city), []):
                if r["iso"] == iso:
                    return r
        return None

    def geocode(self, query, *, exactly_one=True, **kwargs):
        row = self.lookup(query)
        if row is None:
            return None
        loc = Location(row["place"], (row["lat"], row["lon"], 0), dict(row))
        return loc if exactly_one else [loc]

    def reverse(self, *args, **kwargs):
        raise NotImplementedError("GeoNamesOffline only geocodes forward")


@lru_cache(maxsize=1)
def geocoder() -> GeoNamesOffline:
    """One shared instance (validation calls it per answer)."""
    return GeoNamesOffline()
