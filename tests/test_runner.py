"""The library path the CLI's generate/biographies share (runner.py), and the adapter README."""

import json
from pathlib import Path

import pytest

from synthgen.errors import InputError
from synthgen.runner import RunOptions, prepare
from synthgen.card import AdapterCard, adapter_readme, capability_line

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("opts, msg", [
    (dict(retries=-1), "--retries must be >= 0"),
    (dict(block_size=0), "--block-size must be >= 1"),
    (dict(n=0), "--n must be >= 1"),
    (dict(template="no_such_template"), "unknown template"),
])
def test_prepare_checks_options_before_any_engine(tmp_path, opts, msg):
    base = dict(template="biography", n=5, out=str(tmp_path / "o.jsonl"), engine="openai", endpoints=("http://x:1",))
    with pytest.raises(InputError, match=msg):
        prepare(RunOptions(**(base | opts)))


def test_prepare_plans_the_output_and_the_format(tmp_path):
    prep = prepare(RunOptions("biography", n=5, out=str(tmp_path / "o.parquet"), engine="openai", endpoints=("http://x:1",)))
    assert prep.plan.fmt == "parquet" and prep.plan.start == 0 and prep.todo == 5 and not prep.needs_auto
    assert prep.engine_kwargs == {"endpoints": ("http://x:1",)} and prep.tries is None  # remote: tries need its tokenizer
    (tmp_path / "o.jsonl").write_text("")
    with pytest.raises(InputError, match="exists: add --resume"):
        prepare(RunOptions("biography", n=5, out=str(tmp_path / "o.jsonl"), engine="openai", endpoints=("http://x:1",)))


def test_a_bad_out_fails_before_the_in_process_engine_is_measured_or_started(tmp_path, monkeypatch):
    # a fresh machine's first run measures the dtype (a minute): a typo in --out must not wait for it
    import synthgen.engine.dtype as dtype
    import synthgen.models as models

    def measured(*a, **k):
        raise AssertionError("the dtype was measured before --out was checked")

    monkeypatch.setattr(dtype, "default_dtype", measured)
    monkeypatch.setattr(models, "resolve_model", lambda name: "/nowhere/smollm2")  # no conversion into the test's home
    (tmp_path / "d.jsonl").mkdir()
    for out, msg in ((tmp_path / "nodir" / "o.jsonl", "does not exist"), (tmp_path / "d.jsonl", "is a directory")):
        with pytest.raises(InputError, match=msg):
            prepare(RunOptions("biography", n=5, out=str(out)))


def test_adapter_readme_is_generated_from_the_card():
    card = AdapterCard.from_dict(json.loads((ROOT / "synthgen" / "adapters" / "first_names" / "synthgen_adapter.json").read_text()))
    text = adapter_readme(card, "first_names")
    x = card.lists[0]
    assert text.startswith("# first_names: a synthgen diffuse LoRA adapter")
    assert f"{x['base']['mass']:.3f} -> {x['adapter']['mass']:.3f}" in text
    assert f"| {x['n_targets']} |" in text and "Model Card for Model ID" not in text
    line = capability_line(card)
    assert f"x{card.capability['perplexity_ratio']}" in line and ("ok" in line) != card.degraded
    shipped = (ROOT / "synthgen" / "adapters" / "first_names" / "README.md").read_text()
    assert shipped == text  # the shipped README is this function's output
