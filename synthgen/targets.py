"""Tokenised targets, the prefix-free check, and trie packing.

A target's probability is P(answer tokens + end-of-turn | prompt). Appending the end-of-turn token
makes the set prefix-free ("Ann" vs "Anna", "1" vs "10"), so the probabilities of distinct
targets are probabilities of disjoint events and their sum (the mass on the valid set) is <= 1.

Packing: the prompt and the *trie* of all targets go into one sequence. Each trie node is one
token; it attends to the prompt and its ancestors only (a 4-D mask) and sits at position
len(prompt) + depth. Shared prefixes are computed once, with no padding: 20-100x faster than
one row per target (benchmarks/bench_train.py, retired after commit 616f476; docs/performance.md).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from .errors import InputError

END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>")


def end_of_turn_id(tokenizer) -> int:
    """The token that closes an assistant turn in this model's chat template."""
    vocab = tokenizer.get_vocab()
    for tok in END_OF_TURN_TOKENS:
        if tok in vocab:
            return vocab[tok]
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    raise InputError("cannot find the model's end-of-turn token: it needs a chat template")


def render_chat(tokenizer, prompt: str, system: str | None = None) -> list[int]:
    """Chat-template token ids for one user turn, ready for the assistant's answer.

    Training, auditing and generation all use this, so they see exactly the same tokens."""
    messages = ([{"role": "system", "content": system}] if system is not None else []) + [
        {"role": "user", "content": prompt}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "keys"):  # transformers 5 may return a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


def encode_targets(tokenizer, texts: list[str]) -> list[list[int]]:
    """Answer tokens + end-of-turn, as the model would emit them after the assistant header."""
    eot = end_of_turn_id(tokenizer)
    batch = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [list(ids) + [eot] for ids in batch]


@dataclass
class TargetProblems:
    empty: list[str]
    duplicates: list[tuple[str, str]]  # (kept, duplicate) equal after normalisation
    collisions: list[tuple[str, str]]  # (prefix, longer): token sequence of one is a prefix of the other

    @property
    def ok(self) -> bool:
        return not (self.empty or self.duplicates or self.collisions)

    def summary(self) -> str:
        parts = []
        if self.empty:
            parts.append(f"{len(self.empty)} empty target(s)")
        if self.duplicates:
            a, b = self.duplicates[0]
            parts.append(f"{len(self.duplicates)} duplicate(s) after normalisation (e.g. {a!r} = {b!r})")
        if self.collisions:
            a, b = self.collisions[0]
            parts.append(f"{len(self.collisions)} prefix collision(s) (e.g. {a!r} is a prefix of {b!r})")
        return "; ".join(parts) or "prefix-free"


def check_targets(texts: list[str], token_ids: list[list[int]]) -> TargetProblems:
    empty = [t for t in texts if not t.strip()]
    seen: dict[str, str] = {}
    duplicates = []
    for t in texts:
        key = normalize(t)
        if key in seen:
            duplicates.append((seen[key], t))
        else:
            seen[key] = t
    # prefix collisions: sort token tuples; a prefix sorts immediately before some extension of it
    order = sorted(range(len(texts)), key=lambda i: token_ids[i])
    collisions = []
    for a, b in zip(order, order[1:]):
        sa, sb = token_ids[a], token_ids[b]
        if len(sa) <= len(sb) and sb[: len(sa)] == sa:
            collisions.append((texts[a], texts[b]))
    return TargetProblems(empty=empty, duplicates=duplicates, collisions=collisions)


@dataclass
class Trie:
    """Trie of target token sequences, nodes in DFS-compatible order (parents before children)."""

    tokens: np.ndarray  # [N] token id of each node
    parent: np.ndarray  # [N] parent node index, -1 for children of the root (the prompt)
    depth: np.ndarray  # [N] 0 for children of the root
    leaf_of: np.ndarray  # [T] node index where target t ends (its end-of-turn node)
    paths: list[np.ndarray]  # [T] node indices along target t

    @property
    def n_nodes(self) -> int:
        return len(self.tokens)


def build_trie(token_ids: list[list[int]]) -> Trie:
    children: list[dict[int, int]] = [{}]  # index 0 = root
    tokens, parent, depth = [-1], [-1], [-1]
    paths, leaf_of = [], []
    for seq in token_ids:
        node, path = 0, []
        for tok in seq:
            nxt = children[node].get(tok)
            if nxt is None:
                nxt = len(tokens)
                children[node][tok] = nxt
                children.append({})
                tokens.append(tok)
                parent.append(node)
                depth.append(depth[node] + 1)
            node = nxt
            path.append(node - 1)
        paths.append(np.array(path, dtype=np.int64))
        leaf_of.append(node - 1)
    # drop the root: node i+1 becomes i, root children get parent -1
    return Trie(tokens=np.array(tokens[1:], dtype=np.int64), parent=np.array(parent[1:], dtype=np.int64) - 1,
                depth=np.array(depth[1:], dtype=np.int64), leaf_of=np.array(leaf_of, dtype=np.int64), paths=paths)


def chunk_targets(token_ids: list[list[int]], max_nodes: int = 768) -> list[np.ndarray]:
    """Split targets into groups whose tries have <= max_nodes nodes (sorted, so prefixes stay shared).

    Attention over a packed sequence costs O(length^2) time and memory: 1000 names in one 2.5k-token
    pass took 47 s per step, 10x the 200-name pass for 5x the tokens. Several ~768-token passes
    (each repeating the short prompt) keep the cost linear."""
    order = sorted(range(len(token_ids)), key=lambda i: token_ids[i])
    chunks, current, nodes, prev = [], [], 0, []
    for i in order:
        seq = token_ids[i]
        shared = 0
        while shared < min(len(seq), len(prev)) and seq[shared] == prev[shared]:
            shared += 1
        new = len(seq) - (shared if current else 0)
        if current and nodes + new > max_nodes:
            chunks.append(np.array(current))
            current, nodes, new = [], 0, len(seq)
        current.append(i)
        nodes += new
        prev = seq
    if current:
        chunks.append(np.array(current))
    return chunks


def node_weights(trie: Trie, weights: np.ndarray) -> np.ndarray:
    """W[n] = sum of target weights whose path passes through node n.

    Then  sum_t w_t log P(t) = sum_n W[n] log p(token_n | ancestors): each shared prefix once."""
    w = np.zeros(trie.n_nodes)
    for t, path in enumerate(trie.paths):
        w[path] += weights[t]
    return w


def packed_inputs(prompt_ids: list[int], trie: Trie, dtype=None):
    """input_ids [1, L], position_ids [1, L], additive 4-D mask [1, 1, L, L], and for each node the
    sequence position whose logits predict it."""
    import torch

    dtype = dtype or torch.float32
    p, n = len(prompt_ids), trie.n_nodes
    length = p + n
    allowed = torch.zeros(length, length, dtype=torch.bool)
    allowed[:p, :p] = torch.tril(torch.ones(p, p, dtype=torch.bool))
    allowed[p:, :p] = True
    # each node sees its ancestors and itself; parents come first, so copy the parent's row
    node_rows = torch.zeros(n, n, dtype=torch.bool)
    parent = trie.parent.tolist()
    for i in range(n):
        if parent[i] >= 0:
            node_rows[i] = node_rows[parent[i]]
        node_rows[i, i] = True
    allowed[p:, p:] = node_rows
    mask = torch.zeros(length, length, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    input_ids = torch.tensor([list(prompt_ids) + trie.tokens.tolist()])
    position_ids = torch.tensor([list(range(p)) + (p + trie.depth).tolist()])
    # logits at position q predict the token after q: a root child is predicted by the prompt's last token
    predictor = torch.tensor(np.where(trie.parent < 0, p - 1, p + trie.parent))
    return input_ids, position_ids, mask[None, None], predictor


def _predictor_hidden(model, prompt_ids: list[int], trie: Trie, frozen=None, full: "DecodeTrie | None" = None):
    """(final hidden states [R, d] of the R distinct positions that predict some trie node, in one
    forward pass; for each node the row that predicts it; the LM head). With an unknown architecture
    the "hidden states" are already the full logits and the head is None. `frozen` (frozen.FrozenBelow,
    with `full`, the whole list's trie): the layers below the first LoRA layer come from its store."""
    import torch

    dtype = next(model.parameters()).dtype
    input_ids, position_ids, mask, predictor = packed_inputs(prompt_ids, trie, dtype)
    needed, rows = torch.unique(predictor, return_inverse=True)
    body, head = body_and_head(model)
    if frozen is not None:
        return frozen.upper(prompt_ids, trie, full)[needed], rows, head
    if body is None:  # unknown architecture: full logits
        logits = model(input_ids=input_ids, position_ids=position_ids, attention_mask=mask, use_cache=False).logits[0]
        return logits[needed].float(), rows, None
    hidden = body(input_ids=input_ids, position_ids=position_ids, attention_mask=mask, use_cache=False)[0][0]
    return hidden[needed], rows, head


def _predictor_logits(model, prompt_ids: list[int], trie: Trie, frozen=None, full=None):
    """LM-head logits [R, V] of the R distinct positions that predict some trie node, in one forward
    pass, and for each node the row that predicts it.

    Only those positions go through the LM head (not the prompt's earlier tokens, not the
    end-of-turn leaves): the head is ~20% of the model's FLOPs at a 49k vocabulary."""
    hidden, rows, head = _predictor_hidden(model, prompt_ids, trie, frozen, full)
    return (hidden if head is None else head(hidden).float()), rows


def node_logprobs(model, prompt_ids: list[int], trie: Trie, frozen=None, full=None):
    """log p(node token | prompt, ancestors) for every trie node, in one forward pass."""
    import torch

    logits, rows = _predictor_logits(model, prompt_ids, trie, frozen, full)
    logp = torch.log_softmax(logits, dim=-1)
    return logp[rows, torch.from_numpy(trie.tokens)]


def full_trie_nodes(trie: Trie, full: "DecodeTrie") -> np.ndarray:
    """Each node of `trie` (a chunk or subsample of a list's targets) as a node of the whole list's
    decode trie `full`."""
    out = np.empty(trie.n_nodes, dtype=np.int64)
    for i, (tok, par) in enumerate(zip(trie.tokens.tolist(), trie.parent.tolist())):
        out[i] = full.step(0 if par < 0 else int(out[par]), tok)
    if (out < 0).any():
        raise ValueError("a target is not in the full trie")
    return out


def node_q_logprobs(model, prompt_ids: list[int], trie: Trie, full: "DecodeTrie", with_mass: bool = True, frozen=None):
    """(log q, log z) for every trie node, in one forward pass.

    Constrained decoding samples each token among the children of the current node of the whole
    list's trie, renormalised: q(node) = p(token) / z with z = sum of p over those children. So
    log Q(t) = sum of log q along t, and log P(t) = log Q(t) + sum of log z (the mass kept at each
    step). The children come from `full`, not from `trie`: when `trie` holds a chunk or a subsample,
    the normaliser is still the sampler's.

    q needs only the children's logits: without `with_mass` (log z is then None) they are dot
    products with the head's rows for those tokens, and the vocabulary-wide head and softmax (10-20 %
    of a training step) are skipped."""
    import torch

    hidden, rows, head = _predictor_hidden(model, prompt_ids, trie, frozen, full)
    nodes = full_trie_nodes(trie, full)
    parent_full = np.where(trie.parent < 0, 0, nodes[np.maximum(trie.parent, 0)])
    row_full = np.zeros(hidden.shape[0], dtype=np.int64)
    row_full[rows.numpy()] = parent_full  # every node a row predicts has the same parent
    counts = full.start[row_full + 1] - full.start[row_full]
    row_idx = torch.from_numpy(np.repeat(np.arange(len(row_full)), counts))
    tok_idx = torch.from_numpy(np.concatenate([full.child_tok[full.start[f]:full.start[f + 1]] for f in row_full]))
    gather = head is not None and not with_mass and isinstance(head, torch.nn.Linear) and head.bias is None
    if gather:  # children's logits only: sum over d of h[row] * W[token]
        vals = (hidden[row_idx].float() * head.weight[tok_idx].float()).sum(-1)
    else:
        logits = hidden if head is None else head(hidden).float()
        vals = logits[row_idx, tok_idx]
    top = torch.full((len(row_full),), -torch.inf).scatter_reduce(0, row_idx, vals.detach(), "amax")
    lse_valid = top + torch.log(torch.zeros(len(row_full)).index_add(0, row_idx, torch.exp(vals - top[row_idx])))
    # each node's own logit, found among its parent row's children (sorted by token within a row)
    first = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)[:-1]]))
    pos = first[rows] + torch.from_numpy(np.array([np.searchsorted(full.child_tok[full.start[f]:full.start[f + 1]], t)
                                                     for f, t in zip(row_full[rows.numpy()], trie.tokens)], dtype=np.int64))
    log_q = vals[pos] - lse_valid[rows]
    if not with_mass:
        return log_q, None
    log_z = (lse_valid - torch.logsumexp(logits, dim=-1))[rows]
    return log_q, log_z


def body_and_head(model):
    """(decoder body, lm_head) of a causal LM, also through a peft wrapper; (None, None) if unknown."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    body, head = getattr(inner, "model", None), getattr(inner, "lm_head", None)
    return (body, head) if body is not None and head is not None else (None, None)


def target_logprobs(trie: Trie, node_lp) -> np.ndarray:
    """log P(target) = sum of its nodes' log-probs."""
    lp = node_lp.detach().double().numpy()
    return np.array([lp[path].sum() for path in trie.paths])


# --- constrained decoding ------------------------------------------------------------------------

@dataclass
class DecodeTrie:
    """A target trie compiled for decoding: node 0 is the root (the end of the prompt), every other
    node one token. Children of node n are child_tok/child_node[start[n]:start[n+1]], sorted by
    token, so a step is a binary search and the allowed tokens are one slice.

    Built from answer tokens + end-of-turn (encode_targets): end-of-turn is allowed exactly where
    an item ends, and an item that is a prefix of another ("Ann", "Anna") stays reachable."""

    start: np.ndarray  # [N+1] int64
    child_tok: np.ndarray  # [E] int64
    child_node: np.ndarray  # [E] int64
    eot: int
    max_len: int  # longest item in tokens, end-of-turn included

    @classmethod
    def build(cls, token_ids: list[list[int]], eot: int) -> "DecodeTrie":
        trie = build_trie(token_ids)
        parent = trie.parent + 1  # root = 0, node i -> i + 1
        order = np.lexsort((trie.tokens, parent))  # group by parent, children sorted by token
        counts = np.bincount(parent, minlength=trie.n_nodes + 1)
        start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(start=start, child_tok=trie.tokens[order].astype(np.int64),
                   child_node=(order + 1).astype(np.int64), eot=int(eot),
                   max_len=int(max((len(t) for t in token_ids), default=0)))

    def allowed(self, node: int) -> np.ndarray:
        """Tokens that continue some item from `node` (only end-of-turn after a dead end)."""
        if node < 0:
            return np.array([self.eot], dtype=np.int64)
        return self.child_tok[self.start[node]:self.start[node + 1]]

    def step(self, node: int, token: int) -> int:
        """The child of `node` reached by `token`, or -1 (off the trie)."""
        if node < 0:
            return -1
        lo, hi = int(self.start[node]), int(self.start[node + 1])
        k = lo + int(np.searchsorted(self.child_tok[lo:hi], token))
        return int(self.child_node[k]) if k < hi and self.child_tok[k] == token else -1

    def walk(self, tokens) -> int:
        node = 0
        for t in tokens:
            node = self.step(node, int(t))
        return node

    def save(self, path) -> None:
        np.savez(path, start=self.start, child_tok=self.child_tok, child_node=self.child_node,
                 meta=np.array([self.eot, self.max_len], dtype=np.int64))

    @classmethod
    def load(cls, path) -> "DecodeTrie":
        with np.load(path) as z:
            eot, max_len = (int(x) for x in z["meta"])
            return cls(start=z["start"], child_tok=z["child_tok"], child_node=z["child_node"], eot=eot,
                       max_len=max_len)


def decode_trie_file(tokenizer, items: list[str], cache_dir) -> tuple[str, DecodeTrie]:
    """The decode trie of `items` under this tokenizer, cached on disk by the digest of its token ids
    (so a changed list or tokenizer can never hit a stale file). Returns (path, trie)."""
    import hashlib
    import os
    from pathlib import Path

    token_ids = encode_targets(tokenizer, items)
    eot = end_of_turn_id(tokenizer)
    h = hashlib.sha256(str(eot).encode())
    for ids in token_ids:
        h.update(np.asarray(ids, dtype=np.int64).tobytes() + b"|")
    path = Path(cache_dir) / f"{h.hexdigest()[:24]}.npz"
    if path.is_file():
        return str(path), DecodeTrie.load(path)
    problems = check_targets(items, token_ids)
    if problems.collisions:  # only possible without an end-of-turn token at the end
        raise InputError(f"the list is not prefix-free under this tokenizer: {problems.summary()}")
    trie = DecodeTrie.build(token_ids, eot)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    trie.save(tmp)
    os.replace(tmp, path)  # atomic: engine processes only ever see a whole file
    return str(path), trie


@dataclass
class ListCheck:
    name: str
    path: str
    targets: int
    trie_tokens: int
    max_tokens: int
    problems: TargetProblems


def check_lists(specs, tokenizer) -> list[ListCheck]:
    """Every spec's targets tokenised as training sees them (answer + end-of-turn), checked for
    empty targets, duplicates after normalisation and prefix collisions."""
    from .lists import expand, load_targets

    out = []
    for spec in (x for s in specs for x in expand(s)):
        texts, _ = load_targets(spec)
        ids = encode_targets(tokenizer, texts)
        out.append(ListCheck(spec.name, str(spec.path), len(texts), build_trie(ids).n_nodes, max(map(len, ids)),
                             check_targets(texts, ids)))
    return out
