"""The study's report: report.md (plots as PNG files beside it) and a self-contained report.html.

Both are rendered from one list of blocks (headings, paragraphs, tables, figures), so they say
the same thing. Plots are drawn with matplotlib's Agg backend; the HTML embeds them as base64.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fuzzconv.checkmodel.paper import CITATION, SETUP
from fuzzconv.checkmodel.study import FRONTEND_LABEL, MODEL_LABEL, StudySettings
from fuzzconv.checkmodel.study_table import (
    Table,
    failures_table,
    findings_table,
    full_table,
    paper_tables,
    rows_of,
)
from fuzzconv.store import atomic_write


@dataclass(frozen=True)
class Figure:
    name: str
    caption: str
    png: bytes


Block = tuple[str, Any]  # ("h2" | "p", text), ("table", Table) or ("figure", Figure)


def write_reports(out: Path, training: dict[str, Any], checks: list[dict[str, Any]], elapsed_s: float,
                  settings: StudySettings, machine: dict[str, Any] | None = None) -> tuple[Path, Path]:
    blocks = report_blocks(training, checks, elapsed_s, settings, machine or {})
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    for kind, value in blocks:
        if kind == "figure":
            (plots / f"{value.name}.png").write_bytes(value.png)
    atomic_write(out / "report.md", markdown(blocks))
    atomic_write(out / "report.html", page(blocks))
    return out / "report.html", out / "report.md"


def report_blocks(training: dict[str, Any], checks: list[dict[str, Any]], elapsed_s: float,
                  settings: StudySettings, machine: dict[str, Any]) -> list[Block]:
    versions = _versions(checks)
    blocks: list[Block] = [
        ("h1", "fuzzconv study: converting deep learning models, after Openja et al. (ICSME 2022)"),
        ("p", f"Reproduces the design of: {CITATION}. The paper: {SETUP}"),
        ("p", _run_line(checks, elapsed_s, machine)),
        ("p", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."),
        ("table", findings_table(checks)),
        ("h2", "Conversion outcomes"),
        ("p", _outcome_line(checks)),
    ]
    failures = failures_table(checks)
    if failures.rows:
        blocks.append(("table", failures))
    blocks += [("h2", "Results laid out like the paper's tables")]
    for table in paper_tables(checks):
        blocks.append(("table", table))
    blocks += [("h2", "Plots"), *[("figure", f) for f in figures(checks)],
               ("h2", "All results"), ("table", full_table(checks)),
               ("h2", "Method"), *[("p", text) for text in _method(training, settings)]]
    return blocks


def _versions(checks: list[dict[str, Any]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for check in checks:
        merged.update(check.get("versions", {}))
    return merged


def _run_line(checks: list[dict[str, Any]], elapsed_s: float, machine: dict[str, Any]) -> str:
    when = machine.get("finished", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    cores = machine.get("cores", os.cpu_count())
    load = machine.get("load_average", "?")
    return (f"Run finished {when}: {len(checks)} models, wall time {elapsed_s / 60:.1f} min on {cores} cores "
            f"(load average {load} at the end: the machine was shared with other work, so absolute times are noisy; "
            "ratios between original and converted are the steadier figure).")


def _outcome_line(checks: list[dict[str, Any]]) -> str:
    rows = rows_of(checks)
    passed = sum(1 for r in rows if r.passed)
    return (f"{passed} of {len(rows)} conversions produced a model that loads in onnxruntime and agrees with the "
            f"original within the tolerance ({_tolerance(checks):g} on |converted - original| / (1 + |original|)).")


def _tolerance(checks: list[dict[str, Any]]) -> float:
    return float(checks[0]["settings"]["tolerance"]) if checks else 0.0


def _method(training: dict[str, Any], settings: StudySettings) -> list[str]:
    train_s = sum(float(t.get("train_s", 0)) for t in training.values())
    first: dict[str, Any] = next(iter(training.values()), {})
    rows = first.get("train_rows", "?")
    return [
        f"Data: scikit-learn's 8x8 digits (1,797 images, shipped inside the package), scaled to [0, 1], one "
        f"stratified 80/20 split ({rows} training rows; the rest are the test rows every figure is measured on). "
        "The recurrent models read each image's 8 rows as 8 time steps of 8 features. The paper used MNIST, "
        "CIFAR-10 and IMDB-style data; models and data here are deliberately small so that the study runs offline "
        "in minutes.",
        f"Training: Adam (learning rate 0.003), cross-entropy, batches of 32, {settings.epochs} epochs, fixed seeds, "
        f"one thread ({train_s:.0f} s in all). Architectures keep each family's shape at a small size: LeNet-5 "
        "(conv-pool-conv-pool-3 dense), a ResNet of two basic blocks with batch norm and a projection shortcut, a "
        "VGG of two double-conv blocks with max pooling and dropout, and single-layer LSTM/GRU (32 units).",
        "Each model was then checked exactly as `fuzzconv check-model models/<framework>_<model>.py:model --data "
        "data/digits_test_<layout>.npz` does: converted with every converter of its framework (PyTorch: "
        "torch.onnx.export with dynamo=True and dynamo=False; Keras: tf2onnx.convert.from_keras and Keras's own "
        "Model.export(format=\"onnx\")), validated with the ONNX checker, loaded in onnxruntime (CPU), and run on 8 "
        "random batches drawn like the example inputs and on every test row.",
        f"Latency: median of {settings.repeats} timed runs after 3 warm-up runs, batch of 32, single-threaded for both "
        "the framework and onnxruntime. Peak memory: growth of the resident set size from after the imports to "
        "its peak while loading the model and running one batch, each measured in a fresh process (Linux VmHWM, "
        "reset after imports); framework allocations (arenas, caches) count. Size: the serialized ONNX model "
        "against the framework's weights file (torch state_dict, Keras .weights.h5).",
        "Robustness: FGSM (one step) and PGD (10 steps of eps/4, projected) inputs are crafted on the original "
        "model with its own gradients (torch autograd / tf.GradientTape), eps = 0.1 of the input range, on the "
        "first 256 test rows with their true labels, then shown to both the original and the converted model. "
        "Attack success is the share misclassified; 'differ' is the share on which the two models disagree.",
    ]


# --- plots ------------------------------------------------------------------------------------


def figures(checks: list[dict[str, Any]]) -> list[Figure]:
    """Grouped bars, one group per model and framework: the original, then its two converted forms."""
    import matplotlib

    matplotlib.use("Agg")
    if not checks:
        return []
    return [
        _grouped("accuracy", "Test accuracy (%): original and converted", checks,
                 lambda c: _pct_or_none(c["source"].get("accuracy")),
                 lambda r: _pct_or_none((r.get("data") or {}).get("accuracy_converted")), "accuracy %", log=False),
        _grouped("latency", "Median inference time per batch of 32 (ms, log scale): framework vs onnxruntime", checks,
                 lambda c: c["source"].get("latency_ms"), lambda r: r.get("latency_ms"), "ms", log=True),
        _grouped("memory", "Peak memory to load and run once (MB), each in a fresh process", checks,
                 lambda c: c["source"].get("peak_memory_mb"), lambda r: r.get("peak_memory_mb"), "MB", log=False),
        _grouped("size", "Model size (KiB): the framework's weights file vs the ONNX file", checks,
                 lambda c: (c["model"].get("native_size_bytes") or 0) / 1024,
                 lambda r: (r.get("onnx_size_bytes") or 0) / 1024 or None, "KiB", log=False),
        *[_grouped(f"robustness-{attack}", f"{attack.upper()} attack success (%) on inputs crafted on the original",
                   checks, lambda c, a=attack: _pct_or_none((c["source"].get("attack_success") or {}).get(a)),
                   lambda r, a=attack: _pct_or_none(((r.get("robustness") or {}).get(a) or {}).get("success_converted")),
                   "attack success %", log=False) for attack in ("fgsm", "pgd")],
    ]


def _pct_or_none(value: Any) -> float | None:
    return None if value is None else 100 * float(value)


CONVERTER_SLOTS = {"torch": ("torch-dynamo", "torch-script"), "keras": ("tf2onnx", "keras-export")}
COLORS = ("#4c72b0", "#dd8452", "#55a868")


def _grouped(name: str, caption: str, checks: list[dict[str, Any]], original: Any, converted: Any, unit: str,
             log: bool) -> Figure:
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(13, 3.9))
    positions = np.arange(len(checks))
    labels = ("original", "converter 1 (torch-dynamo / tf2onnx)", "converter 2 (torch-script / keras-export)")
    for slot in range(3):
        values = [original(c) if slot == 0 else _converted_value(c, slot, converted) for c in checks]
        x = positions + (slot - 1) * 0.27
        ax.bar(x, [v or 0 for v in values], 0.27, label=labels[slot], color=COLORS[slot])
        for xi, value in zip(x, values):
            if value is None and slot:
                ax.annotate("failed", (xi, 0), xytext=(0, 3), textcoords="offset points", rotation=90,
                            ha="center", va="bottom", fontsize=8, color="#c44e52")
    if log:
        ax.set_yscale("log")
    ax.set_xticks(positions)
    ax.set_xticklabels([f"{MODEL_LABEL[c['study']['model']]}\n{FRONTEND_LABEL[c['study']['frontend']]}"
                        for c in checks], fontsize=8)
    ax.set_ylabel(unit)
    ax.set_title(caption, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return Figure(name, caption, _png(fig))


def _converted_value(check: dict[str, Any], slot: int, converted: Any) -> float | None:
    name = CONVERTER_SLOTS[check["study"]["frontend"]][slot - 1]
    result = next((r for r in check["converters"] if r["converter"] == name), None)
    return converted(result) if result is not None and result["status"] == "pass" else None


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


# --- rendering --------------------------------------------------------------------------------


def markdown(blocks: list[Block]) -> str:
    parts = []
    for kind, value in blocks:
        if kind in ("h1", "h2"):
            parts.append(("# " if kind == "h1" else "## ") + value)
        elif kind == "p":
            parts.append(value)
        elif kind == "table":
            parts.append(_markdown_table(value))
        elif kind == "figure":
            parts.append(f"![{value.caption}](plots/{value.name}.png)")
    return "\n\n".join(parts) + "\n"


def _markdown_table(table: Table) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [f"**{table.title}**", "", "| " + " | ".join(map(cell, table.header)) + " |",
             "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in table.rows]
    if table.note:
        lines += ["", f"_{table.note}_"]
    return "\n".join(lines)


STYLE = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1250px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .86em; }
caption { text-align: left; font-weight: 600; padding: .3em 0; }
th, td { border: 1px solid #ccc; padding: .3em .55em; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.fail { color: #b22; } .note { color: #555; font-size: .85em; margin-top: -.8em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9em; }
"""


def page(blocks: list[Block]) -> str:
    body = []
    for kind, value in blocks:
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(value)}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_code(html.escape(value))}</p>")
        elif kind == "table":
            body.append(_html_table(value))
        elif kind == "figure":
            data = base64.b64encode(value.png).decode()
            body.append(f'<figure><img alt="{html.escape(value.caption)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(value.caption)}</figcaption></figure>")
    title = html.escape(next((v for k, v in blocks if k == "h1"), "fuzzconv study"))
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _inline_code(text: str) -> str:
    parts = text.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    rows = []
    for row in table.rows:
        cells = "".join(f'<td class="{_cell_class(c)}">{html.escape(str(c))}</td>' for c in row)
        rows.append(f"<tr>{cells}</tr>")
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return (f"<table><caption>{html.escape(table.title)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{note}")


def _cell_class(text: str) -> str:
    if str(text).startswith(("fails", "no:")) or str(text) == "no":
        return "fail"
    return "num" if re.fullmatch(r"[-\d.e+/ ()%a-z]{1,24}", str(text)) and str(text)[:1] in "-0123456789" else ""
