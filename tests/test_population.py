"""One real population (issue #49): the derived US lists, US places, and the report's checks that a record's
fields come from one population, on hand-made files with known answers."""

import csv
import json
from collections import defaultdict
from importlib import resources

import numpy as np
import pytest

from synthgen.lists.sources import builtin


def _rows(file):
    with open(str(resources.files("synthgen") / "data" / file), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_careers_by_sex_are_cps_employment_split_by_the_share_of_women():
    """Registered nurses: 3,363 thousand employed, 87.9 % women; carpenters 1,282 thousand, 3.5 % women (BLS CPS 2022,
    table 11); an occupation without a published share takes its group's (legislators: management, 40.5 %)."""
    by = defaultdict(dict)
    for r in _rows("careers_by_sex.csv"):
        by[r["career"]][r["sex"]] = float(r["count"])
    assert by["Registered nurse"]["F"] == pytest.approx(3_363_000 * 0.879, abs=1)
    assert by["Carpenter"]["F"] / (by["Carpenter"]["F"] + by["Carpenter"]["M"]) == pytest.approx(0.035)
    assert by["Legislator"]["F"] == pytest.approx(14_000 * 0.405, abs=1)
    total = sum(sum(v.values()) for v in by.values())
    women = sum(v.get("F", 0) for v in by.values())
    assert 140e6 < total < 158.3e6 and 0.45 < women / total < 0.49  # "all other" rows left out of 158.3 M, 46.8 % women
    items_f, w_f = builtin("careers_by_sex", {"sex": "F"})
    items_m, w_m = builtin("careers_by_sex", {"sex": "M"})
    assert sum(w_f) == pytest.approx(women) and len(items_f) == len(items_m) == len(by)


def test_career_titles_read_as_one_job():
    """Singular, readable titles: no "all other", no plural job ("Accountants and auditors" -> "Accountant"), no group."""
    titles = {r["career"] for r in _rows("careers_by_sex.csv")}
    assert {"Registered nurse", "Carpenter", "Software developer", "Accountant", "Truck driver", "Retail sales supervisor",
            "First-line supervisor of police and detectives"} <= titles
    for t in titles:
        assert "all other" not in t and not t.endswith("occupation") and "--" not in t, t
        head = t.split(" of ")[0].split()[-1]
        assert not head.endswith("s") or head in {"Actress"}, t
        assert t[0].isupper() and t[1:] == t[1:].lower() or t.split()[0].isupper(), t


def test_us_birth_places_are_city_state_weighted_by_population():
    rows = _rows("us_birth_places.csv")
    places = [r["place"] for r in rows]
    assert len(set(places)) == len(places) and len({r["state"] for r in rows}) == 51
    assert "New York City, New York" not in places and "Brooklyn, New York" in places  # boroughs, not the city twice
    assert all(p == f"{r['city']}, {r['state']}" for p, r in zip(places, rows))
    pops = [int(r["population"]) for r in rows]
    assert pops == sorted(pops, reverse=True) and min(pops) >= 15_000
    items, w = builtin("us_birth_places")
    assert items[0] == "Los Angeles, California" and w[0] == pops[0]


@pytest.mark.parametrize("query, place", [("Houston, TX", "Houston, Texas"), ("Houston, USA", "Houston, Texas"),
                                          ("Atlanta, Georgia", "Atlanta, Georgia"), ("Tbilisi, Georgia", "Tbilisi, Georgia"),
                                          ("Springfield, Massachusetts", "Springfield, Massachusetts")])
def test_us_places_resolve_by_state(query, place):
    from synthgen.geo import geocoder

    row = geocoder().lookup(query)
    assert row["place"] == place
    assert (row["iso"] == "US") == (query != "Tbilisi, Georgia")


def test_free_decoded_us_places_are_matched_to_the_list():
    from synthgen.template import Field, _parse_choice

    f = Field(name="p", kind="choice", prompt="-", choices={"builtin": "us_birth_places"}, match="place")
    f._lookup = {"houston, texas": "Houston, Texas"}
    assert _parse_choice(f, "Houston, TX", "stop") == ("Houston, Texas", None)
    assert _parse_choice(f, "Paris, France", "stop")[0] is None


def test_names_fit_place_on_a_hand_made_file():
    """US-born records with SSA first names and Census surnames fit; "Anthony Duncan, born in Jinan, China" does not
    (China's lists are Faker's romanised ones); a place no geocoder knows is counted apart."""
    from synthgen.report.population import names_fit_place

    rows = [{"first_name": "Mary", "last_name": "Smith", "birth_place": "Chicago, Illinois"}] * 6 + [
        {"first_name": "Anthony", "last_name": "Duncan", "birth_place": "Jinan, China"},
        {"first_name": "Mary", "last_name": "Zzyzxq", "birth_place": "Houston, Texas"},
        {"first_name": "Wei", "last_name": "Wang", "birth_place": "Atlantis, Nowhere"}]
    nf = names_fit_place(rows, ["first_name", "last_name", "birth_place"], "birth_place")
    assert nf["checked"] == 8 and nf["unresolved_place"] == 1
    assert nf["fit_share"] == pytest.approx(6 / 8) and nf["last_in_lists"] == pytest.approx(6 / 8)
    assert nf["first_in_lists"] == pytest.approx(7 / 8)  # "Anthony" is not a Chinese name in the lists
    assert dict((c, s) for c, _, s in nf["countries"])["United States"] == pytest.approx(6 / 7)
    assert names_fit_place(rows, ["name", "birth_place"], "birth_place") is None  # no first/last name fields


CAREER_META = {"name": "career", "choices": {"builtin": "careers_by_sex", "where": {"sex": "{gender}"}},
               "given": ["gender"], "map": {"gender": {"female": "F", "male": "M"}}}


def test_gender_career_joint_against_the_cps():
    """Women who are all carpenters contradict the CPS joint in every record; records drawn from the CPS joint itself
    fit it (contradiction share and MI within noise of the real joint's at the same n)."""
    from synthgen.report.joints import conditional_stats

    st = conditional_stats([{"gender": "female", "career": "Carpenter"}] * 50 + [{"gender": "male", "career": "Carpenter"}] * 50,
                           CAREER_META, None)
    j = st["joints"][0]
    assert j["contradiction_share"] == 0.5 and 0.15 < j["real_contradiction_share"] < 0.4 and j["mi_bits"] == 0
    rng = np.random.default_rng(1)
    rows = []
    for g, sex in (("female", "F"), ("male", "M")):
        items, w = builtin("careers_by_sex", {"sex": sex})
        p = np.array(w) / sum(w)
        rows += [{"gender": g, "career": str(c)} for c in rng.choice(items, size=1000, p=p)]
    j = conditional_stats(rows, CAREER_META, None)["joints"][0]
    assert abs(j["contradiction_share"] - j["real_contradiction_share"]) < 0.03, j
    assert abs(j["mi_bits"] - j["real_mi_bits"]) < 3 * j["real_mi_sd"] + 0.01, j


def test_the_biography_names_its_population_and_the_report_shows_it(tmp_path):
    from synthgen.report import analyse
    from synthgen.report.glance import lines
    from synthgen.template import load_template

    t = load_template("biography")
    assert "United States" in t.population and t.field("career").given == ("gender",)
    out = tmp_path / "b.jsonl"
    recs = [{"gender": "female", "first_name": "Mary", "last_name": "Smith", "birth_place": "Chicago, Illinois",
             "career": "Registered nurse", "birth_date": "1960-01-01"}] * 3
    out.write_text("".join(json.dumps(r) + "\n" for r in recs))
    (tmp_path / "b.jsonl.meta.json").write_text(json.dumps({"template": t.describe()}))
    rep = analyse(out).summary
    text = "\n".join(lines(rep))
    assert text.startswith("population: people born in the United States")
    assert "100.0% of 3 records" in text and "gender → career" in text
    assert rep["geography"][0]["top_us_states"][0][0] == "Illinois"


def test_the_map_zooms_to_places_in_one_country_and_keeps_the_world_otherwise():
    from collections import Counter

    from synthgen.report.plots import _extent

    us = Counter({(-118.2, 34.1): 3, (-74.0, 40.7): 2, (-149.9, 61.2): 1})  # Los Angeles, New York, Anchorage
    (x0, x1), (y0, y1) = _extent([us])
    assert (x0, x1, y0, y1) == pytest.approx((-155.9, -68.0, 28.1, 67.2))
    world = us + Counter({(116.4, 39.9): 1})  # and Beijing
    assert _extent([None, world]) == ((-180, 180), (-60, 85)) == _extent([None, None])
