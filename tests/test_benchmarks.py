"""The benchmark scripts: their parsing and tables (no model needed), the harness, and what benchmarks/ may be."""

import ast
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def load(name: str):
    """A benchmark script as a module (benchmarks/ is not a package and never goes on sys.path)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


P = load("paper_tasks")


def test_benchmarks_stay_one_small_harness_on_the_public_api():
    """At most 10 files and 1,500 lines; no sys.path edits, no benchmark imports another; every name they (and
    scripts/ and examples/) import from synthgen is listed in docs/api.md, the documented public API."""
    files = [p for p in BENCH.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len(files) <= 10, sorted(map(str, files))
    assert sum(len(p.read_text().splitlines()) for p in files) <= 1500
    api = (ROOT / "docs" / "api.md").read_text()
    listed = set(re.findall(r"`(synthgen(?:\.\w+)*)\.(\w+)`", api))
    dotted = re.findall(r"`(synthgen(?:\.\w+)+)`", api)
    modules = {d.rsplit(".", k)[0] for d in dotted for k in range(1, d.count(".") + 1)} | set(dotted)  # a listed module
    scripts = sorted(BENCH.glob("*.py"))
    names = {p.stem for p in scripts}
    for path in scripts + sorted((ROOT / "scripts").glob("*.py")) + sorted((ROOT / "examples").glob("*.py")):
        src = path.read_text()
        assert "sys.path" not in src, f"{path.name} edits sys.path"
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in names, f"{path.name} imports the benchmark {node.module}"
                if node.module.split(".")[0] == "synthgen":
                    for a in node.names:
                        assert (node.module, a.name) in listed or f"{node.module}.{a.name}" in modules, \
                            f"{path.name}: {node.module}.{a.name} is not in docs/api.md"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    assert a.name.split(".")[0] not in names, f"{path.name} imports the benchmark {a.name}"
                    assert not a.name.startswith("synthgen") or a.name in modules, f"{path.name}: {a.name} not in docs/api.md"


def test_the_harness_writes_results_with_their_machine_atomically(tmp_path, capsys):
    import numpy as np

    from synthgen import bench

    ap = bench.parser("Title line.\n\nMore words.", out="out/x")
    args = ap.parse_args(["--out", str(tmp_path / "o")])
    assert ap.description == "Title line." and "More words." in ap.epilog
    path = bench.write_results(args.out, {"kl": np.float32(0.5), "ids": np.arange(2)}, md="| a |")
    doc = json.loads(path.read_text())
    assert doc["kl"] == 0.5 and doc["ids"] == [0, 1] and "cores" in doc["machine"] and doc["measured"]
    assert (tmp_path / "o" / "results.md").read_text() == "| a |\n" and "| a |" in capsys.readouterr().out
    assert not list((tmp_path / "o").glob("*.tmp"))


def test_one_shot_replies_parse_as_json_or_leave_the_record_empty():
    peers = load("peers")
    got = peers.parse_one_shot(peers.ONE_SHOT_PREFILL + 'female", "first_name": "Ava", "last_name": "Lee", '
                               '"birth_date": "1980-02-03", "career": "Nurse", "age": 44} and more text')
    assert got["gender"] == "female" and got["first_name"] == "Ava" and got["birth_place"] is None and "age" not in got
    assert peers.parse_one_shot('{"gender": "male", "first_name": ') == {}
    assert peers.parse_one_shot("[1, 2]") == {}


def test_realism_counts_achievements_that_contradict_their_record():
    R = load("realism")

    rows = [{"gender": "female", "first_name": "Ann", "birth_date": "1950-01-02", "achievements": "Ann, born in 1950, led her team."},
            {"gender": "female", "first_name": "Mary", "birth_date": "1960-03-04", "achievements": "She was born in 1961; his work lasts."},
            {"gender": "male", "first_name": "Joe", "birth_date": "1970-05-06", "achievements": "Their herbs ship worldwide."},
            {"gender": "male", "first_name": "Al", "birth_date": "1980-07-08", "achievements": None}]
    t = R.text_agreement(rows)
    assert t["records"] == 3  # no text: not counted
    assert t["other_sex_pronouns"] == pytest.approx(1 / 3)  # "his" for Mary; "herbs" and "Their" are not pronouns of a sex
    assert t["own_sex_pronouns"] == pytest.approx(2 / 3)
    assert t["names_first_name"] == pytest.approx(1 / 3)
    assert t["other_birth_year"] == pytest.approx(1 / 3)  # Mary: 1961
    assert R.text_agreement([{"gender": "female", "first_name": "Ann"}]) is None


def test_paper_task_families_name_shipped_specs_and_the_table_averages():
    specs = P.specs_by_name()
    assert sum(len(v) for v in P.FAMILIES.values()) == len(specs) >= 15
    audit = lambda m, n: {"mass": m, "entropy_bits": 1.0, "max_entropy_bits": 2.0, "expected_distinct": {"500": n}}  # noqa: E731
    rows = {"a": {"family": "x", "targets": 10, "base": audit(0.1, 1), "all": audit(0.9, 10), "held_out": audit(0.5, 5)},
            "b": {"family": "y", "targets": 10, "base": audit(0.3, 3), "all": audit(0.7, 8), "held_out": audit(0.3, 5)}}
    md = P.table(rows, None)
    assert "| **mean** | | | 0.20 → **0.80** → **0.40** | 0.50 → 0.50 → 0.50 | 0.20 → 0.90 → 0.50 |" in md


def test_roofline_flops_per_token_match_a_hand_count():
    """SmolLM2-135M: 30 layers, hidden 576, 9 heads (3 kv) of 64, MLP 1536, vocab 49152."""
    from types import SimpleNamespace

    R = load("roofline")

    cfg = SimpleNamespace(hidden_size=576, intermediate_size=1536, num_attention_heads=9, num_key_value_heads=3,
                          num_hidden_layers=30, vocab_size=49152, head_dim=64)
    fl = R.flops_per_token(cfg, lora_rank=0, context=1)
    per_layer = 2 * (576 * 576 + 2 * 576 * 192 + 576 * 576 + 3 * 576 * 1536)  # q, k, v, o, gate, up, down
    assert fl["linear"] == 30 * per_layer
    assert fl["decode"] - fl["prefill"] == 2 * 576 * 49152  # logits only for decoded tokens
    assert 0.19e9 < R.flops_per_token(cfg, 16, 96)["prefill"] < 0.23e9  # the issue's ~0.21 GFLOP
    assert R.flops_per_token(cfg, 16, 96)["lora"] == 30 * 2 * 16 * (2 * (576 + 576) + 2 * (576 + 192) + 3 * (576 + 1536))


def test_throughput_part_reads_the_report_and_labels_a_projection(tmp_path):
    """The Results part from benchmarks/throughput.py's results.json: the report's figures come
    from `synthgen report --json` ({"report": ...}); a run under 10k is not called a 10k measurement."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("results_section", ROOT / "scripts" / "results_section.py")
    rs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rs)
    summary = {"engine_start_seconds": 20.0, "seconds": 1000.0, "records_per_s": 2.0, "computed_tokens_per_s": 480.0,
               "peak_rss_gib": 3.9}
    field = {"field": "first_name", "valid_share": 1.0, "unique": 777, "kl_to_target_bits": 0.42,
             "top": [["Mary", 9, 0.009]]}
    tj = {"cpu": "AMD EPYC", "threads": 2, "dtype": "float32", "n": 2000, "wall_seconds": 1030.0, "summary": summary,
          "ceiling": {"prefill_tokens_per_s": 627.0, "decode_tokens_per_s": 390.0},
          "gflop_per_token": {"prefill": 0.229, "decode": 0.285},
          "peak_gflops": {"float32": {"prefill": 143.0, "decode": 111.0}}, "utilisation": 0.51,
          "per_record": {"requests": 7.1, "prompt_tokens": 390.0, "cached_prompt_tokens": 230.0, "decoded_tokens": 85.0,
                         "computed_tokens": 245.0},
          "report_seconds": 5.0, "report": {"report": {"fields": [field]}}}
    (tmp_path / "results.json").write_text(json.dumps(tj))
    text = rs.throughput_part(tmp_path)
    assert "## 2,000 biographies" in text and "| first_name | 100.0% | 777 | 0.42 | Mary 0.9% |" in text
    assert "not timed here" in text and "≈ 84 min" in text and "a projection" in text  # (20 + 10000/2) / 60
    assert "51%, missed" in text and "3.90 GiB, met" in text
    tj["n"], tj["wall_seconds"] = 10_000, 2600.0
    (tmp_path / "results.json").write_text(json.dumps(tj))
    assert "43 min, met" in rs.throughput_part(tmp_path)
    # killed and resumed: the wall is the parts' sum, the per-record figures are the last part's
    tj |= {"measured_records": 784, "records_per_s": 0.9, "wall_note": "two timed parts: 9,000 s + 1,000 s"}
    (tmp_path / "results.json").write_text(json.dumps(tj))
    text = rs.throughput_part(tmp_path)
    assert "**43.3 min** (two timed parts: 9,000 s + 1,000 s)" in text and "43 min, met" in text
    assert "| tokens per record (the last part: 784 records) | 390 prompt" in text
    assert "| records/s (generating) (the last part: 784 records) | 0.90 |" in text


def test_throughput_refuses_wall_options_that_do_not_fit_before_measuring_anything(tmp_path):
    """--from-run without --wall-seconds, or --wall-* on a run made here: a one-line usage error at
    once (argparse exit 2), not after the roofline minute."""
    import subprocess

    for args, message in [(["--from-run", str(tmp_path / "b.jsonl")], "--from-run needs --wall-seconds"),
                          (["--wall-note", "x"], "go with --from-run"), (["--wall-seconds", "9"], "go with --from-run")]:
        r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--out", str(tmp_path / "o"), *args],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and message in r.stderr.splitlines()[-1] and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "o").exists()  # nothing measured, nothing written


def test_a_benchmark_says_a_synthgen_error_in_one_line(tmp_path):
    """bench.run: an unknown template or a missing file is `error: …` and exit 1, as in the CLI, not a traceback."""
    import subprocess

    f = tmp_path / "r.jsonl"
    f.write_text('{"index": 0}\n')
    for args in [[str(f), "--template", "no_such_template"], [str(tmp_path / "missing.jsonl")]]:
        r = subprocess.run([sys.executable, str(BENCH / "text_sampling.py"), *args, "--out", str(tmp_path / "o")],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and r.stderr.splitlines()[-1].startswith("error: "), r.stderr
        assert "Traceback" not in r.stderr and not (tmp_path / "o").exists()


@pytest.mark.integration
def test_sampler_check_flags_a_file_that_does_not_sample_the_adapters_q(model_dir, tmp_path):
    """benchmarks/sampler_check.py on a biography file whose every last name is "Smith" (made through the fake
    engine, so the file and its meta are the generator's own): the file's KL→target is far above what the
    surnames adapter's exact Q gives at this n, and the file's mean log Q is > 3 sd off what Q samples."""
    import subprocess

    from synthgen.engine import FakeEngine
    from synthgen.generate import run
    from synthgen.output import plan_run
    from synthgen.template import load_template

    answers = {"gender": "female", "birth_date": "1985-04-02", "first_name": "Jennifer", "last_name": "Smith",
               "birth_place": "Houston, Texas", "career": "Registered nurse", "achievements": "She built a school in her town."}
    t = load_template("biography")
    prompts = {f.name: f.prompt.split("{")[0][:40] for f in t.fields}

    def responder(r):
        return next(answers[k] for k, p in prompts.items() if r.prompt.startswith(p))

    out = tmp_path / "b.jsonl"
    run(t, FakeEngine(responder=responder), plan_run(t, out, 100, 0, model=model_dir), 100, 0)
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sampler_check.py"), str(out), "--fields", "last_name",
                        "--sims", "5", "--out", str(tmp_path / "c")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads((tmp_path / "c" / "results.json").read_text())["fields"][0]
    assert row["field"] == "last_name" and row["records"] == 100 and row["prompts"] == 1 and row["file"]["unique"] == 1
    # log2 1/p("Smith") = 5.6 bits; 100 draws from Q score ~1 bit lower (most of it the floor at n = 100 of 1,000 names)
    assert row["file"]["kl_bits"] > row["q"]["kl_bits"] + 5 * row["q"]["kl_sd"] and row["z_log_q"] > 3
    assert row["q"]["unique"] > 60 and row["target"]["unique"] > 60  # 100 draws from ~1,000 surnames
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sampler_check.py"), str(out), "--sims", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--sims must be >= 2" in r.stderr.splitlines()[-1] and "Traceback" not in r.stderr


def test_text_sampling_stores_the_first_text_that_passes_with_the_generators_seeds():
    """benchmarks/text_sampling.py's `sample`: attempt k uses the generator's seed for attempt k, the
    first try is scored whole (failures included), the stored texts are the first that pass."""
    T = load("text_sampling")

    from synthgen.engine import FakeEngine
    from synthgen.engine.base import derive_seed
    from synthgen.template import load_template

    field = load_template("biography").fields[-1]
    rows = [{"index": i, "seed": 100 + i, "gender": "female", "first_name": "Ann", "last_name": "Lee", "birth_date": "1970-05-01",
             "birth_place": "Lima, Peru", "career": "Painting worker"} for i in range(10)]
    good = " shaped clay bowls for the village market."
    bad = " shaped clay bowls for his village market."  # the other sex's pronoun: retried
    # rows 0-4 fail at the first try, pass at the second; rows 5-9 pass at once
    eng = FakeEngine(responder=lambda r: bad if r.seed in {derive_seed(100 + i, field.name, 0) for i in range(5)} else good)
    first, kept = T.sample(eng, field, rows, (1.5, 1.0, 0.1), None, retries=3)
    assert first["accepted"] == 0.5 and first["checks"]["pronouns"] == 0.5
    assert kept["accepted"] == 1.0 and kept["requests_per_record"] == 1.5 and kept["checks"]["pronouns"] == 1.0
    assert kept["rejected_by"] == {"pronouns": 5}
    assert [r.seed for r in eng.history[10:]] == [derive_seed(100 + i, field.name, 1) for i in range(5)]
    assert all(r.prefill == "Ann Lee, a painting worker from Lima, Peru," and r.min_p == 0.1 and r.temperature == 1.5 for r in eng.history)
    assert "| 1.5 / 1 / 0.1 | 100.0% |" in T.table([{"setting": (1.5, 1.0, 0.1), **kept}], stored=True)
    with pytest.raises(Exception, match="TEMPERATURE,TOP_P,MIN_P"):
        T.parse_setting("1.0,0.9")


def test_another_tools_file_read_with_a_template_gets_its_lists_joints_and_checks(tmp_path):
    """`synthgen report faker.jsonl --template biography`: a file synthgen did not make is validated against the
    template's lists, its first names against the SSA's joint with sex and decade, its text against the checks."""
    from click.testing import CliRunner

    from synthgen.cli import cli
    from synthgen.report import analyse

    peers = load("peers")
    path = tmp_path / "faker.jsonl"
    peers.faker_biographies(60, 0, path)
    plain = {f["field"]: f for f in analyse(path).summary["fields"]}
    assert "conditional" not in plain["first_name"] and not plain["achievements"].get("checks")
    rep = analyse(path, template="biography").summary
    f = {x["field"]: x for x in rep["fields"]}
    assert {j["field"] for j in f["first_name"]["conditional"]["joints"]} == {"gender", "birth_date"}
    assert f["career"]["valid_share"] < 0.5  # Faker's jobs are mostly not BLS occupations
    assert f["birth_place"]["valid_share"] < 0.2  # ... and its towns invented ("Sullivanport")
    assert f["achievements"]["checks"]["mentions"] == 0  # a Faker sentence never names its person
    r = CliRunner().invoke(cli, ["report", str(path), "--template", "no_such_template"])
    assert r.exit_code == 1 and "unknown template 'no_such_template'" in r.output and r.output.count("\n") == 1
