"""report.md and the bucket index, from what a bucket folder holds (no framework needed)."""

from fuzzconv.case import Case, Graph, GraphInput, Node, Outcome, OutputDiff, Target, TensorType
from fuzzconv.report import index_markdown, issue_title, load_bucket, tracker
from fuzzconv.store import Store


def roll_case(nodes=1):
    graph_nodes = [Node("n0", "roll", ("x0",), (("axis", 0), ("shift", 4)))]
    if nodes > 1:
        graph_nodes.append(Node("n1", "relu", ("n0",)))
    graph = Graph("torch", (GraphInput("x0", TensorType((3, 2, 6))),), tuple(graph_nodes), (graph_nodes[-1].name,))
    return Case(graph, Target("torch-script", 17), 0)


def wrong_outcome(case):
    diff = OutputDiff("n0", True, True, True, 3.2, 2.2, 1e-4, False, (3, 2, 6), (3, 2, 6), "float32", "float32",
                      0.0, 2.2)
    return Outcome(case.id, "finding", "conversion", "wrong-model",
                   "torch/script: conversion: wrong-model: values: roll", decided_by="no toggle made it vanish",
                   diffs=(diff,), versions=(("torch", "2.13.0"),))


def make_bucket(tmp_path):
    store = Store(tmp_path).open()
    original = roll_case(nodes=2)
    recorded = store.record_finding(original, wrong_outcome(original))
    minimized = roll_case(nodes=1)
    reduced = {
        "minimized": minimized.to_json(),
        "outcome": wrong_outcome(minimized).to_json(),
        "stats": {"calls": 7, "seconds": 3.5, "nodes_before": 2, "nodes_after": 1, "budget_exhausted": False,
                  "passes": []},
        "onnx_text": "<ir_version: 8>\nmain_graph (float[3,2,6] x0) => (float[3,2,6] n0) { ... }",
        "nearest_passing": "It passes with: n0 (roll) shift=4 -> 1.",
        "repro": "print('repro')\n",
    }
    store.save_reduction(recorded.folder, reduced)
    return recorded.folder


def test_report_has_every_section(tmp_path):
    folder = make_bucket(tmp_path)
    text = (folder / "report.md").read_text()
    assert text.startswith("# [ONNX] torch.onnx.export(dynamo=False) gives a wrong model (values for roll)")
    for heading in ("## Summary", "## Reproduce", "## Expected vs actual", "## Stage", "## Nearest passing variant",
                    "## Converted ONNX graph", "## Versions"):
        assert heading in text
    assert "minimized from 2" in text and "shift=4 -> 1" in text and "| n0 | float32[3, 2, 6]" in text
    assert "github.com/pytorch/pytorch/issues" in text


def test_index_lists_size_before_and_after(tmp_path):
    folder = make_bucket(tmp_path)
    index = index_markdown([load_bucket(folder)])
    assert "| 2 -> 1 |" in index and "torch/script: conversion: wrong-model: values: roll" in index


def test_trackers_follow_the_stage():
    assert tracker("tf2onnx", "conversion") == "tf2onnx"
    assert tracker("keras-export", "capture") == "keras"
    assert tracker("torch-dynamo", "runtime-kernel") == "onnxruntime"
    case = roll_case()
    outcome = Outcome(case.id, "finding", "runtime-optimization", "wrong-model",
                      "torch/script: runtime-optimization: wrong-model: values: roll")
    assert issue_title(case, outcome).startswith("[CPU EP] runtime-optimization:")
