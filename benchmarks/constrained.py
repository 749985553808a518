"""Constrained decoding: what the trie mask costs and how much it distorts (issue #12).

cost        256 requests through a field's adapter, three ways on one engine, in rounds that
            alternate them (free, trie, vLLM's own `choice` structured output): requests/s, valid %,
            unique valid answers, generated tokens. Fields: the biography's career (job_titles, 5,882
            titles, careers adapter) and birth place (world_cities, 32,963 places, birth_places adapter).
            Target: trie >= 0.9x free.
distortion  for every shipped adapter's list spec, exact audit on its first prompt, base and adapter:
            mass on valid, H(P|valid), H(Q), KL(Q || P(.|valid)) in nats, KL(Q || p*) in bits, expected
            distinct in 500 draws under Q. Target: KL(Q || P(.|valid)) <= 0.05 nats for adapters.

Writes OUT/results.json and OUT/results.md (docs/results.md's tables).

    .venv/bin/python benchmarks/constrained.py [--parts cost,distortion] [--n 256] [--rounds 2] [--out out/constrained]
"""

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {"career": "careers", "birth_place": "birth_places"}  # field -> adapter
NAME = {"first_name": "Maria", "last_name": "Lopez"}


def cost(n: int, rounds: int) -> dict:
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    from synthgen.engine import Request
    from synthgen.engine.vllm_engine import VLLMEngine
    from synthgen.generate import compile_tries
    from synthgen.template import load_template

    t = load_template("biography")
    t.fields = [f for f in t.fields if f.name in FIELDS]
    engine = VLLMEngine(max_loras=2)
    tries = compile_tries(t, engine.tokenizer)
    out = {}
    for f in t.fields:
        prompt = f.prompt.format(**NAME)
        items = f.items()
        rows = {}

        def run(mode):
            t0 = time.perf_counter()
            if mode == "choice":  # vLLM's grammar engine, no synthgen in the loop
                ids = {"prompt_token_ids": engine.prompt_ids(prompt)}
                lora = engine._lora_request(f.adapter_path)
                params = [SamplingParams(max_tokens=f.max_tokens, seed=i, structured_outputs=StructuredOutputsParams(
                    choice=items)) for i in range(n)]
                res = engine.llm.generate([ids] * n, params, lora_request=[lora] * n, use_tqdm=False)
                texts = [(r.outputs[0].text, r.outputs[0].finish_reason, len(r.outputs[0].token_ids)) for r in res]
            else:
                reqs = [Request(prompt, max_tokens=f.max_tokens, seed=i, adapter=f.adapter_path,
                                trie=tries[f.name] if mode == "trie" else None) for i in range(n)]
                texts = [(o.text, o.finish_reason, o.n_tokens) for o in engine.generate(reqs)]
            dt = time.perf_counter() - t0
            valid = [v for v in (f.parse(x, fin)[0] for x, fin, _ in texts) if v is not None]
            return {"seconds": round(dt, 2), "req_per_s": round(n / dt, 2), "valid": round(len(valid) / n, 3),
                    "unique_valid": len(set(valid)), "tokens": sum(k for _, _, k in texts)}

        for r in range(rounds):
            for mode in ("free", "trie", "choice"):
                if mode == "choice" and r > 0:
                    continue  # slow on big lists; its grammar is cached after the first round anyway
                rows.setdefault(mode, []).append(run(mode))
                print(f.name, mode, f"round {r + 1}", json.dumps(rows[mode][-1]), flush=True)
        best = {m: max(v, key=lambda x: x["req_per_s"]) for m, v in rows.items()}
        out[f.name] = {"items": len(items), "adapter": FIELDS[f.name], "rounds": rows, "best": best,
                       "trie_vs_free": round(best["trie"]["req_per_s"] / best["free"]["req_per_s"], 2)}
    dtype = engine.dtype
    engine.close()
    return out, dtype


def distortion(adapters: list[str]) -> dict:
    from peft import PeftModel

    from synthgen.audit import audit
    from synthgen.lists import load_spec
    from synthgen.models import resolve_model
    from synthgen.train import load_base

    tok, base = load_base(resolve_model(None))
    out = {}
    for name in adapters:
        spec = load_spec(ROOT / "adapters" / f"{name}.yaml")
        prompt = [spec.prompts[0]]
        t0 = time.perf_counter()
        model = PeftModel.from_pretrained(base, str(ROOT / "adapters" / name)).eval()
        b = audit(model, tok, spec, prompts=prompt, adapter_off=True, ns=(500,)).to_dict()
        a = audit(model, tok, spec, prompts=prompt, ns=(500,)).to_dict()
        base = model.unload()
        out[name] = {"targets": b["n_targets"], "base": b, "adapter": a, "seconds": round(time.perf_counter() - t0, 1)}
        print(name, json.dumps({k: {m: v[m] for m in ("mass", "kl_q_valid_nats", "kl_q_target_bits")}
                                for k, v in (("base", b), ("adapter", a))}), flush=True)
    return out


def markdown(doc: dict) -> str:
    lines = []
    if "cost" in doc:
        lines += [f"| field (list, adapter) | mode | requests/s | valid | unique valid of {doc['n']} | tokens |",
                  "|---|---|---|---|---|---|"]
        for field, c in doc["cost"].items():
            for mode, r in c["best"].items():
                label = {"free": "free", "trie": "**trie (synthgen)**", "choice": "vLLM `choice`"}[mode]
                lines.append(f"| {field} ({c['items']:,} items, {c['adapter']}) | {label} | {r['req_per_s']:.1f} "
                             f"| {r['valid']:.1%} | {r['unique_valid']} | {r['tokens']} |")
        lines += [""] + [f"- {field}: trie {c['trie_vs_free']}x free requests/s (target >= 0.9x): "
                         + ("met" if c["trie_vs_free"] >= 0.9 else "MISSED") for field, c in doc["cost"].items()]
        lines.append("")
    if "distortion" in doc:
        lines += ["| list (targets) | model | mass on valid | H(P·\\|valid) bits | H(Q) bits | KL(Q‖P·\\|valid) nats "
                  "| KL(Q‖p*) bits | E[distinct] in 500 under Q |", "|---|---|---|---|---|---|---|---|"]
        for name, d in doc["distortion"].items():
            for label in ("base", "adapter"):
                r = d[label]
                lines.append(f"| {name} ({d['targets']:,}) | {label} | {r['mass']:.3f} | {r['entropy_bits']:.2f} | "
                             f"{r['q_entropy_bits']:.2f} | {r['kl_q_valid_nats']:.4f} | {r['kl_q_target_bits']:.2f} | "
                             f"{r['q_expected_distinct']['500']:.0f} |")
        met = [n for n, d in doc["distortion"].items() if d["adapter"]["kl_q_valid_nats"] <= 0.05]
        lines += ["", f"- KL(Q‖P(·|valid)) <= 0.05 nats (target): {len(met)} of {len(doc['distortion'])} adapters "
                  f"({', '.join(met) or 'none'})"]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="cost,distortion")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--adapters", default="gender,first_names,surnames,birth_dates,birth_places,careers,numbers_1_100")
    ap.add_argument("--out", default="out/constrained")
    args = ap.parse_args()
    parts = args.parts.split(",")
    if set(parts) - {"cost", "distortion"} or args.n < 1 or args.rounds < 1:
        ap.error("--parts takes cost,distortion; --n and --rounds must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    doc["n"] = args.n
    if "cost" in parts:
        doc["cost"], doc["dtype"] = cost(args.n, args.rounds)
    if "distortion" in parts:
        # JSON keys: expected-distinct dicts are keyed by str after a round trip; keep one form
        doc["distortion"] = json.loads(json.dumps(distortion(args.adapters.split(","))))
    (out / "results.json").write_text(json.dumps(doc, indent=2))
    md = markdown(doc)
    (out / "results.md").write_text(md)
    print("\n" + md)


if __name__ == "__main__":
    main()
