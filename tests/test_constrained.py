"""Constrained decoding on a tiny random Llama: the trie processor and the exact distortion, against brute force."""

import numpy as np
import pytest
import torch

from synthgen import targets as T
from synthgen.audit import constrained_logprobs, metrics, score_paths

from .test_targets import CharTokenizer

ITEMS = ["Ann", "Anna", "Annabel", "Bob", "Bo", "Carl", "1", "10", "100"]  # prefixes of each other as strings
PROMPT = [1, 10, 20, 30, 40]


@pytest.fixture(scope="module")
def tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=70, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def token_ids():
    return T.encode_targets(CharTokenizer(), ITEMS)


def next_logprobs(model, ids):
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].double(), -1)


def brute_force(model, token_ids):
    """P(t) and Q(t) by one plain forward pass per prefix: Q renormalises over the tokens that
    continue some target at each step."""
    logp, logq = [], []
    for seq in token_ids:
        lp = lq = 0.0
        for d, tok in enumerate(seq):
            dist = next_logprobs(model, PROMPT + seq[:d])
            allowed = sorted({s[d] for s in token_ids if len(s) > d and s[:d] == seq[:d]})
            lp += float(dist[tok])
            lq += float(dist[tok] - torch.logsumexp(dist[allowed], 0))
        logp.append(lp)
        logq.append(lq)
    return np.array(logp), np.array(logq)


def test_exact_q_matches_brute_force_enumeration(tiny, token_ids):
    paths = score_paths(tiny, PROMPT, token_ids)
    logp_bf, logq_bf = brute_force(tiny, token_ids)
    np.testing.assert_allclose([p.sum() for p in paths], logp_bf, atol=1e-4)
    logq = constrained_logprobs(token_ids, paths)
    np.testing.assert_allclose(logq, logq_bf, atol=1e-4)
    assert np.exp(logq).sum() == pytest.approx(1.0, abs=1e-9)  # Q is a distribution over the list
    assert np.exp(logp_bf).sum() < 1.0  # P leaks mass outside the list; Q does not
    # the mask distorts: Q is not P(.|valid)
    r = metrics("t", ITEMS, np.full(len(ITEMS), 1 / len(ITEMS)), logp_bf, ns=(10,), logq=logq)
    q, pv = np.exp(logq_bf), np.exp(logp_bf) / np.exp(logp_bf).sum()
    assert r.kl_q_valid_nats == pytest.approx(float((q * np.log(q / pv)).sum()), abs=1e-6)
    assert r.kl_q_valid_nats > 0
    assert r.q_expected_distinct[10] == pytest.approx(float((1 - (1 - q) ** 10).sum()))


def test_q_equals_p_given_valid_when_the_model_only_speaks_the_list():
    """No mass off the list => the mask changes nothing: KL(Q || P(.|valid)) = 0."""
    token_ids = [[5, 6, 2], [5, 7, 2], [8, 2]]
    cond = {(): {5: 0.7, 8: 0.3}, (5,): {6: 0.4, 7: 0.6}, (5, 6): {2: 1.0}, (5, 7): {2: 1.0}, (8,): {2: 1.0}}
    paths = [np.log([cond[tuple(s[:d])][s[d]] for d in range(len(s))]) for s in token_ids]
    logq = constrained_logprobs(token_ids, paths)
    np.testing.assert_allclose(np.exp(logq), [0.28, 0.42, 0.3])


def test_decode_trie_steps_and_allows_end_of_turn_only_at_item_ends(token_ids):
    trie = T.DecodeTrie.build(token_ids, eot=2)
    tok = CharTokenizer().vocab
    ann = trie.walk([tok["A"], tok["n"], tok["n"]])
    assert set(trie.allowed(ann).tolist()) == {2, tok["a"]}  # "Ann" may end or go on to "Anna"
    an = trie.walk([tok["A"], tok["n"]])
    assert trie.allowed(an).tolist() == [tok["n"]]  # "An" is not an item: no end-of-turn
    assert trie.step(an, tok["x"]) == -1 and trie.allowed(-1).tolist() == [2]
    assert trie.max_len == len("Annabel") + 1
    assert sorted(trie.allowed(0).tolist()) == sorted({s[0] for s in token_ids})


def test_trie_file_is_cached_by_digest(tmp_path):
    tok = CharTokenizer()
    p1, t1 = T.decode_trie_file(tok, ["Ann", "Bob"], tmp_path)
    p2, _ = T.decode_trie_file(tok, ["Ann", "Bob"], tmp_path)
    p3, _ = T.decode_trie_file(tok, ["Ann", "Bobby"], tmp_path)
    assert p1 == p2 != p3 and len(list(tmp_path.glob("*.npz"))) == 2
    t = T.DecodeTrie.load(p1)
    assert (t.child_tok == t1.child_tok).all() and t.eot == 2


# --- the vLLM processor, driven by a hand-written decode loop (no engine) ------------------------

def _processor():
    pytest.importorskip("vllm")
    from synthgen.engine.trie_processor import TrieLogitsProcessor

    return TrieLogitsProcessor(None, torch.device("cpu"), False)


def _params(path):
    from vllm import SamplingParams

    return SamplingParams(extra_args={"synthgen_trie": path} if path else None)


def _added(*rows):
    from vllm.v1.sample.logits_processor import BatchUpdate

    return BatchUpdate(batch_size=len(rows), removed=[], added=list(rows), moved=[])


def test_processor_samples_only_list_items_and_its_distribution_is_q(tiny, token_ids, tmp_path):
    path, trie = T.decode_trie_file(CharTokenizer(), ITEMS, tmp_path)
    proc = _processor()
    # exact: the processor's per-step renormalised probabilities multiply to Q(t) for every item
    logq = constrained_logprobs(token_ids, score_paths(tiny, PROMPT, token_ids))
    for seq, want in zip(token_ids, logq):
        out: list[int] = []
        proc.update_state(_added((0, _params(path), PROMPT, out)))
        got = 0.0
        for tok in seq:
            logits = proc.apply(next_logprobs(tiny, PROMPT + out).float()[None].clone())
            allowed = torch.isfinite(logits[0]).nonzero().squeeze(1).tolist()
            assert allowed == sorted(trie.allowed(trie.walk(out)).tolist())
            got += float(torch.log_softmax(logits[0].double(), -1)[tok])
            out.append(tok)
        assert got == pytest.approx(want, abs=1e-4)
    # sampled: 200 draws, two rows batched, one of them unconstrained and untouched
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        out, free = [], []
        proc.update_state(_added((0, _params(path), PROMPT, out), (1, _params(None), PROMPT, free)))
        while not out or out[-1] != 2:
            raw = torch.stack([next_logprobs(tiny, PROMPT + out), next_logprobs(tiny, PROMPT + free)]).float()
            logits = proc.apply(raw.clone())
            assert torch.equal(logits[1], raw[1])
            out.append(int(torch.multinomial(torch.softmax(logits[0], -1), 1, generator=gen)))
            free.append(0)
        seen.add(tuple(out))
    assert seen <= {tuple(s) for s in token_ids} and len(seen) >= 5


def test_processor_follows_removed_moved_and_swapped_rows(token_ids, tmp_path):
    from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality

    path, _ = T.decode_trie_file(CharTokenizer(), ITEMS, tmp_path)
    other, _ = T.decode_trie_file(CharTokenizer(), ["Zed"], tmp_path)
    z = CharTokenizer().vocab["Z"]
    proc = _processor()
    proc.update_state(_added((0, _params(path), PROMPT, []), (1, _params(other), PROMPT, []),
                             (2, _params(None), PROMPT, [])))
    first = lambda row: torch.isfinite(proc.apply(torch.zeros(3, 70))[row]).nonzero().squeeze(1).tolist()  # noqa: E731
    assert first(1) == [z] and len(first(0)) > 1 and len(first(2)) == 70
    proc.update_state(BatchUpdate(3, removed=[], added=[], moved=[(0, 1, MoveDirectionality.SWAP)]))
    assert first(0) == [z] and len(first(1)) > 1
    proc.update_state(BatchUpdate(2, removed=[2], added=[], moved=[(0, 2, MoveDirectionality.UNIDIRECTIONAL)]))
    assert first(2) == [z] and len(first(0)) == 70
    proc.update_state(BatchUpdate(2, removed=[1], added=[], moved=[]))
    assert len(first(1)) == 70


def test_processor_rejects_a_missing_trie_file(tmp_path):
    proc = _processor()
    with pytest.raises(ValueError, match="does not exist"):
        proc.validate_params(_params(str(tmp_path / "nope.npz")))
    proc.validate_params(_params(None))  # requests without a trie are not its business


# --- the template option and the generator's constrained path (FakeEngine) -----------------------

CONSTRAINED = """
name: c
fields:
  - {name: color, kind: choice, choices: [red, green, dark blue], prompt: "Pick a color."}
  - {name: day, kind: date, min: 2000-01-01, max: 2000-01-31, prompt: "Pick a day for {color}."}
  - {name: open_day, kind: date, prompt: "Any day?"}
  - {name: story, kind: text, prompt: "About {color} on {day}."}
"""


def _template(tmp_path, text=CONSTRAINED, name="c.yaml"):
    from synthgen.template import load_template

    p = tmp_path / name
    p.write_text(text)
    return load_template(p)


def test_decode_defaults_and_bad_values(tmp_path):
    from synthgen.errors import InputError

    t = _template(tmp_path)
    assert t.decodes() == {"color": "constrained", "day": "constrained", "open_day": "free", "story": "free"}
    assert t.field("day").items()[:2] == ["2000-01-01", "2000-01-02"] and len(t.field("day").items()) == 31
    assert t.with_decode("free").decodes()["color"] == "free"
    for bad, msg in [("decode: weird", "`decode` must be constrained or free, got 'weird'"),
                     ("decode: constrained", "for choice and date fields")]:
        with pytest.raises(InputError, match=msg):
            _template(tmp_path, CONSTRAINED.replace('prompt: "About', f'{bad}, prompt: "About'), "b.yaml")
    with pytest.raises(InputError, match="needs `min` and `max`"):
        _template(tmp_path, CONSTRAINED.replace('prompt: "Any day?"', 'decode: constrained, prompt: "Any day?"'), "d.yaml")


def test_constrained_fields_send_their_trie_and_are_valid_at_the_first_try(tmp_path):
    from synthgen.engine import FakeEngine
    from synthgen.generate import run
    from synthgen.output import plan_run, read_jsonl

    t = _template(tmp_path)
    answers = {"Pick a color.": ["red", "dark blue"], "Pick a day": ["2000-01-05", "2000-01-31"],
               "Any day?": ["2001-02-03", "2001-02-04"], "About": ["It was a fine day.", "Rain fell all day."]}
    eng = FakeEngine(responder=lambda r: next(v for k, v in answers.items() if r.prompt.startswith(k))[r.seed % 2])
    s = run(t, eng, plan_run(t, tmp_path / "o.jsonl", 6, 1), 6, 1)
    sent = {r.prompt.split(" ")[0]: r.trie for r in eng.history}
    assert sent["Pick"] and sent["Any"] is None and sent["About"] is None
    assert {r.trie for r in eng.history if r.prompt.startswith("Pick a color")} != {r.trie for r in eng.history
                                                                                  if r.prompt.startswith("Pick a day")}
    assert s.first_try_valid["color"] == s.first_try_valid["day"] == 1.0
    assert all(r["color"] in ("red", "dark blue") for r in read_jsonl(tmp_path / "o.jsonl"))
    # the fake, like a real constrained engine, cannot answer off the list
    bad = FakeEngine(responder=lambda r: "purple")
    with pytest.raises(AssertionError, match="not an item"):
        run(t, bad, plan_run(t, tmp_path / "p.jsonl", 1, 1), 1, 1)


def test_an_item_longer_than_max_tokens_is_a_one_line_error_and_nothing_is_written(tmp_path):
    from synthgen.engine import FakeEngine
    from synthgen.errors import InputError
    from synthgen.generate import run
    from synthgen.output import plan_run

    t = _template(tmp_path, CONSTRAINED.replace("choices: [red, green, dark blue],",
                                                "choices: [red, green, dark blue], max_tokens: 2,"))
    with pytest.raises(InputError, match="'dark blue' is 3 tokens with end-of-turn, more than max_tokens 2"):
        run(t, FakeEngine(responder=lambda r: "red"), plan_run(t, tmp_path / "o.jsonl", 2, 1), 2, 1)
    assert list(tmp_path.glob("o.jsonl*")) == []


def test_resume_with_another_decode_mode_is_refused(tmp_path):
    from synthgen.engine import FakeEngine
    from synthgen.errors import InputError
    from synthgen.generate import run
    from synthgen.output import plan_run

    t = _template(tmp_path)
    eng = FakeEngine(responder=lambda r: {"Pick a c": "red", "Pick a d": "2000-01-02"}.get(r.prompt[:8], "It rained."))
    run(t, eng, plan_run(t, tmp_path / "o.jsonl", 2, 1), 2, 1)
    with pytest.raises(InputError, match="different decode mode"):
        plan_run(t.with_decode("free"), tmp_path / "o.jsonl", 4, 1, existing="resume")


def test_cli_bad_decode_is_one_line_and_writes_nothing(tmp_path):
    from click.testing import CliRunner

    from synthgen.cli import cli

    tpl = tmp_path / "c.yaml"
    tpl.write_text(CONSTRAINED.replace('prompt: "Pick a color."', 'decode: weird, prompt: "Pick a color."'))
    for args in ([str(tpl)], [str(tmp_path / "ok.yaml"), "--decode", "weird"]):
        (tmp_path / "ok.yaml").write_text(CONSTRAINED)
        r = CliRunner().invoke(cli, ["generate", *args, "--n", "2", "--out", str(tmp_path / "o.jsonl")])
        errors = [line for line in r.output.splitlines() if line.startswith("Error")]
        assert r.exit_code != 0 and "Traceback" not in r.output and len(errors) == 1 and "decode" in errors[0], r.output
    assert list(tmp_path.glob("o.jsonl*")) == []
