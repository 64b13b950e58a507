"""Figures (data) drawn as PNG with matplotlib's Agg backend, returned as base64 for embedding."""

from __future__ import annotations

import base64
import io
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fuzzconv.analyze.sections import Figure  # noqa: E402

WIDTH_IN, HEIGHT_IN, DPI = 9.0, 4.4, 110


def _bars(ax: plt.Axes, figure: Figure) -> None:
    categories, series = figure.data["categories"], figure.data["series"]
    errors = figure.data.get("errors", {})
    width = 0.8 / max(1, len(series))
    x = np.arange(len(categories))
    for i, (name, values) in enumerate(series.items()):
        yerr = None
        if name in errors:
            yerr = np.array([[v - lo for v, (lo, _) in zip(values, errors[name])],
                             [hi - v for v, (_, hi) in zip(values, errors[name])]])
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name, yerr=yerr, capsize=3)
    ax.set_xticks(x, ["\n".join(textwrap.wrap(str(c), 14)) for c in categories], fontsize=8)
    if "ylim" in figure.data:
        ax.set_ylim(*figure.data["ylim"])


def _lines(ax: plt.Axes, figure: Figure) -> None:
    step = figure.data.get("step", False)
    for name, points in figure.data["series"].items():
        if not points:
            continue
        xs, ys = zip(*points)
        if step:
            ax.step(xs, ys, where="post", label=name)
        else:
            ax.plot(xs, ys, marker="o" if len(xs) < 12 else None, markersize=3, label=name)
    for i, (name, x) in enumerate(figure.data.get("markers", {}).items()):
        ax.axvline(x, color=f"C{(i + 5) % 10}", linestyle="--", linewidth=1, label=name)


def _hist(ax: plt.Axes, figure: Figure) -> None:
    series = {k: v for k, v in figure.data["series"].items() if v}
    markers = figure.data.get("markers", {})
    values = [v for vs in series.values() for v in vs] + list(markers.values())
    if values:
        bins = list(np.linspace(min(values), max(values) + 1e-9, int(figure.data.get("bins", 30)) + 1))
        outline = figure.data.get("outline", False)
        for name, vs in series.items():
            ax.hist(vs, bins=bins, alpha=1.0 if outline else 0.55, label=name, histtype="step" if outline else "bar",
                    linewidth=1.6)
    for i, (name, x) in enumerate(markers.items()):
        ax.axvline(x, color=f"C{(i + 3) % 10}", linestyle="--", linewidth=1.2, label=name)


def _scatter(ax: plt.Axes, figure: Figure) -> None:
    points = figure.data["points"]
    names = figure.data.get("legend", ["not significant", "significant"])
    for highlight, color in ((False, "0.6"), (True, "C3")):
        chosen = [p for p in points if bool(p.get("highlight")) == highlight]
        if chosen:
            ax.scatter([p["x"] for p in chosen], [p["y"] for p in chosen], s=14, color=color, label=names[highlight])
    if "hline" in figure.data:
        ax.axhline(figure.data["hline"], color="0.3", linestyle="--", linewidth=1)
    labelled = points if figure.data.get("label_all") else [p for p in points if p.get("highlight")]
    for p in sorted(labelled, key=lambda p: -p["y"])[: int(figure.data.get("labels", 10))]:
        ax.annotate(textwrap.shorten(p["label"], 40), (p["x"], p["y"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")


DRAW = {"bars": _bars, "lines": _lines, "hist": _hist, "scatter": _scatter}


def is_empty(figure: Figure) -> bool:
    data = figure.data
    if figure.kind == "scatter":
        return not data.get("points")
    if figure.kind == "bars":
        return not data.get("categories")
    return not any(data.get("series", {}).values()) and not data.get("markers")


def png_base64(figure: Figure) -> str:
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    try:
        DRAW[figure.kind](ax, figure)
        ax.set_title(figure.title, fontsize=11)
        ax.set_xlabel(figure.xlabel)
        ax.set_ylabel(figure.ylabel)
        if figure.log_y:  # symlog keeps zero counts on the plot
            ax.set_yscale("symlog", linthresh=float(figure.data.get("linthresh", 1.0)))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
