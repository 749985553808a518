import numpy as np
import pytest

from synthgen.errors import InputError
from synthgen.lists import load_spec, load_targets


def spec_file(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


PROMPTS = "prompts: ['Pick one.']\n"


def test_inline_uniform(tmp_path):
    s = load_spec(spec_file(tmp_path, "name: x\nsource: {inline: [a, b, c, d]}\n" + PROMPTS))
    items, p = load_targets(s)
    assert items == ["a", "b", "c", "d"] and np.allclose(p, 0.25)


def test_frequency_power_and_top_k(tmp_path):
    s = load_spec(spec_file(tmp_path, "name: x\nsource: {inline: {a: 1, b: 4, c: 16}}\nweighting: 0.5\ntop_k: 2\n" + PROMPTS))
    items, p = load_targets(s)
    assert items == ["b", "c"] and np.allclose(p, [2 / 6, 4 / 6])


def test_range_filters():
    from synthgen.lists.sources import number_range

    assert number_range(1, 20, "prime")[0] == ["2", "3", "5", "7", "11", "13", "17", "19"]
    assert len(number_range(1, 100, "even")[0]) == 50


def test_builtin_first_names_are_ssa_weighted_and_merged(tmp_path):
    s = load_spec(spec_file(tmp_path, "name: x\nsource: {builtin: first_names}\nweighting: frequency\ntop_k: 50\n" + PROMPTS))
    items, p = load_targets(s)
    assert len(items) == len(set(items)) == 50
    assert items[int(np.argmax(p))] in {"James", "John", "Mary", "Robert", "Michael"}


def test_surnames_are_cased():
    from synthgen.lists.sources import builtin

    names, _ = builtin("surnames")
    assert "O'Brien" in names and "McDonald" in names and "Smith" in names and "SMITH" not in names


def test_csv_source_relative_to_spec(tmp_path):
    (tmp_path / "items.csv").write_text("item,w\nred,1\nblue,3\n")
    s = load_spec(spec_file(tmp_path, "name: x\nsource: {csv: items.csv, weight: w}\nweighting: frequency\n" + PROMPTS))
    items, p = load_targets(s)
    assert items == ["red", "blue"] and np.allclose(p, [0.25, 0.75])


def test_csv_source_nested_form_and_its_errors(tmp_path):
    """`csv: {path, column, weight}` (what a new user wrote) works like the flat form; a wrong key is
    a one-line error, not a TypeError."""
    (tmp_path / "cities.csv").write_text("name,pop\nOslo,1\nLima,3\n")
    s = load_spec(spec_file(tmp_path, "name: x\nsource: {csv: {path: cities.csv, column: name, weight: pop}}\n"
                                      "weighting: frequency\n" + PROMPTS))
    items, p = load_targets(s)
    assert items == ["Oslo", "Lima"] and np.allclose(p, [0.25, 0.75])
    for bad, msg in (("{csv: {file: cities.csv}}", r"unknown key\(s\) file"), ("{csv: [cities.csv]}", "must be a file path")):
        s = load_spec(spec_file(tmp_path, f"name: x\nsource: {bad}\n" + PROMPTS))
        with pytest.raises(InputError, match=msg):
            load_targets(s)


@pytest.mark.parametrize("text,msg", [
    ("name: x\nsource: {inline: [a]}\nprompts: [hi]\ncolour: red\n", "unknown key"),
    ("name: x\nsource: {inline: [a]}\n", "missing key"),
    ("name: x\nsource: {inline: [a]\nprompts: [hi]\n", "not valid YAML at line"),
    ("name: x\nsource: {wiki: names}\nprompts: [hi]\n", "exactly one of"),
    ("name: x\nsource: {builtin: pokemon}\nprompts: [hi]\n", "unknown list source 'pokemon'"),
    ("name: x\nsource: {inline: []}\nprompts: [hi]\n", "the list is empty"),
    ("name: x\nsource: {inline: {a: 1, b: 0}}\nweighting: frequency\nprompts: [hi]\n", "weights must be finite and > 0"),
    ("name: x\nsource: {inline: {a: 1, b: .nan}}\nweighting: frequency\nprompts: [hi]\n", "weights must be finite"),
    ("name: x\nsource: {inline: [a]}\nweighting: loud\nprompts: [hi]\n", "`weighting` must be"),
    ("name: x\nsource: {inline: [a]}\nprompts: []\n", "`prompts` must be"),
    ("name: x\nsource: {inline: [a]}\ntop_k: 0\nprompts: [hi]\n", "`top_k` must be"),
    ("- a\n- b\n", "must be a YAML mapping"),
])
def test_bad_specs(tmp_path, text, msg):
    with pytest.raises(InputError, match=msg):
        load_targets(load_spec(spec_file(tmp_path, text)))


@pytest.mark.parametrize("text,line", [  # the whole line after the file's name (synthgen/schema.py)
    ("name: x\nsource: {inline: [a]}\nweighting: -1\nprompts: [hi]\n",
     "`weighting` must be uniform, frequency or a number >= 0, got -1"),
    ("name: x\nsource: {inline: [a]}\ntop_k: 0\nprompts: [hi]\n", "`top_k` must be an integer >= 1, got 0"),
    ("name: x\nsource: {inline: [a]}\nprompts: [hi, '  ']\n",
     "`prompts` must be a non-empty list of non-empty strings, got ['hi', '  ']"),
    ("name: x\nsource: {inline: [a]}\nprompts: [hi]\ncolour: red\n",
     "unknown key(s) colour (allowed: description, name, prompts, source, top_k, variables, weighting)"),
])
def test_spec_errors_are_one_exact_line(tmp_path, text, line):
    with pytest.raises(InputError) as e:
        load_spec(spec_file(tmp_path, text))
    assert "\n" not in str(e.value) and str(e.value).endswith(": " + line), str(e.value)


def test_missing_spec_file(tmp_path):
    with pytest.raises(InputError, match="cannot read spec"):
        load_spec(tmp_path / "nope.yaml")


def test_shipped_specs_load():
    import glob

    files = glob.glob("adapters/*.yaml") + glob.glob("adapters/tasks/*.yaml")
    assert len(files) >= 10
    from synthgen.lists import expand

    for f in files:
        for spec in expand(load_spec(f)):
            items, p = load_targets(spec)
            assert len(items) == len(set(items)) and abs(p.sum() - 1) < 1e-9


COND = """
name: names
source: {builtin: first_names_by_decade, where: {sex: "{gender}", decade: "{decade}"}}
variables:
  gender: {female: F, male: M}
  decade: [1950, 2000]
weighting: frequency
prompts: ["A random first name for a {gender} baby born in the {decade}s."]
"""


def test_a_conditional_spec_expands_to_one_list_per_value(tmp_path):
    """Per value the prompt is rendered and the source filtered by the value's spelling; the targets
    are the SSA's counts of that sex and decade."""
    from synthgen.lists import expand

    p = tmp_path / "c.yaml"
    p.write_text(COND)
    parts = expand(load_spec(p))
    assert [x.name for x in parts] == ["names(gender=female,decade=1950)", "names(gender=female,decade=2000)",
                                       "names(gender=male,decade=1950)", "names(gender=male,decade=2000)"]
    assert parts[3].prompts == ["A random first name for a male baby born in the 2000s."]
    top = {x.condition["gender"] + x.condition["decade"]: load_targets(x)[0][0] for x in parts}
    assert top == {"female1950": "Mary", "female2000": "Emily", "male1950": "James", "male2000": "Jacob"}
    items, p_star = load_targets(parts[0])
    assert len(items) == 500 and p_star.sum() == pytest.approx(1) and "James" not in items
    assert len({x.digest() for x in parts}) == 4


@pytest.mark.parametrize("edit, msg", [
    (lambda s: s.replace("{gender} baby", "baby"), "variable 'gender' is not used by prompt"),
    (lambda s: s.replace("the {decade}s", "the {era}s"), "uses {era}, which is not a variable"),
    (lambda s: s.replace("decade: [1950, 2000]", "decade: [1950, 1850]"), "for gender=female,decade=1850: .*empty"),
    (lambda s: s.replace("decade: [1950, 2000]", "decade: []"), r"`variables.decade` must be a mapping name -> values: a non-empty list .*got \[\]"),
    (lambda s: s.replace('decade: "{decade}"', 'decade: "{year}"'), "`where` uses {year}, which is not a variable"),
])
def test_bad_conditional_specs_are_one_line_errors(tmp_path, edit, msg):
    from synthgen.lists import expand

    p = tmp_path / "c.yaml"
    p.write_text(edit(COND))
    with pytest.raises(InputError, match=msg):
        expand(load_spec(p))
