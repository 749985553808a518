"""Constrained decoding on the embedded model through real vLLM: samples follow the exact Q of the audit."""

import subprocess
import sys

import numpy as np
import pytest

from synthgen import targets as T
from synthgen.audit import constrained_logprobs, score_paths
from synthgen.engine import Request

pytestmark = pytest.mark.integration

# string prefixes that the tokenizer spells differently ("Ann" + "abel" vs "Anna" + "bel" ...)
NAMES = ["Ann", "Anna", "Annabel", "Annabelle", "Anne", "Bob", "Bobby", "Rob", "Robert", "Roberta", "Emily", "Em",
         "Emma", "New York", "Newark", "York"]
PROMPT = "Pick a random first name. Answer with the name only."


@pytest.fixture(scope="module")
def hf_model(model_dir):
    from synthgen.models import load_base

    return load_base(model_dir)


def test_the_tokenizer_spells_the_list_several_ways(vllm_engine):
    ids = T.encode_targets(vllm_engine.tokenizer, NAMES)
    firsts = {tuple(i[:1]) for i in ids if vllm_engine.tokenizer.decode(i[:1]).startswith("Ann")}
    assert len(firsts) >= 2, "the list should exercise different tokenisations of one string prefix"


def test_constrained_samples_follow_the_exact_q(vllm_engine, hf_model, tmp_path):
    """800 seeded draws through vLLM + the trie processor vs Q from one trie pass of transformers: every
    draw is a list item, and each item's frequency is within 4.5 standard errors of Q."""
    tok, model = hf_model
    path, _ = T.decode_trie_file(vllm_engine.tokenizer, NAMES, tmp_path)
    n = 800
    outs = vllm_engine.generate([Request(PROMPT, max_tokens=8, seed=i, trie=path) for i in range(n)])
    texts = [o.text for o in outs]
    assert set(texts) <= set(NAMES) and all(o.finish_reason == "stop" for o in outs)
    ids = T.encode_targets(tok, NAMES)
    q = np.exp(constrained_logprobs(ids, score_paths(model, T.render_chat(tok, PROMPT), ids)))
    freq = np.array([texts.count(x) for x in NAMES]) / n
    se = np.sqrt(q * (1 - q) / n) + 1e-3
    assert (np.abs(freq - q) <= 4.5 * se).all(), dict(zip(NAMES, zip(freq.round(3), q.round(3))))
    assert len(set(texts)) >= 5
    again = vllm_engine.generate([Request(PROMPT, max_tokens=8, seed=i, trie=path) for i in range(50)])
    assert [o.text for o in again] == texts[:50]  # per-request seeds: same seed, same answer


def test_base_model_constrained_gives_valid_but_less_realistic_names(vllm_engine, model_dir, hf_model, tmp_path):
    """The mask makes any model valid; realism comes from the adapter: through first_names the
    draws are commoner names (lower cross-entropy under the SSA frequencies) than the base's."""
    from pathlib import Path

    from synthgen.lists import load_spec, load_targets

    spec = load_spec(Path(__file__).resolve().parent.parent / "adapters" / "first_names.yaml")
    names, p_star = load_targets(spec)
    path, _ = T.decode_trie_file(vllm_engine.tokenizer, names, tmp_path)
    adapter = str(Path(spec.path).parent / "first_names")
    logp = dict(zip(names, np.log(p_star)))
    xent = {}
    for label, a in (("base", None), ("adapter", adapter)):
        outs = vllm_engine.generate([Request(spec.prompts[0], max_tokens=8, seed=i, adapter=a, trie=path)
                                     for i in range(200)])
        assert all(o.text in logp for o in outs)
        xent[label] = -np.mean([logp[o.text] for o in outs])
    assert xent["adapter"] < xent["base"] - 0.5, xent


def test_cli_refuses_a_list_longer_than_max_tokens_before_the_engine_starts(model_dir, tmp_path):
    tpl = tmp_path / "t.yaml"
    tpl.write_text("name: t\nfields:\n  - {name: job, kind: choice, choices: {builtin: job_titles}, max_tokens: 6, "
                   "prompt: 'A job?'}\n")
    r = subprocess.run([sys.executable, "-m", "synthgen", "generate", str(tpl), "--n", "2", "--out",
                        str(tmp_path / "o.jsonl")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "raise max_tokens to" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "starting engine" not in r.stderr and list(tmp_path.glob("o.jsonl*")) == []


def test_a_conditional_field_decodes_only_inside_its_values_list(vllm_engine, tmp_path):
    """Real engine, base model: every first name falls inside the SSA list of its record's sex and
    birth decade (the shipped source), and the records use more than one of those lists."""
    from synthgen.generate import run
    from synthgen.output import plan_run, read_jsonl
    from synthgen.lists.sources import builtin
    from synthgen.template import load_template

    tpl = tmp_path / "people.yaml"
    tpl.write_text("""
name: people
fields:
  - {name: gender, kind: choice, choices: [female, male], prompt: "Pick the gender of a fictional person at random."}
  - {name: born, kind: date, min: 1950-01-01, max: 1999-12-31, prompt: "Pick a birth date between 1950 and 1999."}
  - name: first
    kind: choice
    choices: {builtin: first_names_by_decade, where: {sex: "{gender}", decade: "{born:.3}0"}}
    map: {gender: {female: F, male: M}}
    prompt: "Pick a random first name for a {gender} person born in the {born:.3}0s. Answer with the name only."
""")
    t = load_template(tpl)
    run(t, vllm_engine, plan_run(t, tmp_path / "o.jsonl", 40, 2), 40, 2)
    recs = read_jsonl(tmp_path / "o.jsonl")
    assert len(recs) == 40 and all(r["first"] for r in recs)
    for r in recs:
        items, _ = builtin("first_names_by_decade", {"sex": "F" if r["gender"] == "female" else "M",
                                                     "decade": r["born"][:3] + "0"})
        assert r["first"] in items, r
    assert len({(r["gender"], r["born"][:3]) for r in recs}) >= 3
