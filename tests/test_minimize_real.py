"""On real buckets of each converter path, the minimized case keeps the bucket's exact title."""

import json
from pathlib import Path

import pytest

from fuzzconv.case import Case, Graph, GraphInput, Node, Target, TensorType
from fuzzconv.pipeline import run_case
from fuzzconv.reduce_job import reduce_bucket

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent / "golden" / "cases"


def torch_roll_case():
    graph = Graph(
        "torch",
        (GraphInput("x0", TensorType((2, 3, 4))), GraphInput("x1", TensorType((2, 3, 4)))),
        (Node("n0", "relu", ("x0",)), Node("n1", "roll", ("n0",), (("axis", 1), ("shift", 5))),
         Node("n2", "add", ("n1", "x1")), Node("n3", "tanh", ("x1",))),
        ("n2", "n3"),
    )
    return Case(graph, Target("torch-script", 17), 11)


def keras_gelu_case(converter):
    graph = Graph(
        "keras",
        (GraphInput("x0", TensorType((2, 6))),),
        (Node("n0", "sigmoid", ("x0",)), Node("n1", "gelu", ("n0",), (("approximate", "none"),)),
         Node("n2", "abs", ("x0",))),
        ("n1", "n2"),
    )
    return Case(graph, Target(converter, 17), 5)


def dynamo_squeeze_case():
    return Case.loads((GOLDEN / "dynamo_validation_squeeze.json").read_text())


@pytest.mark.parametrize(
    "make_case, budget_s",
    [(torch_roll_case, 60), (lambda: keras_gelu_case("tf2onnx"), 60), (lambda: keras_gelu_case("keras-export"), 60),
     (dynamo_squeeze_case, 120)],
    ids=["torch-script", "tf2onnx", "keras-export", "torch-dynamo"],
)
def test_minimized_case_keeps_the_title(make_case, budget_s):
    case = make_case()
    title = run_case(case).title
    assert title, "the case must be a finding"
    reduced = reduce_bucket(case, title, max_calls=60, budget_s=budget_s)
    minimized = Case.from_json(reduced["minimized"])
    assert reduced["outcome"]["title"] == title
    assert run_case(minimized).title == title
    assert len(minimized.graph.nodes) < len(case.graph.nodes)
    assert len(minimized.graph.nodes) <= 2
    assert reduced["repro"].startswith("#!/usr/bin/env python3")
    json.dumps(reduced)  # all of it is plain JSON for the parent process
