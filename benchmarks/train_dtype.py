"""Training step in fp32 vs bf16 autocast, side by side (issue #24, item 4).

For each list spec: the step problem `build-adapter` solves (the default TrainConfig: its objective,
its targets per step, one prompt), forward + backward of `packed_backward` on a LoRA with small
random weights, alternating fp32 and `torch.autocast("cpu", bfloat16)` for --repeats rounds. Prints
seconds per step (best of the rounds) and the ratio, and how far bf16 moves what training uses:
max and mean |Δ log P(target)|, the step's loss in each, and the cosine between the two gradients. The audit stays fp32
either way (exact metrics); this only decides the training forward/backward.

    .venv/bin/python benchmarks/train_dtype.py [adapters/careers.yaml ...] [--repeats 3] [--out out/train_dtype]
"""

import argparse
import json
import time
from pathlib import Path

DEFAULT = ["adapters/careers.yaml", "adapters/birth_places.yaml", "adapters/first_names.yaml"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("specs", nargs="*", default=DEFAULT)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="out/train_dtype")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model

    from synthgen.engine.dtype import cpu_flags, has_bf16_path
    from synthgen.lists import expand, load_spec
    from synthgen.models import load_base, resolve_model
    from synthgen.roofline import machine
    from synthgen.train import TrainConfig, packed_backward, prepare_task

    cfg = TrainConfig()
    tok, base = load_base(resolve_model(None))
    torch.manual_seed(0)
    model = get_peft_model(base, LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules=cfg.target_modules,
                                            init_lora_weights=False))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.mul_(0.05)  # a trained adapter's scale, not a random one's
    rows = []
    for path in args.specs:
        spec = expand(load_spec(path))[0]
        task = prepare_task(tok, spec, cfg.max_targets)
        ids, w = task.step_problem(np.random.default_rng(0), cfg.max_targets)
        prompt = task.prompt_ids[0]
        seconds, lp, grad, loss = {"fp32": [], "bf16": []}, {}, {}, {}
        for _ in range(args.repeats):
            for mode in ("fp32", "bf16"):
                model.zero_grad(set_to_none=True)
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
                    loss[mode], lp[mode] = packed_backward(model, prompt, ids, w, full=task.full, mass_term=cfg.mass_term)
                seconds[mode].append(time.perf_counter() - t0)
                grad[mode] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        d = np.abs(lp["fp32"] - lp["bf16"])
        row = {"spec": spec.name, "targets": len(task.texts), "per_step": len(ids),
               "fp32_s": min(seconds["fp32"]), "bf16_s": min(seconds["bf16"]),
               "speedup": min(seconds["fp32"]) / min(seconds["bf16"]),
               "loss_fp32": loss["fp32"], "loss_bf16": loss["bf16"], "max_abs_dlogp": float(d.max()), "mean_abs_dlogp": float(d.mean()),
               "grad_cosine": float(torch.nn.functional.cosine_similarity(grad["fp32"], grad["bf16"], dim=0))}
        rows.append(row)
        print(f"{row['spec']:14} {row['targets']:6} targets, {row['per_step']:4} per step: fp32 {row['fp32_s']:.2f} s, "
              f"bf16 autocast {row['bf16_s']:.2f} s, x{row['speedup']:.2f}; |dlogP| max {row['max_abs_dlogp']:.3f} "
              f"mean {row['mean_abs_dlogp']:.4f} nats; loss {row['loss_fp32']:.4f} vs {row['loss_bf16']:.4f}; "
              f"gradient cosine {row['grad_cosine']:.4f}", flush=True)
    doc = {"cpu": machine()["cpu"], "bf16_path": has_bf16_path(cpu_flags()), "threads": torch.get_num_threads(),
           "objective": cfg.objective, "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=2))
    print(f"{doc['cpu']}, bf16 path {doc['bf16_path']}, {doc['threads']} threads; wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
