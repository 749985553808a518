"""Biographies each way on the embedded model, in one run, audited by `synthgen report` (issue #6).

Systems (same fields, seeds, parser, validity rules and retries: --retries N for every field, or
by default the template's per field, i.e. 3, birth place 6, career 8):
  base          templates/biography.yaml field by field on the base model, T=1, decoded free
  base_constrained  the base model with the same trie constraint as synthgen: valid by construction,
                so "unique vs base" compares valid answers, not format failures
  base_t1.5     the same at T=1.5
  verbalized    Verbalized-Sampling-style: for each list field the base model is asked for 5
                candidates with probabilities; one is drawn by the stated probabilities (seeded)
  single        the paper's single-prompt format: one prompt asks for the whole record ("Gender: ...
                First name: ... Career: ..."; the reply is prefilled with "Gender:" so the 135M model
                keeps the format), through ONE diffuse adapter trained on first names, surnames, birth
                places and careers together (OUT/joint_adapter, trained here if missing, ~10 min on
                2 cores); a record with an invalid field is re-asked with the whole prompt (up to the largest
                field retries), the first valid value of each field kept
  synthgen      field by field, every list field through its own diffuse adapter (adapters/),
                constrained to its list: what `synthgen biographies` gives a user
  synthgen_free the same adapters decoded free (sample, parse, --retries)
  synthgen_retry  free with the template's own retries whatever --retries says (the generator
                before constrained decoding)

Fairness: where a system's earlier field is invalid after its retries, the later prompts use a
value from a shared skeleton (drawn from the fields' lists with the run seed) instead of giving up,
so every field is judged on its own. The invalid field stays null in the file and counts as
invalid. The benchmark uses the biography fields gender, first_name, last_name, birth_place,
career, and the birth date the first name's list depends on (sex and birth decade; no free text:
it costs time and is not among the issue's measures).

For each field: valid %, valid at the first try, unique valid values and unique per 1000 valid,
entropy, KL(empirical || target) on the part inside the adapter's target list with its floor (the
mean KL of samples of the same n drawn from the target itself: `synthgen report`'s) and the share
outside it, the top values (unique counts alone reward junk: the constrained base model gives
many unique but absurd values), and the exact-sampling ceiling: expected distinct values in
that many draws from the target distribution itself. Ratios to base;
OUT/results.json, OUT/results.md (docs/results.md's tables), OUT/report_SYSTEM/ (`synthgen report`
of each system against base, with the birth-place world map).

    .venv/bin/python benchmarks/biographies.py --n 1000 [--out out/biographies] [--systems base,synthgen]
"""

import argparse
import json
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from synthgen.engine.base import Engine

FIELDS = ["gender", "birth_date", "first_name", "last_name", "birth_place", "career"]
SYSTEMS = ["base", "base_t1.5", "verbalized", "single", "base_constrained", "synthgen", "synthgen_free", "synthgen_retry"]
TARGETS_SAID = {"first_name": "the SSA names of each record's sex and birth decade, mixed over the records",
                "birth_place": "adapters/birth_places.yaml", "career": "adapters/careers.yaml"}
MEASURED = ("first_name", "birth_place", "career")
TARGETS = {"first_name": 4.0, "birth_place": 3.0, "career": 1.5}  # unique valid vs base (issue #6)
VS_SUFFIX = ("\nDo not answer with one choice. Give 5 different possible answers and how likely each is, "
             "one per line, formatted exactly as: answer | probability")
_LINE = re.compile(r"^\s*(?:\d+[.)]\s*|[-*]\s*)?(.+?)\s*[|:\-–]\s*([0-9]*\.?[0-9]+)\s*%?\s*$")
SINGLE_PROMPT = ("Invent a random fictional person. Reply in exactly this format, nothing else:\n"
                 "Gender: <female or male>\nFirst name: <first name>\nLast name: <last name>\n"
                 "Birth place: <City, Country>\nCareer: <job title>")
SINGLE_PREFILL = "Gender:"
SINGLE_LABELS = {"gender": "gender", "first name": "first_name", "last name": "last_name",
                 "birth place": "birth_place", "career": "career"}
JOINT_SPECS = ["first_names", "surnames", "birth_places", "careers"]


class Verbalized(Engine):
    """Wraps an engine: list-field requests become 'k candidates with probabilities' requests and
    the completion returned is one candidate drawn by those probabilities (seeded by the request)."""

    def __init__(self, engine, list_prompts: set[str]):
        self.engine, self.model, self.list_prompts = engine, engine.model, list_prompts

    def _is_list_field(self, prompt):
        return any(prompt.startswith(p) for p in self.list_prompts)

    def generate(self, requests, progress=None):
        from synthgen.engine import Completion

        reqs = [replace(r, prompt=r.prompt + VS_SUFFIX, max_tokens=max(48, 4 * r.max_tokens))
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
    """The report's figures per field; its KL→target, floor and ceiling share one target: the adapter's list, or for a
    field whose list depends on the record (first names: sex and decade) the mixture of the records' own lists."""
    f = {x["field"]: x for x in rep["fields"]}
    out = {}
    for name in ("first_name", "birth_place", "career", "last_name", "birth_date"):
        if name in f:
            x = f[name]
            out[name] = {"valid": round(x["valid_share"], 3), "unique": x["unique"],
                         "unique_per_1000_valid": round(1000 * x["unique"] / x["valid"], 1) if x["valid"] else 0.0,
                         "entropy_bits": round(x["entropy_bits"], 2),
                         "kl_to_target_bits": None if x.get("kl_to_target_bits") is None else round(x["kl_to_target_bits"], 2),
                         "kl_floor_bits": None if x.get("kl_floor_bits") is None else round(x["kl_floor_bits"], 2),
                         "off_target_share": None if x.get("off_target_share") is None else round(x["off_target_share"], 3),
                         "top": [v for v, _, _ in x["top"][:3]]}
            if x.get("expected_unique") is not None:
                out[name]["ceiling_unique"] = round(x["expected_unique"], 1)
    return out


def biography_template(use_adapters: bool, decode: str = "free"):
    from synthgen.template import load_template

    t = load_template("biography", use_adapters=use_adapters).with_decode(decode)
    t.fields = [f for f in t.fields if f.name in FIELDS]
    return t


def skeleton(template, seed: int):
    """fallback(index): one value per field from its list, the same for every system."""
    from synthgen.engine import derive_seed

    pools = {f.name: f.items() for f in template.fields if f.kind == "choice" or (f.kind == "date" and f.min and f.max)}

    def values(i):
        rng = np.random.default_rng(derive_seed(seed, "skeleton", i))
        return {name: pool[rng.integers(len(pool))] for name, pool in pools.items()}
    return values


def parse_single(text: str) -> dict[str, str]:
    """'Gender: female\\nFirst name: Ava ...' (the prefill included) -> {field: raw answer}."""
    got = {}
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        key = SINGLE_LABELS.get(label.strip().strip("*# ").casefold())
        if sep and key and key not in got:
            got[key] = value
    return got


def run_single(template, engine, adapter: str | None, path: Path, n: int, seed: int, retries: int) -> dict:
    """The single-prompt system: one request per record and attempt; writes a file like `run` does."""
    from synthgen.engine import Request, derive_seed
    from synthgen.generate import plan_run, run_identity, write_json_atomic

    meta_path = plan_run(template, path, n, seed, use_adapters=False, existing="overwrite").meta_path  # checks `path`
    records = [{"index": i, "seed": derive_seed(seed, i)} for i in range(n)]
    errors = [{} for _ in range(n)]
    attempts = [{} for _ in range(n)]
    stats = {"requests": 0, "first_valid": {f.name: 0 for f in template.fields}}
    todo = list(range(n))
    for attempt in range(retries + 1):
        if not todo:
            break
        outs = engine.generate([Request(prompt=SINGLE_PROMPT, max_tokens=64, seed=derive_seed(
            records[k]["seed"], "single", attempt), adapter=adapter, prefill=SINGLE_PREFILL) for k in todo])
        stats["requests"] += len(todo)
        again = []
        for k, o in zip(todo, outs):
            raw = parse_single(SINGLE_PREFILL + o.text)
            for f in template.fields:
                if records[k].get(f.name) is not None:
                    continue
                value, reason = f.parse(raw[f.name], "stop") if f.name in raw else (None, "no such line")
                attempts[k][f.name] = attempt + 1
                records[k][f.name] = value
                errors[k][f.name] = None if value is not None else f"{reason}: {raw.get(f.name, o.text)[:80]!r}"
                if value is not None and attempt == 0:
                    stats["first_valid"][f.name] += 1
            if any(records[k][f.name] is None for f in template.fields):
                again.append(k)
        todo = again
    with open(path, "w") as fh:
        for rec, err, att in zip(records, errors, attempts):
            fh.write(json.dumps(rec | {"errors": err, "attempts": att}, ensure_ascii=False) + "\n")
    write_json_atomic(meta_path, {
        "identity": run_identity(template, seed, engine.model, False) | {"system": "single", "adapter": adapter},
        "template": template.describe(), "n": n, "complete": True})
    return {"requests": stats["requests"],
            "first_try_valid": {f: c / n for f, c in stats["first_valid"].items()}}


def joint_adapter(out: Path) -> str:
    """One adapter on all four lists (the single-prompt system's), trained once and cached."""
    from synthgen.lists import load_spec
    from synthgen.models import resolve_model
    from synthgen.card import read_card
    from synthgen.train import TrainConfig, train

    path = out / "joint_adapter"
    specs = [load_spec(Path(__file__).resolve().parent.parent / "adapters" / f"{n}.yaml") for n in JOINT_SPECS]
    card = read_card(path)
    if card is None or [x["spec_hash"] for x in card.lists] != [s.digest() for s in specs]:
        print(f"training the joint adapter on {', '.join(JOINT_SPECS)} -> {path}", flush=True)
        card = train(resolve_model(None), specs, path, TrainConfig(steps=30, prompts_per_step=2, max_targets=200,
                                                                  audit_prompts=1, seed=0),
                     overwrite=True, base_name="smollm2-135m")
    print("joint adapter: " + ", ".join(f"{x['name']} mass {x['base']['mass']:.3f} -> {x['adapter']['mass']:.3f}"
                                        for x in card.lists), flush=True)
    return str(path)


def ratio(x) -> str:
    return "–" if x is None else f"{x}×"  # None: the base model had no valid answer


def markdown(results: dict, n: int) -> str:
    lines = [f"| system ({n} records each) | all {len(FIELDS)} fields valid | requests | generated tokens | s |", "|---|---|---|---|---|"]
    for system, h in results.items():
        lines.append(f"| {system} | {h['all_fields_valid']:.1%} | {h['requests']} | {h.get('tokens', '')} | {h['seconds']:.0f} |")
    for k in MEASURED:
        who = next((s for s in ("synthgen", "synthgen_retry", *results) if s in results
                    and "ceiling_unique" in results[s].get(k, {})), None)
        ceiling = results[who][k]["ceiling_unique"] if who else None
        lines += ["", f"**{k}** (target: {TARGETS_SAID[k]}"
                  + (f"; sampling the target itself would give ~{ceiling:.0f} unique in the {who} system's "
                     f"{round(1000 * results[who][k]['unique'] / results[who][k]['unique_per_1000_valid'])} valid draws"
                     if ceiling is not None and results[who][k]["unique_per_1000_valid"] else "") + ")", "",
                  "| system | valid | 1st try | unique | per 1000 valid | vs base | entropy bits | KL→target bits (floor) | off target "
                  "| top 3 |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for system, h in results.items():
            x = h[k]
            kl = "–" if x.get("kl_to_target_bits") is None else f"{x['kl_to_target_bits']:.2f}" + (
                f" ({x['kl_floor_bits']:.2f})" if x.get("kl_floor_bits") is not None else "")
            off = "–" if x.get("off_target_share") is None else f"{x['off_target_share']:.0%}"
            first = h.get("first_try_valid", {}).get(k)
            lines.append(f"| {system} | {x['valid']:.1%} | {'' if first is None else f'{first:.0%}'} | **{x['unique']}** "
                         f"| {x.get('unique_per_1000_valid', 0):.0f} | {ratio(h.get('ratio_to_base', {}).get(k))} "
                         f"| {x['entropy_bits']:.2f} | {kl} | {off} | {', '.join(x.get('top', []))} |")
    return "\n".join(lines)


def verdict(results: dict) -> list[str]:
    """The issue's targets, each with the measured number and met / missed by how much."""
    out = []
    base = results.get("base")
    for name in ("synthgen", "synthgen_free", "synthgen_retry"):
        s = results.get(name)
        if not (s and base):
            continue
        for k, want in TARGETS.items():
            got, valid = s["ratio_to_base"][k], s[k]["valid"]
            if got is None:  # the base model gave no valid answer at all
                got = "∞" if s[k]["unique"] else 0
            ok = (got == "∞" or got >= want) and valid >= 0.9
            shown = f"{got}× base unique" if got != "∞" else f"{s[k]['unique']} unique vs 0 for base"
            out.append(f"- {name} {k}: {shown} (target ≥ {want}×) at {valid:.1%} valid (target ≥ 90%): "
                       + ("met" if ok else "MISSED" + (f" (ratio {got / want:.2f} of target)" if got != "∞" and got < want else "")
                          + (f" (validity {valid - 0.9:+.1%})" if valid < 0.9 else "")))
    s = results.get("synthgen")
    if not s:
        return out
    for other in ("base_t1.5", "verbalized", "single", "base_constrained", "synthgen_retry"):
        o = results.get(other)
        if not o:
            continue
        ahead = [k for k in MEASURED if s[k]["unique"] > o[k]["unique"] and s[k]["valid"] >= o[k]["valid"]]
        behind = [f"{k} ({s[k]['unique']} vs {o[k]['unique']} unique, {s[k]['valid']:.1%} vs {o[k]['valid']:.1%} valid)"
                  for k in MEASURED if k not in ahead]
        kl = lambda h, k: "–" if h[k].get("kl_to_target_bits") is None else f"{h[k]['kl_to_target_bits']:.2f}"  # noqa: E731
        out.append(f"- ahead of {other} on unique at equal or better validity: {len(ahead)}/3"
                   + (f"; not on {'; '.join(behind)}" if behind else "")
                   + "; KL→target bits (lower = more realistic) " + ", ".join(
                       f"{k} {kl(s, k)} vs {kl(o, k)}" for k in MEASURED))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out/biographies")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--retries", type=int, default=None, help="retries per field for every system but "
                    "synthgen_retry (default: the template's)")
    ap.add_argument("--render-only", action="store_true", help="rewrite OUT/results.md from OUT/results.json")
    args = ap.parse_args()
    if args.render_only:
        doc = json.loads((Path(args.out) / "results.json").read_text())
        doc["verdict"] = verdict(doc["systems"])
        (Path(args.out) / "results.json").write_text(json.dumps(doc, indent=2))
        (Path(args.out) / "results.md").write_text(markdown(doc["systems"], doc["n"]) + "\n\n"
                                                   + "\n".join(doc["verdict"]) + "\n")
        return
    if args.n < 1 or (args.retries is not None and args.retries < 0):
        ap.error("--n must be >= 1 and --retries >= 0")
    systems = args.systems.split(",")
    if set(systems) - set(SYSTEMS):
        ap.error(f"unknown system(s) {', '.join(sorted(set(systems) - set(SYSTEMS)))}: use {', '.join(SYSTEMS)}")

    from synthgen.engine.vllm_engine import VLLMEngine
    from synthgen.generate import Fill, plan_run, read_jsonl, run
    from synthgen.report import analyse, write_outputs

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    joint = joint_adapter(out) if "single" in systems else None
    t_start = time.perf_counter()
    engine = VLLMEngine(max_loras=4)
    fallback = skeleton(biography_template(False), args.seed)
    results, reports = {}, {}
    for system in systems:
        use_adapters = system.startswith("synthgen")
        retries = None if system == "synthgen_retry" else args.retries
        t = biography_template(use_adapters, "constrained" if system in ("synthgen", "base_constrained") else "free")
        path = out / f"{system}.jsonl"
        t0 = time.perf_counter()
        if system == "single":
            s = run_single(t, engine, joint, path, args.n, args.seed,
                           max(t.retries_for(f) for f in t.fields) if retries is None else retries)
            requests, first = s["requests"], s["first_try_valid"]
        else:
            eng = engine
            if system == "base_t1.5":
                for f in t.fields:
                    f.temperature = 1.5
            if system == "verbalized":
                eng = Verbalized(engine, {f.prompt.split("{")[0] for f in t.fields if f.kind == "choice"})
            s = run(t, eng, plan_run(t, path, args.n, args.seed, use_adapters=use_adapters, existing="overwrite"),
                    args.n, args.seed, Fill(use_adapters=use_adapters, retries=retries, fallback=fallback))
            requests, first = s.requests, s.first_try_valid
        seconds = time.perf_counter() - t0
        rows = read_jsonl(path)
        reports[system] = analyse(path)
        h = headline(reports[system].summary)
        h["tokens"] = None if system == "single" else s.tokens
        h["all_fields_valid"] = round(sum(all(r[f.name] is not None for f in t.fields) for r in rows) / len(rows), 3)
        h["first_try_valid"] = {k: round(v, 3) for k, v in first.items()}
        h["requests"], h["seconds"] = requests, round(seconds, 1)
        results[system] = h
        print(system, json.dumps(h), flush=True)
    engine.close()
    base = results.get("base")
    for system, h in results.items():
        if base:
            h["ratio_to_base"] = {k: round(h[k]["unique"] / base[k]["unique"], 2) if base[k]["unique"] else None
                                  for k in MEASURED}
        write_outputs(reports[system], out / f"report_{system}", reports.get("base") if system != "base" else None)
    doc = {"n": args.n, "seed": args.seed, "retries": args.retries, "dtype": engine.dtype, "systems": results,
           "verdict": verdict(results),
           "seconds": round(time.perf_counter() - t_start, 1)}
    (out / "results.json").write_text(json.dumps(doc, indent=2))
    md = markdown(results, args.n) + "\n\n" + "\n".join(doc["verdict"]) + "\n"
    (out / "results.md").write_text(md)
    print("\n" + md)


if __name__ == "__main__":
    main()
