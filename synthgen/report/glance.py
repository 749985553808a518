"""The report's first screen: per field and per joint, the data next to what a perfect sampler of
the real-world target gives at the same n, with a plain verdict. The long tables follow it."""

from __future__ import annotations


VALID_OK = 0.95  # fewer valid values than this: the first screen says so before any figure of the valid ones
OFF_TARGET = 0.05  # more valid values than this outside the target list: KL (computed inside it) is not the story


def kl_verdict(kl: float, floor: float, off_target: float | None = None) -> str:
    ratio = kl / floor if floor > 0 else float("inf")
    if off_target is not None and off_target > OFF_TARGET:
        return f"off target ({off_target:.0%} of values outside the target list; KL inside it {ratio:.1f}x the floor)"
    if kl <= 1.5 * floor + 0.01:
        return "on target (within sampling noise)"
    if kl <= 3 * floor + 0.05:
        return f"near the target ({ratio:.1f}x the floor)"
    return f"off target ({ratio:.1f}x the floor)"


def unique_verdict(unique: int, expected: float) -> str:
    share = unique / expected if expected else 0.0
    if share >= 0.9:
        return "as diverse as the target"
    if share >= 0.5:
        return f"less diverse than the target ({share:.0%} of its unique values)"
    return f"collapsed ({share:.0%} of the target's unique values)"


def field_verdict(kl: float, floor: float, off_target: float | None, unique: int, expected: float) -> str:
    """One verdict that never contradicts itself: where the unique values fall short of a perfect sampler's, that
    decides (a KL near its floor cannot see a collapse where n is small against the list: its floor is large)."""
    k, u = kl_verdict(kl, floor, off_target), unique_verdict(unique, expected)
    ratio = kl / floor if floor > 0 else float("inf")
    if u.startswith("collapsed"):
        return f"{u}; KL {ratio:.1f}x the floor"
    if u.startswith("less diverse") and k.startswith(("on target", "near the target")):
        return f"near the target: KL {ratio:.1f}x the floor, but {u}"
    return f"{k}; {u}"


def joint_verdict(j: dict) -> str:
    share_ok = abs(j["contradiction_share"] - j["real_contradiction_share"]) <= max(0.02, 0.5 * j["real_contradiction_share"])
    mi_ok = abs(j["mi_bits"] - j["real_mi_bits"]) <= 0.1
    if share_ok and mi_ok:
        return "fits the real joint"
    return "does not fit the real joint" + ("" if share_ok else ": too many contradicting records") + (
        "" if mi_ok else f": MI off by {j['mi_bits'] - j['real_mi_bits']:+.2f} bits")


# free text: what a reader of the text notices (the thresholds issue #48 set for the biography)
NONWORDS_OK = 0.01  # share of words that are not English (wordfreq; the record's own values left out)
TOP_3GRAM_OK = 0.10  # share of texts that contain the most common word 3-gram
CHECKS_OK = 0.97  # share of texts that pass every check the template declares
NAMES_FIT_OK = 0.99  # share of records whose first and last name are in their birth country's name lists


def text_verdict(f: dict) -> str:
    """A plain verdict on a text field: reads as English, fits its record, says different things."""
    bad = []
    if f.get("checks_all") is not None and f["checks_all"] < CHECKS_OK:
        worst = min(f["checks"], key=f["checks"].get)
        bad.append(f"{1 - f['checks_all']:.1%} of texts fail a check (most: {worst})")
    if f["nonword_share"] > NONWORDS_OK:
        bad.append(f"{f['nonword_share']:.1%} of words are not English")
    if f["top_3grams"] and f["top_3grams"][0][1] > TOP_3GRAM_OK:
        g, share = f["top_3grams"][0]
        bad.append(f"repetitive ({g!r} in {share:.0%} of texts)")
    if not bad:
        return "reads as English" + (", fits its record" if f.get("checks_all") is not None else "") + ", no phrase dominates"
    return "; ".join(bad)


def glance(report: dict) -> dict:
    """{fields: [...], joints: [...], texts: [...]}: one row per categorical field with a target, one
    per joint, one per text field."""
    fields, joints = [], []
    texts = [{"field": f["field"], **{k: f.get(k) for k in ("valid_share", "valid", "checks", "checks_all", "nonword_share",
                                                             "texts_with_nonwords", "top_3grams", "semantic_vendi",
                                                             "semantic_vendi_note", "vendi_sample")},
              "verdict": text_verdict(f)} for f in report["fields"] if f["kind"] == "text" and "nonword_share" in f]
    for f in report["fields"]:
        if f["kind"] != "categorical":
            continue
        row = {"field": f["field"], "valid_share": f["valid_share"], "unique": f["unique"],
               "top": [(v, s) for v, _, s in f["top"][:3]]}
        if f.get("kl_to_target_bits") is not None and f.get("kl_floor_bits") is not None:
            flat = f["target_top"][0][1] <= 1.5 / f["target_size"]  # a uniform target has no top values worth naming
            row.update(expected_unique=f["expected_unique"], kl=f["kl_to_target_bits"], floor=f["kl_floor_bits"],
                       target_top=[] if flat else [(v, p) for v, p in f["target_top"][:3]], target_size=f["target_size"],
                       verdict=field_verdict(f["kl_to_target_bits"], f["kl_floor_bits"], f.get("off_target_share"),
                                             f["unique"], f["expected_unique"]))
        else:
            row["verdict"] = f.get("target_note") or "no target distribution"
        if f["valid_share"] < VALID_OK:  # the figures above are of the valid values only: say how few they are
            row["verdict"] = (f"{1 - f['valid_share']:.1%} invalid (not in the field's list: "
                              f"{', '.join(repr(x) for x in (f.get('invalid_examples') or [])[:2]) or '-'}); the figures "
                              f"are of the {f['valid']:,} valid values: " + row["verdict"])
        cond = f.get("conditional")
        if cond and cond["kl_to_own_list_bits"] is not None:
            row["own_list"] = {"kl": cond["kl_to_own_list_bits"], "floor": cond["kl_floor_bits"],
                               "verdict": kl_verdict(cond["kl_to_own_list_bits"], cond["kl_floor_bits"])}
        if cond:
            for j in cond["joints"]:
                joints.append({"pair": f"{j['field']} → {f['field']}", **j, "verdict": joint_verdict(j)})
        fields.append(row)
    return {"fields": fields, "joints": joints, "texts": texts}


def population_line(nf: dict) -> str:
    first, last, place = nf["fields"]
    if not nf["checked"]:
        return (f"{first} and {last} vs {place}: no name lists for any birth country here "
                f"({nf['no_list_for_country']} records born where no list exists)")
    verdict = "one population" if nf["fit_share"] >= NAMES_FIT_OK else "names from another population than the birth place"
    worst = ", ".join(f"{c} {s:.0%} of {n}" for c, n, s in nf["countries"][:4])
    return (f"{first} and {last} in the lists of the {place}'s country: {nf['fit_share']:.1%} of {nf['checked']} records "
            f"(first {nf['first_in_lists']:.1%}, last {nf['last_in_lists']:.1%}; {worst}; "
            f"{nf['no_list_for_country']} born where no list exists, {nf['unresolved_place']} places unresolved): {verdict}")


def lines(report: dict) -> list[str]:
    """The first screen as plain lines (terminal and HTML share them)."""
    g = glance(report)
    out = []
    for r in g["fields"]:
        top = ", ".join(f"{v} {s:.1%}" for v, s in r["top"])
        if "kl" in r:
            target = (f"target: {', '.join(f'{v} {p:.1%}' for v, p in r['target_top'])}" if r["target_top"]
                      else f"target: uniform over {r['target_size']:,} values")
            out.append(f"{r['field']}: {r['unique']} unique (a perfect sampler: {r['expected_unique']:.0f}); "
                       f"KL→target {r['kl']:.3f} bits (floor {r['floor']:.3f}): {r['verdict']}. "
                       f"Top: {top} ({target})")
        else:
            out.append(f"{r['field']}: {r['unique']} unique; {r['verdict']}. Top: {top}")
        if "own_list" in r:
            o = r["own_list"]
            out.append(f"  {r['field']} given its record: KL to its own list {o['kl']:.3f} bits (floor {o['floor']:.3f}): "
                       f"{o['verdict']}")
    for j in g["joints"]:
        out.append(f"{j['pair']}: {j['contradiction_share']:.1%} of records have a value given mostly under another "
                   f"{j['field']} (real joint: {j['real_contradiction_share']:.1%}); MI {j['mi_bits']:.3f} bits "
                   f"(real joint at this n: {j['real_mi_bits']:.3f} ± {j['real_mi_sd']:.3f}): {j['verdict']}")
    if report.get("population"):
        out.insert(0, f"population: {report['population']} (the template says)")
    if nf := report.get("names_fit_birth_country"):
        out.append(population_line(nf))
    for t in g["texts"]:
        checks = (f"passes every check {t['checks_all']:.1%} (" + ", ".join(f"{k} {v:.1%}" for k, v in t["checks"].items())
                  + "); ") if t.get("checks_all") is not None else "no checks declared (the template's checks: say what it must fit); "
        top = ", ".join(f"{g!r} {s:.1%}" for g, s in t["top_3grams"][:3])
        sem = (f"semantic Vendi {t['semantic_vendi']:.1f} of {t['vendi_sample']} texts" if t.get("semantic_vendi") is not None
               else f"no semantic Vendi: {t.get('semantic_vendi_note')}")
        out.append(f"{t['field']}: {checks}non-words {t['nonword_share']:.2%} of words (in {t['texts_with_nonwords']:.1%} "
                   f"of texts); top 3-grams {top} of texts; {sem}: {t['verdict']}")
    if not report.get("template"):  # another tool's file: say what was not checked, and the flag that would
        missing = [f["field"] for f in report["fields"] if f["kind"] == "categorical" and f.get("kl_to_target_bits") is None]
        joints = any(f.get("conditional") for f in report["fields"])
        texts = any(f.get("checks") for f in report["fields"] if f["kind"] == "text")
        said = ([] if joints else ["real joints (--joint GIVEN:FIELD, e.g. --joint gender:first_name)"]) \
            + ([] if texts else ["text checks (--checks FIELD=CHECKS)"])
        out.append("read without a template: " + (f"no target for {', '.join(missing)} (--target FIELD=LIST); " if missing else "")
                   + (f"no {' or '.join(said)}; " if said else "")
                   + "--template NAME reads the file as that synthgen template's (e.g. --template biography)")
    return out


# the words each verdict above uses, worst first: a first-screen line's colour in the HTML page
BAD = ("off target", "collapsed", "does not fit", "repetitive", "are not English", "fail", "another population",
       "invalid (not in")
WARN = ("near the target", "less diverse", "read without a template", "no target", "no KL", "no checks declared")


def severity(line: str) -> str:
    """"bad", "warn" or "ok" for one first-screen line, from the verdict words in it."""
    low = line.lower()
    if any(w in low for w in BAD):
        return "bad"
    return "warn" if any(w in low for w in WARN) else "ok"



def cards(report: dict) -> list[dict]:
    """The first screen as cards (the HTML's): {title, figure, detail, verdict, severity} per field, joint and text."""
    g, out = glance(report), []

    def card(title, figure, detail, verdict):
        out.append({"title": title, "figure": figure, "detail": detail, "verdict": verdict,
                    "severity": severity(f"{figure}: {detail}: {verdict}")})

    for r in g["fields"]:
        detail = f"{r['unique']:,} unique" + (f" (perfect sampler {r['expected_unique']:.0f})" if "kl" in r else "") \
            + f" · {r['valid_share']:.0%} valid"
        if "own_list" in r:
            detail += f" · own list {r['own_list']['kl']:.2f} (floor {r['own_list']['floor']:.2f})"
        figure = f"KL {r['kl']:.2f} bits · floor {r['floor']:.2f}" if "kl" in r else "no target"
        card(r["field"], figure, detail, r["verdict"])
    for j in g["joints"]:
        card(j["pair"], f"MI {j['mi_bits']:.2f} bits · real {j['real_mi_bits']:.2f}",
             f"{j['contradiction_share']:.1%} given mostly to another {j['field']} (real {j['real_contradiction_share']:.1%})",
             j["verdict"])
    if (nf := report.get("names_fit_birth_country")) and nf.get("checked"):
        card("names vs birth country", f"{nf['fit_share']:.1%} fit", f"of {nf['checked']:,} records whose place resolves",
             "one population" if nf["fit_share"] >= NAMES_FIT_OK else "names from another population than the birth place")
    for t in g["texts"]:
        top = t["top_3grams"][0] if t["top_3grams"] else None
        card(t["field"], "no checks" if t.get("checks_all") is None else f"every check {t['checks_all']:.1%}",
             f"non-words {t['nonword_share']:.2%} · top 3-gram {top[1]:.0%}" if top else f"non-words {t['nonword_share']:.2%}",
             t["verdict"])
    return out
