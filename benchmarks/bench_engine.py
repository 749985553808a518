"""Engine throughput: in-process vLLM vs HF transformers batched `generate`, interleaved in one run.

1000 samples of a short answer (<= 8 new tokens, T=1) from the embedded model, in rounds that
alternate the two backends so both see the same machine load. Prints samples/s and tokens/s of
each and the ratio. Target (issue #2): vLLM >= 1.5x transformers.

    .venv/bin/python benchmarks/bench_engine.py [--n 1000] [--rounds 4] [--batch 64] [--adapter DIR]
"""

import argparse
import json
import time

PROMPT = "Pick a random first name. Answer with the name only."


def hf_generate(model, tok, ids, n, batch, max_tokens, seed):
    import torch

    torch.manual_seed(seed)
    done = tokens = 0
    while done < n:
        b = min(batch, n - done)
        inp = ids.repeat(b, 1)
        with torch.no_grad():
            out = model.generate(inp, attention_mask=torch.ones_like(inp), do_sample=True, temperature=1.0,
                                 top_p=1.0, top_k=0, max_new_tokens=max_tokens, pad_token_id=tok.pad_token_id or 2)
        new = out[:, inp.shape[1]:]
        tokens += int((new != (tok.pad_token_id or 2)).sum()) + int((new == 2).any(dim=1).sum())
        done += b
    return tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64, help="HF generate batch size")
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--adapter", default=None, help="also route both backends through this LoRA adapter")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from synthgen.engine import Request, derive_seed
    from synthgen.engine.vllm_engine import VLLMEngine
    from synthgen.targets import render_chat
    from synthgen.models import resolve_model

    path = resolve_model(None)
    engine = VLLMEngine(path)  # as synthgen runs it: LoRA-capable
    dtype = getattr(torch, engine.dtype)
    torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()
    if args.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.adapter).eval()
    tok = engine.tokenizer
    ids = torch.tensor([render_chat(tok, PROMPT)])

    per_round = args.n // args.rounds
    t_v = t_h = tok_v = tok_h = 0.0
    # warm-up both (first calls allocate caches)
    engine.generate([Request(PROMPT, max_tokens=args.max_tokens, seed=1, adapter=args.adapter)] * 8)
    hf_generate(model, tok, ids, 8, 8, args.max_tokens, 0)
    for r in range(args.rounds):
        reqs = [Request(PROMPT, max_tokens=args.max_tokens, temperature=1.0, seed=derive_seed("bench", r, i),
                        adapter=args.adapter) for i in range(per_round)]
        t = time.perf_counter()
        out = engine.generate(reqs)
        t_v += time.perf_counter() - t
        tok_v += sum(c.n_tokens for c in out)
        t = time.perf_counter()
        tok_h += hf_generate(model, tok, ids, per_round, args.batch, args.max_tokens, r)
        t_h += time.perf_counter() - t
        print(f"round {r + 1}/{args.rounds}: vLLM {per_round / (t_v / (r + 1)):.1f} samples/s, "
              f"HF {per_round / (t_h / (r + 1)):.1f} samples/s (running means)", flush=True)
    engine.close()
    n = per_round * args.rounds
    result = {
        "samples": n, "max_tokens": args.max_tokens, "dtype": engine.dtype, "adapter": args.adapter,
        "vllm_samples_per_s": round(n / t_v, 2), "hf_samples_per_s": round(n / t_h, 2),
        "vllm_tokens_per_s": round(tok_v / t_v, 1), "hf_tokens_per_s": round(tok_h / t_h, 1),
        "ratio_vllm_over_hf": round(t_h / t_v, 2),
    }
    print(json.dumps(result, indent=2))
    print(f"vLLM / transformers = {result['ratio_vllm_over_hf']}x (target >= 1.5x)")


if __name__ == "__main__":
    main()
