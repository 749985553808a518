"""The report as one self-contained HTML page (tables, PNGs embedded as data URIs)."""

from __future__ import annotations

import base64
import html

from .glance import cards, lines, severity
from .joints import FLOOR_NOTE
from .metrics import COVERAGE_NOTE, compare_table


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return html.escape(str(v))


def _table(headers, rows) -> str:
    h = "".join(f"<th>{html.escape(x)}</th>" for x in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _img(name: str, data: bytes) -> str:
    return (f'<h3>{html.escape(name)}</h3><img alt="{html.escape(name)}" '
            f'src="data:image/png;base64,{base64.b64encode(data).decode()}">')


def to_html(report: dict, other: dict | None, pngs: dict[str, bytes]) -> str:
    """A self-contained page: tables and the PNGs embedded as data URIs."""
    parts = [f"<h1>synthgen diversity report</h1><p><b>{html.escape(report['file'])}</b>: {report['records']} records"
             f" ({report['malformed_lines']} malformed lines)"
             + (f"; compared with <b>{html.escape(other['file'])}</b> ({other['records']} records)" if other else "")
             + "</p>"]
    first = lines(report)
    if first:
        pop = f"<p>{html.escape(first[0])}</p>" if first[0].startswith("population:") else ""
        grid = "".join(f"<div class='card {c['severity']}'><b>{html.escape(c['title'])}</b><div class='fig'>"
                       f"{html.escape(c['figure'])}</div><div>{html.escape(c['detail'])}</div><div class='verdict'>"
                       f"{html.escape(c['verdict'])}</div></div>" for c in cards(report))
        parts.append("<h2 id='glance'>At a glance</h2><p>Each figure next to what a perfect sampler of the real-world "
                     f"target gives at the same n (KL in bits; {html.escape(FLOOR_NOTE)}).</p>{pop}"
                     f"<div class='cards'>{grid}</div><details><summary>the same, in words</summary><ul class='glance'>"
                     + "".join(f"<li class='{severity(x)}'>{html.escape(x)}</li>" for x in first) + "</ul></details>")
        if "target_fit.png" in pngs:
            parts.append(_img("target_fit.png", pngs["target_fit.png"]))
    if other:
        parts.append("<h2>Side by side</h2>" + _table(["field", "metric", "this", "compare", "ratio"], [
            (r["field"], r["metric"], r["value"], r["compare"], r["ratio"]) for r in compare_table(report, other)]))
    cats = [f for f in report["fields"] if f["kind"] == "categorical"]
    parts.append("<h2>Categorical fields</h2>" + _table(
        ["field", "valid %", "unique valid", "unique ratio", "entropy bits", "norm. entropy", "list coverage",
         "target coverage", "KL to target bits", "KL floor bits", "invalid", "top values"],
        [(f["field"], 100 * f["valid_share"], f["unique"], f["unique_ratio"], f["entropy_bits"],
          f["normalized_entropy"], f.get("coverage"), f.get("target_coverage"), f.get("kl_to_target_bits"),
          f.get("kl_floor_bits"), f["invalid"],
          ", ".join(f"{v} {s:.1%}" for v, _, s in f["top"][:5])) for f in cats])
        + "<p><small>list coverage: unique valid values / the validation list; target coverage: / the adapter's "
          "target list (what it was trained to spread over); " + html.escape(COVERAGE_NOTE) + "</small></p>"
        + "".join(f"<p><small>{html.escape(f['field'])}: {html.escape(f['target_note'])}</small></p>"
                  for f in cats if f.get("target_note")))
    texts = [f for f in report["fields"] if f["kind"] == "text"]
    if texts:
        parts.append("<h2>Free text</h2>" + _table(
            ["field", "valid %", "distinct-1", "distinct-2", "distinct-3", "compression ratio", "exact dups",
             "near dups (sample)", "n-gram Vendi (sample)", "semantic Vendi (sample)", "non-words %", "every check %"],
            [(f["field"], 100 * f["valid_share"], f.get("distinct_1"), f.get("distinct_2"), f.get("distinct_3"),
              f.get("compression_ratio"), f.get("exact_duplicates"),
              f"{f.get('near_duplicates')} / {f.get('near_duplicate_sample')}", f.get("ngram_vendi"), f.get("semantic_vendi"),
              None if f.get("nonword_share") is None else 100 * f["nonword_share"],
              None if f.get("checks_all") is None else 100 * f["checks_all"])
             for f in texts])
            + "".join(f"<p><small>{html.escape(f['field'])}: checks passed: "
                      + html.escape(", ".join(f"{k} {v:.1%}" for k, v in (f.get("checks") or {}).items()) or "none declared")
                      + "; most repeated 3-grams (share of texts): "
                      + html.escape(", ".join(f"{g!r} {s:.1%}" for g, s in f.get("top_3grams") or []))
                      + "</small></p>" for f in texts))
    if report["mutual_information"]:
        parts.append("<h2>Mutual information between fields</h2>" + _table(
            ["fields", "records", "MI bits", "shuffled MI bits", "excess bits", "normalized MI"],
            [(f"{m['a']} ↔ {m['b']}", m["n"], m.get("mi_bits"), m.get("shuffled_mi_bits"), m.get("excess_mi_bits"),
              m.get("normalized_mi")) for m in report["mutual_information"]]))
    for g in report["geography"]:
        parts.append(f"<h2>Geography: {html.escape(g['field'])}</h2><p>{g['resolved']} geocoded, {g['unresolved']} "
                     f"unresolved; {g['countries']} countries (entropy {g['country_entropy_bits']:.2f} bits), "
                     f"{g['continents']} continents</p>" + _table(
                         ["country", "records", "share"], g["top_countries"]))
        if g.get("us_states"):
            parts.append(f"<p>{g['us_states']} US states</p>" + _table(["US state", "records", "share"], g["top_us_states"]))
    for name, data in pngs.items():
        if name != "target_fit.png" or not first:
            parts.append(_img(name, data))
    css = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
           "margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,"
           "th:first-child{text-align:left}img{max-width:100%}ul.glance li{margin:.3em 0;padding:.2em .5em;"
           "border-left:4px solid #2e7d32}ul.glance li.warn{border-color:#f9a825}ul.glance li.bad{border-color:#c62828;"
           "background:#fdecea}.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:8px;margin:.5em 0}"
           ".card{border-left:6px solid #2e7d32;background:#f4f8f4;padding:6px 8px;font-size:13px}.card.warn{border-color:"
           "#f9a825;background:#fffbe6}.card.bad{border-color:#c62828;background:#fdecea}.card .fig{font-size:16px;"
           "margin:2px 0}.card .verdict{font-style:italic;margin-top:2px}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>synthgen report</title><style>{css}</style>"
            f"</head><body>{''.join(parts)}<p><small>Geocoding: GeoNames (CC-BY-4.0). Map: Natural Earth (public "
            f"domain).</small></p></body></html>")
