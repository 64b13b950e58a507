"""Issue-ready `report.md` per bucket, and an index of all buckets.

Reads only what a bucket folder holds (the first case, its outcome, the minimized case and
its outcome, the minimized ONNX graph as text, the nearest passing variant, stats), so it
needs no framework and runs in well under a second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fuzzconv.case import Case, Outcome

TRACKERS = {
    "pytorch": "https://github.com/pytorch/pytorch/issues",
    "tf2onnx": "https://github.com/onnx/tensorflow-onnx/issues",
    "keras": "https://github.com/keras-team/keras/issues",
    "onnxruntime": "https://github.com/microsoft/onnxruntime/issues",
}

CONVERTER_CALL = {
    "torch-dynamo": "torch.onnx.export(dynamo=True)",
    "torch-script": "torch.onnx.export(dynamo=False)",
    "tf2onnx": "tf2onnx.convert.from_keras",
    "keras-export": 'keras Model.export(format="onnx")',
}


@dataclass
class Bucket:
    """Everything stored for one bucket, loaded from its folder."""

    folder: Path
    title: str
    case: Case
    outcome: Outcome
    stats: dict[str, Any]
    minimized: Case | None = None
    minimized_outcome: Outcome | None = None
    minimize_stats: dict[str, Any] | None = None
    onnx_text: str = ""
    nearest_passing: str = ""
    repro: str = ""

    @property
    def best_case(self) -> Case:
        return self.minimized or self.case

    @property
    def best_outcome(self) -> Outcome:
        return self.minimized_outcome or self.outcome


def load_bucket(folder: Path) -> Bucket:
    """Read a bucket folder; raises ValueError naming what is missing or broken."""
    try:
        title = (folder / "title.txt").read_text(encoding="utf-8").strip()
        case = Case.loads((folder / "case.json").read_text(encoding="utf-8"))
        outcome = Outcome.from_json(json.loads((folder / "outcome.json").read_text(encoding="utf-8")))
        stats = json.loads((folder / "stats.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{folder} is not a readable bucket folder ({exc}); expected title.txt, case.json, "
                         "outcome.json and stats.json from a campaign") from None
    bucket = Bucket(folder, title, case, outcome, stats)
    if (folder / "minimized.json").is_file():
        bucket.minimized = Case.loads((folder / "minimized.json").read_text(encoding="utf-8"))
        bucket.minimized_outcome = Outcome.from_json(json.loads((folder / "minimized-outcome.json").read_text()))
        bucket.minimize_stats = json.loads((folder / "minimize.json").read_text())
    bucket.onnx_text = _read_optional(folder / "minimized.onnx.txt")
    bucket.nearest_passing = _read_optional(folder / "nearest-passing.txt")
    bucket.repro = _read_optional(folder / "repro.py")
    return bucket


def _read_optional(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def tracker(converter: str, stage: str) -> str:
    if stage.startswith("runtime-"):
        return "onnxruntime"
    if converter.startswith("torch"):
        return "pytorch"
    if converter == "keras-export" and stage == "capture":
        return "keras"
    return "tf2onnx"


def issue_title(case: Case, outcome: Outcome) -> str:
    """A title in the usual form of the tracker it goes to."""
    detail = outcome.title.split(": ", 3)[-1]
    call = CONVERTER_CALL[case.target.converter]
    what = {
        "crash": f"{call} fails: {detail}",
        "invalid-model": f"{call} emits a model that is refused: {detail}",
        "wrong-model": f"{call} gives a wrong model ({detail.replace(': ', ' for ', 1)})",
        "hang": f"{call} hangs",
        "abort": f"{call} kills the process ({detail})",
    }.get(outcome.symptom, detail)
    where = tracker(case.target.converter, outcome.stage)
    if where == "pytorch":
        return f"[ONNX] {what}"
    if where == "onnxruntime":
        return f"[CPU EP] {outcome.stage}: {what}"
    return what


def _ops_text(case: Case) -> str:
    ops = [node.op for node in case.graph.nodes]
    return ", ".join(ops)


def summary_paragraph(bucket: Bucket) -> str:
    case, outcome = bucket.best_case, bucket.best_outcome
    size = f"{len(case.graph.nodes)} operator(s) ({_ops_text(case)})"
    reduced = (f", minimized from {len(bucket.case.graph.nodes)}" if bucket.minimized else "")
    return (
        f"A {case.graph.frontend} model of {size}{reduced} converted with {CONVERTER_CALL[case.target.converter]} "
        f"at opset {case.target.opset} ends in `{outcome.symptom}` at the `{outcome.stage}` stage. "
        f"The stage was decided by: {outcome.decided_by or 'n/a'}. "
        f"It reproduced in {bucket.stats.get('reliability', '1/1')} runs and was hit {bucket.stats.get('hits', 1)} "
        f"time(s) by differently shaped random graphs. Found by fuzzconv, a differential fuzzer for model converters."
    )


def expected_vs_actual(outcome: Outcome) -> str:
    if outcome.symptom != "wrong-model":
        first = outcome.message.strip().splitlines()[:12] or ["(no message)"]
        return "```\n" + "\n".join(line[:300] for line in first) + "\n```"
    rows = ["| output | expected | actual | max abs error | tolerance needed | allowed | float64 error source / converted |",
            "|---|---|---|---|---|---|---|"]
    for diff in outcome.diffs:
        if diff.ok:
            continue
        ref = (f"{diff.source_ref_err:.3g} / {diff.converted_ref_err:.3g}" if diff.converted_ref_err >= 0 else "n/a")
        rows.append(
            f"| {diff.name} | {diff.expected_dtype}{list(diff.expected_shape)} | {diff.actual_dtype}{list(diff.actual_shape)} "
            f"| {diff.max_abs_err:.3g} | {diff.required_tol:.3g} | {diff.tolerance:g} | {ref} |"
        )
    return "\n".join(rows)


def report_markdown(bucket: Bucket) -> str:
    case, outcome = bucket.best_case, bucket.best_outcome
    where = tracker(case.target.converter, outcome.stage)
    versions = "\n".join(f"- {name} {version}" for name, version in outcome.versions)
    sections = [
        f"# {issue_title(case, outcome)}",
        f"<!-- file at {TRACKERS[where]} ; fuzzconv bucket: {bucket.title} -->",
        "## Summary",
        summary_paragraph(bucket),
        "## Reproduce",
        "Save as `repro.py` and run `python repro.py`: it exits 1 while the bug is present and 0 once it is fixed. "
        "It needs only numpy, the source framework, the converter and onnxruntime.",
        "```python\n" + (bucket.repro.strip() or "# repro.py not generated yet: run `fuzzconv minimize` on this bucket")
        + "\n```",
        "## Expected vs actual",
        expected_vs_actual(outcome),
        "## Stage",
        f"`{outcome.stage}` ({outcome.symptom}), decided by: {outcome.decided_by or 'n/a'}.",
        "## Nearest passing variant",
        bucket.nearest_passing.strip() or "Not computed (the bucket has not been minimized yet).",
        "## Converted ONNX graph (minimized case)",
        "```\n" + (bucket.onnx_text.strip() or "(no ONNX model: the failure came before one was emitted)") + "\n```",
        "## Versions",
        versions or "- (not recorded)",
    ]
    return "\n\n".join(sections) + "\n"


def index_rows(buckets: list[Bucket]) -> list[dict[str, Any]]:
    return [
        {
            "title": b.title,
            "stage": b.outcome.stage,
            "symptom": b.outcome.symptom,
            "hits": b.stats.get("hits", 0),
            "reliability": b.stats.get("reliability", "1/1"),
            "nodes_before": len(b.case.graph.nodes),
            "nodes_after": len(b.minimized.graph.nodes) if b.minimized else None,
            "folder": b.folder.name,
        }
        for b in buckets
    ]


def index_markdown(buckets: list[Bucket]) -> str:
    lines = ["# fuzzconv buckets", "", "| title | stage | symptom | hits | reliability | nodes before -> after |",
             "|---|---|---|---|---|---|"]
    for row in sorted(index_rows(buckets), key=lambda r: -int(r["hits"])):
        after = row["nodes_after"] if row["nodes_after"] is not None else "not minimized"
        lines.append(f"| [{row['title']}]({row['folder']}/report.md) | {row['stage']} | {row['symptom']} | {row['hits']} "
                     f"| {row['reliability']} | {row['nodes_before']} -> {after} |")
    return "\n".join(lines) + "\n"
