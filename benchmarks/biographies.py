"""Biographies each way on the embedded model, in one run, audited by `synthgen report` (issue #6).

Systems (same template, same seeds, same parser and validity rules for all):
  base          every field on the base model, T=1
  base_t1.5     every field on the base model, T=1.5
  verbalized    Verbalized-Sampling-style: for each list field the base model is asked for 5
                candidates with probabilities; one is drawn by the stated probabilities (seeded)
  synthgen      every list field through its diffuse adapter (attribute by attribute)
Not yet here: the paper's single-prompt format with one diffuse adapter (needs an adapter trained
on all lists at once).

For each: valid %, unique valid first names / birth places / careers, entropy, and ratios to base.

    .venv/bin/python benchmarks/biographies.py --n 1000 [--out out/biographies] [--systems base,synthgen]
"""

import argparse
import json
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

VS_SUFFIX = ("\nDo not answer with one choice. Give 5 different possible answers and how likely each is, "
             "one per line, formatted exactly as: answer | probability")
_LINE = re.compile(r"^\s*(?:\d+[.)]\s*|[-*]\s*)?(.+?)\s*[|:\-–]\s*([0-9]*\.?[0-9]+)\s*%?\s*$")


class Verbalized:
    """Wraps an engine: list-field requests become 'k candidates with probabilities' requests and
    the completion returned is one candidate drawn by those probabilities (seeded by the request)."""

    def __init__(self, engine, list_prompts: set[str]):
        self.engine, self.model, self.list_prompts = engine, engine.model, list_prompts

    def _is_list_field(self, prompt):
        return any(prompt.startswith(p) for p in self.list_prompts)

    def generate(self, requests, progress=None):
        from synthgen.engine import Completion

        reqs = [replace(r, prompt=r.prompt + VS_SUFFIX, max_tokens=max(80, 6 * r.max_tokens))
                if self._is_list_field(r.prompt) else r for r in requests]
        outs = self.engine.generate(reqs, progress)
        result = []
        for r, o in zip(requests, outs):
            if not self._is_list_field(r.prompt):
                result.append(o)
                continue
            cands = []
            for line in o.text.splitlines():
                m = _LINE.match(line)
                if m:
                    cands.append((m.group(1).strip(), float(m.group(2))))
            if not cands or sum(p for _, p in cands) <= 0:
                # no candidate list: a bare single answer counts as that answer, anything else is invalid
                result.append(Completion(o.text, o.finish_reason, o.n_tokens))
                continue
            w = np.array([p for _, p in cands])
            rng = np.random.default_rng(r.seed)
            pick = cands[int(rng.choice(len(cands), p=w / w.sum()))][0]
            result.append(Completion(pick, "stop", o.n_tokens))
        return result

    def close(self):
        pass


def headline(rep: dict) -> dict:
    f = {x["field"]: x for x in rep["fields"]}
    out = {}
    for name in ("first_name", "birth_place", "career", "last_name", "birth_date"):
        if name in f:
            out[name] = {"valid": round(f[name]["valid_share"], 3), "unique": f[name]["unique"],
                         "entropy_bits": round(f[name]["entropy_bits"], 2)}
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out/biographies")
    ap.add_argument("--systems", default="base,base_t1.5,verbalized,synthgen")
    args = ap.parse_args()

    from synthgen.engine.vllm_engine import VLLMEngine
    from synthgen.generate import plan_run, read_jsonl, run
    from synthgen.report import analyse
    from synthgen.template import load_template

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    engine = VLLMEngine(max_loras=4)
    results = {}
    for system in args.systems.split(","):
        use_adapters = system == "synthgen"
        t = load_template("biography", use_adapters=use_adapters)
        eng = engine
        if system == "base_t1.5":
            for f in t.fields:
                f.temperature = 1.5
        if system == "verbalized":
            eng = Verbalized(engine, {f.prompt.split("{")[0] for f in t.fields if f.kind == "choice"})
        path = out / f"{system}.jsonl"
        t0 = time.perf_counter()
        s = run(t, eng, plan_run(t, path, args.n, args.seed, use_adapters=use_adapters, overwrite=True),
                args.n, args.seed, use_adapters=use_adapters)
        rows = read_jsonl(path)
        rep = analyse(path)
        h = headline(rep)
        h["all_fields_valid"] = round(sum(all(r[f.name] is not None for f in t.fields) for r in rows) / len(rows), 3)
        h["first_try_valid"] = {k: round(v, 3) for k, v in s.first_try_valid.items()}
        h["seconds"] = round(time.perf_counter() - t0, 1)
        results[system] = h
        print(system, json.dumps(h), flush=True)
    engine.close()
    base = results.get("base")
    if base:
        for system, h in results.items():
            h["ratio_to_base"] = {k: round(h[k]["unique"] / base[k]["unique"], 2) if base[k]["unique"] else None
                                  for k in ("first_name", "birth_place", "career")}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print("\n| system | all fields valid | first names (valid, unique) | birth places | careers | unique ratio to base (names/places/careers) |")
    print("|---|---|---|---|---|---|")
    for system, h in results.items():
        cell = lambda k: f"{h[k]['valid']:.0%}, {h[k]['unique']}"  # noqa: E731
        r = h.get("ratio_to_base", {})
        print(f"| {system} | {h['all_fields_valid']:.0%} | {cell('first_name')} | {cell('birth_place')} | "
              f"{cell('career')} | {r.get('first_name')}× / {r.get('birth_place')}× / {r.get('career')}× |")
