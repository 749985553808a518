"""The paper's task suite on the embedded model: train on all tasks, and leave one family out (issue #6).

Zhang et al. (2024) train one diffuse LoRA on many "pick a random X" tasks and test it on tasks it
never saw. Here, with the specs in adapters/tasks/ grouped in families (numbers, baby names,
fruits, occupations, countries per continent, days):

  all          one adapter trained on every task           -> judged on every task (in-distribution)
  loo_FAMILY   one adapter per family, trained on the rest -> judged on that family (held out)

For each task: mass on valid answers, entropy / max entropy, coverage-500 (distinct valid answers
in 500 draws / list size), for the base model, the all-task adapter and the held-out adapter;
exact (synthgen.audit: every target scored, mean over the task's prompts; coverage is the
expectation sum_t 1-(1-P(t))^500) and sampled (500 draws of the task's first prompt through
vLLM, T=1, answers matched like `synthgen generate` matches a choice field).

Adapters are cached in OUT/adapters (reused when trained on the same tasks; delete one to retrain). Writes OUT/results.json and
OUT/results.md (docs/results.md's table).

    .venv/bin/python benchmarks/paper_tasks.py [--out out/paper_tasks] [--steps 40] [--samples 500]
"""

import json
import time
from collections import Counter
from pathlib import Path

from synthgen import bench

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = {
    "numbers": ["numbers_1_10", "even_1_100", "prime_1_100"],
    "baby_names": ["baby_names_girls", "baby_names_boys"],
    "fruits": ["fruits"],
    "occupations": ["occupations", "occupations_letter_p"],
    "countries": [f"countries_{c}" for c in ("africa", "asia", "europe", "north_america", "oceania",
                                             "south_america")],
    "days": ["days_of_month", "weekdays"],
}


def specs_by_name():
    from synthgen.lists import load_spec

    return {n: load_spec(ROOT / "adapters" / "tasks" / f"{n}.yaml") for fam in FAMILIES.values() for n in fam}


def train_adapters(specs, out: Path, args) -> dict[str, Path]:
    from synthgen.models import resolve_model
    from synthgen.train import train
    from synthgen.train_config import TrainConfig

    model = resolve_model(None)
    plan = {"all": [n for fam in FAMILIES.values() for n in fam]}
    plan |= {f"loo_{f}": [n for g, fam in FAMILIES.items() if g != f for n in fam] for f in FAMILIES}
    paths = {}
    for name, members in plan.items():
        path = out / "adapters" / name
        paths[name] = path
        card = path / "synthgen_adapter.json"
        if card.is_file() and [x["name"] for x in json.loads(card.read_text())["lists"]] == members:
            print(f"[{name}] cached: {path}", flush=True)
            continue
        cfg = TrainConfig(steps=args.steps, prompts_per_step=args.prompts_per_step, max_targets=200,
                          audit_prompts=1, seed=0)
        t0 = time.perf_counter()
        card = train(model, [specs[n] for n in members], path, cfg, overwrite=True, base_name="smollm2-135m")
        print(f"[{name}] trained on {len(members)} tasks: {card.steps} steps, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    return paths


def exact(specs, adapters: dict[str, Path]) -> dict:
    """Audit every task: base, the all-task adapter, the adapter that never saw the task's family."""
    from peft import PeftModel

    from synthgen.audit import audit
    from synthgen.models import load_base, resolve_model

    tok, base = load_base(resolve_model(None))
    model = PeftModel.from_pretrained(base, str(adapters["all"]), adapter_name="all")
    for name, path in adapters.items():
        if name != "all":
            model.load_adapter(str(path), adapter_name=name)
    model.eval()
    out = {}
    for fam, members in FAMILIES.items():
        for n in members:
            s = specs[n]
            row = {"family": fam, "targets": None}
            row["base"] = audit(model, tok, s, adapter_off=True, ns=(500,)).to_dict()
            for label, name in (("all", "all"), ("held_out", f"loo_{fam}")):
                model.set_adapter(name)
                row[label] = audit(model, tok, s, ns=(500,)).to_dict()
            row["targets"] = row["base"]["n_targets"]
            out[n] = json.loads(json.dumps(row))  # the same shape as results.json (string keys)
            print(f"[exact] {n}: mass {row['base']['mass']:.3f} / {row['all']['mass']:.3f} / "
                  f"{row['held_out']['mass']:.3f}", flush=True)
    return out


def sampled(specs, adapters: dict[str, Path], n_samples: int) -> dict:
    from synthgen.engine import Request, derive_seed
    from synthgen.engine.vllm_engine import VLLMEngine
    from synthgen.lists import load_targets
    from synthgen.entropy import normalized_entropy
    from synthgen.template import clean_answer

    engine = VLLMEngine(max_loras=4)
    requests, keys = [], []
    for fam, members in FAMILIES.items():
        for n in members:
            prompt = specs[n].prompts[0]
            for label, adapter in (("base", None), ("all", adapters["all"]), ("held_out", adapters[f"loo_{fam}"])):
                for i in range(n_samples):
                    requests.append(Request(prompt=prompt, max_tokens=12, temperature=1.0,
                                            seed=derive_seed("paper_tasks", n, i),
                                            adapter=str(adapter) if adapter else None))
                    keys.append((n, label))
    t0 = time.perf_counter()
    outs = engine.generate(requests)
    engine.close()
    print(f"[sampled] {len(requests)} requests in {time.perf_counter() - t0:.0f} s", flush=True)
    answers: dict[tuple, list] = {}
    for k, o in zip(keys, outs):
        answers.setdefault(k, []).append(clean_answer(o.text).casefold() if o.finish_reason == "stop" else None)
    result = {}
    for (n, label), got in answers.items():
        texts, _ = load_targets(specs[n])
        valid = {clean_answer(t).casefold() for t in texts}
        hits = Counter(a for a in got if a in valid)
        total = sum(hits.values())
        result.setdefault(n, {})[label] = {
            "valid": total / len(got), "distinct_valid": len(hits), "coverage": len(hits) / len(valid),
            "entropy_ratio": normalized_entropy(hits.values(), len(valid)),
            "top": Counter(a for a in got if a).most_common(3)}
    return result


def table(exact_rows: dict, sampled_rows: dict | None, n_samples: int = 500) -> str:
    lines = ["| task | family | targets | mass on valid: base → all → held-out | entropy/max: base → all → held-out "
             "| coverage-500: base → all → held-out |" + (f" sampled valid %: base → all → held-out | sampled coverage-{n_samples} |"
                                                         if sampled_rows else ""),
             "|---|---|---|---|---|---|" + ("---|---|" if sampled_rows else "")]
    mean = {k: [] for k in ("base", "all", "held_out")}
    for n, r in exact_rows.items():
        ent = {k: r[k]["entropy_bits"] / r[k]["max_entropy_bits"] if r[k]["max_entropy_bits"] else 0.0 for k in mean}
        cov = {k: r[k]["expected_distinct"]["500"] / r["targets"] for k in mean}
        for k in mean:
            mean[k].append((r[k]["mass"], ent[k], cov[k]))
        line = (f"| {n} | {r['family']} | {r['targets']} | {r['base']['mass']:.2f} → **{r['all']['mass']:.2f}** → "
                f"**{r['held_out']['mass']:.2f}** | {ent['base']:.2f} → {ent['all']:.2f} → {ent['held_out']:.2f} "
                f"| {cov['base']:.2f} → {cov['all']:.2f} → {cov['held_out']:.2f} |")
        if sampled_rows:
            s = sampled_rows[n]
            line += (f" {s['base']['valid']:.0%} → {s['all']['valid']:.0%} → {s['held_out']['valid']:.0%} "
                     f"| {s['base']['coverage']:.2f} → {s['all']['coverage']:.2f} → {s['held_out']['coverage']:.2f} |")
        lines.append(line)
    avg = {k: [sum(x[i] for x in v) / len(v) for i in range(3)] for k, v in mean.items()}
    line = (f"| **mean** | | | {avg['base'][0]:.2f} → **{avg['all'][0]:.2f}** → **{avg['held_out'][0]:.2f}** "
            f"| {avg['base'][1]:.2f} → {avg['all'][1]:.2f} → {avg['held_out'][1]:.2f} "
            f"| {avg['base'][2]:.2f} → {avg['all'][2]:.2f} → {avg['held_out'][2]:.2f} |")
    if sampled_rows:
        sv = {k: sum(s[k]["valid"] for s in sampled_rows.values()) / len(sampled_rows) for k in mean}
        sc = {k: sum(s[k]["coverage"] for s in sampled_rows.values()) / len(sampled_rows) for k in mean}
        line += (f" {sv['base']:.0%} → {sv['all']:.0%} → {sv['held_out']:.0%} "
                 f"| {sc['base']:.2f} → {sc['all']:.2f} → {sc['held_out']:.2f} |")
    lines.append(line)
    return "\n".join(lines)


def main():
    ap = bench.parser(__doc__, out="out/paper_tasks")
    ap.add_argument("--steps", type=int, default=40, help="optimiser steps per adapter")
    ap.add_argument("--prompts-per-step", type=int, default=2)
    ap.add_argument("--samples", type=int, default=500, help="draws per task and system (0: exact audit only)")
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset of the families")
    args = ap.parse_args()
    if args.steps < 1 or args.prompts_per_step < 1 or args.samples < 0:
        ap.error("--steps and --prompts-per-step must be >= 1, --samples >= 0")
    unknown = set(args.families.split(",")) - set(FAMILIES)
    if unknown:
        ap.error(f"unknown famil(ies) {', '.join(sorted(unknown))}: use {', '.join(FAMILIES)}")
    for f in set(FAMILIES) - set(args.families.split(",")):
        del FAMILIES[f]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    specs = specs_by_name()
    adapters = train_adapters(specs, out, args)
    exact_rows = exact(specs, adapters)
    sampled_rows = sampled(specs, adapters, args.samples) if args.samples else None
    cards = {k: json.loads((p / "synthgen_adapter.json").read_text()) for k, p in adapters.items()}
    results = {"exact": exact_rows, "sampled": sampled_rows, "samples": args.samples,
               "training": {k: {"tasks": [x["name"] for x in c["lists"]], "steps": c["steps"],
                                "train_seconds": c["train_seconds"],
                                "perplexity_ratio": c["capability"]["perplexity_ratio"]} for k, c in cards.items()},
               "seconds": round(time.perf_counter() - t0, 1)}
    bench.write_results(out, results, md=table(exact_rows, sampled_rows, args.samples))
    print(f"\ntotal {results['seconds']:.0f} s; adapters in {out / 'adapters'}")


if __name__ == "__main__":
    bench.run(main)
