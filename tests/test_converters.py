"""Each converter path end to end on a tiny graph, and a real conversion bug bucketed as such."""

import pytest

from fuzzconv.case import Case, Graph, GraphInput, Node, Target, TensorType
from fuzzconv.pipeline import run_case

pytestmark = pytest.mark.slow


def tiny(frontend, converter, op="relu", attrs=()):
    graph = Graph(
        frontend,
        (GraphInput("x0", TensorType((2, 3, 4))), GraphInput("x1", TensorType((2, 3, 4)))),
        (Node("n0", "add", ("x0", "x1")), Node("n1", op, ("n0",), attrs)),
        ("n1",),
    )
    return Case(graph, Target(converter, 17), 7)


@pytest.mark.parametrize(
    "frontend, converter",
    [("torch", "torch-script"), ("torch", "torch-dynamo"), ("keras", "tf2onnx"), ("keras", "keras-export")],
)
def test_tiny_graph_passes(frontend, converter):
    stages = []
    outcome = run_case(tiny(frontend, converter), on_stage=stages.append)
    assert outcome.status == "pass", outcome.message
    assert {"source", "convert", "validate", "runtime-load", "compare"} <= set(stages)
    assert outcome.onnx_ops and "Relu" in outcome.onnx_ops
    assert outcome.diffs and all(d.ok for d in outcome.diffs)


@pytest.mark.parametrize("converter, label", [("tf2onnx", "keras/tf2onnx"), ("keras-export", "keras/export")])
def test_keras_gelu_is_a_conversion_bucket(converter, label):
    outcome = run_case(tiny("keras", converter, "gelu", (("approximate", "none"),)))
    assert outcome.status == "finding"
    assert outcome.title == f"{label}: conversion: crash: unsupported TF op Erfc"


def test_converter_optimizations_can_be_turned_off():
    case = tiny("torch", "torch-dynamo")
    plain = Case(case.graph, Target("torch-dynamo", 18, (("optimize", False),)), 7)
    assert run_case(plain).status == "pass"
