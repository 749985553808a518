"""Diffuse LoRA training over packed target tries, for the distribution that is sampled.

The paper's loss (Zhang et al., 2024) is for free sampling from P:

    paper(prompt) = - sum_t p*(t) log P(t + end-of-turn | prompt)

Constrained decoding (engine/trie_processor.py) samples Q instead: at every step the model's
next-token distribution masked to the list's trie and renormalised, so
log P(t) = log Q(t) + log M(t), M(t) being the product of the mass kept at each step. The
objectives, one family:

    q       - sum_t p*(t) log Q(t)                       exact for the trie sampler (T = 1)
    mixed   - sum_t p*(t) [log Q(t) + w log M(t)]        Q, plus w x a term that keeps P's mass on the list
    paper   - sum_t p*(t) log P(t)                       = mixed with w = 1

Each has its minimum H(p*) (q: when Q = p*; the others also need M = 1). Each step samples
prompts from the specs' paraphrases; each prompt is one packed forward pass over the trie of its
targets (targets.py). Lists too big for one pass use an unbiased subsample of targets drawn from
p* per step; Q's normaliser always comes from the whole list's trie.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import targets as T
from .entropy import entropy_bits
from .errors import InputError
from .audit import capability_check
from .card import ADAPTER_CARD, AdapterCard, adapter_readme, read_card
from .lists import ListSpec, expand, load_targets
from .models import load_base, model_fingerprint
from .output import recover, replace_files
from .frozen import FrozenBelow
from .keep import KEEP_TEXTS, Keep
from .train_config import TrainConfig

@dataclass
class Task:
    """One list spec, tokenised: targets, p*, and the full trie when it fits one pass."""

    spec: ListSpec
    texts: list[str]
    p: np.ndarray
    token_ids: list[list[int]]
    prompt_ids: list[list[int]]
    subsample: bool = False  # more targets than one step takes: draw an unbiased subsample
    full: T.DecodeTrie | None = None  # the whole list's trie: Q's normaliser
    _order: np.ndarray | None = field(default=None, repr=False)  # targets in token order (step_problem)
    group: str | None = None  # the conditional spec this list was expanded from (the stop rule's unit)

    @property
    def entropy(self) -> float:  # nats: the loss's floor, H(p*)
        return entropy_bits(self.p) * math.log(2)

    def step_problem(self, rng: np.random.Generator, max_targets: int):
        """(target token ids, weights) whose weighted log-likelihood is an unbiased estimate of the loss.

        Systematic sampling over the targets in trie (token) order: draws at u/M, (u+1)/M, ... of
        p*'s cumulative sum, u ~ U[0, 1). Each target is drawn M p*(t) times in expectation, as with
        independent draws, but every trie node's targets are a contiguous run, so each node's
        weight is within 1/M of its exact weight: the top of the trie, where most of the loss
        is, gets nearly no sampling noise."""
        if not self.subsample:
            return self.token_ids, self.p
        order = self.trie_order
        cum = np.cumsum(self.p[order])
        points = (rng.random() + np.arange(max_targets)) / max_targets
        draws = order[np.minimum(np.searchsorted(cum / cum[-1], points, side="right"), len(order) - 1)]
        idx, counts = np.unique(draws, return_counts=True)
        return [self.token_ids[i] for i in idx], counts / max_targets

    @property
    def trie_order(self) -> np.ndarray:
        if self._order is None:
            self._order = np.array(sorted(range(len(self.token_ids)), key=self.token_ids.__getitem__), dtype=np.int64)
        return self._order


def prepare_task(tokenizer, spec: ListSpec, max_targets: int) -> Task:
    texts, p = load_targets(spec)
    token_ids = T.encode_targets(tokenizer, texts)
    problems = T.check_targets(texts, token_ids)
    if not problems.ok:
        raise InputError(f"list {spec.name!r} is not a valid target set: {problems.summary()} "
                         f"(see `synthgen check-targets {spec.path or spec.name}`)")
    prompts = [T.render_chat(tokenizer, pr) for pr in spec.prompts]
    return Task(spec, texts, p, token_ids, prompts, subsample=len(texts) > max_targets,
                full=T.DecodeTrie.build(token_ids, T.end_of_turn_id(tokenizer)))


def check_trainable(specs: list[ListSpec]) -> None:
    """Every list loads and has at least 2 items (a diffuse adapter spreads over several answers);
    run before the model loads, so a bad list fails in a second."""
    from .lists import load_targets

    for spec in (x for s in specs for x in expand(s)):
        items, _ = load_targets(spec)
        if len(items) < 2:
            raise InputError(f"{spec.path}: the list has {len(items)} item(s): a diffuse adapter needs at "
                             "least 2 answers to spread over")


def trie_loss(model, prompt_ids, trie: T.Trie, weights: np.ndarray, full: T.DecodeTrie | None = None,
              mass_term: float | None = None, frozen=None):
    """The objective for one prompt, computed once per trie node, and log P per target.

    mass_term None: the paper's - sum_t w_t log P(t | prompt). Else - sum_t w_t [log Q(t) +
    mass_term log M(t)] with Q normalised over the children in `full` (the whole list's trie).
    mass_term 0 (the q objective) needs no vocabulary-wide softmax: log P is then None. `frozen`
    (frozen.FrozenBelow, --layers): the frozen layers' states come from its store."""
    import torch

    if mass_term is None:
        node_lp = T.node_logprobs(model, prompt_ids, trie, frozen, full)
        w = torch.from_numpy(T.node_weights(trie, weights)).to(node_lp.dtype)
        return -(w * node_lp).sum(), T.target_logprobs(trie, node_lp)
    log_q, log_z = T.node_q_logprobs(model, prompt_ids, trie, full, with_mass=mass_term != 0, frozen=frozen)
    w = torch.from_numpy(T.node_weights(trie, weights)).to(log_q.dtype)
    if log_z is None:
        return -(w * log_q).sum(), None
    return -(w * (log_q + mass_term * log_z)).sum(), T.target_logprobs(trie, log_q + log_z)


def packed_backward(model, prompt_ids, token_ids: list[list[int]], weights: np.ndarray, scale: float = 1.0, max_nodes: int = 768,
                    **loss_kw) -> tuple[float, np.ndarray]:
    """Loss and gradient for one prompt over all its targets, one packed pass per trie chunk (`loss_kw`: trie_loss's).

    Gradients accumulate chunk by chunk, so memory stays that of one chunk. Returns the loss and
    log P(t | prompt) for every target (NaN under the q objective, which does not compute P)."""
    total, logp = 0.0, np.full(len(token_ids), np.nan)
    for idx in T.chunk_targets(token_ids, max_nodes):
        trie = T.build_trie([token_ids[i] for i in idx])
        loss, lp = trie_loss(model, prompt_ids, trie, weights[idx], **loss_kw)
        (loss * scale).backward()
        total += float(loss.detach())
        if lp is not None:
            logp[idx] = lp
    return total, logp


@dataclass
class StepLog:
    step: int
    loss: dict  # task -> loss (nats) this step
    mass: dict  # task -> P's mass on the valid set (full lists) or on the sampled subset; none under --objective q
    seconds: float
    keep: float | None = None  # KL(base || adapter) on this step's general text, nats per token (--keep-weight)
    lr: float | None = None  # the learning rate this step ran at (--lr-schedule)


CONFIRM_EVERY = 5  # steps between the first two whole-list confirmations of the stop rule


def confirm_gap(k: int) -> int:
    """Steps to wait after k confirmations that said no: 5, 10, 20, then 20."""
    return CONFIRM_EVERY * 2 ** min(k - 1, 2)


def should_stop(ema: dict, tasks: list[Task], gamma: float) -> bool:
    """Every spec's loss within gamma x H(p*) of its floor; a conditional spec's lists as one, their mean loss against
    their mean H(p*) as its card reports them (the worst of 14 lists' noisy averages stays above long after)."""
    groups: dict[str, list[Task]] = {}
    for t in tasks:
        groups.setdefault(t.group or t.spec.name, []).append(t)
    return all(all(t.spec.name in ema for t in g) and sum(ema[t.spec.name] for t in g) <= (1 + gamma) * sum(t.entropy for t in g)
               for g in groups.values())


def exact_loss(model, task: Task, mass_term: float | None, n_prompts: int | None = None, max_nodes: int = 768, frozen=None) -> float:
    """The objective over the task's whole list, averaged over its first `n_prompts` prompts (the
    ones the card audits; default all), without gradients. The stop rule confirms with it: a
    subsampled step's loss is noisy, and its moving average can dip below (1+gamma) H(p*) well
    before the model is there (surnames stopped at 0.13 bits that way)."""
    import torch

    prompts = task.prompt_ids[:n_prompts] if n_prompts else task.prompt_ids
    chunks = [(idx, T.build_trie([task.token_ids[i] for i in idx])) for idx in T.chunk_targets(task.token_ids, max_nodes)]
    total = 0.0
    with torch.no_grad():
        for prompt in prompts:
            for idx, trie in chunks:
                total += float(trie_loss(model, prompt, trie, task.p[idx], task.full, mass_term, frozen)[0])
    return total / len(prompts)


def train(model_path: str, specs: list[ListSpec], out: str | Path, cfg: TrainConfig, *, resume: bool = False,
          overwrite: bool = False, base_name: str | None = None,
          on_step: Callable[[StepLog, dict, list[Task]], None] | None = None) -> AdapterCard:
    """Train one adapter on all specs; write it atomically to `out`. Returns the adapter card.
    (torch's thread count is the caller's: `torch.set_num_threads` before.)"""
    out = Path(out)
    partial = out.with_name(out.name + ".partial")  # checkpoints live here until the final rename
    out.parent.mkdir(parents=True, exist_ok=True)
    recover(out)  # a kill inside a swap left the old copy aside: back in place
    recover(partial)
    if out.exists() and not overwrite:
        raise InputError(f"{out} already exists: pass --overwrite to replace it")
    if partial.exists() and not resume:
        raise InputError(f"{partial} holds an interrupted run: pass --resume to continue it, or delete it")
    if resume and not (partial / "trainer_state.pt").is_file():
        raise InputError(f"nothing to resume: {partial} has no checkpoint")
    if not specs:
        raise InputError("give at least one list spec")
    groups = [(s.name if s.variables else None, x) for s in specs for x in expand(s)]  # a conditional spec: a list per value
    tok, base = load_base(model_path)
    tasks = [replace(prepare_task(tok, x, cfg.max_targets), group=g) for g, x in groups]
    loop = _Loop(base, tok, model_path, tasks, cfg, partial if resume else None)
    try:
        loop.run(partial, on_step)
    except KeyboardInterrupt:
        loop.checkpoint(partial)
        raise
    card = _card(loop, tok, model_path, base_name)
    _write_adapter(loop.model, card, out)
    shutil.rmtree(partial, ignore_errors=True)
    return card


class _Loop:
    """The optimiser loop and what a checkpoint keeps of it (optimiser, sampling RNG, history, the
    stop rule's moving averages and its exact confirmations, the step, the seconds spent)."""

    def __init__(self, base, tok, model_path: str, tasks: list[Task], cfg: TrainConfig, resume_from: Path | None):
        import torch
        from peft import LoraConfig, PeftModel, get_peft_model

        self.tasks, self.cfg, self.started = tasks, cfg, time.time()
        self.specs = [t.spec.digest() for t in tasks]
        state = None
        if resume_from is not None:
            self.model = PeftModel.from_pretrained(base, resume_from / "adapter", is_trainable=True)
            state = torch.load(resume_from / "trainer_state.pt", weights_only=False)
            if state["config"] != asdict(cfg) or state["specs"] != self.specs:
                raise InputError(f"{resume_from} was started with other settings or lists: delete it or use the same ones")
        else:
            torch.manual_seed(cfg.seed)
            n = base.config.num_hidden_layers  # a model with fewer layers than --layers: all of them
            lcfg = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules=cfg.target_modules, lora_dropout=0.0,
                              bias="none", task_type="CAUSAL_LM",
                              layers_to_transform=list(range(max(n - cfg.layers, 0), n)) if cfg.layers else None)
            self.model = get_peft_model(base, lcfg) if not cfg.init_from else init_adapter(base, cfg, model_path)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=0.0)
        self.rng = np.random.default_rng(cfg.seed)
        self.history: list[dict] = []
        self.ema: dict[str, float] = {}
        self.checks: list[dict] = []  # the stop rule's exact confirmations: step -> whole-list loss per task
        self.step = 0
        if state:
            self.opt.load_state_dict(state["optimizer"])
            self.rng.bit_generator.state = state["rng"]
            self.history, self.ema, self.step = state["history"], state["ema"], state["step"]
            self.checks = state.get("checks", [])
            self.started -= state["seconds"]
        self.precision = cfg.resolved_precision()
        self.keep = Keep(self.model, tok) if cfg.keep_weight > 0 else None
        self.frozen = FrozenBelow.of(self.model)  # --layers: the frozen layers' states, once per prompt and node

    def checkpoint(self, partial: Path) -> None:
        import torch

        tmp = Path(tempfile.mkdtemp(dir=partial.parent, prefix=partial.name + ".", suffix=".tmp"))
        self.model.save_pretrained(tmp / "adapter")
        torch.save({"optimizer": self.opt.state_dict(), "rng": self.rng.bit_generator.state, "history": self.history,
                    "ema": self.ema, "checks": self.checks, "step": self.step, "config": asdict(self.cfg), "specs": self.specs,
                    "seconds": time.time() - self.started}, tmp / "trainer_state.pt")
        replace_files([partial], lambda: os.rename(tmp, partial))  # the last checkpoint goes once the new is in place

    def stop(self) -> bool:
        """The moving average says the loss is there: confirm on the whole lists, in fp32. A
        confirmation costs several steps (careers: 4 prompts x 1,156 targets, ~3 steps; birth
        dates' 24,472 targets, ~10), and near the bound the moving average says "stop" again at
        once: after k confirmations that said no, the next waits confirm_gap(k) steps."""
        cfg, tasks = self.cfg, self.tasks
        if not should_stop(self.ema, tasks, cfg.gamma):
            return False
        if self.checks and self.step - self.checks[-1]["step"] < confirm_gap(len(self.checks)):
            return False
        n = cfg.audit_prompts
        exact = {t.spec.name: exact_loss(self.model, t, cfg.mass_term, n, frozen=self.frozen) for t in tasks}
        if self.precision == "both":  # trained for both: confirmed in both (the bf16 pass under autocast)
            import torch

            with torch.autocast("cuda" if torch.cuda.is_available() else "cpu", dtype=torch.bfloat16):
                exact = {t.spec.name: (exact[t.spec.name] + exact_loss(self.model, t, cfg.mass_term, n, frozen=self.frozen)) / 2
                         for t in tasks}
        self.checks.append({"step": self.step, "loss": exact})
        self.ema.update(exact)
        return should_stop(self.ema, tasks, cfg.gamma)

    def run(self, partial: Path, on_step) -> None:
        self.model.train()
        while self.step < self.cfg.steps and not self.stop():
            log = self.one_step()
            for k, v in log.loss.items():
                self.ema[k] = v if k not in self.ema else 0.7 * self.ema[k] + 0.3 * v
            self.history.append(asdict(log))
            if on_step:
                on_step(log, self.ema, self.tasks)
            if self.step % self.cfg.checkpoint_every == 0:
                self.checkpoint(partial)
        self.seconds = time.time() - self.started

    def one_step(self) -> StepLog:
        import torch

        cfg, rng, t0 = self.cfg, self.rng, time.time()
        device = "cuda" if torch.cuda.is_available() else "cpu"
        losses: dict[str, list[float]] = {}
        masses: dict[str, list[float]] = {}
        # "both": the same problem through an fp32 and a bf16 pass, half the gradient each: generation
        # runs the dtype each machine is fastest in, and at a two-item list's logits bf16 alone moves the split
        passes = [False, True] if self.precision == "both" else [self.precision == "bf16"]
        for k in range(cfg.prompts_per_step):  # the lists in turn (with as many prompts per step as lists: each every step)
            task = self.tasks[(self.step * cfg.prompts_per_step + k) % len(self.tasks)]
            prompt = task.prompt_ids[rng.integers(len(task.prompt_ids))]
            ids, w = task.step_problem(rng, cfg.max_targets)
            for bf16 in passes:
                with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
                    loss, lp = packed_backward(self.model, prompt, ids, w, scale=1 / cfg.prompts_per_step / len(passes),
                                               full=task.full, mass_term=cfg.mass_term, frozen=self.frozen)
                losses.setdefault(task.spec.name, []).append(loss)
                if not np.isnan(lp).any():  # the q objective does not compute P's mass
                    masses.setdefault(task.spec.name, []).append(float(np.exp(lp).sum()))
        keep = None
        if self.keep is not None:  # one general text a step, in turn; in fp32 (0 for an adapter still at the base)
            kl = self.keep.kl(self.model, self.step % len(KEEP_TEXTS), self.frozen)
            (cfg.keep_weight * kl).backward()
            keep = float(kl.detach())
        lr = cfg.lr_at(self.step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.step += 1
        return StepLog(self.step, {k: float(np.mean(v)) for k, v in losses.items()},
                       {k: float(np.mean(v)) for k, v in masses.items()}, time.time() - t0, keep, lr)


def _card(loop: _Loop, tok, model_path: str, base_name: str | None) -> AdapterCard:
    """The adapter card: settings, time and the exact audit of the weights as shipped (bf16-rounded)."""
    import torch

    model, cfg = loop.model, loop.cfg
    model.eval()
    # adapters ship in bf16 (half the size); round now so the card's metrics describe those weights
    with torch.no_grad():
        for prm in loop.params:
            prm.copy_(prm.to(torch.bfloat16).to(prm.dtype))
    card = AdapterCard(
        format="synthgen-adapter/1", base_model=base_name or str(model_path), base_fingerprint=model_fingerprint(model_path),
        lists=[evaluate_task(model, tok, t, cfg.audit_prompts, loop.frozen, str(model_path)) for t in loop.tasks],
        capability=capability_check(model, tok),
        config=asdict(cfg), training_precision=loop.precision, steps=loop.step, stopped_early=loop.step < cfg.steps,
        train_seconds=round(loop.seconds, 1), history=loop.history, stop_checks=loop.checks)
    if cfg.init_from and (first := read_card(cfg.init_from)):  # what the starting adapter had cost, so tables show the whole
        card.init = {"from": str(cfg.init_from), "steps": first.steps, "train_seconds": first.train_seconds,
                     "objective": first.objective}
    return card


def _write_adapter(model, card: AdapterCard, out: Path) -> None:
    """Weights (bf16), card and README into a temp dir beside `out`, then swapped in (an old
    adapter, --overwrite, goes once the new is in place)."""
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=out.name + ".", suffix=".tmp"))
    model.save_pretrained(tmp)
    _to_bf16(tmp / "adapter_model.safetensors")
    card.write(tmp)
    (tmp / "README.md").write_text(adapter_readme(card, out.name))  # ours, not peft's empty model card
    replace_files([out], lambda: os.rename(tmp, out))


def init_adapter(base, cfg: TrainConfig, model_path: str):
    """The adapter at cfg.init_from, trainable, to continue training (another objective, more steps).
    It must be built for this base model, with this rank and alpha."""
    from peft import PeftModel

    src = Path(cfg.init_from)
    card = read_card(src) if src.is_dir() else None
    if not card:
        raise InputError(f"--init {src}: not a synthgen adapter (no {ADAPTER_CARD} there)")
    if card.base_fingerprint not in (None, model_fingerprint(model_path)):
        raise InputError(f"--init {src}: that adapter was built for another base model ({card.base_model})")
    first = card.config
    if (first.get("rank"), first.get("alpha")) != (cfg.rank, cfg.alpha):
        raise InputError(f"--init {src}: its LoRA rank is {first.get('rank')}; pass --rank {first.get('rank')}")
    if first.get("layers") != cfg.layers:
        raise InputError(f"--init {src}: it has LoRA on {first.get('layers') or 'all'} layers; pass "
                         + (f"--layers {first['layers']}" if first.get("layers") else "no --layers"))
    return PeftModel.from_pretrained(base, src, is_trainable=True)


def _to_bf16(path: Path) -> None:
    from safetensors.torch import load_file, save_file
    import torch

    tensors = load_file(path)
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items()}, path, metadata={"format": "pt"})


def evaluate_task(model, tok, task: Task, n_prompts: int | None = None, frozen=None, model_path: str | None = None) -> dict:
    """Exact before/after metrics for one list (audit.py), recorded in the adapter card (the base's
    from the cache of base audits when the model is a local directory)."""
    from .audit import audit, base_audit

    prompts = task.spec.prompts[:n_prompts] if n_prompts else task.spec.prompts
    after = audit(model, tok, task.spec, prompts=prompts, frozen=frozen, full=task.full).to_dict()
    before = (base_audit(model, tok, task.spec, model_path, prompts=prompts, frozen=frozen, full=task.full) if model_path else
              audit(model, tok, task.spec, prompts=prompts, adapter_off=True, frozen=frozen, full=task.full).to_dict())
    return {"name": task.spec.name, "spec_hash": task.spec.digest(), "n_targets": len(task.texts),
            "target_entropy_bits": round(task.entropy / math.log(2), 4), "prompts": prompts,
            "base": before, "adapter": after}
