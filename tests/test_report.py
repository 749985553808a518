"""`synthgen report` on hand-made datasets whose metrics are known, bad input, and the HTML in a real browser."""

import json
import math
import os
import shutil
import subprocess
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from synthgen.cli import cli
from synthgen.geo import GeoNamesOffline
from synthgen.report import analyse, entropy_bits, rarefaction, write_outputs


def write_jsonl(path, rows, extra_lines=()):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def people(n, names, seed=0):
    rng = np.random.default_rng(seed)
    places = ["Paris, France", "Lagos, Nigeria", "Bombay, India", "Lima, Peru", "Atlantis, Ocean"]
    return [{"index": i, "name": names[i % len(names)], "gender": ["female", "male"][i % 2],
             "birth_place": places[int(rng.integers(len(places)))],
             "bio": f"{names[i % len(names)]} wrote {i % 7} books about rivers and {i % 3} about hills."}
            for i in range(n)]


def test_counts_entropy_and_rarefaction_are_exact():
    assert entropy_bits([5, 5, 5, 5]) == pytest.approx(2.0)
    assert entropy_bits([10]) == 0.0
    curve = dict(rarefaction([1, 1, 1, 1]))  # 4 singletons: every record is a new value
    assert curve[1] == pytest.approx(1) and curve[4] == pytest.approx(4) and curve[2] == pytest.approx(2)
    curve = dict(rarefaction([3, 1]))  # E[unique in 2 of 4] = 1 + P(the singleton is drawn) = 1 + 1/2
    assert curve[2] == pytest.approx(1.5)


def test_report_on_an_inferred_dataset(tmp_path):
    rows = people(400, ["Ann", "Bob", "Cy", "Dee"])
    rows[5]["name"] = "The name I pick is Bob, because it is nice"  # off-format: invalid, not a new name
    rows[6]["name"] = 17  # a number is a value
    rows[7]["name"] = ["x"]  # a list is not
    del rows[8]["name"]
    path = write_jsonl(tmp_path / "d.jsonl", rows, ["{not json", "[1, 2]"])
    rep = analyse(path).summary
    assert rep["records"] == 400 and rep["malformed_lines"] == 2
    assert [m["line"] for m in rep["malformed_examples"]] == [401, 402]
    f = {x["field"]: x for x in rep["fields"]}
    name = f["name"]
    assert name["kind"] == "categorical" and name["unique"] == 5  # Ann Bob Cy Dee + "17"
    assert name["valid"] == 397 and name["invalid"] == 3
    assert name["invalid_reasons"] == {"not a bare value": 1, "non-string value (list)": 1, "field missing": 1}
    assert f["bio"]["kind"] == "text"
    # "{name} wrote {i%7} books about rivers and {i%3} about hills.": 10 words, 9 bigrams, in 84 distinct texts
    # (lcm of 4 names, 7 and 3); distinct words 4 + 7 digits + wrote books about rivers and hills = 17, distinct
    # bigrams 4 (name wrote) + 7 + 7 (digit books) + 3 + 3 + 4 fixed = 28
    assert f["bio"]["distinct_1"] == 17 / 4000 and f["bio"]["distinct_2"] == 28 / 3600
    assert f["bio"]["exact_duplicates"] == 400 - 84 and f["bio"]["mean_words"] == 10.0
    assert f["bio"]["compression_ratio"] > 2
    # gender alternates with the index and so does the name: 1 bit shared, the shuffle baseline is ~0
    mi = {frozenset((m["a"], m["b"])): m for m in rep["mutual_information"]}
    assert mi[frozenset(("name", "gender"))]["mi_bits"] == pytest.approx(1.0, abs=0.02)
    assert mi[frozenset(("name", "gender"))]["shuffled_mi_bits"] < 0.05
    geo = rep["geography"][0]
    assert geo["field"] == "birth_place" and geo["countries"] == 4  # Bombay -> Mumbai, India; Atlantis unresolved
    assert geo["unresolved"] == sum(r["birth_place"] == "Atlantis, Ocean" for r in rows) > 0


def test_generated_dataset_uses_the_template_lists_and_targets(tmp_path):
    """A `synthgen generate` output: lists and target distributions come from its metadata."""
    from synthgen.engine import FakeEngine
    from synthgen.generate import Fill, run
    from synthgen.output import plan_run
    from synthgen.template import load_template

    tpl = tmp_path / "t.yaml"
    tpl.write_text("""
name: t
fields:
  - {name: first_name, kind: choice, choices: {builtin: first_names}, prompt: "Name?"}
  - {name: city, kind: choice, choices: {builtin: world_cities}, match: place, prompt: "City for {first_name}?"}
""")
    names = ["Mary", "James", "Emily", "Zyx"]
    cities = ["Paris, France", "Bombay, India", "Lima, Peru"]
    eng = FakeEngine(responder=lambda r: names[r.seed % 4] if r.prompt == "Name?" else cities[r.seed % 3])
    t = load_template(tpl).with_decode("free")  # free answers can be off the list ("Zyx") or aliases ("Bombay")
    run(t, eng, plan_run(t, tmp_path / "g.jsonl", 60, 0), 60, 0, Fill(retries=0))
    rep = analyse(tmp_path / "g.jsonl").summary
    f = {x["field"]: x for x in rep["fields"]}
    stored = [json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    zyx = sum(r["first_name"] is None for r in stored)  # "Zyx" stored as null with the reason
    assert f["first_name"]["unique"] == 3 and f["first_name"]["list_size"] > 4000 and 0 < zyx < 60
    assert f["first_name"]["invalid_reasons"] == {"not in the list": zyx} and f["first_name"]["valid"] == 60 - zyx
    assert f["city"]["top"][0][0] in ("Paris, France", "Mumbai, India", "Lima, Peru")
    assert rep["geography"] and rep["geography"][0]["countries"] == 3
    # no adapter, so no target: the report says why there is no KL instead of a bare "-"
    assert f["first_name"].get("kl_to_target_bits") is None and "--target first_name=LIST" in f["first_name"]["target_note"]
    r = invoke("report", tmp_path / "g.jsonl")
    assert r.exit_code == 0, r.output
    assert "list cov." in r.output and "target cov." in r.output and "first_name: no KL" in r.output


def test_a_user_adapter_with_its_spec_beside_it_gives_a_target(tmp_path):
    """`adapter: ./mine` built from mine.yaml: the report finds mine.yaml beside the adapter and
    computes KL and target coverage; without the spec it falls back to the field's list, saying so."""
    from synthgen.engine import FakeEngine
    from synthgen.generate import Fill, run
    from synthgen.output import plan_run
    from synthgen.template import load_template

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine.yaml").write_text("name: mine\nsource: {inline: {red: 3, blue: 1}}\nweighting: frequency\n"
                                        "prompts: [\"Color?\"]\n")
    tpl = tmp_path / "t.yaml"
    tpl.write_text("name: t\nfields:\n  - {name: color, kind: choice, choices: [red, blue], prompt: \"Color?\", "
                   "adapter: ./mine, decode: free}\n")
    t = load_template(tpl, use_adapters=False)
    eng = FakeEngine(responder=lambda r: ["red", "blue"][r.seed % 2])
    run(t, eng, plan_run(t, tmp_path / "g.jsonl", 40, 0, use_adapters=False), 40, 0, Fill(use_adapters=False))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        f = analyse(tmp_path / "g.jsonl").summary["fields"][0]
        reds = sum(json.loads(line)["color"] == "red" for line in (tmp_path / "g.jsonl").read_text().splitlines()) / 40
        exact = reds * math.log2(reds / 0.75) + (1 - reds) * math.log2((1 - reds) / 0.25)  # against red 3 : blue 1
        assert f["target_size"] == 2 and f["target_coverage"] == 1.0
        assert f["kl_to_target_bits"] == pytest.approx(exact, abs=1e-12) and exact > 0
        (tmp_path / "mine.yaml").unlink()
        f = analyse(tmp_path / "g.jsonl").summary["fields"][0]
        # without it, the field's own list (uniform here) is the target, and the note says so
        assert f["kl_to_target_bits"] == pytest.approx(1 - entropy_bits([reds, 1 - reds]), abs=1e-9)
        assert "no list spec mine.yaml" in f["target_note"]
        assert f["target_note"].startswith("target: the field's own list")
    finally:
        os.chdir(cwd)


def test_compare_html_json_and_pngs(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", people(300, [f"N{i}" for i in range(40)]))
    b = write_jsonl(tmp_path / "b.jsonl", people(300, ["Emily", "Emily", "Emily", "Ann"]))
    r = invoke("report", a, "--compare", b, "--out", tmp_path / "rep")
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    ratio = {(c["field"], c["metric"]): c["ratio"] for c in doc["comparison"]}
    assert ratio[("name", "unique")] == pytest.approx(40 / 2)
    assert (tmp_path / "rep" / "map_birth_place.png").stat().st_size > 10_000
    assert (tmp_path / "rep" / "rarefaction.png").read_bytes()[:4] == b"\x89PNG"
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "src=\"http" not in page
    r = invoke("report", a, "--json")
    assert r.exit_code == 0 and json.loads(r.output)["report"]["records"] == 300


def test_compare_shows_realism_beside_unique_counts(tmp_path):
    """Many unique but rare names must not look better than real-world frequencies: KL and top values say so."""
    from synthgen.lists.sources import builtin

    real = ["Mary", "James", "John", "Linda", "Robert", "Patricia"] * 10 + ["Emily", "Ann"]
    a = write_jsonl(tmp_path / "a.jsonl", people(300, real))
    items, w = builtin("first_names")
    rare = [items[i] for i in np.argsort(w)[:120]]  # the list's tail: unique, but unlikely
    b = write_jsonl(tmp_path / "b.jsonl", people(300, rare))
    r = invoke("report", a, "--compare", b, "--list", "name=first_names", "--json")
    assert r.exit_code == 0, r.output
    rows = {(c["field"], c["metric"]): c for c in json.loads(r.output)["comparison"]}
    assert (rows[("name", "unique")]["value"], rows[("name", "unique")]["compare"]) == (8, 120)
    p = dict(zip(items, np.asarray(w, float) / sum(w)))  # the SSA frequencies: the builtin list's own target

    def kl_exact(names):
        c = Counter(names[i % len(names)] for i in range(300))
        return sum(k / 300 * math.log2(k / 300 / p[v]) for v, k in c.items())

    kl = rows[("name", "kl_to_target_bits")]
    assert kl["value"] == pytest.approx(kl_exact(real), abs=1e-6)  # the table rounds to 6 places
    assert kl["compare"] == pytest.approx(kl_exact(rare), abs=1e-6)
    assert kl["value"] < kl["compare"] - 3  # the frequent names are far closer to the SSA frequencies
    assert rows[("name", "top 3")]["value"].startswith(("Mary", "James", "John", "Linda", "Robert", "Patricia"))
    assert rows[("name", "top 3")]["compare"].split(" ")[0] in rare


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("", "has no records"),
    ("{bad\n[1]\n", "has no records (2 malformed line(s), first at line 1"),
])
def test_bad_files_give_one_line(tmp_path, content, message):
    path = tmp_path / "x.jsonl"
    if content is not None:
        path.write_text(content)
    r = invoke("report", path)
    assert r.exit_code == 1 and message in r.output and r.output.count("\n") == 1, r.output


def test_bad_options_give_one_line(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", people(10, ["Ann"]))
    for args, message in [(("--fields", "nope"), "no record has field(s) nope"),
                          (("--list", "name"), "use FIELD=LIST"),
                          (("--list", "name=no_such_list"), "no_such_list"),
                          (("--geo", "zzz"), "--geo zzz")]:
        r = invoke("report", a, *args)
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, r.output
    (tmp_path / "file").write_text("x")
    r = invoke("report", a, "--out", tmp_path / "file")
    assert r.exit_code != 0 and "is a file" in r.output and "Traceback" not in r.output


def test_validation_list_for_a_foreign_dataset(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"n": x} for x in ["Mary", "Mary", "Qwrtz", "James"]])
    rep = analyse(a, lists={"n": "first_names"}).summary
    f = rep["fields"][0]
    assert f["valid"] == 3 and f["unique"] == 2 and f["invalid_examples"] == ["Qwrtz"]


def test_ten_thousand_records_figures_match_a_direct_count(tmp_path):
    """10k records (speed is benchmarked, not timed here): every categorical figure equals a direct
    count over the rows, and the outputs are written."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    rows = [{"name": f"N{int(rng.zipf(1.3)) % 3000}", "gender": ["female", "male"][i % 2],
             "birth_place": ["Paris, France", "Lagos, Nigeria", "Lima, Peru"][i % 3],
             "text": " ".join(rng.choice(words, 15))} for i in range(10_000)]
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    report = analyse(path)
    write_outputs(report, tmp_path / "out")
    fields = {f["field"]: f for f in report.summary["fields"]}
    counts = Counter(r["name"] for r in rows)
    probs = np.array(list(counts.values())) / len(rows)
    assert fields["name"]["unique"] == len(counts) and fields["name"]["valid"] == 10_000
    assert math.isclose(fields["name"]["entropy_bits"], float(-(probs * np.log2(probs)).sum()), rel_tol=1e-9)
    assert fields["name"]["top"][0][:2] == list(counts.most_common(1)[0]) or \
        tuple(fields["name"]["top"][0][:2]) == counts.most_common(1)[0]
    assert fields["gender"]["unique"] == 2 and math.isclose(fields["gender"]["entropy_bits"], 1.0)
    assert fields["birth_place"]["unique"] == 3
    assert (tmp_path / "out" / "report.html").stat().st_size > 0 and (tmp_path / "out" / "report.json").is_file()


def test_offline_geocoder_is_a_geopy_geocoder():
    from geopy.geocoders.base import Geocoder

    g = GeoNamesOffline()
    assert isinstance(g, Geocoder)
    assert g.geocode("Bombay, India").address == "Mumbai, India"
    assert g.geocode("new york, USA").address == "New York City, United States"
    assert math.isclose(g.geocode("Paris, France").latitude, 48.853, abs_tol=0.01)
    assert g.geocode("Paris, Narnia") is None and g.geocode("Valencia") is None  # never guessed (Spain or Venezuela?)
    assert g.geocode("Springfield, USA").raw["population"] > 100_000  # the most populous one


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_html_renders_in_headless_chromium(tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("SYNTHGEN_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (scripts/setup.sh installs Debian's chromium)")
        pytest.skip("chromium not installed")
    a = write_jsonl(tmp_path / "a.jsonl", people(200, [f"N{i}" for i in range(30)]))
    assert invoke("report", a, "--out", tmp_path / "rep").exit_code == 0
    shot = tmp_path / "shot.png"
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          (tmp_path / "rep" / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert "synthgen diversity report" in dom.stdout and "Mutual information" in dom.stdout
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={shot}", "--window-size=1200,2400",
                    (tmp_path / "rep" / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.exists()
    from PIL import Image
    from scipy import ndimage

    from synthgen.report.glance import cards

    # the first screen (1300 x 900) shows every field's card: count the cards' coloured left borders on it
    first = tmp_path / "first.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile3'}", f"--screenshot={first}", "--window-size=1300,900",
                    (tmp_path / "rep" / "report.html").as_uri()], capture_output=True, timeout=120)
    top = np.asarray(Image.open(first).convert("RGB")).astype(int)
    border = np.zeros(top.shape[:2], bool)
    for colour in ((0x2e, 0x7d, 0x32), (0xf9, 0xa8, 0x25), (0xc6, 0x28, 0x28)):
        border |= (np.abs(top - colour).sum(axis=2) < 30)
    labels, k = ndimage.label(border)
    boxes = ndimage.find_objects(labels)
    stripes = [b for b in boxes if b[0].stop - b[0].start >= 40 and b[1].stop - b[1].start <= 8]
    want = cards(json.loads((tmp_path / "rep" / "report.json").read_text())["report"])
    assert len(want) >= 3 and len(stripes) == len(want), (len(stripes), len(want))

    img = np.asarray(Image.open(shot).convert("RGB"))
    # the page is not blank: the map's grey land and red markers are on it
    colours = Counter(map(tuple, img.reshape(-1, 3)[::7]))
    assert len(colours) > 50
    r, g, b = (img[..., i].astype(int) for i in range(3))
    red = ((r > 180) & (r - g > 60) & (r - b > 60)).sum()  # the half-transparent red birth-place markers
    assert red > 100


def test_auto_and_path_adapters_get_their_target_from_the_runs_metadata_and_list_keeps_validity(tmp_path):
    """`adapter: auto` trained for the field's own list: the report finds that target in the run's
    metadata (it said "no list spec auto.yaml"); a path adapter without a spec beside it falls back to
    the field's list, saying so. --list sets the target, but what is valid stays the run's own list."""
    from synthgen.engine import FakeEngine
    from synthgen.generate import run
    from synthgen.output import plan_run
    from synthgen.template import load_template

    tpl = tmp_path / "t.yaml"
    tpl.write_text("name: t\nfields:\n"
                   "  - {name: color, kind: choice, choices: {inline: {red: 3, green: 1, blue: 1}}, adapter: auto, prompt: 'C?'}\n"
                   "  - {name: shape, kind: choice, choices: [round, square], adapter: ./ad/shapes, prompt: 'S?'}\n")
    (tmp_path / "ad" / "shapes").mkdir(parents=True)
    t = load_template(tpl, use_adapters=False)
    # the fake engine ignores adapters; run() only checks auto ones are built
    t = t.with_changes({f.name: {"adapter_path": "unused"} for f in t.fields})
    answers = {"C?": ["red", "green", "blue", "red"], "S?": ["round", "square"]}
    eng = FakeEngine(responder=lambda r: answers[r.prompt][r.seed % len(answers[r.prompt])])
    out = tmp_path / "o.jsonl"
    run(t, eng, plan_run(t, out, 40, 0), 40, 0)
    fields = {f["field"]: f for f in analyse(str(out)).summary["fields"]}
    assert fields["color"]["kl_to_target_bits"] is not None and fields["color"]["target_note"] is None
    assert dict((v, p) for v, p in fields["color"]["target_top"]) == pytest.approx({"red": 0.6, "green": 0.2, "blue": 0.2})
    assert fields["shape"]["kl_to_target_bits"] is not None
    assert fields["shape"]["target_note"].startswith("target: the field's own list (adapter './ad/shapes' has no list spec")
    spec = tmp_path / "two.yaml"
    spec.write_text("name: two\nsource: {inline: [red, green]}\nprompts: [x]\n")
    fields = {f["field"]: f for f in analyse(str(out), lists={"color": str(spec)}).summary["fields"]}
    assert fields["color"]["valid_share"] == 1.0  # blue was valid in this run: still valid
    assert dict((v, p) for v, p in fields["color"]["target_top"]) == pytest.approx({"red": 0.5, "green": 0.5})


def bios_with_faults():
    """40 records whose texts each break at most one thing, known in advance."""
    rows = []
    for i in range(40):
        name, sex = ("Ann", "female") if i % 2 == 0 else ("Bob", "male")
        own = "her" if sex == "female" else "his"
        bio = f"{name} Lee finished {own} degree in {1990 + i % 20} and built bridges over rivers number {i}."
        if i == 3:
            bio = f"{name} Lee finished her degree and built bridges."  # Bob with "her"
        if i == 4:
            bio = "Ann finished her degree and built bridges."  # no surname
        if i == 6:
            bio = "Ann Lee finished her flurbique degree and built zorbatic bridges."  # two non-words of 10
        rows.append({"index": i, "first_name": name, "last_name": "Lee", "gender": sex, "birth_date": "1970-01-01",
                     "bio": bio})
    return rows


def test_text_fit_measures_checks_nonwords_phrases_and_meaning(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", bios_with_faults())
    r = invoke("report", a, "--checks", "bio={mentions: [first_name, last_name], pronouns: gender}", "--json")
    assert r.exit_code == 0, r.output
    bio = {f["field"]: f for f in json.loads(r.output)["report"]["fields"]}["bio"]
    assert bio["checks"] == {"mentions": 39 / 40, "pronouns": 39 / 40} and bio["checks_all"] == 38 / 40
    assert bio["texts_with_nonwords"] == 1 / 40 and 0 < bio["nonword_share"] < 0.01  # 2 of ~600 words
    assert bio["top_3grams"][0] == ["and built bridges", 39 / 40]  # every text but the one with "zorbatic bridges"
    assert 1 < bio["semantic_vendi"] < 40  # near-identical sentences: far fewer meanings than texts
    # the terminal: the glance line with its verdict, and the checks under the table
    r = invoke("report", a, "--checks", "bio={mentions: [first_name, last_name], pronouns: gender}")
    assert "bio: passes every check 95.0% (mentions 97.5%, pronouns 97.5%)" in r.output, r.output
    assert "5.0% of texts fail a check" in r.output and "repetitive" in r.output
    # without checks the glance says none are declared; a file with a bad field name is one line
    r = invoke("report", a)
    assert "no checks declared" in r.output
    for flag, message in [("bio={mentions: [nope]}", "checks.mentions names 'nope'"), ("bio=[1", "not YAML"),
                          ("bio={pronoun: gender}", "unknown key"), ("bio", "use FIELD=CHECKS"),
                          ("first_name={profanity: true}", "not a text field")]:
        r = invoke("report", a, "--checks", flag)
        assert r.exit_code == 1 and message in r.output and r.output.count("\n") == 1, (flag, r.output)


def test_compare_file_is_measured_with_the_main_files_checks(tmp_path):
    rows = bios_with_faults()
    a = write_jsonl(tmp_path / "a.jsonl", rows)
    b = write_jsonl(tmp_path / "b.jsonl", [{**r, "bio": r["bio"].replace("Lee ", "")} for r in rows])  # no surnames
    r = invoke("report", a, "--compare", b, "--checks", "bio={mentions: [last_name]}", "--json")
    doc = json.loads(r.output)
    other = {f["field"]: f for f in doc["compare"]["fields"]}["bio"]
    assert other["checks"] == {"mentions": 0.0}
    assert {"field": "bio", "metric": "checks_all", "value": 39 / 40, "compare": 0.0, "ratio": None} in doc["comparison"]


def test_csv_tsv_json_and_saved_hf_datasets_read_as_the_same_records(tmp_path):
    """Another tool's file as it comes: CSV (values as strings, an empty cell missing), TSV, a JSON array, a
    `save_to_disk` folder, and a DatasetDict folder with --split; each reports what the JSONL reports."""
    import csv

    import datasets

    rows = [{"name": n, "city": c} for n, c in [("Mary", "Lima, Peru"), ("James", ""), ("Ann", "Oslo, Norway")] * 5]
    for path, delim in ((tmp_path / "f.csv", ","), (tmp_path / "f.tsv", "\t")):
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, ["name", "city"], delimiter=delim)
            w.writeheader()
            w.writerows(rows)
    (tmp_path / "f.json").write_text(json.dumps(rows))
    ds = datasets.Dataset.from_list(rows)
    ds.save_to_disk(str(tmp_path / "hf"))
    datasets.DatasetDict({"train": ds, "test": ds.select(range(3))}).save_to_disk(str(tmp_path / "hfd"))
    want = analyse(write_jsonl(tmp_path / "f.jsonl", rows), fields=["name"]).summary["fields"][0]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "f.parquet")
    for name, split in (("f.csv", None), ("f.tsv", None), ("f.json", None), ("f.parquet", None), ("hf", None),
                        ("hfd", "train")):
        got = analyse(tmp_path / name, fields=["name"], split=split).summary["fields"][0]
        assert (got["valid"], got["unique"], got["top"]) == (want["valid"], want["unique"], want["top"]), name
    city = analyse(tmp_path / "f.csv", fields=["city"]).summary["fields"][0]
    assert city["valid"] == 10  # the 5 empty cells are missing values, not a city named ""
    r = invoke("report", tmp_path / "hfd")
    assert r.exit_code == 1 and "holds the splits train, test: choose one with --split" in r.output, r.output
    assert r.output.count("\n") == 1
    r = invoke("report", tmp_path / "hfd", "--split", "dev")
    assert r.exit_code == 1 and "has no split 'dev' (it has train, test)" in r.output, r.output
    (tmp_path / "empty_dir").mkdir()
    r = invoke("report", tmp_path / "empty_dir")
    assert r.exit_code == 1 and "is a folder but not a saved Hugging Face dataset" in r.output and r.output.count("\n") == 1
    r = invoke("report", tmp_path / "hfd", "--split", "train")
    assert r.exit_code == 0, r.output
    (tmp_path / "broken.csv").write_text("name,city\nMary,Lima\nJames,Oslo,Norway\n")
    r = invoke("report", tmp_path / "broken.csv")
    assert r.exit_code == 1 and "line 3: 3 cells where the header has 2 (a broken row)" in r.output, r.output
    assert r.output.count("\n") == 1
    r = invoke("report", "someone-who/has-no-such-dataset")  # a hub id: read from the local cache only, never the network
    assert r.exit_code == 1 and "nor a Hugging Face dataset in this machine's cache" in r.output and r.output.count("\n") == 1


def test_a_list_without_weights_is_a_uniform_target(tmp_path):
    """`--list job=careers` (a built-in list with no frequencies) gives KL to uniform over it, next to its floor."""
    from synthgen.lists.sources import builtin

    items = builtin("careers")[0]
    a = write_jsonl(tmp_path / "a.jsonl", [{"job": items[i % 7]} for i in range(70)])
    f = analyse(a, lists={"job": "careers"}).summary["fields"][0]
    assert f["kl_to_target_bits"] is not None and f["kl_to_target_bits"] > 5  # 7 of ~1,000 jobs: far from uniform
    assert not f.get("target_note")



def _people(n: int, male_name: str = "James") -> list[dict]:
    """Women of the 1950s named Mary, women of the 1990s named Ashley, men named `male_name`."""
    rows = []
    for i in range(n):
        sex, born = ("female", "male")[i % 2], ("1955-03-02", "1992-07-14")[(i // 2) % 2]
        name = male_name if sex == "male" else ("Mary" if born < "1970" else "Ashley")
        rows.append({"sex": sex.capitalize(), "born": born, "name": name, "job": "Registered nurses"})
    return rows


def test_a_foreign_file_gets_the_shipped_real_joints_from_flags(tmp_path):
    """`--joint sex:name --joint born:name` on a CSV synthgen did not make: each pair next to the SSA's real joint
    (values spelled "Female"/"Male" mapped to the source's F/M); KL to the target next to its floor."""
    path = tmp_path / "people.csv"
    rows = _people(200)
    path.write_text("sex,born,name,job\n" + "".join(f"{r['sex']},{r['born']},{r['name']},{r['job']}\n" for r in rows))
    r = invoke("report", path, "--target", "name=first_names", "--joint", "sex:name", "--joint", "born:name", "--json")
    assert r.exit_code == 0, r.output
    f = {x["field"]: x for x in json.loads(r.output)["report"]["fields"]}["name"]
    j = {x["field"]: x for x in f["conditional"]["joints"]}
    assert set(j) == {"sex", "born"} and f["conditional"]["outside_own_list"] == 0
    assert j["sex"]["contradiction_share"] == 0 and j["sex"]["real_mi_bits"] > 0.5  # Mary, Ashley, James: each of its sex
    assert j["born"]["mi_bits"] > 0 and f["kl_floor_bits"] is not None and f["kl_to_target_bits"] > f["kl_floor_bits"]
    men_named_mary = analyse(write_jsonl(tmp_path / "m.jsonl", _people(100, "Mary")), lists={"name": "first_names"},
                             joints=["sex:name"]).summary
    j = next(x for x in men_named_mary["fields"] if x["field"] == "name")["conditional"]["joints"][0]
    assert j["contradiction_share"] == pytest.approx(0.5)  # every man (half the file) is named Mary
    job = analyse(path, joints=["sex:job"], lists={"job": "careers"}).summary
    assert next(x for x in job["fields"] if x["field"] == "job")["conditional"]["joints"][0]["field"] == "sex"


@pytest.mark.parametrize("args, message", [
    (["--joint", "sex"], "--joint 'sex': use GIVEN:FIELD"),
    (["--joint", "sex:nope"], "the file has no field 'nope'"),
    (["--joint", "sex:job"], "no real joint is shipped for 'job'"),
    (["--joint", "name:job", "--target", "job=careers"], "'name' holds neither dates nor a sex"),
    (["--joint", "born:job", "--target", "job=careers"], "the shipped real joint of a career is with a sex"),
    (["--target", "name=no_such_list"], "--target: 'no_such_list' is neither a built-in list"),
    (["--target", "name"], "--target 'name': use FIELD=LIST"),
])
def test_bad_target_and_joint_flags_are_one_line(tmp_path, args, message):
    path = write_jsonl(tmp_path / "p.jsonl", _people(20))
    r = invoke("report", path, *args)
    assert r.exit_code == 1 and message in r.output and r.output.count("\n") == 1, r.output


def test_a_file_without_a_template_says_what_it_could_not_check_and_which_flag_would():
    from synthgen.report.glance import lines

    rep = {"template": None, "fields": [{"field": "city", "kind": "categorical", "valid_share": 1.0, "unique": 2,
                                         "top": [("Oslo", 1, 0.5)], "kl_to_target_bits": None, "target_note": "no KL"}]}
    last = lines(rep)[-1]
    assert last.startswith("read without a template: no target for city (--target FIELD=LIST)") and "--template NAME" in last
    assert "--joint GIVEN:FIELD" in last
    assert not any(x.startswith("read without a template") for x in lines({**rep, "template": "biography"}))


def test_the_html_first_screen_is_coloured_by_verdict():
    from synthgen.report.glance import severity
    from synthgen.report.html import to_html

    assert severity("first_name: 470 unique; KL→target 0.1 bits (floor 0.1): on target (within sampling noise)") == "ok"
    assert severity("career: 103 unique; KL 3.2 bits: off target (19.4x the floor); collapsed (39% of …)") == "bad"
    assert severity("gender: near the target (2.1x the floor); as diverse as the target") == "warn"
    rep = {"file": "f.jsonl", "records": 2, "malformed_lines": 0, "template": None, "geography": [],
           "fields": [{"field": "city", "kind": "categorical", "valid_share": 1.0, "unique": 2, "unique_ratio": 1.0,
                       "entropy_bits": 1.0, "normalized_entropy": 1.0, "invalid": 0, "top": [("Oslo", 1, 0.5)],
                       "kl_to_target_bits": None, "target_note": "no KL"}], "mutual_information": []}
    page = to_html(rep, None, {})
    assert "<li class='warn'>read without a template" in page


def test_the_first_screen_says_how_few_values_are_valid_before_their_figures():
    """Faker's towns read with the biography template: 1 of 1,000 is a listed city; its line must not read "on target"."""
    from synthgen.report.glance import lines, severity

    f = {"field": "birth_place", "kind": "categorical", "valid_share": 0.001, "valid": 1, "unique": 1,
         "invalid_examples": ["Melissachester, Maine"], "top": [("Port Charlotte, Florida", 1, 1.0)],
         "kl_to_target_bits": None, "target_note": "no KL"}
    line = lines({"template": "biography", "fields": [f]})[0]
    assert "99.9% invalid (not in the field's list: 'Melissachester, Maine'); the figures are of the 1 valid" in line
    assert severity(line) == "bad"


def test_each_field_is_drawn_against_its_target_the_way_that_answers_a_question():
    """Dates by decade; a big or flat list as rank-frequency (its "top values" mean nothing); a small list as bars."""
    from synthgen.report.plots import panel_kind

    assert panel_kind({f"19{y:02d}-01-0{d}": 1.0 for y in range(40, 99) for d in range(1, 4)}) == "decades"
    assert panel_kind({f"job {i}": 1.0 for i in range(1156)}) == "rank"
    assert panel_kind({f"v{i}": 1.0 for i in range(20)}) == "rank"  # uniform: every value is a "top value"
    assert panel_kind({f"v{i}": float(i + 1) for i in range(20)}) == "bars"
    assert panel_kind({"female": 0.5, "male": 0.5}) == "bars"


def test_the_topic_check_reads_each_text_after_its_rendered_opening():
    from synthgen.report.metrics import text_fit

    rec = {"first_name": "Ann", "last_name": "Lee", "career": "Registered nurse"}
    texts = ["Ann Lee, a registered nurse, cared for patients in the city's hospital for thirty years.",
             "Ann Lee, a registered nurse, has achieved her dream."]
    topic = {"topic": {"field": "career", "table": "career_duties", "column": "duty"}}
    out = text_fit(texts, [rec, rec], [t.split() for t in texts], topic, "{first_name} {last_name}, a {career:lower},")
    assert out["checks"] == {"topic": 0.5} and out["checks_all"] == 0.5
