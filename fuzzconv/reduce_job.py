"""What a worker does for a bucket: minimize its case, then build the report's artifacts.

Runs inside a worker process (it converts for real). The predicate is "the same bucket
title", never just "still fails". Returns plain JSON for the parent to store.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from fuzzconv import ops
from fuzzconv.case import Case, Outcome
from fuzzconv.minimize import candidates_near, minimize
from fuzzconv.pipeline import run_case
from fuzzconv.repro import repro_script

NEAREST_TRIES = 24
ONNX_TEXT_LINES = 120


def case_tolerance(case: Case) -> float:
    return max(ops.get(name).tol("float32") for name in set(case.graph.op_sequence))


def reduce_bucket(case: Case, title: str, max_calls: int, budget_s: float,
                  report_stage: Callable[[str], None] = lambda stage: None) -> dict[str, Any]:
    outcomes: dict[str, Outcome] = {}

    def keeps_bug(candidate: Case) -> bool:
        report_stage("minimize")
        outcomes[candidate.id] = run_case(candidate)
        return outcomes[candidate.id].title == title

    result = minimize(case, keeps_bug, max_calls=max_calls, budget_s=budget_s)
    minimized = result.minimized
    outcome = outcomes.get(minimized.id) or run_case(minimized)
    if outcome.title != title:  # cannot happen with a deterministic case; keep the original then
        minimized, outcome = case, run_case(case)
    report_stage("report")
    return {
        "minimized": minimized.to_json(),
        "outcome": outcome.to_json(),
        "stats": {
            "calls": result.calls,
            "seconds": round(result.seconds, 3),
            "nodes_before": len(case.graph.nodes),
            "nodes_after": len(minimized.graph.nodes),
            "budget_exhausted": result.budget_exhausted,
            "passes": [p.__dict__ for p in result.passes],
        },
        "onnx_text": converted_onnx_text(minimized),
        "nearest_passing": nearest_passing(minimized),
        "repro": repro_script(minimized, outcome, case_tolerance(minimized)),
    }


def converted_onnx_text(case: Case) -> str:
    """The converted model of a case in ONNX's text form, or "" when conversion fails."""
    import onnx
    import onnx.printer

    from fuzzconv.converters import convert
    from fuzzconv.frontends.materialize import materialize, run_eager

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            built = materialize(case)
            run_eager(case.graph.frontend, built.model, built.inputs)
            converted = convert(case, built.model, built.inputs, bool(case.target.option.get("optimize", True)))
            text = onnx.printer.to_text(onnx.load_from_string(converted.model_bytes))
    except Exception:
        return ""
    lines = text.splitlines()
    if len(lines) > ONNX_TEXT_LINES:
        lines = lines[:ONNX_TEXT_LINES] + [f"... ({len(lines) - ONNX_TEXT_LINES} more lines)"]
    return "\n".join(lines)


def nearest_passing(case: Case) -> str:
    """The smallest change to the minimized case that makes it pass, described in words."""
    for tries, candidate in enumerate(candidates_near(case)):
        if tries >= NEAREST_TRIES:
            break
        if run_case(candidate).status == "pass":
            return describe_change(case, candidate)
    return f"None found among the {NEAREST_TRIES} nearest variants (single attribute, shape and data changes)."


def describe_change(before: Case, after: Case) -> str:
    """One sentence per difference between two cases of the same graph family."""
    changes = []
    if before.data_mode != after.data_mode or before.data_seed != after.data_seed:
        changes.append(f"input data {before.data_mode} (seed {before.data_seed}) -> {after.data_mode} "
                       f"(seed {after.data_seed})")
    old_inputs = {i.name: i.type for i in before.graph.inputs}
    for graph_input in after.graph.inputs:
        old = old_inputs.get(graph_input.name)
        if old is not None and old != graph_input.type:
            changes.append(f"input {graph_input.name} {old.dtype}{list(old.shape)} -> "
                           f"{graph_input.type.dtype}{list(graph_input.type.shape)}")
    old_nodes = {n.name: n for n in before.graph.nodes}
    for node in after.graph.nodes:
        old_node = old_nodes.get(node.name)
        if old_node is None:
            continue
        for key, value in node.attrs:
            if old_node.attr.get(key) != value:
                changes.append(f"{node.name} ({node.op}) {key}={old_node.attr.get(key)!r} -> {value!r}")
    removed = sorted(set(old_nodes) - {n.name for n in after.graph.nodes})
    if removed:
        changes.append("without " + ", ".join(f"{name} ({old_nodes[name].op})" for name in removed))
    if not changes:
        return "The variant differs only in its outputs."
    return "It passes with: " + "; ".join(changes) + "."
