"""The report's floor and joint checks on synthetic data with known answers."""

import csv
import math

import numpy as np
import pytest

from synthgen.report.joints import conditional_stats, expected_unique, kl_floor_bits, mixture_target

ROWS = [("Ann", "F", 1970, 5), ("Beth", "F", 1970, 3), ("Cora", "F", 1980, 4), ("Ann", "F", 1980, 1),
        ("Dan", "M", 1970, 6), ("Ed", "M", 1980, 2), ("Finn", "M", 1980, 1), ("Ann", "M", 1980, 1)]
META = {"name": "first", "choices": {"csv": "names.csv", "column": "name", "weight": "count",
                                      "where": {"sex": "{gender}", "decade": "{born:.3}0"}},
        "given": ["gender", "born"], "map": {"gender": {"female": "F", "male": "M"}}}


@pytest.fixture
def tpath(tmp_path):
    with open(tmp_path / "names.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "sex", "decade", "count"])
        w.writerows(ROWS)
    return str(tmp_path / "t.yaml")


def test_kl_floor_matches_the_large_n_formula_and_expected_unique_is_exact():
    k, n = 10, 5000
    floor = kl_floor_bits(np.ones(k), n)
    assert floor == pytest.approx((k - 1) / (2 * n * math.log(2)), rel=0.25)
    assert kl_floor_bits(np.ones(1000), 100) > 3  # n < K: most of log2 K - H(sample)
    assert expected_unique(np.array([0.5, 0.5]), 1) == pytest.approx(1.0)
    assert expected_unique(np.array([0.5, 0.5]), 2) == pytest.approx(1.5)
    assert expected_unique(np.array([1, 3]), 3) == pytest.approx(2 - 0.75 ** 3 - 0.25 ** 3)


def test_contradictions_are_counted_against_the_real_joint(tpath):
    """Males of the 1980s all named Ann (given mostly to females: F 6, M 1) contradict the joint in
    every record; in the real joint a quarter of that list's mass (Ann 1 of Ed 2 + Finn 1 + Ann 1) does."""
    rows = [{"gender": "male", "born": "1983-01-01", "first": "Ann"} for _ in range(40)]
    st = conditional_stats(rows, META, tpath)
    j = {x["field"]: x for x in st["joints"]}
    assert st["n"] == 40 and st["conditions"] == 1
    assert j["gender"]["contradiction_share"] == 1.0
    assert j["gender"]["real_contradiction_share"] == pytest.approx(0.25)
    # one name only: KL to the list (Ed 1/2, Finn 1/4, Ann 1/4) is log2 4 = 2 bits, far over the floor
    assert st["kl_to_own_list_bits"] == pytest.approx(2.0)
    assert st["kl_floor_bits"] < 0.2


def test_records_whose_condition_has_no_list_are_left_out_not_a_crash(tpath):
    """Another tool's file: a birth decade the source does not cover (2020s) has an empty list; those records
    cannot be judged against the joint and are left out (one-shot JSON biographies crashed the report here)."""
    rows = [{"gender": "male", "born": "1983-01-01", "first": "Ed"} for _ in range(10)]
    rows += [{"gender": "female", "born": "2022-12-22", "first": "Lana"} for _ in range(5)]
    st = conditional_stats(rows, META, tpath)
    assert st["n"] == 10 and st["conditions"] == 1
    assert set(mixture_target(rows, META, tpath)) == {"Ed", "Finn", "Ann"}
    assert conditional_stats(rows[10:], META, tpath) is None


def test_records_drawn_from_the_real_joint_fit_it(tpath):
    rng = np.random.default_rng(0)
    lists = {("female", "1975-01-01"): {"Ann": 5, "Beth": 3}, ("female", "1985-01-01"): {"Cora": 4, "Ann": 1},
             ("male", "1975-01-01"): {"Dan": 6}, ("male", "1985-01-01"): {"Ed": 2, "Finn": 1, "Ann": 1}}
    rows = []
    for (g, born), w in lists.items():
        names, p = list(w), np.array(list(w.values()), float)
        for name in rng.choice(names, size=500, p=p / p.sum()):
            rows.append({"gender": g, "born": born, "first": str(name)})
    st = conditional_stats(rows, META, tpath)
    assert st["conditions"] == 4 and st["kl_to_own_list_bits"] < 3 * st["kl_floor_bits"] + 0.01
    for j in st["joints"]:
        assert abs(j["contradiction_share"] - j["real_contradiction_share"]) < 0.04, j
        assert abs(j["mi_bits"] - j["real_mi_bits"]) < 0.05, j
    g = {x["field"]: x for x in st["joints"]}["gender"]
    # only male 1980s "Ann" (a quarter of that list's mass) contradicts; a quarter of the records are there
    assert g["real_contradiction_share"] == pytest.approx(0.25 * 0.25)
    # the marginal target: each record's own list, normalised, averaged over records
    t = mixture_target(rows, META, tpath)
    assert sum(t.values()) == pytest.approx(1.0) and t["Dan"] == pytest.approx(0.25)


def test_a_kl_inside_the_target_list_is_not_called_on_target_when_most_values_fall_outside_it():
    from synthgen.report.glance import kl_verdict

    assert kl_verdict(1.0, 1.0) == "on target (within sampling noise)"
    assert kl_verdict(1.0, 1.0, off_target=0.02) == "on target (within sampling noise)"
    assert kl_verdict(1.0, 1.0, off_target=0.956) == ("off target (96% of values outside the target list; "
                                                      "KL inside it 1.0x the floor)")


def test_a_fields_verdict_never_contradicts_itself():
    """8 unique cities of a 1,000-city target: never "on/near the target" beside "collapsed" (issue 51); a small n,
    whose KL floor is large, is judged by its unique values."""
    import json

    from synthgen.lists.sources import builtin
    from synthgen.report import analyse
    from synthgen.report.glance import field_verdict, lines

    assert field_verdict(1.0, 1.0, None, 95, 100) == "on target (within sampling noise); as diverse as the target"
    assert field_verdict(3.5, 1.6, None, 8, 673).startswith("collapsed (1% of the target's unique values); KL 2.2x")
    assert field_verdict(1.0, 1.0, None, 70, 100).startswith("near the target: KL 1.0x the floor, but less diverse")
    items = builtin("us_birth_places")[0]
    import tempfile

    for n in (30, 100, 1000):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
            fh.write("".join(json.dumps({"city": items[i % 8]}) + "\n" for i in range(n)))
        line = next(x for x in lines(analyse(fh.name, lists={"city": "us_birth_places"}).summary) if x.startswith("city"))
        assert "collapsed" in line and "on target" not in line and "near the target" not in line, line
