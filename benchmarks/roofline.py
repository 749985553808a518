"""The physical ceiling of this machine for the engine's model (issue #13).

1. Matmul peak: GFLOPS of `x @ W.T` at the model's own shapes (hidden -> q/kv/o, gate/up, down,
   lm_head) for m = 64..1024 rows, fp32 and bf16, on the engine's threads; the best m is the peak.
   Also vLLM's CPU GEMM (oneDNN, what the engine really calls) where it is available.
2. FLOPs per token from the model's config: every linear layer (2·in·out), attention scores and
   values at a typical context, LoRA (2·r·(in+out) per adapted module), the lm_head only for
   decoded tokens (a prefill computes logits for its last token only).
3. Ceiling = peak / FLOPs per token, for prefill and for decode, stored for fp32 and for bf16 (a
   run's utilisation is against the ceiling of the dtype it ran).
4. Which dtype the engine runs here: on a CPU with a bf16 path, vLLM timed in each dtype
   (`synthgen/engine/dtype.py`, measured again by this benchmark); SYNTHGEN_DTYPE skips it.

    .venv/bin/python benchmarks/roofline.py [--model DIR] [--lora-rank 16] [--context 96] [--out out/roofline]

Writes OUT/results.json and stores the ceiling under SYNTHGEN_HOME/roofline.json, where every
later run on this machine finds it to report its utilisation. Prints what it measured.
"""

import time
from pathlib import Path

from synthgen import bench


def gflops(fn, flop: float, seconds: float = 0.6) -> float:
    for _ in range(3):
        fn()
    k, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        k += 1
    return flop * k / (time.perf_counter() - t0) / 1e9


def shapes(cfg) -> dict[str, tuple[int, int]]:
    h, inter = cfg.hidden_size, cfg.intermediate_size
    hd = getattr(cfg, "head_dim", None) or h // cfg.num_attention_heads
    q, kv = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd
    return {"qkv_proj": (h, q + 2 * kv), "o_proj": (q, h), "gate_up_proj": (h, 2 * inter),
            "down_proj": (inter, h), "lm_head": (h, cfg.vocab_size)}


def flops_per_token(cfg, lora_rank: int, context: int) -> dict:
    s = shapes(cfg)
    layers = cfg.num_hidden_layers
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    linear = sum(2 * i * o for name, (i, o) in s.items() if name != "lm_head") * layers
    attn = 2 * 2 * context * cfg.num_attention_heads * hd * layers  # q·K and p·V over the context
    # peft's default targets for llama: q, k, v, o, gate, up, down, each rank r
    h, inter = cfg.hidden_size, cfg.intermediate_size
    kv = cfg.num_key_value_heads * hd
    lora_mods = [(h, cfg.num_attention_heads * hd), (h, kv), (h, kv), (cfg.num_attention_heads * hd, h),
                 (h, inter), (h, inter), (inter, h)]
    lora = sum(2 * lora_rank * (i + o) for i, o in lora_mods) * layers if lora_rank else 0
    head = 2 * cfg.hidden_size * cfg.vocab_size
    prefill = linear + attn + lora
    return {"linear": linear, "attention": attn, "lora": lora, "lm_head": head,
            "prefill": prefill, "decode": prefill + head}


def main():
    ap = bench.parser(__doc__, out="out/roofline")
    ap.add_argument("--model", default=None, help="a model directory (default: the embedded SmolLM2)")
    ap.add_argument("--lora-rank", type=int, default=16)
    ap.add_argument("--context", type=int, default=96, help="typical tokens in context (prompt + answer)")
    args = ap.parse_args()
    if args.lora_rank < 0 or args.context < 1:
        ap.error("--lora-rank must be >= 0 and --context >= 1")

    import torch
    from transformers import AutoConfig

    from synthgen.engine import dtype as engine_dtypes
    from synthgen.models import resolve_model
    from synthgen.machine import cpu_name, locked, threads as cores
    from synthgen.roofline import save_ceiling

    threads = cores()
    torch.set_num_threads(threads)
    cfg = AutoConfig.from_pretrained(resolve_model(args.model))
    s = shapes(cfg)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for name, (i, o) in s.items():
            w = torch.randn(o, i, dtype=dtype)
            for m in (64, 256, 1024):
                x = torch.randn(m, i, dtype=dtype)
                g = gflops(lambda: torch.nn.functional.linear(x, w), 2 * m * i * o)
                rows.append({"dtype": str(dtype).split(".")[1], "kernel": "torch", "layer": name, "m": m, "gflops": g})
                print(f"{rows[-1]['dtype']:9} torch  {name:13} m={m:5} {g:7.1f} GFLOPS", flush=True)
    try:  # vLLM's CPU GEMM (oneDNN), what the engine calls for its linear layers
        from vllm import _custom_ops as ops

        if ops._supports_onednn:
            for name, (i, o) in s.items():
                w = torch.randn(o, i, dtype=torch.float32)
                handler = ops.create_onednn_mm(w.t(), 32)
                for m in (64, 256, 1024):
                    x = torch.randn(m, i, dtype=torch.float32)
                    g = gflops(lambda: ops.onednn_mm(handler, x, None), 2 * m * i * o)
                    rows.append({"dtype": "float32", "kernel": "onednn", "layer": name, "m": m, "gflops": g})
                    print(f"float32   onednn {name:13} m={m:5} {g:7.1f} GFLOPS", flush=True)
    except Exception as e:  # an engine without oneDNN (GPU builds): torch's number stands
        print(f"vLLM oneDNN GEMM not measured: {e.__class__.__name__}: {e}")

    fl = flops_per_token(cfg, args.lora_rank, args.context)
    peak = {}
    for dtype in ("float32", "bfloat16"):
        mine = [r for r in rows if r["dtype"] == dtype]
        # per layer the best kernel and m, then weighted by the layer's share of the FLOPs: the model's peak
        best = {name: max(r["gflops"] for r in mine if r["layer"] == name) for name in s}
        weights = {name: 2 * i * o for name, (i, o) in s.items()}
        prefill_w = {k: v for k, v in weights.items() if k != "lm_head"}
        peak[dtype] = {
            "by_layer": best,
            "prefill": sum(prefill_w.values()) / sum(v / best[k] for k, v in prefill_w.items()),
            "decode": sum(weights.values()) / sum(v / best[k] for k, v in weights.items()),
        }
    ceilings = {d: {"prefill_tokens_per_s": p["prefill"] * 1e9 / fl["prefill"],
                    "decode_tokens_per_s": p["decode"] * 1e9 / fl["decode"]} for d, p in peak.items()}
    model = resolve_model(args.model)
    stored = [save_ceiling(model, d, c) for d, c in ceilings.items()][0]
    measured = None
    if engine_dtypes.forced() is None and not torch.cuda.is_available() \
            and engine_dtypes.has_bf16_path(engine_dtypes.cpu_flags()):
        with locked():
            measured = engine_dtypes.measure(model, say=print)
        engine_dtype = measured["choice"]
    else:
        engine_dtype = engine_dtypes.default_dtype(model)
    ceiling = ceilings.get(engine_dtype, ceilings["float32"])
    doc = {"cpu": cpu_name(), "threads": threads, "torch": torch.__version__, "engine_dtype": engine_dtype,
           "model": {"layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size, "vocab": cfg.vocab_size},
           "lora_rank": args.lora_rank, "context": args.context, "gflop_per_token": {k: v / 1e9 for k, v in fl.items()},
           "peak_gflops": peak, "ceiling": ceiling, "ceilings": ceilings, "dtype_measurement": measured,
           "measurements": rows}
    out = Path(args.out)
    bench.write_results(out, doc)
    print(f"\n{doc['cpu']}, {threads} threads, engine dtype {engine_dtype}")
    print(f"GFLOP per token: prefill {fl['prefill'] / 1e9:.3f}, decode {fl['decode'] / 1e9:.3f} "
          f"(lm_head {fl['lm_head'] / 1e9:.3f}, LoRA r={args.lora_rank} {fl['lora'] / 1e9:.4f}, "
          f"attention at {args.context} tokens {fl['attention'] / 1e9:.4f})")
    for dtype, v in peak.items():
        print(f"peak {dtype}: {v['prefill']:.0f} GFLOPS on the prefill layers, {v['decode']:.0f} with the lm_head")
    print(f"ceiling ({engine_dtype}): {ceiling['prefill_tokens_per_s']:.0f} prefilled or "
          f"{ceiling['decode_tokens_per_s']:.0f} decoded tokens/s; wrote {out / 'results.json'}; "
          f"runs report their utilisation against it ({stored})")


if __name__ == "__main__":
    bench.run(main)
