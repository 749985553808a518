"""Do a biography file's fields fit together? The same checks on any file, old or new template.

For each biography JSONL: the first name against the real joint of SSA births by sex and decade
(synthgen/data/first_names_by_decade.csv, the 500 most given names of each sex per decade):
  - the share of records whose first name is given mostly to the other sex (the SSA itself: the
    share of births with such a name, computed for the records' own sex and decade), and the same
    for the decade ("given mostly in another decade");
  - MI(gender; first name) and MI(birth decade; first name) next to records drawn from the real
    joint with the same genders and birth decades (mean ± sd of 20 draws: the same n, the same
    plug-in bias);
  - the share of records whose name is outside its sex and decade's list, KL to that list vs its floor;
  - unique first names, the top 5, and `synthgen report`'s KL→target of each list field vs its floor;
  - whether the free text agrees with its record: the share of achievements sentences that use the other
    sex's pronouns (he/him/his/himself for a female record, she/her/hers/herself for a male one), that
    use the record's own, that name the record's first name, and that say "born ... YYYY" with another year.
A file made by today's template is judged by its own template's definition; an older file (first
name not conditional) by the shipped template's, so before and after are scored the same way.

    .venv/bin/python benchmarks/realism.py out/before/bios.jsonl out/after/bios.jsonl [--out out/realism] [--note "..."]
"""

import re
from collections import Counter
from pathlib import Path

from synthgen import bench
from synthgen.report import analyse
from synthgen.report import load_dataset
from synthgen.report.joints import conditional_stats
from synthgen.template import load_template

ROOT = Path(__file__).resolve().parent.parent


def shipped_first_name() -> tuple[dict, str]:
    t = load_template("biography")
    meta = next(f for f in t.describe()["fields"] if f["name"] == "first_name")
    return meta, t.path


PRONOUNS = {"male": re.compile(r"\b(he|him|his|himself)\b", re.I), "female": re.compile(r"\b(she|her|hers|herself)\b", re.I)}
BORN_YEAR = re.compile(r"\bborn\b[^.]*?\b(1[89]\d\d|20\d\d)\b", re.I)


def text_agreement(rows: list[dict], field: str = "achievements") -> dict | None:
    """Shares of the records with a `field` text (and a gender) whose text contradicts or names the record."""
    rows = [r for r in rows if r.get(field) and r.get("gender") in PRONOUNS]
    if not rows:
        return None
    n = len(rows)

    def share(test) -> float:
        return sum(1 for r in rows if test(r, r[field])) / n

    other = {"female": "male", "male": "female"}
    return {"field": field, "records": n,
            "other_sex_pronouns": share(lambda r, t: bool(PRONOUNS[other[r["gender"]]].search(t))),
            "own_sex_pronouns": share(lambda r, t: bool(PRONOUNS[r["gender"]].search(t))),
            "names_first_name": share(lambda r, t: bool(r.get("first_name")) and r["first_name"].lower() in t.lower()),
            "other_birth_year": share(lambda r, t: any(m != str(r.get("birth_date", ""))[:4] for m in BORN_YEAR.findall(t)))}


def score(path: str) -> dict:
    rep = analyse(path)
    meta_field, tpath = shipped_first_name()
    ds = load_dataset(path)
    rows = ds.rows
    cond = conditional_stats(rows, meta_field, tpath)
    names = Counter(r["first_name"] for r in rows if r.get("first_name"))
    fields = {f["field"]: {k: f.get(k) for k in ("valid_share", "unique", "expected_unique", "kl_to_target_bits",
                                                  "kl_floor_bits", "off_target_share", "top")}
              for f in rep.summary["fields"] if f["kind"] == "categorical"}
    dtype = ((ds.meta or {}).get("settings") or {}).get("dtype")  # the engine's, as the run recorded it
    return {"file": path, "dtype": dtype, "records": len(rows), "first_name": cond, "unique_first_names": len(names),
            "top_first_names": names.most_common(5), "fields": fields, "text": text_agreement(rows)}


def table(results: list[dict]) -> str:
    head = ["", *(Path(r["file"]).parent.name or r["file"] for r in results)]
    rows = [("records", [str(r["records"]) for r in results]),
            ("unique first names", [str(r["unique_first_names"]) for r in results]),
            ("top first names", [", ".join(f"{k} {v}" for k, v in r["top_first_names"][:3]) for r in results])]
    for g, label in (("gender", "sex"), ("birth_date", "decade")):
        js = [{j["field"]: j for j in r["first_name"]["joints"]}[g] for r in results]
        rows.append((f"name mostly given under another {label}",
                     [f"{j['contradiction_share']:.1%} (real {j['real_contradiction_share']:.1%})" for j in js]))
        rows.append((f"MI({label}; first name) bits", [f"{j['mi_bits']:.3f} (real {j['real_mi_bits']:.3f} ± {j['real_mi_sd']:.3f})" for j in js]))
    rows.append(("name outside its sex+decade list", [f"{r['first_name']['outside_own_list']:.1%}" for r in results]))
    rows.append(("KL to own list (floor), bits", [f"{r['first_name']['kl_to_own_list_bits']:.3f} ({r['first_name']['kl_floor_bits']:.3f})"
                                                  if r["first_name"]["kl_to_own_list_bits"] is not None else "-" for r in results]))
    for name in results[0]["fields"]:
        rows.append((f"{name}: unique (a perfect sampler's) / KL→target (floor) / off target", [
            (lambda f: "-" if not f else f"{f['unique']} ({f['expected_unique'] or 0:.0f}) / " + (
                "-" if f.get("kl_to_target_bits") is None else f"{f['kl_to_target_bits']:.3f} ({f['kl_floor_bits']:.3f})")
             + ("" if f.get("off_target_share") is None else f" / {f['off_target_share']:.1%}"))(r["fields"].get(name))
            for r in results]))
        if name not in ("gender", "birth_date", "first_name"):
            rows.append((f"{name}: top 3", [", ".join(f"{v} {c}" for v, c, _ in (r["fields"].get(name) or {}).get("top", [])[:3])
                                            for r in results]))
    for key, label in (("other_sex_pronouns", "the other sex's pronouns"), ("own_sex_pronouns", "its own sex's pronouns"),
                       ("names_first_name", "names the first name"), ("other_birth_year", "\"born ... YYYY\" with another year")):
        text = next((r["text"]["field"] for r in results if r.get("text")), "text")
        rows.append((f"{text}: {label}", [f"{r['text'][key]:.1%}" if r.get("text") else "-" for r in results]))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([k, *v]) + " |" for k, v in rows]
    return "\n".join(lines)


def main():
    ap = bench.parser(__doc__, out="out/realism")
    ap.add_argument("files", nargs="+", help="biography JSONL files (synthgen biographies --out ...)")
    ap.add_argument("--note", default="", help="how the files were made (commands), written above the table")
    args = ap.parse_args()
    for f in args.files:
        if not Path(f).is_file():
            ap.error(f"{f}: no such file")
    results = [score(f) for f in args.files]
    bench.write_results(args.out, {"note": args.note, "files": results}, md=table(results))


if __name__ == "__main__":
    bench.run(main)
