"""Templates and field-by-field generation on a fake engine (the real-model runs are in test_generate_vllm.py)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from synthgen.cli import cli
from synthgen.engine import FakeEngine
from synthgen.errors import InputError
from synthgen.generate import Fill, run
from synthgen.output import plan_run, read_jsonl
from synthgen.template import load_template, parse_date

ROOT = Path(__file__).resolve().parent.parent

TINY = """
name: tiny
fields:
  - name: color
    kind: choice
    choices: [red, green, blue]
    decode: free                 # the sample-parse-retry path (constrained decoding: test_constrained.py)
    prompt: "Pick a color."
  - name: day
    kind: date
    min: 2000-01-01
    max: 2000-12-31
    decode: free
    prompt: "Pick a day in 2000 for something {color}."
  - name: story
    kind: text
    sentences: 1
    min_words: 3
    prompt: "Write about a {color} thing on {day}."
"""


def write(tmp_path, text, name="t.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def responder(req):
    """Deterministic answers that depend on the request's seed (like a sampler would)."""
    s = req.seed
    if req.prompt.startswith("Pick a color"):
        return ["red", "Green.", "blue", "purple", "The color is red"][s % 5]
    if req.prompt.startswith("Pick a day"):
        return [f"2000-03-{1 + s % 28:02d}", "March 5, 2000", "1999-01-01", "sometime"][s % 4]
    return f"A thing number {s % 97} was seen. More text."


def tiny(tmp_path):
    return load_template(write(tmp_path, TINY))


# --- templates -------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    ("name: x\nfields: []\n", "non-empty list"),
    ("name: x\ncolour: 1\nfields: [{name: a, kind: text, prompt: p}]\n", "unknown key(s) colour"),
    ("name: x\nfields: [{name: a, kind: text, prompt: p, colour: 1}]\n", "unknown key(s) colour"),
    ("name: x\nfields: [{name: a, kind: poem, prompt: p}]\n", "kind"),
    ("name: x\nfields: [{name: a, kind: text, prompt: 'about {b}'}, {name: b, kind: text, prompt: p}]\n",
     "a later field"),
    ("name: x\nfields: [{name: a, kind: text, prompt: 'about {zzz}'}]\n", "not a field"),
    ("name: x\nfields: [{name: a, kind: choice, prompt: p}]\n", "needs `choices`"),
    ("name: x\nfields: [{name: a, kind: choice, choices: [x], prompt: p, adapter: no_such_adapter}]\n",
     "unknown adapter 'no_such_adapter'"),
    ("name: x\nfields: [{name: index, kind: text, prompt: p}]\n", "reserved"),
    ("name: x\nfields: [{name: a, kind: date, prompt: p, min: 2001-01-01, max: 2000-01-01}]\n", "after `max`"),
    ("name: x\nfields: [{name: a, kind: text, prompt: p, max_tokens: 0}]\n", "max_tokens"),
    ("name: x\nfields: [{name: a, kind: text, prompt: p}, {name: a, kind: text, prompt: q}]\n", "duplicate"),
    ("name: x\nfields: [{name: a, kind: text, prompt: 'p {'}]\n", "placeholder"),
    ("name: x\nfields:\n  - name: a\n   kind: text\n", "not valid YAML at line"),
    ("name: x\nfields: [{name: a, kind: choice, prompt: p, choices: {builtin: nope}}]\n", "unknown list source"),
    ("name: x\nfields: [{name: a, kind: choice, prompt: p, choices: {inline: {Italian: lots, Thai: 2}}}]\n",
     "the weight of 'Italian' is 'lots'; weights must be finite numbers > 0"),
    ("name: x\nfields: [{name: a, kind: choice, prompt: p, choices: {inline: {Italian: 1, Thai: -2}}}]\n",
     "the weight of 'Thai' is -2"),
    ("name: x\nfields: [{name: a, kind: choice, prompt: p, choices: [only], adapter: auto}]\n",
     "adapter: auto needs at least 2 choices"),
    ("name: x\nfields: [{name: a, kind: choice, prompt: p, choices: {builtin: surnames, column: name}}]\n",
     "`column` and `weight` pick a csv file's columns; a builtin source has none"),
])
def test_bad_templates_are_refused_with_a_clear_message(tmp_path, bad, message):
    with pytest.raises(InputError, match=None) as e:
        load_template(write(tmp_path, bad))
    assert message in str(e.value), str(e.value)


def _ctx(context: str, jobs: str = "[Janitor, Waiter]") -> str:
    name = context.strip("{ ").split(":")[0]  # the prompt uses the context's placeholder
    return (f"name: x\nfields: [{{name: job, kind: choice, prompt: p, choices: {jobs}}}, "
            f"{{name: a, kind: text, prompt: 'about {{job}}: {{{name}}}', context: {context}}}]\n")


def test_a_text_prompt_looks_up_its_context_by_the_record(tmp_path):
    t = load_template(write(tmp_path, _ctx("{duty: {builtin: career_duties, by: job}}")))
    f = t.field("a")
    assert f.depends == ("job",) and f.requires == ("job",)
    assert f.render({"job": "Janitor"}) == "about Janitor: keep buildings in clean and orderly condition."
    assert f.render({"job": "Waiter"}).startswith("about Waiter: take orders and serve food")
    # every career the biography can draw has one
    from synthgen.lists.sources import builtin, table

    assert set(builtin("careers_by_sex")[0]) <= set(table("career_duties", "duty"))


@pytest.mark.parametrize("bad, line", [  # the whole line, as the user reads it (synthgen/schema.py)
    ("name: x\nfields: [{name: a, kind: text, prompt: p, max_tokens: 0}]\n",
     "field 'a': `max_tokens` must be an integer >= 1 and <= 4096, got 0"),
    ("name: x\nfields: [{name: a, kind: text, prompt: p, max_tokens: true}]\n",
     "field 'a': `max_tokens` must be an integer >= 1 and <= 4096, got True"),
    ("name: x\nfields: [{name: a, kind: choice, prompt: p, choices: [u, v], min: 2000-01-01}]\n",
     "field 'a': `min` is only for kind: date"),
    ("name: x\nfields: [{name: a, kind: text, prompt: p, reject: '['}]\n",
     "field 'a': `reject` must be a list of regular expressions, got '['"),
    ("name: x\nfields: [{name: a, kind: text, prompt: p, decode: greedy}]\n",
     "field 'a': `decode` must be constrained or free, got 'greedy'"),
    ("name: x\nfields: [{name: a, kind: text, prompt: p, min_words: 5, max_words: 2}]\n",
     "field 'a': `max_words` must be an integer >= 5, got 2"),
    ("name: x\nfields: [{name: a, kind: text}]\n", "field 'a': missing key(s) prompt"),
    ("name: x\nfields: [{name: a, kind: date, prompt: p, min: soon}]\n",
     "field 'a': `min` must be an ISO date (YYYY-MM-DD), got 'soon'"),
    ("name: x\nfields: [hello]\n", "field 1 must be a mapping"),
    ("- a\n- b\n", "must be a YAML mapping with name and fields"),
    # a text's context: a shipped table's row for an earlier choice field's value
    (_ctx("{duty: {builtin: nope, by: job}}"), "field 'a': unknown table 'nope': use one of career_duties"),
    (_ctx("{duty: {builtin: career_duties, by: a}}"), "field 'a': `context.duty.by` must name an earlier choice field, got 'a'"),
    (_ctx("{duty: {builtin: career_duties, by: job, col: 2}}"), "field 'a': unknown key col in `context.duty` (allowed: builtin, by)"),
    (_ctx("{job: {builtin: career_duties, by: job}}"), "field 'a': `context.job` has the name of a field: name it otherwise"),
    (_ctx("{colour: {builtin: career_duties, by: job}}"),
     "field 'a': table 'career_duties' has no column 'colour' (columns: onet_title, similarity, duty)"),
    (_ctx("{duty: {builtin: career_duties, by: job}}", jobs="[Janitor, Astronaut]"),
     "field 'a': `context.duty`: 1 value(s) of job have no row in table 'career_duties' (e.g. 'Astronaut')"),
])
def test_template_errors_are_one_exact_line_naming_file_field_and_key(tmp_path, bad, line):
    with pytest.raises(InputError) as e:
        load_template(write(tmp_path, bad))
    msg = str(e.value)
    assert "\n" not in msg and msg.endswith(line) and msg.startswith("template "), msg


def test_shipped_templates_load_and_name_existing_adapters():
    names = sorted(p.stem for p in (ROOT / "templates").glob("*.yaml"))
    assert "biography" in names and len(names) >= 2
    for name in names:
        t = load_template(ROOT / "templates" / f"{name}.yaml")
        for f in t.fields:
            assert f.adapter is None or Path(f.adapter_path, "adapter_config.json").is_file()
    bio = load_template("biography")
    assert [f.name for f in bio.fields] == ["gender", "birth_date", "first_name", "last_name", "birth_place",
                                            "career", "achievements"]
    assert bio.field("first_name").depends == ("gender", "birth_date")
    assert bio.field("first_name").given == ("gender", "birth_date")  # its list: that sex's names of that decade
    assert set(bio.field("achievements").depends) >= {"first_name", "last_name", "career", "birth_place"}


def _state(t):
    import copy

    return copy.deepcopy({k: v for k, v in vars(t).items() if k != "fields"}), [copy.deepcopy(vars(f)) for f in t.fields]


def test_a_loaded_template_is_never_changed_by_the_modules_that_use_it(tmp_path):
    """Templates are read-only after load: a setting (--decode, auto adapters' paths, a Ray worker's copy) makes a
    new template; a run leaves the one it was given as it was."""
    for name in ("biography", "customer_profile"):
        t = load_template(name)
        before = _state(t)
        with pytest.raises(AttributeError, match="read-only after loading"):
            t.fields[2].decode = "free"
        with pytest.raises(AttributeError, match="read-only after loading"):
            t.retries = 9
        for f in t.fields:  # nor do its lists change in place
            with pytest.raises(AttributeError):
                f.reject.append("x")
        free = t.with_decode("free")
        assert set(free.decodes().values()) == {"free"} and "constrained" in t.decodes().values()
        with pytest.raises(AttributeError):
            free.fields[0].decode = "constrained"
        assert t.with_changes({t.fields[0].name: {"adapter_path": "x"}}).fields[0].adapter_path == "x"
        with pytest.raises(InputError, match="has no field"):
            t.with_changes({"nope": {"decode": "free"}})
        fill = Fill(use_adapters=False, tries={})  # no decode tries: the fake answers stay unconstrained
        run(t, FakeEngine(responder=lambda r: "x"), plan_run(t, tmp_path / f"{name}.jsonl", 8, 0), 8, 0, fill)
        assert _state(t) == before


def test_choice_parsing_is_strict_but_forgives_punctuation_and_case(tmp_path):
    f = tiny(tmp_path).field("color")
    assert f.parse("  Green. ") == ("green", None)
    assert f.parse('"BLUE"') == ("blue", None)
    assert f.parse("The color is red")[1] == "not in the list"
    assert f.parse("red", "length")[1] == "cut off at max_tokens"
    assert f.parse("")[1] == "empty answer"


def test_date_formats_and_range(tmp_path):
    assert str(parse_date("1987-03-14")) == "1987-03-14"
    assert str(parse_date("March 14, 1987")) == "1987-03-14"
    assert str(parse_date("14th of March 1987")) == "1987-03-14"
    assert str(parse_date("3/14/1987")) == "1987-03-14"
    assert parse_date("1987-02-30") is None and parse_date("soon") is None
    f = tiny(tmp_path).field("day")
    assert f.parse("June 1, 2000") == ("2000-06-01", None)
    assert f.parse("1999-12-31")[1] == "before 2000-01-01"


def test_text_keeps_complete_sentences(tmp_path):
    f = tiny(tmp_path).field("story")
    assert f.parse("She won two prizes. Then more.") == ("She won two prizes.", None)
    assert f.parse("She won two prizes. Then she went on and", "length") == ("She won two prizes.", None)
    assert f.parse("She won two prizes and", "length")[1] == "cut off at max_tokens"
    assert f.parse("Hi.")[1] == "fewer than 3 words"
    assert f.parse("Battered **peach pastel** cake with cream")[1] == "no complete sentence (nothing ends with . ! or ?)"
    assert f.parse("  \n")[1] == "empty answer"
    # a title, a company or an initial does not end the sentence; at the very end it does
    assert f.parse("She worked with Dr. Lee at Acme Co. in Ohio. Then more.") == ("She worked with Dr. Lee at Acme Co. in Ohio.", None)
    assert f.parse("He met John F. Kennedy in the U.S. Senate. Then more.") == ("He met John F. Kennedy in the U.S. Senate.", None)
    assert f.parse("He founded the firm Acme Inc.") == ("He founded the firm Acme Inc.", None)
    assert f.parse("It cost her 3.5 million dollars. Then more.") == ("It cost her 3.5 million dollars.", None)
    assert f.parse("She worked with Dr. Lee and", "length")[1] == "cut off at max_tokens"


# --- generation ------------------------------------------------------------------------------

def test_fields_are_batched_in_order_with_earlier_values_and_derived_seeds(tmp_path):
    t = tiny(tmp_path)
    eng = FakeEngine(responder=responder)
    plan = plan_run(t, tmp_path / "o.jsonl", 40, seed=3)
    s = run(t, eng, plan, 40, seed=3, block_size=16)
    rows = read_jsonl(tmp_path / "o.jsonl")
    assert [r["index"] for r in rows] == list(range(40)) and s.records == 40 and s.new_records == 40
    for r in rows:
        assert set(r) == {"index", "seed", "color", "day", "story", "errors", "attempts"}
        assert r["color"] in (None, "red", "green", "blue")
        if r["color"] is None:  # dependants are not asked, and say why
            assert r["day"] is None and "needs color" in r["errors"]["day"] and r["attempts"]["day"] == 0
        else:
            assert r["errors"]["color"] is None
    # prompts carry earlier answers; seeds are unique per record/field/attempt
    story_prompts = [q.prompt for q in eng.history if q.prompt.startswith("Write")]
    both = [r for r in rows if r["color"] and r["day"]]
    assert both and all(f"Write about a {r['color']} thing on {r['day']}." in story_prompts for r in both)
    seeds = [q.seed for q in eng.history]
    assert len(set(seeds)) == len(seeds)
    assert set(s.valid) == {"color", "day", "story"} and 0 < s.valid["color"] <= 1
    assert s.skipped["color"] == 0 and s.skipped["day"] == sum(r["color"] is None for r in rows) > 0
    # retries happened (3/5 of colour answers are valid at the first try) and were limited to `retries`
    assert s.first_try_valid["color"] < s.valid["color"]
    assert max(r["attempts"]["color"] for r in rows) <= t.retries + 1


def test_invalid_answers_are_retried_then_stored_as_null_with_the_reason(tmp_path):
    t = tiny(tmp_path)
    eng = FakeEngine(responder=lambda r: "I don't like colors")
    run(t, eng, plan_run(t, tmp_path / "o.jsonl", 3, seed=0), 3, 0, Fill(retries=2))
    rows = read_jsonl(tmp_path / "o.jsonl")
    assert all(r["color"] is None and r["attempts"]["color"] == 3 for r in rows)
    assert rows[0]["errors"]["color"].startswith("not in the list: \"I don't like colors\"")
    assert len(eng.history) == 9  # 3 records x 3 attempts; nothing asked for dependants



def test_fallback_values_let_later_fields_be_judged_when_an_earlier_one_is_invalid(tmp_path):
    t = tiny(tmp_path)
    eng = FakeEngine(responder=lambda r: "no color" if r.prompt.startswith("Pick a color") else responder(r))
    run(t, eng, plan_run(t, tmp_path / "o.jsonl", 4, seed=0), 4, 0, Fill(retries=0, fallback=lambda i: {"color": ["teal", "ochre"][i % 2]}))
    rows = read_jsonl(tmp_path / "o.jsonl")
    assert all(r["color"] is None and r["errors"]["color"].startswith("not in the list") for r in rows)
    day_prompts = [r.prompt for r in eng.history if r.prompt.startswith("Pick a day")]
    assert day_prompts[:2] == ["Pick a day in 2000 for something teal.", "Pick a day in 2000 for something ochre."]
    assert any(r["day"] is not None for r in rows)  # judged on its own answers, not nulled by color

def test_same_seed_same_file_and_other_seed_differs(tmp_path):
    t = tiny(tmp_path)
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        run(t, FakeEngine(responder=responder), plan_run(t, tmp_path / f"{name}.jsonl", 50, seed), 50, seed,
            block_size=7)
    a, b, c = ((tmp_path / f"{x}.jsonl").read_bytes() for x in "abc")
    assert a == b and a != c


def test_resume_after_a_torn_write_gives_the_identical_file(tmp_path):
    t = tiny(tmp_path)
    full = tmp_path / "full.jsonl"
    run(t, FakeEngine(responder=responder), plan_run(t, full, 30, 5), 30, 5, block_size=8)
    part = tmp_path / "part.jsonl"
    run(t, FakeEngine(responder=responder), plan_run(t, part, 30, 5), 30, 5, block_size=8)
    data = full.read_bytes()
    cut = data.index(b"\n", len(data) // 2) + 25  # 1 complete half + a torn line
    part.write_bytes(data[:cut])
    plan = plan_run(t, part, 30, 5, existing="resume")
    assert 0 < plan.start < 30
    run(t, FakeEngine(responder=responder), plan, 30, 5, block_size=8)
    assert part.read_bytes() == data
    # finished: resuming again does nothing and changes nothing
    assert plan_run(t, part, 30, 5, existing="resume").start == 30


# --- pipelining (issue #13) --------------------------------------------------------------------

class Counting(FakeEngine):
    """Tracks the requests in flight (submitted, not yet returned by a step)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.in_flight, self.most = 0, 0

    def submit(self, request):
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        return super().submit(request)

    def step(self):
        done = super().step()
        self.in_flight -= len(done)
        return done


def test_pipelined_records_flow_field_to_field_within_the_window(tmp_path):
    from synthgen.generate import Fill, fill_records

    t = tiny(tmp_path)
    eng = Counting(responder=responder, per_step=1)
    recs = fill_records(t, eng, list(range(12)), 3, Fill(window=4))
    assert [r["index"] for r in recs] == list(range(12)) and eng.most <= 4
    seeds = {r["seed"]: r["index"] for r in recs}
    from synthgen.engine.base import derive_seed

    owner = lambda req: next(i for s, i in seeds.items()  # noqa: E731
                             if any(req.seed == derive_seed(s, f.name, a) for f in t.fields for a in range(4)))
    order = [(owner(r), "".join(r.prompt.split()[:3])) for r in eng.history]
    # record 0 reaches its second field before record 4 (outside the window) asks its first: no field barrier
    assert order.index((0, "Pickaday")) < next(k for k, (i, _) in enumerate(order) if i == 4)
    # the same records as one big batch per wave (the schedule changes nothing on a seed-driven engine)
    assert recs == fill_records(t, FakeEngine(responder=responder), list(range(12)), 3, Fill(window=12))


def test_finished_records_reach_the_file_before_the_block_ends(tmp_path):
    """One block of 60 records: the file grows while the block is still running, in index order."""
    t = tiny(tmp_path)
    out = tmp_path / "o.jsonl"
    seen = []

    def watching(req):
        seen.append(len(out.read_bytes().splitlines()) if out.exists() else 0)
        return responder(req)

    s = run(t, FakeEngine(responder=watching, per_step=5), plan_run(t, out, 60, 2), 60, 2, Fill(window=8), block_size=512)
    rows = read_jsonl(out)
    assert [r["index"] for r in rows] == list(range(60)) and s.new_records == 60
    assert 0 < seen[len(seen) // 2] < 60  # half-way through the requests, some records were already out


def test_crash_mid_pipeline_loses_nothing_and_resume_recomputes_its_block(tmp_path):
    t = tiny(tmp_path)
    ref = tmp_path / "ref.jsonl"
    run(t, FakeEngine(responder=responder, per_step=3), plan_run(t, ref, 50, 4), 50, 4, Fill(window=6), block_size=20)
    out = tmp_path / "o.jsonl"
    calls = []

    def dying(req):
        calls.append(1)
        if len(calls) == 110:
            raise RuntimeError("engine died")
        return responder(req)

    with pytest.raises(RuntimeError, match="engine died"):
        run(t, FakeEngine(responder=dying, per_step=3), plan_run(t, out, 50, 4), 50, 4, Fill(window=6), block_size=20)
    kept = read_jsonl(out)
    assert 20 < len(kept) < 50 and [r["index"] for r in kept] == list(range(len(kept)))  # mid-block 2 (20..39)
    assert out.read_bytes() == ref.read_bytes()[:len(out.read_bytes())]  # nothing written that is wrong
    plan = plan_run(t, out, 50, 4, existing="resume")
    s = run(t, FakeEngine(responder=responder, per_step=3), plan, 50, 4, Fill(window=6), block_size=20)
    assert out.read_bytes() == ref.read_bytes()
    assert s.new_records == 50 - len(kept) and s.recomputed == len(kept) - 20 and s.recomputed_mismatch == 0


def test_resume_reports_recomputed_records_that_differ_from_the_file(tmp_path):
    """The check can fail: a record edited on disk is recomputed to something else and counted."""
    t = tiny(tmp_path)
    out = tmp_path / "o.jsonl"
    run(t, FakeEngine(responder=responder), plan_run(t, out, 6, 1), 6, 1, block_size=10)
    lines = out.read_bytes().splitlines(keepends=True)
    rec = json.loads(lines[2])
    rec["story"] = "An edited story, not what the seed gives."
    out.write_bytes(b"".join(lines[:2]) + json.dumps(rec).encode() + b"\n" + lines[3])  # 4 records kept
    s = run(t, FakeEngine(responder=responder), plan_run(t, out, 6, 1, existing="resume"), 6, 1, block_size=10)
    assert s.recomputed == 4 and s.recomputed_mismatch == 1 and s.new_records == 2


def test_existing_output_is_never_clobbered_and_resume_checks_the_run(tmp_path):
    t = tiny(tmp_path)
    out = tmp_path / "o.jsonl"
    run(t, FakeEngine(responder=responder), plan_run(t, out, 5, 1), 5, 1)
    before = out.read_bytes()
    with pytest.raises(InputError, match="exists: add --resume"):
        plan_run(t, out, 5, 1)
    with pytest.raises(InputError, match="different seed"):
        plan_run(t, out, 5, 2, existing="resume")
    other = load_template(write(tmp_path, TINY.replace("Pick a color.", "Pick a colour."), "u.yaml"))
    with pytest.raises(InputError, match="different template"):
        plan_run(other, out, 5, 1, existing="resume")
    with pytest.raises(InputError, match="different adapters"):
        plan_run(t.with_changes({t.fields[0].name: {"adapter": "something"}}), out, 5, 1, existing="resume")
    with pytest.raises(InputError, match=">= 1"):
        plan_run(t, tmp_path / "new.jsonl", 0, 1)
    with pytest.raises(InputError, match="does not exist"):
        plan_run(t, tmp_path / "no" / "dir" / "x.jsonl", 5, 1)
    assert out.read_bytes() == before
    # --resume with a larger --n extends the same run
    run(t, FakeEngine(responder=responder), plan_run(t, out, 9, 1, existing="resume"), 9, 1)
    fresh = tmp_path / "fresh.jsonl"
    run(t, FakeEngine(responder=responder), plan_run(t, fresh, 9, 1), 9, 1)
    assert out.read_bytes() == fresh.read_bytes()


def test_resume_with_options_that_change_records_is_refused(tmp_path):
    """retries and block size change records (the batch is the block): a resume must use the same."""
    t = tiny(tmp_path)
    out = tmp_path / "o.jsonl"
    part = run(t, FakeEngine(responder=responder), plan_run(t, out, 6, 1), 6, 1, Fill(retries=3), block_size=4)
    assert part.records == 6
    meta = json.loads(out.with_name("o.jsonl.meta.json").read_text())
    assert meta["settings"]["block_size"] == 4 and set(meta["settings"]["retries"].values()) == {3}
    before = out.read_bytes()
    for retries, block_size, message in ((0, 4, "different --retries"), (3, 8, "different --block-size")):
        with pytest.raises(InputError, match=message):
            run(t, FakeEngine(responder=responder), plan_run(t, out, 9, 1, existing="resume"), 9, 1, Fill(retries=retries),
                block_size=block_size)
        assert out.read_bytes() == before
    r = CliRunner().invoke(cli, ["generate", str(t.path), "--n", "9", "--seed", "1", "--out", str(out), "--resume",
                                 "--engine", "openai", "--endpoint", "http://127.0.0.1:9", "--retries", "0", "--block-size", "4"])
    assert r.exit_code != 0 and "different --retries" in r.output and "Traceback" not in r.output
    run(t, FakeEngine(responder=responder), plan_run(t, out, 9, 1, existing="resume"), 9, 1, Fill(retries=3), block_size=4)
    assert len(out.read_bytes().splitlines()) == 9


def test_parquet_and_hf_outputs_and_jsonl_loads_with_datasets(tmp_path):
    import datasets
    import pyarrow.parquet as pq

    t = tiny(tmp_path)
    run(t, FakeEngine(responder=responder), plan_run(t, tmp_path / "o.jsonl", 20, 0), 20, 0)
    run(t, FakeEngine(responder=responder), plan_run(t, tmp_path / "o.parquet", 20, 0, fmt="parquet"), 20, 0)
    run(t, FakeEngine(responder=responder), plan_run(t, tmp_path / "o_hf", 20, 0, fmt="hf"), 20, 0)
    rows = read_jsonl(tmp_path / "o.jsonl")
    assert pq.read_table(tmp_path / "o.parquet").to_pylist() == rows
    assert datasets.load_from_disk(str(tmp_path / "o_hf")).to_list() == rows
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "o.jsonl"), split="train",
                               cache_dir=str(tmp_path / "hf_cache"))
    assert ds.num_rows == 20 and ds[3]["color"] == rows[3]["color"]
    assert not (tmp_path / "o.parquet.stream.jsonl").exists()


def test_outputs_of_one_template_share_a_schema_even_when_a_field_is_always_null(tmp_path):
    """A file where `color` is null in every record (so are its dependants) still loads together
    with a normal one (features from OUT.meta.json), and Parquet files carry the same typed schema."""
    import datasets
    import pyarrow.parquet as pq
    from synthgen.output import features

    t = tiny(tmp_path)
    bad = lambda req: "purple" if req.prompt.startswith("Pick a color") else responder(req)  # noqa: E731
    run(t, FakeEngine(responder=responder), plan_run(t, tmp_path / "a.jsonl", 10, 0), 10, 0)
    run(t, FakeEngine(responder=bad), plan_run(t, tmp_path / "b.jsonl", 10, 0), 10, 0, Fill(retries=0))
    assert all(r["color"] is None and r["story"] is None for r in read_jsonl(tmp_path / "b.jsonl"))
    ds = datasets.load_dataset("json", data_files=[str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")],
                               features=features(tmp_path / "a.jsonl"), split="train", cache_dir=str(tmp_path / "c"))
    assert ds.num_rows == 20 and ds.features["color"].dtype == "string" and ds.features["attempts"]["day"].dtype == "int64"
    run(t, FakeEngine(responder=responder), plan_run(t, tmp_path / "a.parquet", 10, 0, fmt="parquet"), 10, 0)
    run(t, FakeEngine(responder=bad), plan_run(t, tmp_path / "b.parquet", 10, 0, fmt="parquet"), 10, 0, Fill(retries=0))
    sa, sb = pq.read_schema(tmp_path / "a.parquet"), pq.read_schema(tmp_path / "b.parquet")
    assert sa.equals(sb) and str(sb.field("color").type) == "string"
    with pytest.raises(InputError, match="made by synthgen"):
        features(tmp_path / "nothing.jsonl")


# --- CLI -------------------------------------------------------------------------------------

@pytest.fixture
def fake_engine(monkeypatch):
    import synthgen.engine as E

    made = []

    def create(kind="vllm", model=None, endpoints=(), **kw):
        made.append((kind, kw))
        return FakeEngine(responder=responder)

    monkeypatch.setattr(E, "create_engine", create)
    return made


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_generate_writes_a_summary_and_refuses_bad_input(tmp_path, fake_engine, capfd):
    tpl = write(tmp_path, TINY)
    out = tmp_path / "x.jsonl"
    r = invoke("generate", tpl, "--n", 12, "--out", out, "--engine", "openai", "--endpoint", "http://x", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(capfd.readouterr().out)  # --json writes to the real stdout (fd 1)
    assert summary["records"] == 12 and set(summary["valid"]) == {"color", "day", "story"}
    assert len(read_jsonl(out)) == 12
    before = out.read_bytes()
    for args, message in [
        (("--n", 12, "--out", out), "exists: add --resume"),
        (("--n", 0, "--out", tmp_path / "y.jsonl"), "--n must be >= 1"),
        (("--n", 5, "--out", tmp_path / "nodir" / "y.jsonl"), "does not exist"),
        (("--n", 12, "--out", out, "--resume", "--seed", 9), "different seed"),
        (("--n", 12, "--out", out, "--resume", "--overwrite"), "contradict"),
        (("--n", 5, "--out", tmp_path / "y.csv"), "writes .jsonl or .parquet (or a directory with --format hf), not .csv"),
        (("--n", 5, "--out", "/proc/y.jsonl"), "cannot write '/proc/y.jsonl': No such file or directory"),
    ]:
        r = invoke("generate", tpl, *args, "--engine", "openai", "--endpoint", "http://x")
        assert r.exit_code == 1 and r.output.count("\n") == 1 and "Traceback" not in r.output, r.output
        assert message in r.output, r.output
    assert out.read_bytes() == before and not (tmp_path / "y.csv").exists()
    fresh = tmp_path / "fresh.jsonl"
    r = invoke("generate", tpl, "--n", 3, "--out", fresh, "--resume", "--engine", "openai", "--endpoint", "http://x")
    assert r.exit_code == 0 and f"--resume: {fresh} does not exist yet: starting a new run at record 0" in r.output
    assert len(read_jsonl(fresh)) == 3
    bad = write(tmp_path, "name: x\nfields: [{name: a, kind: text, prompt: 'about {b}'}]\n", "bad.yaml")
    r = invoke("generate", bad, "--n", 1, "--out", tmp_path / "z.jsonl")
    assert r.exit_code == 1 and "not a field" in r.output and not (tmp_path / "z.jsonl").exists()
    r = invoke("generate", "no_such_template", "--n", 1, "--out", tmp_path / "z.jsonl")
    assert r.exit_code == 1 and "unknown template" in r.output


KILLER = """
import sys, time
from synthgen.engine import FakeEngine
from synthgen.generate import run
from synthgen.output import plan_run
from synthgen.template import load_template
sys.path.insert(0, {tests!r})
from test_generate import responder

def slow(req):
    time.sleep(0.002)
    return responder(req)

t = load_template({tpl!r})
existing = "resume" if sys.argv[1] == "resume" else "refuse"
run(t, FakeEngine(responder=slow), plan_run(t, {out!r}, 400, 11, existing=existing), 400, 11, block_size=16)
"""


def test_kill_9_then_resume_loses_nothing(tmp_path):
    tpl = write(tmp_path, TINY)
    out = tmp_path / "k.jsonl"
    script = tmp_path / "killer.py"
    script.write_text(KILLER.format(tests=str(ROOT / "tests"), tpl=str(tpl), out=str(out)))
    proc = subprocess.Popen([sys.executable, str(script), "fresh"])
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.stat().st_size < 4000):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(out.read_bytes().splitlines())
    assert 0 < n_before < 400, "the run finished before it could be killed"
    subprocess.run([sys.executable, str(script), "resume"], check=True)
    ref = tmp_path / "ref.jsonl"
    t = load_template(tpl)
    run(t, FakeEngine(responder=responder), plan_run(t, ref, 400, 11), 400, 11, block_size=16)
    assert out.read_bytes() == ref.read_bytes()


def test_place_fields_resolve_aliases_through_the_offline_geocoder(tmp_path):
    t = load_template(write(tmp_path, """
name: p
fields:
  - {name: place, kind: choice, choices: {builtin: world_cities}, match: place, prompt: "Where?"}
"""))
    f = t.field("place")
    assert f.parse("Bombay, India.") == ("Mumbai, India", None)
    assert f.parse("new york, USA") == ("New York City, United States", None)
    assert f.parse("Cheeseburg, United States")[1] == "not a known City, Country"
    assert f.parse("Paris")[1] == "not in the list"  # a bare city is not "City, Country"


@pytest.mark.parametrize("args, message", [
    (("--retries", -1), "--retries must be >= 0"),
    (("--block-size", 0), "--block-size must be >= 1"),
    (("--format", "csv"), "Invalid value for '--format'"),
])
def test_cli_generate_bad_option_values(tmp_path, fake_engine, args, message):
    tpl = write(tmp_path, TINY)
    r = invoke("generate", tpl, "--n", 3, "--out", tmp_path / "o.jsonl", *args)
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "o.jsonl").exists() and not fake_engine  # nothing written, no engine started


def test_a_field_can_have_its_own_retries_and_the_cli_option_overrides_all(tmp_path):
    t = load_template(write(tmp_path, TINY.replace('    prompt: "Pick a color."', '    prompt: "Pick a color."\n    retries: 5')))
    assert t.field("color").retries == 5 and t.field("day").retries is None
    eng = FakeEngine(responder=lambda r: "no")
    run(t, eng, plan_run(t, tmp_path / "o.jsonl", 2, seed=0), 2, seed=0)
    assert [r["attempts"]["color"] for r in read_jsonl(tmp_path / "o.jsonl")] == [6, 6]
    run(t, eng, plan_run(t, tmp_path / "p.jsonl", 2, seed=0), 2, 0, Fill(retries=1))
    assert [r["attempts"]["color"] for r in read_jsonl(tmp_path / "p.jsonl")] == [2, 2]
    with pytest.raises(InputError, match="retries"):
        load_template(write(tmp_path, TINY.replace('    prompt: "Pick a color."', '    prompt: "Pick a color."\n    retries: -1'), "b.yaml"))


def test_meta_stores_the_template_path_absolute(tmp_path, monkeypatch):
    """`synthgen report` run from another directory still finds the template's lists (issue #15)."""
    write(tmp_path, TINY, "rel.yaml")
    monkeypatch.chdir(tmp_path)
    t = load_template("rel.yaml")
    run(t, FakeEngine(responder=responder), plan_run(t, "o.jsonl", 3, 1), 3, 1)
    meta = json.loads((tmp_path / "o.jsonl.meta.json").read_text())
    assert meta["template"]["path"] == str((tmp_path / "rel.yaml").resolve())


def test_off_a_terminal_progress_is_a_plain_line(tmp_path, fake_engine):
    """nohup / a CI log: no live bars, so a plain progress line (here only the final one: the run is
    shorter than a minute)."""
    tpl = write(tmp_path, TINY)
    r = invoke("generate", tpl, "--n", 12, "--out", tmp_path / "x.jsonl", "--engine", "openai", "--endpoint", "http://x")
    assert r.exit_code == 0, r.output
    lines = [line for line in r.stderr.splitlines() if line.startswith("progress:")]
    assert len(lines) == 1 and lines[0].startswith("progress: 12/12 records · "), r.stderr


def test_line_progress_prints_every_interval_with_rate_and_eta():
    from synthgen.render import LineProgress, _clock

    now, said = [100.0], []
    p = LineProgress(["a", "b"], n=1000, start=400, every=60, echo=said.append, clock=lambda: now[0])
    with p:
        p("a", 5)  # the clock starts at the first field done
        p("b", 5)
        for _ in range(12):  # 10 s apart; a record counts when its last field (b) is done
            now[0] += 10
            p("a", 10)
            p("b", 10)
    assert said == ["progress: 455/1,000 records · 0.92 rec/s · ETA 9:55 · 1:00 elapsed",
                    "progress: 515/1,000 records · 0.96 rec/s · ETA 8:26 · 2:00 elapsed",
                    "progress: 525/1,000 records · 1.04 rec/s · ETA 7:36 · 2:00 elapsed"]  # the last: at the end
    assert _clock(3725) == "1:02:05"
    with pytest.raises(KeyError), LineProgress(["a"], 10, 0, echo=said.append) as q:
        q("a", 1)
        raise KeyError("boom")
    assert len(said) == 3  # nothing printed when the run fails: its error stays the one line
