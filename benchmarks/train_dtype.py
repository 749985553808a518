"""A training step's precision and head, side by side (issue #24, item 4).

For each list spec: the step problem `build-adapter` solves (the default TrainConfig: its objective,
its targets per step, one prompt; a systematic subsample for big lists), forward + backward of
`packed_backward` on a LoRA with small random weights, in four modes alternating for --repeats rounds:

    fp32            fp32 weights, no autocast
    bf16            torch.autocast("cpu", bfloat16) (what --precision bf16 runs)
    bf16 weights    the frozen projections stored in bf16 instead of cast in every forward (measured, not adopted)
    bf16+full head  autocast, with the vocabulary-wide LM head and softmax the q objective used to compute

Prints seconds per step (best of the rounds), the step's loss in each mode and each gradient's cosine to
fp32's. The audit stays fp32 either way (exact metrics); this only decides the training forward/backward.

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
    projections = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.endswith("base_layer")]
    fp32_w = [m.weight.data for m in projections]
    bf16_w = [w.to(torch.bfloat16) for w in fp32_w]
    modes = ("fp32", "bf16", "bf16 weights", "bf16+full head")
    rows = []
    for path in args.specs:
        spec = expand(load_spec(path))[0]
        task = prepare_task(tok, spec, cfg.max_targets)
        ids, w = task.step_problem(np.random.default_rng(0), cfg.max_targets)
        prompt = task.prompt_ids[0]
        seconds, grad, loss = {m: [] for m in modes}, {}, {}
        for _ in range(args.repeats):
            for mode in modes:
                model.zero_grad(set_to_none=True)
                # a tiny mass term makes node_q_logprobs take the vocabulary-wide head and softmax, as before
                mass_term = 1e-12 if mode == "bf16+full head" else cfg.mass_term
                for m, weight in zip(projections, bf16_w if mode == "bf16 weights" else fp32_w):
                    m.weight.data = weight
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode != "fp32"):
                    loss[mode], _ = packed_backward(model, prompt, ids, w, full=task.full, mass_term=mass_term)
                seconds[mode].append(time.perf_counter() - t0)
                grad[mode] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        best = {m: min(seconds[m]) for m in modes}
        row = {"spec": spec.name, "targets": len(task.texts), "per_step": len(ids), "seconds": best,
               "speedup_vs_fp32": {m: best["fp32"] / best[m] for m in modes}, "loss": loss,
               "grad_cosine_vs_fp32": {m: float(torch.nn.functional.cosine_similarity(grad["fp32"], grad[m], dim=0))
                                       for m in modes}}
        rows.append(row)
        print(f"{row['spec']:14} {row['targets']:6} targets, {row['per_step']:4} per step: "
              + ", ".join(f"{m} {best[m]:.2f} s (x{row['speedup_vs_fp32'][m]:.2f}, loss {loss[m]:.4f}, "
                          f"cos {row['grad_cosine_vs_fp32'][m]:.5f})" for m in modes), flush=True)
    doc = {"cpu": machine()["cpu"], "bf16_path": has_bf16_path(cpu_flags()), "threads": torch.get_num_threads(),
           "objective": cfg.objective, "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=2))
    print(f"{doc['cpu']}, bf16 path {doc['bf16_path']}, {doc['threads']} threads; wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
