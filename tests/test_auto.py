"""adapter: auto — the training problem it builds, its cache key, and the refusal to run unbuilt."""

import pytest

from synthgen import auto
from synthgen.errors import InputError
from synthgen.template import load_template

TPL = """
name: a
fields:
  - {name: gender, kind: choice, choices: [female, male], prompt: "A gender?"}
  - {name: first_name, kind: choice, choices: {builtin: first_names}, adapter: auto,
     prompt: "Pick a random first name for a {gender} person. Answer with the name only."}
  - {name: colour, kind: choice, choices: [red, green, blue], adapter: auto, prompt: "A colour for {first_name}?"}
  - {name: day, kind: date, min: 2000-01-01, max: 2000-12-31, adapter: auto, prompt: "A day?"}
  - {name: note, kind: text, prompt: "About {first_name}."}
  - {name: motto_colour, kind: choice, choices: [red, blue], adapter: auto, prompt: "A colour for {note}?"}
"""


def template(tmp_path, text=TPL):
    p = tmp_path / "t.yaml"
    p.write_text(text)
    return load_template(p)


def test_the_training_problem_is_the_field_itself(tmp_path):
    t = template(tmp_path)
    spec = auto.field_spec(t, t.field("first_name"))
    assert spec.weighting == "frequency" and spec.top_k == auto.TOP_K  # SSA counts: real frequencies
    assert set(spec.prompts) <= {t.field("first_name").render({"gender": g}) for g in ("female", "male")}
    colour = auto.field_spec(t, t.field("colour"))
    assert colour.weighting == "uniform" and colour.source == {"inline": ["red", "green", "blue"]}
    assert len(colour.prompts) >= 2 and all(p.startswith("A colour for ") for p in colour.prompts)  # names drawn
    assert auto.field_spec(t, t.field("day")).source == {"dates": {"start": "2000-01-01", "stop": "2000-12-31"}}
    with pytest.raises(InputError, match="refers only to choice fields"):
        auto.field_spec(t, t.field("motto_colour"))


def test_the_cache_key_covers_list_prompt_and_model(tmp_path, monkeypatch):
    t = template(tmp_path)
    a = auto.auto_dir(auto.field_spec(t, t.field("colour")), "model-a")
    assert a == auto.auto_dir(auto.field_spec(t, t.field("colour")), "model-a")
    assert a != auto.auto_dir(auto.field_spec(t, t.field("colour")), "model-b")
    t2 = template(tmp_path, TPL.replace("[red, green, blue]", "[red, green, teal]"))
    assert a != auto.auto_dir(auto.field_spec(t2, t2.field("colour")), "model-a")


def test_auto_is_built_once_then_cached(tmp_path, monkeypatch):
    import synthgen.train as train_mod

    calls = []

    def fake_train(model_dir, specs, out, cfg, **kw):
        calls.append(specs[0].name)
        out.mkdir(parents=True)
        (out / "adapter_config.json").write_text("{}")
        return {}

    monkeypatch.setattr(train_mod, "train", fake_train)
    t = template(tmp_path, TPL.split("  - {name: note")[0])
    built, trained = auto.ensure_auto_adapters(t, "m")
    assert trained == ["first_name", "colour", "day"]
    assert all(built.field(n).adapter_path for n in ("first_name", "colour", "day"))
    assert not any(t.field(n).adapter_path for n in ("first_name", "colour", "day"))  # the loaded template is unchanged
    t = template(tmp_path, TPL.split("  - {name: note")[0])
    assert auto.ensure_auto_adapters(t, "m")[1] == [] and len(calls) == 3


@pytest.mark.parametrize("left", ["checkpoint", "no checkpoint", "unresumable checkpoint"])
def test_an_interrupted_auto_build_is_resumed_or_started_over_by_the_same_command(tmp_path, monkeypatch, left):
    import synthgen.train as train_mod

    calls, notes = [], []

    def fake_train(model_dir, specs, out, cfg, resume=False, **kw):
        partial = out.with_name(out.name + ".partial")
        calls.append((resume, partial.exists()))
        if resume and left == "unresumable checkpoint":
            raise InputError(f"{partial} was started with other settings or lists")
        out.mkdir(parents=True)
        (out / "adapter_config.json").write_text("{}")
        return {}

    monkeypatch.setattr(train_mod, "train", fake_train)
    t = template(tmp_path, "name: a\nfields:\n  - {name: colour, kind: choice, choices: [red, green, blue], "
                           "adapter: auto, prompt: 'A colour?'}\n")
    out = auto.auto_dir(auto.field_spec(t, t.field("colour")), "m")
    partial = out.with_name(out.name + ".partial")
    partial.mkdir(parents=True)
    if left != "no checkpoint":
        (partial / "trainer_state.pt").write_bytes(b"state")
    assert auto.ensure_auto_adapters(t, "m", on_note=notes.append)[1] == ["colour"]
    assert (out / "adapter_config.json").is_file()
    expected = {"checkpoint": [(True, True)], "no checkpoint": [(False, False)],
                "unresumable checkpoint": [(True, True), (False, False)]}[left]
    assert calls == expected
    said = " | ".join(notes)
    assert {"checkpoint": "resuming the interrupted build", "no checkpoint": "left no checkpoint: starting over",
            "unresumable checkpoint": "cannot be resumed (InputError): starting over"}[left] in said


def test_unbuilt_auto_adapters_refuse_to_run_and_text_fields_cannot_be_auto(tmp_path):
    from synthgen.engine import FakeEngine
    from synthgen.generate import run
    from synthgen.output import plan_run

    t = template(tmp_path, TPL.split("  - {name: note")[0])
    with pytest.raises(InputError, match="adapter: auto"):
        run(t, FakeEngine(responder=lambda r: "red"), plan_run(t, tmp_path / "o.jsonl", 1, 0), 1, 0)
    assert not (tmp_path / "o.jsonl").exists()
    with pytest.raises(InputError, match="needs a list"):
        template(tmp_path, TPL + '  - {name: x, kind: text, adapter: auto, prompt: "p"}\n')


@pytest.mark.integration
def test_cli_builds_an_auto_adapter_once_and_generates_through_it(model_dir, tmp_path):
    import json
    import subprocess
    import sys

    fruits = ["apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "plum"]
    tpl = tmp_path / "fruit.yaml"
    tpl.write_text(f"name: fruit\nfields:\n  - {{name: fruit, kind: choice, choices: {json.dumps(fruits)}, adapter: auto, "
                   "max_tokens: 6, prompt: 'Name a random fruit. Answer with the fruit only.'}\n")

    def gen(out, n):
        r = subprocess.run([sys.executable, "-m", "synthgen", "generate", str(tpl), "--n", str(n), "--out",
                            str(tmp_path / out)], capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        return r.stderr

    first = gen("a.jsonl", 24)
    assert "adapter: auto for 'fruit': training" in first and "KL(Q‖p*)" in first
    kl = first.split("KL(Q‖p*) ")[1].split(" bits")[0]  # "x.xx -> y.yy": trained for the trie sampler (Q)
    before, after = (float(x) for x in kl.split(" -> "))
    assert after < 0.5 * before, kl
    rows = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert all(r["fruit"] in fruits for r in rows) and len({r["fruit"] for r in rows}) >= 4
    second = gen("b.jsonl", 4)
    assert "training" not in second and "KL(Q‖p*)" in second  # cached: built once
