"""A training step with LoRA on all layers vs on the top N only (build-adapter --layers N), side by side (issue #24).

With LoRA on the top N decoder layers, the layers below are frozen and a trie node's state there does not
change from step to step (synthgen/frozen.py): it is computed the first time the node is met and kept.
For each list spec, the step problem `make adapters` solves (one prompt, a systematic subsample of
--max-targets targets, the q objective, bf16 autocast where the CPU has a bf16 path), forward + backward:

    all layers      LoRA on all 30 layers (the shipped adapters before --layers)
    top N, cold     LoRA on the top N, the frozen layers' states not yet stored (the first steps)
    top N, warm     the same step again: only the top N layers run

Prints seconds per step (best of --repeats rounds; cold: its first round) and the speedups. The loss and
gradient of the top-N step are the full pass's (tests/test_targets.py); the adapters' quality at the same
recipe is in the README's adapter table.

    .venv/bin/python benchmarks/train_layers.py [adapters/careers.yaml ...] [--layers 8] [--repeats 3]
"""

import argparse
import json
import time
from pathlib import Path

DEFAULT = ["adapters/careers.yaml", "adapters/birth_places.yaml", "adapters/first_names.yaml"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("specs", nargs="*", default=DEFAULT)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--max-targets", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="out/train_layers")
    args = ap.parse_args()
    if args.repeats < 1 or args.layers < 1:
        ap.error("--repeats and --layers must be >= 1")
    if missing := [s for s in args.specs if not Path(s).is_file()]:
        ap.error(f"no such spec: {missing[0]}")

    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model

    from synthgen.frozen import FrozenBelow
    from synthgen.lists import expand, load_spec
    from synthgen.models import load_base, resolve_model
    from synthgen.roofline import machine
    from synthgen.train import TrainConfig, packed_backward, prepare_task

    cfg = TrainConfig(precision="auto")
    bf16 = cfg.resolved_precision() == "bf16"
    tok, _ = load_base(resolve_model(None))
    models = {}
    for label, layers in (("all layers", None), (f"top {args.layers}", args.layers)):
        _, base = load_base(resolve_model(None))
        n = base.config.num_hidden_layers
        torch.manual_seed(0)
        models[label] = get_peft_model(base, LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules=cfg.target_modules,
                                                        layers_to_transform=list(range(n - layers, n)) if layers else None))
    top = f"top {args.layers}"
    rows = []
    for path in args.specs:
        spec = expand(load_spec(path))[0]
        task = prepare_task(tok, spec, args.max_targets)
        ids, w = task.step_problem(np.random.default_rng(0), args.max_targets)
        prompt = task.prompt_ids[0]
        frozen = FrozenBelow.of(models[top])
        seconds = {"all layers": [], f"{top}, cold": [], f"{top}, warm": []}

        def step(model, store):
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                packed_backward(model, prompt, ids, w, full=task.full, mass_term=cfg.mass_term, frozen=store)
            return time.perf_counter() - t0

        for r in range(args.repeats):
            seconds["all layers"].append(step(models["all layers"], None))
            if r == 0:
                seconds[f"{top}, cold"].append(step(models[top], frozen))
            seconds[f"{top}, warm"].append(step(models[top], frozen))
        best = {m: min(v) for m, v in seconds.items()}
        row = {"spec": spec.name, "targets": len(task.texts), "per_step": len(ids), "seconds": best,
               "speedup": {m: best["all layers"] / best[m] for m in best}}
        rows.append(row)
        print(f"{row['spec']:14} {row['targets']:6} targets, {row['per_step']:4} per step: "
              + ", ".join(f"{m} {best[m]:.2f} s (x{row['speedup'][m]:.2f})" for m in best), flush=True)
    doc = {"cpu": machine()["cpu"], "precision": "bf16" if bf16 else "fp32", "threads": torch.get_num_threads(),
           "layers": args.layers, "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=2))
    print(f"{doc['cpu']}, {doc['precision']}, {doc['threads']} threads; wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
