"""Exact, sample-free view of a model (+ adapter) on a list: the same trie scoring as training.

For each prompt of a spec: P(t) = P(t + end-of-turn | prompt) for every target t, then
  mass      = sum_t P(t)                      (probability of a valid answer)
  entropy   = H(P / mass) in bits vs log2(#targets) and H(p*)
  KL        = KL(p* || P / mass) in bits
  expected distinct valid answers in N draws = sum_t 1 - (1 - P(t))^N
Metrics are averaged over the spec's prompts (or the ones given).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from . import targets as T
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

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def score_targets(model, prompt_ids, token_ids: list[list[int]], max_nodes: int = 1024) -> np.ndarray:
    """log P(t | prompt) for every target, one packed pass per trie chunk (bounded time and memory)."""
    import torch

    out = np.empty(len(token_ids))
    with torch.no_grad():
        for idx in T.chunk_targets(token_ids, max_nodes):
            trie = T.build_trie([token_ids[i] for i in idx])
            out[idx] = T.target_logprobs(trie, T.node_logprobs(model, prompt_ids, trie))
    return out


def metrics(name: str, texts, p_star: np.ndarray, logp: np.ndarray, ns=(100, 500, 1000)) -> AuditResult:
    prob = np.exp(logp)
    mass = float(prob.sum())
    q = prob / mass
    nz = q > 0
    entropy = float(-(q[nz] * np.log(q[nz])).sum()) / LOG2
    kl = float((p_star * (np.log(p_star) - np.log(np.maximum(q, 1e-300)))).sum()) / LOG2
    h_star = float(-(p_star * np.log(p_star)).sum()) / LOG2
    expected = {int(n): float((1 - (1 - prob) ** n).sum()) for n in ns}
    order = np.argsort(-prob)[:10]
    top = [(texts[i], float(prob[i]), float(p_star[i])) for i in order]
    return AuditResult(name, len(texts), mass, entropy, math.log2(len(texts)), h_star, kl, expected, top)


def average(results: list[AuditResult]) -> AuditResult:
    """Mean of per-prompt metrics; `top` from the first prompt."""
    r0 = results[0]
    mean = lambda attr: float(np.mean([getattr(r, attr) for r in results]))  # noqa: E731
    return AuditResult(r0.name, r0.n_targets, mean("mass"), mean("entropy_bits"), r0.max_entropy_bits,
                       r0.target_entropy_bits, mean("kl_bits"),
                       {n: float(np.mean([r.expected_distinct[n] for r in results])) for n in r0.expected_distinct},
                       r0.top)


def audit(model, tokenizer, spec: ListSpec, *, prompts: list[str] | None = None, adapter_off: bool = False,
          ns=(100, 500, 1000)) -> AuditResult:
    """Audit one spec. With `adapter_off`, a peft model is scored as its base model."""
    texts, p_star = load_targets(spec)
    token_ids = T.encode_targets(tokenizer, texts)
    ctx = model.disable_adapter() if adapter_off and hasattr(model, "disable_adapter") else nullcontext()
    results = []
    with ctx:
        for prompt in prompts or spec.prompts:
            logp = score_targets(model, T.render_chat(tokenizer, prompt), token_ids)
            results.append(metrics(spec.name, texts, p_star, logp, ns))
    return average(results)


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
