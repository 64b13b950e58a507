"""Each branch of wrong-model attribution, proven by fault injection on a real conversion."""

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import fuzzconv.converters as converters
import fuzzconv.execute as execute
from fuzzconv.case import Case, Graph, GraphInput, Node, Target, TensorType
from fuzzconv.pipeline import run_case

pytestmark = pytest.mark.slow


def tiny_case():
    graph = Graph(
        "torch",
        (GraphInput("x0", TensorType((2, 3, 4))),),
        (Node("n0", "tanh", ("x0",)), Node("n1", "softmax", ("n0",), (("axis", -1),))),
        ("n1",),
    )
    return Case(graph, Target("torch-script", 17), 3)


def scale_outputs(model_bytes: bytes, factor: float) -> bytes:
    """A converted model whose every output is multiplied by `factor`: a planted conversion bug."""
    model = onnx.load_from_string(model_bytes)
    for index, output in enumerate(model.graph.output):
        inner = f"{output.name}__before_fault"
        for node in model.graph.node:
            node.output[:] = [inner if o == output.name else o for o in node.output]
        const = f"fault_factor_{index}"
        model.graph.initializer.append(numpy_helper.from_array(np.array(factor, dtype=np.float32), const))
        model.graph.node.append(helper.make_node("Mul", [inner, const], [output.name]))
    return model.SerializeToString()


@pytest.fixture
def real_convert():
    return converters.convert


def test_fault_only_with_converter_optimizations_is_optimization(monkeypatch, real_convert):
    def faulty(case, model, inputs, optimize=True, only_optimizers=None, dynamic=True):
        converted = real_convert(case, model, inputs, optimize, only_optimizers, dynamic)
        if optimize:
            converted.model_bytes = scale_outputs(converted.model_bytes, 1.5)
        return converted

    monkeypatch.setattr(converters, "convert", faulty)
    outcome = run_case(tiny_case())
    assert (outcome.status, outcome.stage, outcome.symptom) == ("finding", "optimization", "wrong-model")
    assert "optimizations off" in outcome.decided_by


def test_fault_in_every_conversion_is_conversion(monkeypatch, real_convert):
    def faulty(case, model, inputs, optimize=True, only_optimizers=None, dynamic=True):
        converted = real_convert(case, model, inputs, optimize, only_optimizers, dynamic)
        converted.model_bytes = scale_outputs(converted.model_bytes, 1.5)
        return converted

    monkeypatch.setattr(converters, "convert", faulty)
    outcome = run_case(tiny_case())
    assert (outcome.stage, outcome.symptom) == ("conversion", "wrong-model")
    # every output is scaled, so the probe with all intermediates exposed finds tanh wrong first
    assert outcome.title == "torch/script: conversion: wrong-model: values: tanh"
    # the probe's materialization and comparison are timed apart from its tools' work
    assert {"localize-materialize", "localize", "localize-compare"} <= dict(outcome.timings).keys()


def _level(session):
    import onnxruntime as ort

    level = session.get_session_options().graph_optimization_level
    return "off" if level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL else "on"


def test_perturbed_only_with_ort_optimizations_is_runtime_optimization(monkeypatch):
    real_run = execute.run_ort

    def perturbed(session, names, inputs):
        outputs = real_run(session, names, inputs)
        return [o * 1.5 for o in outputs] if _level(session) == "on" else outputs

    monkeypatch.setattr(execute, "run_ort", perturbed)
    outcome = run_case(tiny_case())
    assert (outcome.stage, outcome.symptom) == ("runtime-optimization", "wrong-model")
    assert "optimizations off" in outcome.decided_by


def test_perturbed_runtime_with_right_reference_is_runtime_kernel(monkeypatch):
    real_run = execute.run_ort
    monkeypatch.setattr(execute, "run_ort", lambda s, n, i: [o * 1.5 for o in real_run(s, n, i)])
    outcome = run_case(tiny_case())
    assert (outcome.stage, outcome.symptom) == ("runtime-kernel", "wrong-model")
    assert "reference evaluator" in outcome.decided_by


def test_small_real_difference_is_still_found(monkeypatch):
    """1e-3 relative is over the float32 tolerance while the source is ~1e-7 from float64."""
    real_run = execute.run_ort
    monkeypatch.setattr(execute, "run_ort", lambda s, n, i: [o * (1 + 1e-3) for o in real_run(s, n, i)])
    outcome = run_case(tiny_case())
    assert outcome.status == "finding"
    diff = outcome.diffs[0]
    assert diff.converted_ref_err > 10 * diff.source_ref_err
