"""How should a text field sample? A sweep of temperature / top_p / min_p on a template's text field,
each setting scored on fluency, fit to its record and diversity, side by side in one engine.

The records' other fields come from an existing file (e.g. `synthgen biographies --n 1000 --seed 0`),
so every setting writes the text of the same records with the same seeds as the generator (attempt
0, then each retry with the next derived seed). Two tables: what the model writes at the setting
(the first try, every text scored whether the field takes it or not) and what the field stores (the
first text per record that passes the template's checks, up to its retries) with the requests and
decoded tokens that cost. Per setting: each check's pass share, non-words (share of words that are
not English, wordfreq; the record's own values' words left out) and texts with any, the most
common word 3-gram's share of texts, distinct-2, n-gram and semantic Vendi (all-MiniLM-L6-v2).
These are `synthgen report`'s own measures (synthgen/report/metrics.py). The first row scores the
file's own texts of the same records: what the sweep is measured against.

    .venv/bin/python benchmarks/text_sampling.py out/bios_base/bios.jsonl --records 300
    .venv/bin/python benchmarks/text_sampling.py FILE --setting 1.0,1.0,0 --setting 0.8,1.0,0.05 --max-nonwords 0
"""

import argparse
import dataclasses
import json
import re
import time
from collections import Counter
from pathlib import Path

from synthgen import bench

SETTINGS = ["1.0,1.0,0", "0.7,0.9,0", "0.8,0.95,0", "1.0,1.0,0.05", "1.0,1.0,0.1", "0.9,1.0,0.1", "0.8,1.0,0.1",
            "0.7,1.0,0.2"]


def requests_for(field, rows, setting, system=None, attempt=0):
    from synthgen.engine import Request, derive_seed

    t, p, m = setting
    return [Request(prompt=field.render(r), prefill=field.opening(r), max_tokens=field.max_tokens, temperature=t, top_p=p,
                    min_p=m, seed=derive_seed(r["seed"], field.name, attempt), system=system) for r in rows]


def score(field, rows, texts, extra) -> dict:
    """The report's measures of `texts` (rows: their records, without the text itself)."""
    from synthgen.report.metrics import ngram_vendi, semantic_vendi, text_fit

    texts = [re.sub(r"\s+", " ", t).strip() for t in texts]
    toks = [re.findall(r"\w+", t.lower()) for t in texts]
    fit = text_fit(texts, rows, toks, field.checks.describe() if field.checks else None, field.start)
    bigrams = [g for t in toks for g in zip(t, t[1:])]
    sem, _ = semantic_vendi(texts)
    return {**extra, "checks": fit.get("checks", {}), "nonword_share": fit["nonword_share"],
            "texts_with_nonwords": fit["texts_with_nonwords"], "top_3gram": fit["top_3grams"][0],
            "distinct_2": len(set(bigrams)) / max(1, len(bigrams)), "ngram_vendi": ngram_vendi(texts),
            "semantic_vendi": sem, "examples": texts[:5]}


def sample(eng, field, rows, setting, system, retries) -> tuple[dict, dict]:
    """(first try, stored) at one setting, as the generator would write them."""
    t0 = time.perf_counter()
    stored: dict[int, str] = {}
    pending, tokens, requests, first, reasons = list(range(len(rows))), 0, 0, None, Counter()
    for attempt in range(retries + 1):
        outs = eng.generate(requests_for(field, [rows[i] for i in pending], setting, system, attempt))
        tokens, requests = tokens + sum(o.n_tokens for o in outs), requests + len(outs)
        parsed = [field.parse(o.text, o.finish_reason, rows[i]) for o, i in zip(outs, pending)]
        if attempt == 0:  # each text whole (opening + completion, cut as the field cuts it where it can): what the checks see
            texts = [v or (field.opening(rows[i]) or "") + o.text for (v, _), o, i in zip(parsed, outs, pending)]
            first = score(field, rows, texts, {"accepted": sum(v is not None for v, _ in parsed) / len(rows),
                                               "tokens_per_text": sum(o.n_tokens for o in outs) / len(outs)})
        reasons.update((why or "").split(":", 1)[0] for v, why in parsed if v is None)
        stored.update({i: v for (v, _), i in zip(parsed, pending) if v is not None})
        pending = [i for i in pending if i not in stored]
        if not pending:
            break
    keep = sorted(stored)
    kept = score(field, [rows[i] for i in keep], [stored[i] for i in keep],
                 {"accepted": len(keep) / len(rows), "requests_per_record": requests / len(rows),
                  "tokens_per_text": tokens / len(rows), "rejected_by": dict(reasons)})
    kept["texts"] = [stored.get(i) for i in range(len(rows))]  # what the field stores, record by record (null: none passed)
    kept["seconds"] = first["seconds"] = time.perf_counter() - t0
    return first, kept


def table(results: list[dict], stored: bool = False) -> str:
    names = list(results[0]["checks"])
    head = ["T / top_p / min_p", "stored (not null)" if stored else "accepted at 1st try", *names, "non-words",
            "texts w/ non-word", "top 3-gram", "distinct-2", "n-gram Vendi", "semantic Vendi",
            *(["requests/record", "tokens/record"] if stored else ["tokens/text"]), "s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        g, share = r["top_3gram"]
        cells = [r.get("label") or " / ".join(f"{x:g}" for x in r["setting"]), f"{r['accepted']:.1%}",
                 *(f"{r['checks'][n]:.1%}" for n in names), f"{r['nonword_share']:.2%}", f"{r['texts_with_nonwords']:.1%}",
                 f"{g!r} {share:.1%}", f"{r['distinct_2']:.3f}", f"{r['ngram_vendi']:.1f}", f"{r['semantic_vendi']:.1f}",
                 *(["-" if r.get("requests_per_record") is None else f"{r['requests_per_record']:.2f}"] if stored else []),
                 "-" if r.get("tokens_per_text") is None else f"{r['tokens_per_text']:.1f}", f"{r.get('seconds', 0):.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_setting(s: str) -> tuple[float, float, float]:
    try:
        t, p, m = (float(x) for x in s.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r}: give TEMPERATURE,TOP_P,MIN_P, e.g. 0.8,1.0,0.05") from None
    return t, p, m


def main():
    ap = bench.parser(__doc__, out="out/text_sampling")
    ap.add_argument("file", help="records whose other fields the text must fit (JSONL from synthgen generate/biographies)")
    ap.add_argument("--template", default="biography", help="the template whose text field is swept (default: biography)")
    ap.add_argument("--field", default=None, help="the text field (default: the template's first text field)")
    ap.add_argument("--records", type=int, default=300, help="records (the file's first N with every field the text uses)")
    ap.add_argument("--setting", action="append", type=parse_setting, help="TEMPERATURE,TOP_P,MIN_P (repeatable; "
                    "default: a sweep of " + "; ".join(SETTINGS) + ")")
    ap.add_argument("--retries", type=int, default=None, help="retries per text (default: the template's for the field)")
    ap.add_argument("--max-nonwords", type=float, default=None, help="replace the field's checks.max_nonwords")
    args = ap.parse_args()
    if args.records < 10:
        ap.error("--records must be >= 10")
    from synthgen.engine import start_engine
    from synthgen.report import load_dataset
    from synthgen.template import load_template

    t = load_template(args.template)
    texts = [f for f in t.fields if f.kind == "text" and (args.field is None or f.name == args.field)]
    if not texts:
        ap.error(f"template {t.name!r} has no text field {args.field or ''}".rstrip())
    field = texts[0]
    if args.max_nonwords is not None and field.checks:
        t = t.with_changes({field.name: {"checks": dataclasses.replace(field.checks, max_nonwords=args.max_nonwords)}})
        field = t.field(field.name)
    retries = t.retries_for(field) if args.retries is None else args.retries
    ds = load_dataset(args.file)
    rows = [{k: v for k, v in r.items() if k != field.name} for r in ds.rows
            if all(r.get(d) is not None for d in field.requires)][:args.records]
    if len(rows) < 10:
        ap.error(f"{args.file}: fewer than 10 records have {', '.join(field.requires)}")
    settings = args.setting or [parse_setting(s) for s in SETTINGS]
    # the file's own texts of the same records first (its null texts left out: nothing to measure)
    have = [(r, o[field.name]) for r, o in zip(rows, [x for x in ds.rows if all(x.get(d) is not None for d in field.requires)])
            if o.get(field.name)]
    base = {"setting": None, "label": f"the file's texts ({Path(args.file).name})",
            **score(field, [r for r, _ in have], [x for _, x in have], {"accepted": len(have) / len(rows)})}
    firsts, kept = [base], [base]
    eng, _ = start_engine()
    try:
        for s in settings:
            a, b = sample(eng, field, rows, s, t.system, retries)
            firsts.append({"setting": s, **a})
            kept.append({"setting": s, **b})
            print(f"{s}: accepted at 1st try {a['accepted']:.1%}; stored {b['accepted']:.1%} with {b['requests_per_record']:.2f} "
                  f"requests/record, non-words {b['nonword_share']:.2%}, top 3-gram {b['top_3gram']}, "
                  f"semantic Vendi {b['semantic_vendi']:.1f}, {b['seconds']:.0f}s", flush=True)
    finally:
        eng.close()
    checks = field.checks.describe() if field.checks else None
    md = (f"What the model writes (first try, every text scored; checks: {json.dumps(checks)}):\n\n{table(firsts)}\n\n"
          f"What the field stores (the first text that passes, up to {retries} retries):\n\n{table(kept, stored=True)}")
    bench.write_results(args.out, {"file": args.file, "records": len(rows), "field": field.name, "retries": retries,
                                   "checks": checks, "dtype": eng.dtype, "first_try": firsts, "stored": kept}, md=md)


if __name__ == "__main__":
    bench.run(main)
