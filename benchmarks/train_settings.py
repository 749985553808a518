"""Training settings, measured: learning rate, targets per step, the keep term and the subsample (issue #24, item 4).

`make adapters` takes ~10,700 s of training on 2 cores against a 20-minute target, and most of it is
steps: 100-150 per big list at lr 5e-4 and 300 targets per step. Each setting here trains the same
list from the base with `build-adapter`'s own loop (synthgen.train.train, --objective q, one prompt per
step, the same seed, no early stop) for --steps steps, and reports the moving average of the step
loss above H(p*) at a few steps (≈ KL(p*‖Q), bits), the card's exact fp32 audit at the end
(KL(Q‖p*), H(Q), on the spec's first prompt), the capability guard and the seconds spent.

    .venv/bin/python benchmarks/train_settings.py [adapters/first_names.yaml] [--steps 30] [--out out/train_settings]
"""

import argparse
import json
import math
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

# (label, lr, targets per step, keep weight, lr schedule, subsample: systematic (build-adapter's) | iid (before))
SETTINGS = [("today's", 5e-4, 300, 0.0, "constant", "systematic"), ("lr 2e-3", 2e-3, 300, 0.0, "constant", "systematic"),
            ("lr 2e-3 + keep 0.3", 2e-3, 300, 0.3, "constant", "systematic"),
            ("lr 2e-3, 100 targets", 2e-3, 100, 0.0, "constant", "systematic"),
            ("lr 3e-3 cosine + keep 0.3", 3e-3, 300, 0.3, "cosine", "systematic"),
            ("lr 5e-3 cosine + keep 0.3", 5e-3, 300, 0.3, "cosine", "systematic"),
            ("lr 3e-3 cosine + keep 0.3, iid draws", 3e-3, 300, 0.3, "cosine", "iid")]


@contextmanager
def iid_subsample():
    """Task.step_problem as it was before systematic sampling: M independent draws from p*."""
    from synthgen.train import Task

    systematic = Task.step_problem

    def iid(self, rng, max_targets):
        if not self.subsample:
            return self.token_ids, self.p
        idx, counts = np.unique(rng.choice(len(self.texts), size=max_targets, p=self.p), return_counts=True)
        return [self.token_ids[i] for i in idx], counts / max_targets

    Task.step_problem = iid
    try:
        yield
    finally:
        Task.step_problem = systematic


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec", nargs="?", default="adapters/first_names.yaml")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--out", default="out/train_settings")
    ap.add_argument("--only", default=None, help="comma-separated rows of SETTINGS to run (0-based; default all)")
    args = ap.parse_args()
    if args.steps < 3:
        ap.error("--steps must be >= 3")
    try:
        picked = [SETTINGS[int(i)] for i in args.only.split(",")] if args.only else SETTINGS
    except (ValueError, IndexError):
        ap.error(f"--only takes row numbers 0-{len(SETTINGS) - 1}, got {args.only!r}")

    from synthgen.errors import InputError
    from synthgen.lists import load_spec

    try:
        spec = load_spec(args.spec)
    except InputError as e:
        ap.error(str(e))

    from synthgen.models import resolve_model
    from synthgen.output import write_json_atomic
    from synthgen.roofline import machine
    from synthgen.train import TrainConfig, train

    model = resolve_model(None)
    marks = sorted({args.steps // 3, 2 * args.steps // 3, args.steps})
    rows = []
    for label, lr, targets, keep, schedule, sampling in picked:
        gaps: dict[int, float] = {}

        def on_step(log, ema, tasks):
            if log.step in marks:
                t = tasks[0]
                gaps[log.step] = (ema[t.spec.name] - t.entropy) / math.log(2)

        cfg = TrainConfig(steps=args.steps, lr=lr, lr_schedule=schedule, gamma=0, prompts_per_step=1, max_targets=targets, keep_weight=keep,
                          audit_prompts=1, objective="q", seed=0)
        with tempfile.TemporaryDirectory() as tmp, (iid_subsample() if sampling == "iid" else nullcontext()):
            card = train(model, [spec], Path(tmp) / spec.name, cfg, on_step=on_step)
        one = card.lists[0]
        row = {"setting": label, "lr": lr, "targets_per_step": targets, "keep_weight": keep, "lr_schedule": schedule, "subsample": sampling,
               "gap_bits": {str(k): round(v, 3) for k, v in gaps.items()},
               "kl_q_bits": (one["base"]["kl_q_target_bits"], one["adapter"]["kl_q_target_bits"]),
               "h_q_bits": one["adapter"]["q_entropy_bits"], "h_target_bits": one["target_entropy_bits"],
               "train_s": card.train_seconds, "perplexity_ratio": card.capability["perplexity_ratio"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    m = machine()
    print(f"\n{spec.name} ({one['n_targets']} targets) · {m.get('cpu')}, {m.get('threads')} threads · {args.steps} steps "
          f"each from the base, --objective q, one prompt per step, seed 0; audit: the first prompt, exact, fp32\n")
    print("| setting | step loss − H(p*), bits, at steps " + " / ".join(map(str, marks)) +
          " | KL(Q‖p*) bits (base → adapter) | H(Q) bits (target) | perplexity × | train s | s/step |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        gap = " / ".join(f"{r['gap_bits'][str(k)]:.2f}" for k in marks)
        print(f"| {r['setting']} | {gap} | {r['kl_q_bits'][0]:.2f} → **{r['kl_q_bits'][1]:.3f}** | {r['h_q_bits']:.2f} "
              f"({r['h_target_bits']:.2f}) | {r['perplexity_ratio']:.2f} | {r['train_s']:.0f} | {r['train_s'] / args.steps:.1f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / f"{spec.name}.json", {"machine": m, "spec": args.spec, "steps": args.steps, "rows": rows})


if __name__ == "__main__":
    main()
