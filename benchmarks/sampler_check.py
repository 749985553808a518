"""Does a generated file sample what its adapters' exact Q says, and what should its KL→target be at this n?

For each list field of the file's template that decodes through an adapter inside its list's trie: the
exact Q of that adapter (audit.constrained_logprobs, fp32) at the prompt each record asked (the template's
prompt filled from the record, in the chat template) over that record's list. Then, with the file's own
records (their sexes, decades, ... as they are), `--sims` simulated files where the field is drawn from Q,
and as many drawn from the target itself, each scored as `synthgen report` scores the file:

    file            the report's KL→target and unique values of the real file
    adapters' Q     what the adapters would give at this n: mean ± sd (the seed-to-seed noise)
    target itself   a perfect sampler at this n: the floor, mean ± sd
    z               the file's mean log Q(value) against its distribution under Q (|z| > 3: the engine
                    does not sample Q: a bug, or the field asked in other words than the card audited)

A field whose prompt takes more than --max-prompts distinct values is skipped (said). Dates are skipped
unless named with --fields (24,000 days: ~1 min per prompt).

    .venv/bin/python benchmarks/sampler_check.py out/bios/bios.jsonl [--fields first_name,last_name] [--sims 100]
"""

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from synthgen import bench


ROOT = Path(__file__).resolve().parent.parent


def groups_of(f, rows) -> dict:
    """(prompt, condition) -> record positions that asked the field (with a value and every field it needs)."""
    by = defaultdict(list)
    for i, r in enumerate(rows):
        if isinstance(r.get(f.name), str) and all(r.get(d) is not None for d in f.requires):
            by[(f.render(r), f.condition(r))].append(i)
    return by


def field_q(model, tok, t, f, rows, max_prompts: int, target: dict) -> tuple[dict, dict] | None:
    """groups_of(f, rows) and group key -> (items, Q, p*); `target`: the report's target of a field whose list
    depends on nothing (item -> weight)."""
    from synthgen import targets as T
    from synthgen.audit import constrained_logprobs, score_paths

    target_p = target_of(f, t, target)
    by = groups_of(f, rows)
    if len(by) > max_prompts:
        print(f"{f.name}: skipped: {len(by)} distinct prompts (> --max-prompts {max_prompts})")
        return None
    groups = {}
    for key, idx in by.items():
        r = rows[idx[0]]
        items = f.items(r)
        ids = T.encode_targets(tok, items)
        q = np.exp(constrained_logprobs(ids, score_paths(model, T.render_chat(tok, key[0], t.system), ids)))
        groups[key] = (items, q / q.sum(), target_p(r, items))
    return by, groups


def target_of(f, t, target: dict):
    """(record, its list's items) -> p* over those items: the real joint's weights for a field whose list depends
    on the record (sex, decade), else `target` (item -> weight); a list without weights: uniform."""
    from synthgen.report.joints import Conditional

    cond = Conditional({"name": f.name, "choices": f.choices, "map": f.value_map, "given": list(f.given)}, t.path) \
        if f.given else None
    plain = {k.casefold(): v for k, v in target.items()}

    def p_of(r, items) -> np.ndarray:
        w = cond.weights(r) if cond else None
        p = np.array([w.get(i, 0.0) if cond else plain.get(i.casefold(), 0.0) for i in items], dtype=float)
        p = p if p.sum() > 0 else np.ones(len(items))
        return p / p.sum()
    return p_of


def score(ds, spec, rows, name, values):
    """The report's KL→target and unique count of `rows` with the field set to `values` (None: as they are)."""
    from synthgen.report.metrics import categorical_stats

    if values is not None:
        rows = [({**r, name: v} if v is not None else r) for r, v in zip(rows, values)]
    st, _ = categorical_stats(replace(ds, rows=rows), spec)
    return st.get("kl_to_target_bits"), st["unique"]


def compare(ds, spec, rows, name, by_group, groups, sims, rng) -> dict:
    """The file against `sims` files drawn from Q and from the target (same records), and the z of its mean log Q."""
    res = {}
    for label, which in (("q", 1), ("target", 2)):
        runs = []
        for _ in range(sims):
            values = [None] * len(rows)
            for k, idx in by_group.items():
                items, dist = groups[k][0], groups[k][which]
                for i, j in zip(idx, rng.choice(len(items), size=len(idx), p=dist)):
                    values[i] = items[j]
            runs.append(score(ds, spec, rows, name, values))
        a = np.array(runs, dtype=float)
        res[label] = {"kl_bits": a[:, 0].mean(), "kl_sd": a[:, 0].std(), "unique": a[:, 1].mean(), "unique_sd": a[:, 1].std()}
    kl, uniq = score(ds, spec, rows, name, None)
    logq, mean, var = [], 0.0, 0.0  # the file's log Q(value); its mean and variance under Q
    for k, idx in by_group.items():
        items, q = groups[k][0], groups[k][1]
        lq = np.log(np.maximum(q, 1e-300))
        logq += [lq[items.index(rows[i][name])] for i in idx if rows[i][name] in items]
        mean += len(idx) * float(np.sum(q * lq))
        var += len(idx) * float(np.sum(q * lq ** 2) - np.sum(q * lq) ** 2)
    n = sum(len(idx) for idx in by_group.values())
    z = (np.mean(logq) - mean / n) / np.sqrt(var / n ** 2)
    return {"records": n, "prompts": len(groups), "file": {"kl_bits": kl, "unique": uniq}, **res, "z_log_q": float(z)}


def main():
    ap = bench.parser(__doc__)
    ap.add_argument("file")
    ap.add_argument("--fields", default=None, help="comma-separated field names (default: every list field with an adapter)")
    ap.add_argument("--sims", type=int, default=100, help="simulated files drawn from Q and from the target (default 100)")
    ap.add_argument("--max-prompts", type=int, default=40, help="skip a field whose prompt takes more distinct values (default 40)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the simulated draws")
    ap.add_argument("--out", default=None, help="also write OUT/results.json")
    args = ap.parse_args()
    if not Path(args.file).is_file():
        ap.error(f"no such file: {args.file}")
    if args.sims < 2 or args.max_prompts < 1:
        ap.error("--sims must be >= 2 and --max-prompts >= 1")

    import torch
    from peft import PeftModel

    from synthgen.models import load_base, resolve_model
    from synthgen.report.joints import mixture_target
    from synthgen.report import load_dataset
    from synthgen.report.load import configure
    from synthgen.template import load_template

    ds = load_dataset(args.file)
    tmeta = (ds.meta or {}).get("template") or {}
    t = load_template(tmeta.get("path") or tmeta.get("name") or "biography")
    digest = ((ds.meta or {}).get("identity") or {}).get("template_digest")
    if digest and digest != t.digest:
        print(f"note: {args.file} was made by another version of template {t.name!r} ({digest}, now {t.digest}; a comment "
              "counts too): Q is computed at today's prompts, which may not be the ones the file asked")
    specs = {s.name: s for s in configure(ds, None, None, None) if s.kind == "categorical"}
    wanted = args.fields.split(",") if args.fields else None
    fields = [f for f in t.fields if f.adapter_path and f.decode == "constrained" and f.name in specs
              and (f.name in wanted if wanted else f.kind == "choice")]
    if not fields:
        ap.error("no list field with an adapter to check (see --fields)")
    rows = ds.rows
    tok, base = load_base(resolve_model(((ds.meta or {}).get("identity") or {}).get("model")))
    rng = np.random.default_rng(args.seed)
    out = []
    for f in fields:
        spec = specs[f.name]
        if spec.conditional:
            spec.target = mixture_target(rows, spec.conditional, t.path)
        model = PeftModel.from_pretrained(base, f.adapter_path).eval()
        with torch.no_grad():
            got = field_q(model, tok, t, f, rows, args.max_prompts, spec.target or {})
        base = model.unload()
        if got is None:
            continue
        by, groups = got
        row = {"field": f.name, "adapter": f.adapter, **compare(ds, specs[f.name], rows, f.name, by, groups, args.sims, rng)}
        out.append(row)
        q, tg, fl = row["q"], row["target"], row["file"]
        print(f"{f.name} ({f.adapter}, {row['prompts']} prompt(s), {row['records']} records): file KL {fl['kl_bits']:.3f}, "
              f"{fl['unique']} unique | adapters' Q {q['kl_bits']:.3f} ± {q['kl_sd']:.3f}, {q['unique']:.0f} ± {q['unique_sd']:.0f} | "
              f"target itself {tg['kl_bits']:.3f} ± {tg['kl_sd']:.3f}, {tg['unique']:.0f} ± {tg['unique_sd']:.0f} | "
              f"z {row['z_log_q']:+.1f}", flush=True)
    if args.out:
        bench.write_results(args.out, {"file": args.file, "sims": args.sims, "seed": args.seed, "fields": out})


if __name__ == "__main__":
    bench.run(main)
