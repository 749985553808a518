"""Training step speed: packed prompt+trie vs one padded row per target, same run, same targets.

Both compute the same loss (- sum_t p*(t) log P(t + eot | prompt)) and its gradient for one
prompt; rows are processed in mini-batches with gradient accumulation (one row per target is
what a naive implementation does). Prints seconds per step for each and the ratio.
Target (issue #3): packed >= 20x faster on the first-names spec.

    .venv/bin/python benchmarks/bench_train.py [--spec adapters/first_names.yaml] [--top 200] [--repeats 2]
"""

import argparse
import json
import time


def rows_step(model, prompt, token_ids, weights, batch):
    import torch

    total = 0.0
    for start in range(0, len(token_ids), batch):
        chunk = token_ids[start:start + batch]
        w = torch.tensor(weights[start:start + batch], dtype=torch.float32)
        length = len(prompt) + max(map(len, chunk))
        ids = torch.zeros(len(chunk), length, dtype=torch.long)
        att = torch.zeros(len(chunk), length, dtype=torch.long)
        tgt_mask = torch.zeros(len(chunk), length, dtype=torch.bool)
        for i, t in enumerate(chunk):  # right padding
            seq = prompt + t
            ids[i, :len(seq)] = torch.tensor(seq)
            att[i, :len(seq)] = 1
            tgt_mask[i, len(prompt):len(seq)] = True
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=att).logits[:, :-1].float(), -1)
        tok_lp = logp.gather(2, ids[:, 1:, None]).squeeze(2) * tgt_mask[:, 1:]
        loss = -(w * tok_lp.sum(1)).sum()
        loss.backward()
        total += float(loss.detach())
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="adapters/first_names.yaml")
    ap.add_argument("--top", type=int, default=200, help="targets used by both methods (the row method is slow)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch", type=int, default=50, help="rows per mini-batch for the row method")
    args = ap.parse_args()

    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model

    from synthgen import targets as T
    from synthgen.lists import load_spec, load_targets
    from synthgen.models import resolve_model
    from synthgen.train import ALL_PROJECTIONS, load_base, packed_backward

    tok, base = load_base(resolve_model(None))
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=ALL_PROJECTIONS))
    spec = load_spec(args.spec)
    texts, p = load_targets(spec)
    order = np.argsort(-p)[: args.top]
    texts, p = [texts[i] for i in order], p[order] / p[order].sum()
    ids = T.encode_targets(tok, texts)
    prompt = T.render_chat(tok, spec.prompts[0])
    trie = T.build_trie(ids)

    t_packed = t_rows = 0.0
    for _ in range(args.repeats):
        t = time.perf_counter()
        loss_p, _ = packed_backward(model, prompt, ids, p)  # chunked: several <=768-node passes
        model.zero_grad()
        t_packed += time.perf_counter() - t
        t = time.perf_counter()
        loss_r = rows_step(model, prompt, ids, p, args.batch)
        model.zero_grad()
        t_rows += time.perf_counter() - t
    result = {"spec": spec.name, "targets": len(texts), "trie_tokens": trie.n_nodes,
              "row_tokens": sum(len(prompt) + len(i) for i in ids),
              "packed_s_per_step": round(t_packed / args.repeats, 3), "rows_s_per_step": round(t_rows / args.repeats, 3),
              "speedup": round(t_rows / t_packed, 1), "loss_packed": round(loss_p, 5),
              "packed_chunks": len(T.chunk_targets(ids)), "loss_rows": round(loss_r, 5),
              "torch_threads": torch.get_num_threads()}
    print(json.dumps(result, indent=2))
    print(f"packed trie is {result['speedup']}x faster than one row per target (target >= 20x)")


if __name__ == "__main__":
    main()
