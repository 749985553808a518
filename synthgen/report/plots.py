"""The report's pictures as PNG bytes: rarefaction curves and a world map of places."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def world_map(points: Counter, title: str, other: Counter | None = None, other_label: str = "compare") -> bytes:
    """Birth places on Natural Earth 1:110m countries (public domain, shipped), marker area ~ count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shapefile
    from matplotlib.collections import PolyCollection
    from importlib import resources

    shp = str(resources.files("synthgen") / "data" / "naturalearth" / "naturalearth_lowres.shp")
    polys = []
    with shapefile.Reader(shp) as sf:
        for shape in sf.shapes():
            pts, parts = shape.points, list(shape.parts) + [len(shape.points)]
            polys += [pts[parts[i]:parts[i + 1]] for i in range(len(parts) - 1)]
    fig, ax = plt.subplots(figsize=(11, 5.6))
    ax.add_collection(PolyCollection(polys, facecolors="#e8e8e8", edgecolors="#9a9a9a", linewidths=0.3))
    for pts, color, label in ((other, "#888888", other_label), (points, "#d62728", "this dataset")):
        if not pts:
            continue
        xy = np.array(list(pts.keys()))
        c = np.array(list(pts.values()), dtype=float)
        ax.scatter(xy[:, 0], xy[:, 1], s=6 + 40 * np.sqrt(c / c.max()), c=color, alpha=0.55, linewidths=0,
                   label=f"{label}: {len(pts)} places")
    xlim, ylim = _extent([points, other])  # the world, or the region the places span (one country)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig)


WORLD = ((-180.0, 180.0), (-60.0, 85.0))  # lon, lat


def _extent(point_sets, margin: float = 6.0) -> tuple[tuple[float, float], tuple[float, float]]:
    """(lon range, lat range): the world's, or the places' own with a margin when they span under a
    third of the world's width (every birth place in one country: the US, not a dot cloud on a world map)."""
    xy = [p for pts in point_sets if pts for p in pts]
    if not xy:
        return WORLD
    out = []
    for axis, (w0, w1) in enumerate(WORLD):
        lo, hi = min(p[axis] for p in xy) - margin, max(p[axis] for p in xy) + margin
        out.append((max(lo, w0), min(hi, w1)))
    return WORLD if out[0][1] - out[0][0] > (WORLD[0][1] - WORLD[0][0]) / 3 else (out[0], out[1])


def rarefaction_plot(report: dict, other: dict | None = None) -> bytes:
    """Expected unique valid values vs records sampled, per categorical field (`report`: the JSON summary)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = [f for f in report["fields"] if f["kind"] == "categorical" and f.get("rarefaction")]
    fig, ax = plt.subplots(figsize=(8, 5))
    theirs = {f["field"]: f for f in (other or {}).get("fields", [])}
    for i, f in enumerate(cats):
        color = f"C{i % 10}"
        m, u = zip(*f["rarefaction"])
        ax.plot(m, u, color=color, label=f["field"])
        o = theirs.get(f["field"])
        if o and o.get("rarefaction"):
            m2, u2 = zip(*o["rarefaction"])
            ax.plot(m2, u2, color=color, linestyle="--", alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("records sampled (N)")
    ax.set_ylabel("expected unique valid values")
    ax.set_title("Rarefaction" + (" (dashed: compare)" if other else ""))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def panel_kind(target: dict) -> str:
    """How a field's fit to its target is drawn: "decades" (a date list: births per decade), "rank" (a big list, or a
    flat one of more than 10 values, where the target's top values mean nothing: rank-frequency on log axes), else
    "bars" (the top values against the target's)."""
    import re

    keys = list(target)[:50]
    if keys and all(isinstance(k, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", k) for k in keys):
        return "decades"
    p = np.array(list(target.values()), dtype=float)
    return "rank" if len(p) > 30 or (len(p) > 10 and p.max() <= 1.5 * p.min()) else "bars"


def _decades(shares: dict) -> Counter:
    out: Counter = Counter()
    for k, v in shares.items():
        out[str(k)[:3] + "0s"] += v
    return out


def _draw(ax, kind: str, target: dict, series: list[tuple[str, Counter, str]], k: int) -> None:
    if kind == "decades":
        decades = sorted(_decades(target) | {d: 0 for _, c, _ in series for d in _decades(c)})
        rows = [("target", _decades(target), "#999999")] + [(lab, _decades(c), col) for lab, c, col in series]
        h = 0.8 / len(rows)
        for i, (label, d, color) in enumerate(rows):
            ax.bar(np.arange(len(decades)) + i * h, [d.get(x, 0.0) for x in decades], width=h, color=color, label=label)
        ax.set_xticks(np.arange(len(decades)) + h * (len(rows) - 1) / 2, decades, fontsize=6, rotation=60)
    elif kind == "rank":
        p = np.sort(np.array(list(target.values()), dtype=float))[::-1]
        ax.plot(np.arange(1, len(p) + 1), p / p.sum(), color="#999999", label=f"target ({len(p):,} values)")
        for label, c, color in series:
            v = np.sort(np.array(list(c.values()), dtype=float))[::-1]
            ax.plot(np.arange(1, len(v) + 1), v, color=color, label=f"{label} ({len(v):,} unique)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rank", fontsize=7)
    else:
        names = [v for v, _ in sorted(target.items(), key=lambda kv: -kv[1])[:k]]
        tot = sum(target.values())
        rows = [("target", {v: target[v] / tot for v in names}, "#999999")] + series
        h = 0.8 / len(rows)
        for i, (label, d, color) in enumerate(rows):
            ax.barh(np.arange(len(names)) + i * h, [d.get(v, 0.0) for v in names], height=h, color=color, label=label)
        ax.set_yticks(np.arange(len(names)) + h * (len(rows) - 1) / 2, names, fontsize=7)
        ax.invert_yaxis()


def target_fit_plot(main, other=None, k: int = 8) -> bytes | None:
    """One panel per field with a target (`main`, `other`: report.Report): the data's distribution against the
    target's, drawn as `panel_kind` says, the compare dataset beside it."""
    fields = [name for name, t in main.targets.items() if t and main.counts.get(name)]
    if not fields:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(fields))
    rows_n = -(-len(fields) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.3 * rows_n), squeeze=False)
    for ax, name in zip(axes.flat, fields):
        target, kind = main.targets[name], panel_kind(main.targets[name])
        series = []
        for label, rep, color in (("this dataset", main, "#d62728"), ("compare", other, "#1f77b4")):
            c = rep.counts.get(name) if rep is not None else None
            if c:
                n = sum(c.values())
                series.append((label, Counter({v: x / n for v, x in c.items()}), color))
        _draw(ax, kind, target, series, k)
        ax.set_title(f"{name}: " + {"decades": "by decade", "rank": "rank-frequency", "bars": "top values"}[kind], fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(fields):]:
        ax.axis("off")
    fig.suptitle("each field against its target (share of valid values)", fontsize=10)
    fig.tight_layout()
    return _png(fig)
