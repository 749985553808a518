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


def top_values_plot(report: dict, other: dict | None = None, k: int = 8) -> bytes | None:
    """Per categorical field with a target: the data's share of the target's top k values next to the
    target's own (and the comparison dataset's): where a collapse or a miss shows at a glance."""
    fields = [f for f in report["fields"] if f.get("target_top")]
    if not fields:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    theirs = {f["field"]: f for f in (other or {}).get("fields", [])}
    fig, axes = plt.subplots(1, len(fields), figsize=(3.6 * len(fields), 3.4), squeeze=False)
    for ax, f in zip(axes[0], fields):
        names = [v for v, _ in f["target_top"][:k]]
        share = {v: s for v, _, s in f["top"]}
        y = np.arange(len(names))
        series = [("target", [p for _, p in f["target_top"][:k]], "#999999"),
                  ("this dataset", [f["share_of"].get(v, share.get(v, 0.0)) for v in names], "#d62728")]
        if f["field"] in theirs:
            o = theirs[f["field"]]
            series.append(("compare", [o.get("share_of", {}).get(v, 0.0) for v in names], "#1f77b4"))
        h = 0.8 / len(series)
        for i, (label, vals, color) in enumerate(series):
            ax.barh(y + i * h, vals, height=h, color=color, label=label)
        ax.set_yticks(y + h * (len(series) - 1) / 2, names, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f["field"], fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle("share of the target's top values: target vs data", fontsize=10)
    return _png(fig)
