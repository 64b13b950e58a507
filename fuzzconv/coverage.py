"""Coverage keys of a run: source operators and edges, converted ONNX operators and pairs."""

from __future__ import annotations

from fuzzconv.case import Case, Outcome
from fuzzconv.graphcheck import producers


def coverage_keys(case: Case, outcome: Outcome | None) -> set[str]:
    graph = case.graph
    producer = producers(graph)
    keys = {f"op:{graph.frontend}:{node.op}" for node in graph.nodes}
    for node in graph.nodes:
        for arg in node.args:
            if arg in producer:
                keys.add(f"edge:{graph.frontend}:{producer[arg].op}>{node.op}")
    if outcome is not None:
        converter = case.target.converter
        keys.update(f"onnx:{converter}:{op}" for op in outcome.onnx_ops)
    return keys
