"""Golden bucket titles: stable strings with no numbers, names or addresses."""

import pytest

from fuzzconv.case import Case, Graph, GraphInput, Node, OutputDiff, Target, TensorType
from fuzzconv.pipeline import wrong_model_detail
from fuzzconv.store import bucket_slug
from fuzzconv.triage import crash_detail, crash_info, crash_stage, logged_failure, mask, title

TF2ONNX_GELU_LOG = (
    "ERROR tf2onnx.tfonnx: Tensorflow op [functional_1/n0_1/Gelu/Erfc: Erfc] is not supported\n"
    "ERROR tf2onnx.tfonnx: Unsupported ops: Counter({'Erfc': 1})\n"
)


def test_logged_unsupported_op_title():
    failure = logged_failure(TF2ONNX_GELU_LOG)
    assert failure is not None
    assert title("tf2onnx", failure.stage, "crash", failure.detail) == (
        "keras/tf2onnx: conversion: crash: unsupported TF op Erfc"
    )


def test_logged_optimizer_failure_is_optimization():
    failure = logged_failure("WARNING tf2onnx.optimizer: Failed to apply TransposeOptimizer\nTraceback ...")
    assert failure is not None
    assert (failure.stage, failure.detail) == ("optimization", "optimizer TransposeOptimizer failed")


def test_clean_log_is_no_failure():
    assert logged_failure("INFO tf2onnx: Using opset <onnx, 17>\n") is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("shape (2, 3, 8) at 0x7f00deadbeef for n12", "shape SHAPE at ADDR for NAME"),
        ("expected [1, -4] got []", "expected SHAPE got SHAPE"),
        ("node 'functional_1/n3_1/Gelu' failed", "node '…' failed"),
        ("bad file /usr/lib/python3/x.py line 12", "bad file PATH line N"),
    ],
)
def test_mask_golden(text, expected):
    assert mask(text) == expected


def _raise_chain():
    try:
        raise KeyError("aten.foo.default")
    except KeyError as inner:
        raise RuntimeError("Failed to convert the exported program to an ONNX model. step 3/3") from inner


def test_dynamo_translation_crash_title():
    try:
        _raise_chain()
    except RuntimeError as exc:
        info = crash_info(exc)
    stage, how = crash_stage("torch-dynamo", info)
    assert stage == "conversion" and "step 3/3" in how
    assert title("torch-dynamo", stage, "crash", crash_detail(info)) == (
        "torch/dynamo: conversion: crash: KeyError in aten.foo.default"
    )


def test_titles_of_two_graphs_hitting_one_bug_agree():
    details = []
    for shape in ((2, 3), (5, 7, 1)):
        try:
            raise ValueError(f"Incompatible dimensions {shape} for node n{len(shape)}")
        except ValueError as exc:
            details.append(crash_detail(crash_info(exc)))
    assert details[0] == details[1] == "ValueError: Incompatible dimensions SHAPE for node NAME"


def test_wrong_model_title_names_the_culprit_sequence():
    graph = Graph(
        "torch",
        (GraphInput("x0", TensorType((2, 4))),),
        (Node("n0", "relu", ("x0",)), Node("n1", "softmax", ("n0",), (("axis", 1),))),
        ("n1",),
    )
    case = Case(graph, Target("torch-dynamo", 18), 0)
    bad = OutputDiff("n1", True, True, True, 0.5, 0.3, 1e-4, False)
    detail = wrong_model_detail(case, (bad,))
    assert title("torch-dynamo", "optimization", "wrong-model", detail) == (
        "torch/dynamo: optimization: wrong-model: values: relu>softmax"
    )


def test_bucket_slug_is_stable_and_safe():
    slug = bucket_slug("keras/tf2onnx: conversion: crash: unsupported TF op Erfc")
    assert slug.startswith("keras-tf2onnx-conversion-crash-unsupported-tf-op-erfc-")
    assert "/" not in slug and slug == bucket_slug("keras/tf2onnx: conversion: crash: unsupported TF op Erfc")


@pytest.mark.parametrize(
    "message, expected",
    [
        ("Unsupported: ONNX export of operator adaptive_avg_pool2d, output size that are not factor of input size."
         " [Caused by the value '1 defined in (%1 : Long(2) = onnx::Constant[value= 12 1]()'", "adaptive_avg_pool2d"),
        ("Non-zero status code returned while running ConvTranspose node. Name:'/n3/ConvTranspose'", "ConvTranspose"),
        ("Unsupported: ONNX export of operator adaptive pooling, since output_size is not constant.", "adaptive pooling"),
    ],
)
def test_culprit_golden(message, expected):
    from fuzzconv.triage import culprit

    assert culprit(message) == expected
