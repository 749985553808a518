import numpy as np
import pytest
import torch

from synthgen import targets as T


class CharTokenizer:
    """Digits and letters, one token each; id 2 is <|im_end|> (like SmolLM2)."""

    def __init__(self):
        chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '"
        self.vocab = {"<pad>": 0, "<bos>": 1, "<|im_end|>": 2} | {c: i + 3 for i, c in enumerate(chars)}
        self.eos_token_id = 2

    def get_vocab(self):
        return self.vocab

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[self.vocab[c] for c in t] for t in texts]}


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=70, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    return LlamaForCausalLM(cfg).eval()


def test_end_of_turn_makes_numbers_prefix_free():
    tok = CharTokenizer()
    texts = [str(i) for i in range(1, 101)]
    bare = [ids for ids in tok(texts)["input_ids"]]
    assert not T.check_targets(texts, bare).ok  # "1" is a prefix of "10"
    problems = T.check_targets(texts, T.encode_targets(tok, texts))
    assert problems.ok, problems.summary()


def test_check_targets_reports_duplicates_empty_and_collisions():
    texts = ["Ann", "ann ", "", "Bob"]
    ids = [[1, 2], [1, 2, 3], [4], [5]]
    p = T.check_targets(texts, ids)
    assert p.empty == [""]
    assert p.duplicates == [("Ann", "ann ")]
    assert p.collisions == [("Ann", "ann ")]
    assert "1 duplicate" in p.summary() and "prefix collision" in p.summary()


def test_trie_shares_prefixes():
    trie = T.build_trie([[5, 6, 2], [5, 7, 2], [8, 2]])
    assert trie.n_nodes == 7  # "5" shared: 5,6,2 + 7,2 + 8,2
    assert trie.parent[0] == -1 and trie.depth.tolist()[:3] == [0, 1, 2]
    w = T.node_weights(trie, np.array([0.5, 0.3, 0.2]))
    assert w[0] == pytest.approx(0.8)  # node "5" carries both targets through it


def row_logprob(model, prompt, target):
    ids = torch.tensor([prompt + target])
    logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    return sum(logp[len(prompt) - 1 + j, tok].item() for j, tok in enumerate(target))


def test_packed_trie_matches_one_row_per_target(tiny_model):
    tok = CharTokenizer()
    texts = ["Ann", "Anna", "Bob", "Bo", "10", "1", "100"]
    ids = T.encode_targets(tok, texts)
    trie = T.build_trie(ids)
    prompt = [1, 10, 20, 30, 40, 15]
    with torch.no_grad():
        packed = T.target_logprobs(trie, T.node_logprobs(tiny_model, prompt, trie))
        rows = [row_logprob(tiny_model, prompt, t) for t in ids]
    np.testing.assert_allclose(packed, rows, atol=1e-4)


def test_trie_loss_descends_towards_target_entropy(tiny_model):
    """A few optimiser steps on the packed loss move the tiny model's distribution towards p*."""
    import copy

    from synthgen.train import trie_loss

    model = copy.deepcopy(tiny_model).train()
    tok = CharTokenizer()
    texts = ["1", "2", "3", "10"]
    p_star = np.array([0.4, 0.3, 0.2, 0.1])
    trie = T.build_trie(T.encode_targets(tok, texts))
    prompt = [1, 10, 20]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss, lp = trie_loss(model, prompt, trie, p_star)
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    entropy = float(-(p_star * np.log(p_star)).sum())
    q = np.exp(lp)
    shape = q / q.sum()
    kl_shape = float((p_star * np.log(p_star / shape)).sum())
    uniform_kl = float((p_star * np.log(p_star / 0.25)).sum())  # 0.107 nats: what a flat answer would score
    assert float(loss) < first and float(loss) < entropy + 0.3
    assert q.sum() > 0.7 and list(np.argsort(-q)) == [0, 1, 2, 3]  # p*'s order, not just its top
    assert kl_shape < uniform_kl / 5  # measured 0.0035 nats after these 60 steps


def test_chunked_packing_gives_the_same_loss_and_gradient(tiny_model):
    """Splitting the trie into several passes changes cost, not the loss or its gradient."""
    import copy

    from synthgen.train import packed_backward

    tok = CharTokenizer()
    texts = [f"{a}{b}{c}" for a in "abc" for b in "de" for c in "fgh"] + ["a", "b"]
    ids = T.encode_targets(tok, texts)
    w = np.random.default_rng(0).dirichlet(np.ones(len(texts)))
    chunks = T.chunk_targets(ids, max_nodes=12)
    assert len(chunks) > 2 and sorted(np.concatenate(chunks).tolist()) == list(range(len(texts)))
    results = []
    for max_nodes in (10_000, 12):
        model = copy.deepcopy(tiny_model)
        loss, lp = packed_backward(model, [1, 5, 9], ids, w, max_nodes=max_nodes)
        grad = model.model.embed_tokens.weight.grad.clone()
        results.append((loss, lp, grad))
    assert results[0][0] == pytest.approx(results[1][0], abs=1e-4)
    np.testing.assert_allclose(results[0][1], results[1][1], atol=1e-4)
    torch.testing.assert_close(results[0][2], results[1][2], atol=1e-5, rtol=1e-4)


def brute_force_q(model, prompt, token_ids, full_ids):
    """log Q(t) by enumeration: at each step a full forward pass over prompt + prefix, softmax over
    the tokens that continue some item of `full_ids` there (what the trie sampler does)."""
    out = []
    for seq in token_ids:
        total = 0.0
        for j in range(len(seq)):
            prefix = seq[:j]
            allowed = sorted({s[j] for s in full_ids if len(s) > j and s[:j] == prefix})
            logits = model(input_ids=torch.tensor([prompt + prefix])).logits[0, -1].float()
            total = total + logits[seq[j]] - torch.logsumexp(logits[allowed], 0)
        out.append(total)
    return torch.stack(out)


def test_q_objective_matches_brute_force_value_and_gradient(tiny_model):
    """- sum_t p*(t) log Q(t) from one packed pass equals step-by-step enumeration of the trie
    sampler, in value and in gradient; log q + log z is the paper's log P."""
    import copy

    from synthgen.train import trie_loss

    tok = CharTokenizer()
    texts = ["Ann", "Anna", "Bob", "Bo", "10", "1", "100", "Cy"]
    ids = T.encode_targets(tok, texts)
    full = T.DecodeTrie.build(ids, 2)
    p_star = np.random.default_rng(1).dirichlet(np.ones(len(texts)))
    prompt = [1, 10, 20, 30]
    grads = []
    for packed in (True, False):
        model = copy.deepcopy(tiny_model)
        if packed:
            loss, logp = trie_loss(model, prompt, T.build_trie(ids), p_star, full, mass_term=0.0)
        else:
            loss = -(torch.from_numpy(p_star).float() * brute_force_q(model, prompt, ids, ids)).sum()
        loss.backward()
        grads.append((float(loss), model.model.layers[0].mlp.up_proj.weight.grad.clone()))
    assert grads[0][0] == pytest.approx(grads[1][0], abs=1e-4)
    torch.testing.assert_close(grads[0][1], grads[1][1], atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # Q sums to 1 over the list; P = Q * M is the paper's
        trie = T.build_trie(ids)
        log_q, log_z = T.node_q_logprobs(tiny_model, prompt, trie, full)
        assert np.exp(T.target_logprobs(trie, log_q)).sum() == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(T.target_logprobs(trie, log_q + log_z),
                                   T.target_logprobs(trie, T.node_logprobs(tiny_model, prompt, trie)), atol=1e-5)
    # the paper's loss is the family's w = 1 member
    paper, _ = trie_loss(tiny_model, prompt, T.build_trie(ids), p_star)
    mixed1, _ = trie_loss(tiny_model, prompt, T.build_trie(ids), p_star, full, mass_term=1.0)
    assert float(paper) == pytest.approx(float(mixed1), abs=1e-4)


def test_subsampled_q_step_normalises_over_the_whole_trie(tiny_model):
    """A step over a subsample of the targets (or a chunk of them) keeps the sampler's normaliser:
    each target's log Q is the same as in the whole list's pass, not renormalised over the subsample."""
    tok = CharTokenizer()
    texts = [f"{a}{b}" for a in "abcd" for b in "xyz"] + ["a", "bq"]
    ids = T.encode_targets(tok, texts)
    full = T.DecodeTrie.build(ids, 2)
    prompt = [1, 7, 9]
    with torch.no_grad():
        whole = T.build_trie(ids)
        lq_whole = T.target_logprobs(whole, T.node_q_logprobs(tiny_model, prompt, whole, full)[0])
        sub = [0, 4, 12, 13]
        part = T.build_trie([ids[i] for i in sub])
        lq_part = T.target_logprobs(part, T.node_q_logprobs(tiny_model, prompt, part, full)[0])
        brute = brute_force_q(tiny_model, prompt, [ids[i] for i in sub], ids).numpy()
    np.testing.assert_allclose(lq_part, lq_whole[sub], atol=1e-5)
    np.testing.assert_allclose(lq_part, brute, atol=1e-4)
    # renormalising over the subsample's own trie would give another (wrong) answer
    own = T.DecodeTrie.build([ids[i] for i in sub], 2)
    with torch.no_grad():
        lq_own = T.target_logprobs(part, T.node_q_logprobs(tiny_model, prompt, part, own)[0])
    assert np.abs(lq_own - lq_part).max() > 0.1


def test_q_objective_needs_only_the_childrens_logits(tiny_model):
    """Without P's mass, log q comes from the children's logits alone (dot products with the head's
    rows, no vocabulary-wide softmax): the same values as through the full head."""
    tok = CharTokenizer()
    ids = T.encode_targets(tok, ["Ann", "Anna", "Bob", "Bo", "10", "1", "100", "Cy", "Ca"])
    full = T.DecodeTrie.build(ids, 2)
    part = T.build_trie([ids[i] for i in (0, 2, 4, 8)])  # a subsample: the normaliser is still full's
    with torch.no_grad():
        lq_head, log_z = T.node_q_logprobs(tiny_model, [1, 10, 20], part, full)
        lq_gather, none = T.node_q_logprobs(tiny_model, [1, 10, 20], part, full, with_mass=False)
    assert none is None and log_z is not None
    torch.testing.assert_close(lq_gather, lq_head, atol=1e-5, rtol=1e-5)


def test_systematic_subsample_is_unbiased_and_exact_at_the_top_of_the_trie():
    """A subsampled step's weights: each target's weight is p*(t) on average (unbiased), and every trie
    node's weight (the sum over its targets) is within 1/M of its exact weight in every draw, where
    independent draws are off by sqrt(W(1-W)/M)."""
    from synthgen.train import Task

    rng = np.random.default_rng(0)
    tok = CharTokenizer()
    texts = sorted({"".join(rng.choice(list("abcdef"), size=rng.integers(1, 5))) for _ in range(400)})
    ids = T.encode_targets(tok, texts)
    p = rng.dirichlet(np.full(len(texts), 0.5))
    task = Task(spec=None, texts=texts, p=p, token_ids=ids, prompt_ids=[[1]], subsample=True)
    whole = T.build_trie(ids)
    exact = T.node_weights(whole, p)
    index = {tuple(s): i for i, s in enumerate(ids)}
    m, total, worst = 50, np.zeros(len(texts)), 0.0
    for _ in range(4000):
        sub, w = task.step_problem(rng, m)
        assert w.sum() == pytest.approx(1.0)
        picked = np.array([index[tuple(s)] for s in sub])
        total[picked] += w
        full_w = np.zeros(len(texts))
        full_w[picked] = w
        worst = max(worst, np.abs(T.node_weights(whole, full_w) - exact).max())
    np.testing.assert_allclose(total / 4000, p, atol=0.004)
    assert worst <= 1 / m + 1e-9


def test_frozen_layers_store_gives_the_full_pass_loss_and_gradient():
    """--layers: with LoRA on the top layers only, the frozen layers' states come from a store filled
    node by node (frozen.FrozenBelow); each step's loss and LoRA gradient are the full pass's, for the
    q and the paper objective, and a node met again is not recomputed."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from synthgen.frozen import FrozenBelow
    from synthgen.train import trie_loss

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=70, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    model = get_peft_model(LlamaForCausalLM(cfg), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"],
                                                             init_lora_weights=False, layers_to_transform=[2, 3]))
    tok = CharTokenizer()
    ids = T.encode_targets(tok, [f"{a}{b}" for a in "abcd" for b in "xyz"] + ["a", "bq", "Ann", "Anna"])
    full = T.DecodeTrie.build(ids, 2)
    frozen = FrozenBelow.of(model)
    assert frozen is not None and frozen.start == 2
    params = [p for p in model.parameters() if p.requires_grad]
    w = np.random.default_rng(0).dirichlet(np.ones(len(ids)))
    # ax ay bz Ann; then ax ay cx Anna: only the paths of the targets with a new node run the frozen
    # layers ("cx" + end-of-turn: 3 nodes, "Anna" + end-of-turn: 5); then the first again: nothing
    for sub, mass_term, new_nodes in (([0, 1, 5, 14], 0.0, 12), ([0, 1, 6, 15], None, 8), ([0, 1, 5, 14], 0.0, 0)):
        trie = T.build_trie([ids[i] for i in sub])
        out = []
        for store in (None, frozen):
            before = frozen.computed
            loss, _ = trie_loss(model, [1, 7, 9], trie, w[sub], full, mass_term, store)
            loss.backward()
            out.append((float(loss.detach()), torch.cat([p.grad.flatten() for p in params]).clone()))
            for p in params:
                p.grad = None
        assert out[0][0] == pytest.approx(out[1][0], abs=1e-5)
        torch.testing.assert_close(out[0][1], out[1][1], atol=1e-5, rtol=1e-4)
        assert frozen.computed - before == new_nodes
    assert FrozenBelow.of(get_peft_model(LlamaForCausalLM(cfg), LoraConfig(r=4, target_modules=["q_proj"]))) is None


def test_the_stop_rule_takes_a_conditional_specs_lists_as_one():
    """should_stop: each spec within gamma x H(p*); the lists of one conditional spec (group) by their
    mean, so one list's noisy average above the bound does not hold the others, while two separate
    specs must each be under."""
    from types import SimpleNamespace

    from synthgen.train import Task, should_stop

    def task(name, group):
        return Task(SimpleNamespace(name=name), ["a", "b"], np.array([0.5, 0.5]), [[3], [4]], [[1]], group=group)

    h = np.log(2)  # H(p*) of two equal items, nats
    ema = {"x": h * 1.00, "y": h * 1.03}  # y over a 2 % bound, x under it, their mean (1.015 H) under it
    assert should_stop(ema, [task("x", "g"), task("y", "g")], gamma=0.02)
    assert not should_stop(ema, [task("x", None), task("y", None)], gamma=0.02)
    assert not should_stop({"x": h}, [task("x", "g"), task("y", "g")], gamma=0.02)  # y not seen yet
