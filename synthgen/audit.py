"""Exact, sample-free view of a model (+ adapter) on a list: the same trie scoring as training.

For each prompt of a spec: P(t) = P(t + end-of-turn | prompt) for every target t, then
  mass      = sum_t P(t)                      (probability of a valid answer)
  entropy   = H(P / mass) in bits vs log2(#targets) and H(p*)
  KL        = KL(p* || P / mass) in bits
  expected distinct valid answers in N draws = sum_t 1 - (1 - P(t))^N
Metrics are averaged over the spec's prompts (or the ones given).

Constrained decoding (engine/trie_processor.py) masks every step to the trie and renormalises, so
it samples Q(t) = prod over t's tokens of p(token) / sum of p over the allowed tokens there, which
is not P(t | valid) = P(t) / mass. Both come from the same trie pass; we report H(Q),
KL(Q || P(.|valid)) (the distortion the mask adds), KL(Q || p*) and expected distinct under Q.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from . import targets as T
from .entropy import entropy_bits
from .lists import ListSpec, load_targets

LOG2 = math.log(2)


@dataclass
class AuditResult:
    name: str
    n_targets: int
    mass: float
    entropy_bits: float
    max_entropy_bits: float
    target_entropy_bits: float
    kl_bits: float
    expected_distinct: dict  # N -> expected distinct valid answers
    top: list  # [(text, prob, target prob)]
    # constrained decoding's distribution Q (see the module docstring)
    q_entropy_bits: float = float("nan")
    kl_q_valid_nats: float = float("nan")  # KL(Q || P(.|valid))
    kl_q_target_bits: float = float("nan")  # KL(Q || p*)
    q_expected_distinct: dict | None = None

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def score_paths(model, prompt_ids, token_ids: list[list[int]], max_nodes: int = 1024, frozen=None,
                full=None) -> list[np.ndarray]:
    """log p(token | prompt, earlier tokens) along every target, one packed pass per trie chunk
    (bounded time and memory). `frozen` (frozen.FrozenBelow, with `full`, the list's decode trie):
    the frozen layers' states from its store."""
    import torch

    out: list = [None] * len(token_ids)
    with torch.no_grad():
        for idx in T.chunk_targets(token_ids, max_nodes):
            trie = T.build_trie([token_ids[i] for i in idx])
            lp = T.node_logprobs(model, prompt_ids, trie, frozen, full).double().numpy()
            for k, i in enumerate(idx):
                out[i] = lp[trie.paths[k]]
    return out


def constrained_logprobs(token_ids: list[list[int]], path_lps: list[np.ndarray]) -> np.ndarray:
    """log Q(t) of trie-constrained sampling at temperature 1: at each node the allowed tokens are
    its children, renormalised. Needs every target's path log-probs (score_paths)."""
    trie = T.build_trie(token_ids)
    node_lp = np.empty(trie.n_nodes)
    for path, lp in zip(trie.paths, path_lps):
        node_lp[path] = lp
    group = trie.parent + 1  # siblings share a parent (0 = the root)
    top = np.full(trie.n_nodes + 1, -np.inf)
    np.maximum.at(top, group, node_lp)
    z = np.zeros(trie.n_nodes + 1)
    np.add.at(z, group, np.exp(node_lp - top[group]))
    log_cond = node_lp - (top[group] + np.log(z[group]))  # log p(token) - log sum_siblings p
    return np.array([log_cond[path].sum() for path in trie.paths])


def metrics(name: str, texts, p_star: np.ndarray, logp: np.ndarray, ns=(100, 500, 1000),
            logq: np.ndarray | None = None) -> AuditResult:
    prob = np.exp(logp)
    mass = float(prob.sum())
    q = prob / mass
    entropy = entropy_bits(q)
    kl = float((p_star * (np.log(p_star) - np.log(np.maximum(q, 1e-300)))).sum()) / LOG2  # q may underflow to 0
    h_star = entropy_bits(p_star)
    expected = {int(n): float((1 - (1 - prob) ** n).sum()) for n in ns}
    order = np.argsort(-prob)[:10]
    top = [(texts[i], float(prob[i]), float(p_star[i])) for i in order]
    result = AuditResult(name, len(texts), mass, entropy, math.log2(len(texts)), h_star, kl, expected, top)
    if logq is not None:
        qq = np.exp(logq)
        result.q_entropy_bits = float(-(qq * logq).sum()) / LOG2
        result.kl_q_valid_nats = float((qq * (logq - np.log(np.maximum(q, 1e-300)))).sum())
        result.kl_q_target_bits = float((qq * (logq - np.log(p_star))).sum()) / LOG2
        result.q_expected_distinct = {int(n): float((1 - (1 - qq) ** n).sum()) for n in ns}
    return result


def average(results: list[AuditResult]) -> AuditResult:
    """Mean of per-prompt metrics; `top` from the first prompt."""
    r0 = results[0]
    mean = lambda attr: float(np.mean([getattr(r, attr) for r in results]))  # noqa: E731
    mean_dict = lambda attr: {n: float(np.mean([getattr(r, attr)[n] for r in results]))  # noqa: E731
                              for n in getattr(r0, attr)} if getattr(r0, attr) is not None else None
    return AuditResult(r0.name, r0.n_targets, mean("mass"), mean("entropy_bits"), r0.max_entropy_bits,
                       r0.target_entropy_bits, mean("kl_bits"), mean_dict("expected_distinct"), r0.top,
                       mean("q_entropy_bits"), mean("kl_q_valid_nats"), mean("kl_q_target_bits"),
                       mean_dict("q_expected_distinct"))


def audit(model, tokenizer, spec: ListSpec, *, prompts: list[str] | None = None, adapter_off: bool = False,
          ns=(100, 500, 1000), frozen=None, full=None) -> AuditResult:
    """Audit one spec. With `adapter_off`, a peft model is scored as its base model. `frozen`/`full`:
    see score_paths (`full` built from this spec's targets)."""
    texts, p_star = load_targets(spec)
    token_ids = T.encode_targets(tokenizer, texts)
    ctx = model.disable_adapter() if adapter_off and hasattr(model, "disable_adapter") else nullcontext()
    results = []
    with ctx:
        for prompt in prompts or spec.prompts:
            paths = score_paths(model, T.render_chat(tokenizer, prompt), token_ids, frozen=frozen, full=full)
            logp = np.array([lp.sum() for lp in paths])
            results.append(metrics(spec.name, texts, p_star, logp, ns, constrained_logprobs(token_ids, paths)))
    return average(results)


def base_audit(model, tokenizer, spec: ListSpec, model_path: str, *, prompts: list[str], frozen=None, full=None) -> dict:
    """audit(..., adapter_off=True) as a dict, cached under SYNTHGEN_HOME/audits: the base's audit depends
    only on the model's files, the list, the prompts and this module, and a staged build or a rebuild of
    the same list needs it again (birth dates: ~1 min in fp32). A model that is not a local directory is
    not cached."""
    import hashlib
    import json
    from pathlib import Path

    from .atomic import write_atomic
    from .models import synthgen_home

    weights = sorted(Path(model_path).glob("*.safetensors")) if Path(model_path).is_dir() else []
    if not weights:
        return audit(model, tokenizer, spec, prompts=prompts, adapter_off=True, frozen=frozen, full=full).to_dict()
    texts, p_star = load_targets(spec)
    key = json.dumps([str(Path(model_path).resolve()), [(w.name, w.stat().st_size, w.stat().st_mtime_ns) for w in weights],
                      spec.name, prompts, texts, np.round(p_star, 12).tolist(), Path(__file__).read_text()])  # this code too
    path = synthgen_home() / "audits" / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".json")
    if path.is_file():
        out = json.loads(path.read_text())
        for k in ("expected_distinct", "q_expected_distinct"):  # JSON made the draw counts strings
            out[k] = {int(n): v for n, v in out[k].items()} if out.get(k) else out.get(k)
        return out
    out = audit(model, tokenizer, spec, prompts=prompts, adapter_off=True, frozen=frozen, full=full).to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(out))
    return out


def audit_specs(specs: list[ListSpec], model_dir: str, adapter: str | None = None,
                prompts: list[str] | None = None) -> list[tuple[str, dict, dict | None]]:
    """(list name, base model's audit, adapter's audit or None) per spec, as dicts (AuditResult.to_dict)."""
    from .engine import check_adapter
    from .models import load_base

    if adapter:
        check_adapter(adapter, model_dir)  # refuses an adapter trained for another base model
    tok, model = load_base(model_dir)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    from .lists import expand

    rows = []
    for spec in specs:
        parts = expand(spec)  # a conditional spec: one list per value of its variables, then their mean
        results = [(audit(model, tok, x, prompts=prompts, adapter_off=bool(adapter)),
                    audit(model, tok, x, prompts=prompts) if adapter else None) for x in parts]
        rows += [(x.name, b.to_dict(), a.to_dict() if a else None) for x, (b, a) in zip(parts, results)]
        if len(parts) > 1:
            rows.append((f"{spec.name} (mean of {len(parts)})", average([b for b, _ in results]).to_dict(),
                         average([a for _, a in results]).to_dict() if adapter else None))
    return rows


# Capability guard: a diffuse adapter must not wreck the model's general behaviour.
GENERAL_PARAGRAPH = (
    "The water cycle describes how water evaporates from the surface of the earth, rises into the "
    "atmosphere, cools and condenses into clouds, and falls again to the surface as precipitation. "
    "Rivers carry much of this water back to the oceans, where the cycle begins again."
)
QUESTIONS = ["What is the capital of France?", "How many legs does a spider have?",
             "Write one sentence about the sea."]


def perplexity(model, tokenizer, text: str = GENERAL_PARAGRAPH) -> float:
    import torch

    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss
    return float(torch.exp(loss))


def greedy_answers(model, tokenizer, questions=QUESTIONS, max_new_tokens: int = 24) -> list[str]:
    import torch

    out = []
    for q in questions:
        ids = torch.tensor([T.render_chat(tokenizer, q)])
        with torch.no_grad():
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=T.end_of_turn_id(tokenizer))
        out.append(tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return out


def capability_check(peft_model, tokenizer, max_ppl_ratio: float = 1.5) -> dict:
    """Perplexity on a fixed paragraph and answers to fixed questions, base vs adapter."""
    with peft_model.disable_adapter():
        base_ppl, base_answers = perplexity(peft_model, tokenizer), greedy_answers(peft_model, tokenizer)
    ppl, answers = perplexity(peft_model, tokenizer), greedy_answers(peft_model, tokenizer)
    ratio = ppl / base_ppl
    return {"perplexity_base": round(base_ppl, 3), "perplexity_adapter": round(ppl, 3),
            "perplexity_ratio": round(ratio, 3), "threshold": max_ppl_ratio, "degraded": ratio > max_ppl_ratio,
            "answers": [{"question": q, "base": b, "adapter": a} for q, b, a in zip(QUESTIONS, base_answers, answers)]}
