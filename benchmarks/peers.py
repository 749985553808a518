"""Peers side by side: the same biographies from Faker, from one JSON prompt, from the base model and from synthgen, all
scored by `synthgen report` read with the biography template (its lists, targets, real joints and text checks).

Faker (seeded, en_US) fills the template's fields with its closest providers: a gender drawn 50/50,
first_name_female/male, last_name, a date between 1940-01-01 and 2006-12-31, "City, State" from city()
and state(), job(), and a sentence(). The model files are given (or made with --make): `synthgen biographies` runs of the same
n and seed, with and without `--no-adapters`. `--one-shot` adds what most users try first: the embedded model (no
adapter, T=1, seeded per record) asked once per record for the whole record as one JSON object (the reply prefilled
with '{"gender": "' so the 135M model keeps the format), its first JSON object parsed; a reply where it does not parse leaves every
field null (one try: a retry would be a second system).

    synthgen biographies --n 1000 --seed 0 --out out/bios/bios.jsonl
    synthgen biographies --n 1000 --seed 0 --out out/bios_base/bios.jsonl --no-adapters
    .venv/bin/python benchmarks/peers.py --n 1000 --file base=out/bios_base/bios.jsonl --file synthgen=out/bios/bios.jsonl --one-shot
    .venv/bin/python benchmarks/peers.py --n 1000 --make --one-shot     # the same, the two model files made here
"""

import datetime as dt
import json
import random
import subprocess
import sys
import time
from pathlib import Path

from synthgen import bench
from synthgen.atomic import write_atomic
from synthgen.report import analyse

LIST_FIELDS = ["gender", "birth_date", "first_name", "last_name", "birth_place", "career"]


def faker_biographies(n: int, seed: int, out: Path) -> float:
    """n Faker records in the biography's fields, written as JSONL; returns records/s."""
    from faker import Faker

    fake, rng = Faker("en_US"), random.Random(seed)
    fake.seed_instance(seed)
    t0 = time.perf_counter()
    rows = []
    for i in range(n):
        g = rng.choice(["female", "male"])
        rows.append({"index": i, "gender": g,
                     "birth_date": fake.date_between(dt.date(1940, 1, 1), dt.date(2006, 12, 31)).isoformat(),
                     "first_name": fake.first_name_female() if g == "female" else fake.first_name_male(),
                     "last_name": fake.last_name(), "birth_place": f"{fake.city()}, {fake.state()}",
                     "career": fake.job(), "achievements": fake.sentence(nb_words=18)})
    rate = n / (time.perf_counter() - t0)
    write_atomic(out, "".join(json.dumps(r) + "\n" for r in rows))
    return rate


ONE_SHOT = ("Invent a random fictional person. Reply with one JSON object and nothing else, with the keys "
            '"gender" ("female" or "male"), "first_name", "last_name", "birth_date" (YYYY-MM-DD), "birth_place" '
            '("City, State" for the USA, else "City, Country"), "career" (a job title) and "achievements" (one sentence '
            "about the person's achievements).")
ONE_SHOT_PREFILL = '{"gender": "'
ONE_SHOT_KEYS = ["gender", "first_name", "last_name", "birth_date", "birth_place", "career", "achievements"]


def parse_one_shot(text: str) -> dict:
    """The reply's first JSON object (prefill included) -> the record's fields; {} where it does not parse."""
    try:
        got = json.JSONDecoder().raw_decode(text[text.index("{"):])[0]
    except ValueError:  # no "{", or what follows it is not JSON
        got = None
    if not isinstance(got, dict):
        return {}
    return {k: str(got[k]).strip() if got.get(k) is not None else None for k in ONE_SHOT_KEYS}


def one_shot_biographies(n: int, seed: int, out: Path) -> tuple[float, float]:
    """n records from one prompt each on the embedded model, written as JSONL; returns (records/s, parsed share)."""
    from synthgen.engine import Request, derive_seed, start_engine

    eng, _ = start_engine()
    try:
        t0 = time.perf_counter()
        outs = eng.generate([Request(prompt=ONE_SHOT, max_tokens=160, seed=derive_seed(seed, i), prefill=ONE_SHOT_PREFILL)
                             for i in range(n)])
        rate = n / (time.perf_counter() - t0)
    finally:
        eng.close()
    rows = [{"index": i, **{k: None for k in ONE_SHOT_KEYS}, **parse_one_shot(ONE_SHOT_PREFILL + o.text)}
            for i, o in enumerate(outs)]
    write_atomic(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return rate, sum(r["first_name"] is not None for r in rows) / n


def scores(path: Path) -> dict:
    """One file's row: the report's own figures, read with the biography template."""
    rep = analyse(path, template="biography").summary
    by = {f["field"]: f for f in rep["fields"]}
    row = {}
    for name in LIST_FIELDS:
        f = by.get(name) or {}
        kl, floor = f.get("kl_to_target_bits"), f.get("kl_floor_bits")
        row[name] = {"valid": f.get("valid_share"), "unique": f.get("unique"), "perfect": f.get("expected_unique"),
                     "kl_over_floor": kl / floor if kl is not None and floor else None,
                     "outside_target": f.get("off_target_share")}
        cond = f.get("conditional") or {}
        for j in cond.get("joints", []):
            row[f"{name}|{j.get('field')}"] = {"other_share": j.get("contradiction_share"), "real_other_share": j.get("real_contradiction_share"),
                                               "mi": j.get("mi_bits"), "real_mi": j.get("real_mi_bits")}
    text = by.get("achievements") or {}
    row["achievements"] = {"valid": text.get("valid_share"), "checks_all": text.get("checks_all"), "nonword_share": text.get("nonword_share"),
                           "top_3gram": (text.get("top_3grams") or [[None, None]])[0], "semantic_vendi": text.get("semantic_vendi")}
    fit = rep.get("names_fit_birth_country") or {}
    row["names_fit_birth_country"] = {"share": fit.get("fit_share"), "checked": fit.get("checked"),
                                      "unresolved": fit.get("unresolved_place")}
    return row


def main() -> None:
    ap = bench.parser(__doc__, out="out/peers")
    ap.add_argument("--n", type=int, default=1000, help="Faker records (the model files' n)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--file", action="append", default=[], metavar="NAME=PATH", help="a peer's file (repeatable)")
    ap.add_argument("--one-shot", action="store_true", help="also make n records from one JSON prompt each (~3 min per 1,000 here)")
    ap.add_argument("--make", action="store_true", help="make the base and synthgen files here too (synthgen biographies with "
                    "and without --no-adapters, this n and seed; ~15 min per 1,000 here): the whole table in one command")
    args = ap.parse_args()
    files = {}
    for item in args.file:
        if "=" not in item:
            ap.error(f"--file {item!r}: use NAME=PATH")
        k, v = item.split("=", 1)
        if not Path(v).is_file():
            ap.error(f"--file {k}: {v} does not exist")
        files[k] = Path(v)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.make:
        for name, extra in (("base", ["--no-adapters"]), ("synthgen", [])):
            files.setdefault(name, out / f"{name}.jsonl")
            subprocess.run([str(Path(sys.executable).parent / "synthgen"), "biographies", "--n", str(args.n), "--seed",
                            str(args.seed), "--out", str(files[name]), "--overwrite", *extra], check=True)
    speed = {"faker": faker_biographies(args.n, args.seed, out / "faker.jsonl")}
    made = {"faker": out / "faker.jsonl"}
    if args.one_shot:
        speed["one_shot"], parsed = one_shot_biographies(args.n, args.seed, out / "one_shot.jsonl")
        made["one_shot"] = out / "one_shot.jsonl"
        print(f"one-shot JSON: {parsed:.1%} of replies parse, {speed['one_shot']:.2f} records/s", flush=True)
    for k, p in files.items():
        meta = Path(f"{p}.meta.json")
        speed[k] = json.loads(meta.read_text()).get("summary", {}).get("records_per_s") if meta.is_file() else None
    rows = {k: scores(p) for k, p in {**made, **files}.items()}
    bench.write_results(out, {"n": args.n, "seed": args.seed, "files": {k: str(v) for k, v in files.items()},
                              "speed_records_per_s": speed, "rows": rows}, md=table(rows, speed))


def _pct(x):
    return "-" if x is None else f"{x:.1%}"


def table(rows: dict, speed: dict) -> str:
    names = list(rows)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def add(label, fn):
        cells = []
        for k in names:
            try:
                cells.append(fn(rows[k]))
            except (KeyError, TypeError):
                cells.append("-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    for f in LIST_FIELDS:
        add(f"{f}: valid", lambda r, f=f: _pct(r[f]["valid"]))
        add(f"{f}: unique (perfect sampler)", lambda r, f=f: f"{r[f]['unique']} ({r[f]['perfect']:.0f})")
        add(f"{f}: KL / floor (outside target)", lambda r, f=f: f"{r[f]['kl_over_floor']:.2f}× ({_pct(r[f]['outside_target'])})")
    for key in sorted({k for r in rows.values() for k in r if "|" in k}):
        add(f"{key.replace('|', ' given ')}: MI (real joint)", lambda r, key=key: f"{r[key]['mi']:.3f} ({r[key]['real_mi']:.3f})")
        add(f"{key.replace('|', ' given ')}: given mostly to another value (real)",
            lambda r, key=key: f"{_pct(r[key]['other_share'])} ({_pct(r[key]['real_other_share'])})")
    add("names in the birth country's lists (records whose place resolves)",
        lambda r: f"{_pct(r['names_fit_birth_country']['share'])} of {r['names_fit_birth_country']['checked']:,}")
    add("achievements: passes every check", lambda r: _pct(r["achievements"]["checks_all"]))
    add("achievements: non-words", lambda r: _pct(r["achievements"]["nonword_share"]))
    add("achievements: top 3-gram", lambda r: f"{r['achievements']['top_3gram'][0]!r} {_pct(r['achievements']['top_3gram'][1])}")
    add("achievements: semantic Vendi", lambda r: f"{r['achievements']['semantic_vendi']:.1f}")
    lines.append("| records/s | " + " | ".join("-" if speed.get(k) is None else f"{speed[k]:,.1f}" for k in names) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    bench.run(main)
