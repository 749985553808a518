"""The training objective, measured: paper vs mixed vs q at equal steps (issue #24, item 1).

For each list spec and each objective, `build-adapter`'s own training (synthgen.train.train) from the
same seed for --steps steps (no early stop), then the card's exact fp32 audit on the spec's first
prompt: KL(Q‖p*) and H(Q) of what trie-constrained decoding samples, and P's mass on the list (what
free decoding would get). Prints a markdown table and writes it with the cards' figures as JSON.

    .venv/bin/python benchmarks/objectives.py [adapters/careers.yaml ...] [--steps 15] [--out out/objectives]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

DEFAULT = ["adapters/careers.yaml", "adapters/birth_places.yaml", "adapters/first_names.yaml"]
OBJECTIVES = [("paper", 1.0), ("mixed", 0.1), ("q", 0.0)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("specs", nargs="*", default=DEFAULT)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--max-targets", type=int, default=200)
    ap.add_argument("--out", default="out/objectives")
    args = ap.parse_args()
    if args.steps < 1:
        ap.error("--steps must be >= 1")

    from synthgen.lists import load_spec
    from synthgen.models import resolve_model
    from synthgen.roofline import machine
    from synthgen.train import TrainConfig, train

    model = resolve_model(None)
    rows = []
    for path in args.specs:
        spec = load_spec(path)
        for objective, w in OBJECTIVES:
            cfg = TrainConfig(steps=args.steps, gamma=0, prompts_per_step=1, max_targets=args.max_targets, audit_prompts=1,
                              objective=objective, mass_weight=w if objective == "mixed" else 0.1, seed=0)
            t0 = time.time()
            with tempfile.TemporaryDirectory() as tmp:
                card = train(model, [spec], Path(tmp) / spec.name, cfg)
            one = card.lists[0]
            row = {"list": spec.name, "targets": one["n_targets"], "objective": objective if objective != "mixed" else f"mixed (w={w})",
                   "kl_q_bits": (one["base"]["kl_q_target_bits"], one["adapter"]["kl_q_target_bits"]),
                   "h_q_bits": one["adapter"]["q_entropy_bits"], "h_target_bits": one["target_entropy_bits"],
                   "mass": (one["base"]["mass"], one["adapter"]["mass"]), "kl_p_bits": one["adapter"]["kl_bits"],
                   "train_s": card.train_seconds, "wall_s": round(time.time() - t0, 1),
                   "perplexity_ratio": card.capability["perplexity_ratio"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    m = machine()
    print(f"\n{m.get('cpu')}, {m.get('threads')} threads · {args.steps} steps each, one prompt per step, "
          f"≤ {args.max_targets} targets per step, seed 0; audit: the spec's first prompt, exact, fp32\n")
    print("| list (targets) | objective | KL(Q‖p*) bits (base → adapter) | H(Q) bits (target) | P's mass on the list "
          "(base → adapter) | KL(p*‖P) bits | train s | perplexity × |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['list']} ({r['targets']}) | {r['objective']} | {r['kl_q_bits'][0]:.2f} → **{r['kl_q_bits'][1]:.2f}** "
              f"| {r['h_q_bits']:.2f} ({r['h_target_bits']:.2f}) | {r['mass'][0]:.3f} → {r['mass'][1]:.3f} "
              f"| {r['kl_p_bits']:.2f} | {r['train_s']:.0f} | {r['perplexity_ratio']:.2f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "objectives.json").write_text(json.dumps({"machine": machine(), "steps": args.steps, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
