"""Records whose fields fit together: choice lists that depend on earlier fields (fake engine;
the real-model run is in test_constrained_vllm.py)."""

import csv

import pytest

from synthgen.errors import InputError

PEOPLE = """
name: people
fields:
  - {name: gender, kind: choice, choices: [female, male], prompt: "Gender?"}
  - {name: born, kind: date, min: 1975-06-01, max: 1984-12-31, prompt: "Born?"}
  - name: first
    kind: choice
    choices: {csv: names.csv, column: name, weight: count, where: {sex: "{gender}", decade: "{born:.3}0"}}
    map: {gender: {female: F, male: M}}
    prompt: "A {gender} name?"
"""
ROWS = [("Ann", "F", 1970, 5), ("Beth", "F", 1970, 3), ("Cora", "F", 1980, 4), ("Ann", "F", 1980, 1),
        ("Dan", "M", 1970, 6), ("Ed", "M", 1980, 2), ("Finn", "M", 1980, 1)]


def _template(tmp_path, text=PEOPLE, rows=ROWS):
    from synthgen.template import load_template

    with open(tmp_path / "names.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "sex", "decade", "count"])
        w.writerows(rows)
    p = tmp_path / "people.yaml"
    p.write_text(text)
    return load_template(p)


def test_a_conditional_list_is_enumerated_per_value_and_parsed_against_the_records_list(tmp_path):
    t = _template(tmp_path)
    f = t.field("first")
    assert f.given == ("gender", "born") and f.requires == ("gender", "born")
    assert sorted(f._lookups) == ["F|1970", "F|1980", "M|1970", "M|1980"]  # 3,866 days -> 2 decades
    assert f.items({"gender": "female", "born": "1983-02-01"}) == ["Ann", "Cora"]
    assert f.items({"gender": "male", "born": "1979-12-31"}) == ["Dan"]
    assert sorted(f.items()) == ["Ann", "Beth", "Cora", "Dan", "Ed", "Finn"]  # the union (reports)
    assert f.parse("Cora", "stop", {"gender": "female", "born": "1981-01-01"}) == ("Cora", None)
    assert f.parse("Cora", "stop", {"gender": "female", "born": "1977-01-01"}) == (None, "not in this record's list")
    assert f.parse("Dan", "stop", {"gender": "female", "born": "1977-01-01"})[0] is None
    meta = t.describe()["fields"][2]
    assert meta["given"] == ["gender", "born"] and meta["map"] == {"gender": {"female": "F", "male": "M"}}


def test_a_conditional_field_decodes_inside_its_values_list(tmp_path):
    """Each request carries the trie of its record's list; the fake engine (like a constrained
    one) can only answer inside it, so every record's name fits its gender and decade."""
    from synthgen.engine import FakeEngine
    from synthgen.generate import run
    from synthgen.output import plan_run, read_jsonl
    from synthgen.targets import DecodeTrie

    t = _template(tmp_path)
    days = ["1976-03-04", "1982-07-08"]
    picks = {"F|1970": ["Ann", "Beth"], "F|1980": ["Cora", "Ann"], "M|1970": ["Dan"], "M|1980": ["Ed", "Finn"]}

    def responder(r):
        if r.prompt == "Gender?":
            return ["female", "male"][r.seed % 2]
        if r.prompt == "Born?":
            return days[r.seed % 2]
        # read the trie the request names: answer with one of its items
        return next(n for names in picks.values() for n in names if _in_trie(r.trie, n, eng))

    def _in_trie(path, name, eng):
        trie = DecodeTrie.load(path)
        node = trie.walk(eng.tokenizer([name])["input_ids"][0] + [trie.eot])
        return node >= 0 and not len(trie.allowed(node))

    eng = FakeEngine(responder=responder)
    run(t, eng, plan_run(t, tmp_path / "o.jsonl", 24, 3), 24, 3)
    recs = read_jsonl(tmp_path / "o.jsonl")
    assert len(recs) == 24 and all(r["first"] for r in recs)
    for r in recs:
        key = ("F" if r["gender"] == "female" else "M") + "|" + r["born"][:3] + "0"
        assert r["first"] in picks[key], r
    tries = {r.trie for r in eng.history if r.prompt.startswith("A ")}
    assert len(tries) == len({(r["gender"], r["born"][:3]) for r in recs}) > 1


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace('decade: "{born:.3}0"', 'decade: "{later:.3}0"'), "refers to {later}, which is not an earlier field"),
    (lambda s: s.replace("male: M}", "man: M}"), "`map` gender: has no spelling for 'male'"),
    (lambda s: s.replace("map: {gender:", "map: {color: {a: b}, gender:"), "`map` names 'color', which no `where`"),
    (lambda s: s.replace("max: 1984-12-31", "max: 1994-12-31"), "for gender='female', born='1990-01-01'.*empty"),
    (lambda s: s.replace('"{gender}"', '"{gender"'), "bad placeholder in `where`"),
    (lambda s: s.replace('where: {sex: "{gender}", decade: "{born:.3}0"}', "where: {sex: F}"), "`map` needs a `where` with"),
])
def test_bad_conditional_lists_are_one_line_errors(tmp_path, edit, message):
    with pytest.raises(InputError, match=message):
        _template(tmp_path, edit(PEOPLE))


def test_a_condition_on_a_text_field_is_refused(tmp_path):
    text = PEOPLE.replace('  - {name: born, kind: date, min: 1975-06-01, max: 1984-12-31, prompt: "Born?"}',
                          '  - {name: born, kind: text, prompt: "Born?"}')
    with pytest.raises(InputError, match="only on choice fields and dates with min and max, not 'born'"):
        _template(tmp_path, text)


def test_adapter_auto_on_a_conditional_list_trains_one_list_per_filter(tmp_path):
    """adapter: auto builds a conditional spec: one list (and the field's prompt, rendered) per
    distinct filter, each its condition's items; it refuses a list that depends on a field its
    prompt does not name."""
    from synthgen import auto
    from synthgen.lists import expand, load_targets

    t = _template(tmp_path, PEOPLE.replace('prompt: "A {gender} name?"',
                                           'prompt: "A {gender} name for {born:.3}0s?"\n    adapter: auto'))
    spec = auto.field_spec(t, t.field("first"))
    parts = {tuple(sorted(load_targets(x)[0])): x.prompts[0] for x in expand(spec)}
    assert parts == {("Ann", "Beth"): "A female name for 1970s?", ("Ann", "Cora"): "A female name for 1980s?",
                     ("Dan",): "A male name for 1970s?", ("Ed", "Finn"): "A male name for 1980s?"}
    assert load_targets(expand(spec)[0])[1].tolist() == [5 / 8, 3 / 8]  # the source's counts
    t2 = _template(tmp_path, PEOPLE.replace('prompt: "A {gender} name?"', 'prompt: "A {gender} name?"\n    adapter: auto'))
    with pytest.raises(InputError, match="depends on 'born' needs the prompt to name {born}"):
        auto.field_spec(t2, t2.field("first"))


def test_the_report_opens_with_the_joint_checks_in_a_browser(tmp_path):
    """A conditional run's report: terminal, JSON and HTML open with the first screen, where the
    first name is judged against its own list's floor and the real joint with gender and decade;
    the page renders in headless Chromium with that section first."""
    import json
    import os
    import shutil
    import subprocess

    from click.testing import CliRunner

    from synthgen.cli import cli
    from synthgen.engine import FakeEngine
    from synthgen.generate import run
    from synthgen.output import plan_run

    t = _template(tmp_path)
    names = {"F|1970": ["Ann", "Beth"], "F|1980": ["Cora", "Ann"], "M|1970": ["Dan"], "M|1980": ["Ed", "Finn"]}

    def responder(r):
        if r.prompt == "Gender?":
            return ["female", "male"][r.seed % 2]
        if r.prompt == "Born?":
            return ["1976-03-04", "1982-07-08"][(r.seed // 2) % 2]
        for key, opts in names.items():  # the trie the request names tells its list
            if r.trie == _trie_of(t, key):
                return opts[r.seed % len(opts)]

    def _trie_of(t, key):
        from synthgen.generate import compile_tries

        return compile_tries(t, FakeEngine().tokenizer)["first"][key]

    run(t, FakeEngine(responder=responder), plan_run(t, tmp_path / "o.jsonl", 200, 1), 200, 1)
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "o.jsonl"), "--out", str(tmp_path / "rep"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output[:res.output.rindex("}") + 1])
    cond = next(f for f in doc["report"]["fields"] if f["field"] == "first")["conditional"]
    assert cond["outside_own_list"] == 0 and cond["conditions"] == 4
    assert {j["field"] for j in cond["joints"]} == {"gender", "born"}
    text = CliRunner().invoke(cli, ["report", str(tmp_path / "o.jsonl")]).output
    assert text.index("at a glance") < text.index("categorical fields")
    assert "gender → first:" in text and "born → first:" in text and "floor" in text
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("SYNTHGEN_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (scripts/setup.sh installs Debian's chromium)")
        pytest.skip("chromium not installed")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (tmp_path / "rep" / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert "At a glance" in dom and dom.index("At a glance") < dom.index("Categorical fields")
    assert "given mostly under another gender" in dom and "target_fit.png" in dom


SPEC_TEMPLATE = """
name: t
fields:
  - {name: city, kind: choice, choices: {spec: towns}, prompt: "A town?"}
"""


def _spec_dir(tmp_path, extra=""):
    (tmp_path / "adapters").mkdir()
    (tmp_path / "adapters" / "towns.yaml").write_text(
        "name: towns\nsource: {inline: {Ayr: 5, Bude: 3, Cork: 1, Deal: 1}}\nweighting: frequency\ntop_k: 3\n"
        f"prompts: [\"A town?\"]\n{extra}")
    (tmp_path / "templates").mkdir()
    p = tmp_path / "templates" / "t.yaml"
    p.write_text(SPEC_TEMPLATE)
    return p


def test_choices_from_a_spec_decode_inside_exactly_that_specs_list(tmp_path):
    """`choices: {spec: NAME}` is the list adapter NAME targets (after its top_k), found beside the
    adapters; the report's target is that spec's p*, also without an adapter on the field."""
    from synthgen.report.load import _target_from_choices
    from synthgen.template import load_template

    t = load_template(_spec_dir(tmp_path))
    f = t.field("city")
    assert sorted(f.items()) == ["Ayr", "Bude", "Cork"]  # top_k 3 of 4: Deal is outside
    assert f.parse("Deal")[0] is None and f.parse("bude")[0] == "Bude"
    target = _target_from_choices("city", f.choices, tmp_path / "templates")
    assert target == pytest.approx({"Ayr": 5 / 9, "Bude": 3 / 9, "Cork": 1 / 9})


@pytest.mark.parametrize("choices, extra, message", [
    ("{spec: nowhere}", "", "no list spec 'nowhere'"),
    ("{spec: towns, where: {a: b}}", "", "takes only a list spec's name or path"),
    ("{spec: towns}", "variables: {size: [big]}\n", "is conditional"),
])
def test_bad_spec_choices_are_one_line_errors(tmp_path, choices, extra, message):
    from synthgen.template import load_template

    p = _spec_dir(tmp_path, extra)
    p.write_text(SPEC_TEMPLATE.replace("{spec: towns}", choices))
    with pytest.raises(InputError, match=message):
        load_template(p)


def test_adapter_auto_on_spec_choices_trains_for_that_specs_list_and_weights(tmp_path):
    from synthgen.auto import field_spec
    from synthgen.lists import load_targets
    from synthgen.template import load_template

    p = _spec_dir(tmp_path)
    p.write_text(SPEC_TEMPLATE.replace('prompt: "A town?"', 'prompt: "A town?", adapter: auto'))
    t = load_template(p)
    spec = field_spec(t, t.field("city"))
    items, probs = load_targets(spec)
    assert items == ["Ayr", "Bude", "Cork"] and list(probs) == pytest.approx([5 / 9, 3 / 9, 1 / 9])
