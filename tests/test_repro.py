"""Every repro.py stands alone (no fuzzconv on its import path) and exits 1 with the bucket's symptom."""

import subprocess
import sys
from pathlib import Path

import pytest

from fuzzconv.case import Case, Graph, GraphInput, Node, Target, TensorType
from fuzzconv.converters import dynamic_axes
from fuzzconv.pipeline import run_case
from fuzzconv.repro import repro_script

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).parent / "support" / "run_without_fuzzconv.py"


def run_repro(tmp_path, case):
    outcome = run_case(case)
    assert outcome.status == "finding", outcome
    script = tmp_path / "repro.py"
    script.write_text(repro_script(case, outcome, 1e-4))
    done = subprocess.run([sys.executable, str(RUNNER), str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    return outcome, done


def test_torchscript_roll_repro_fails_with_wrong_model(tmp_path):
    graph = Graph("torch", (GraphInput("x0", TensorType((3, 2, 6))),),
                  (Node("n0", "roll", ("x0",), (("axis", 0), ("shift", 4))),), ("n0",))
    outcome, done = run_repro(tmp_path, Case(graph, Target("torch-script", 17), 0))
    assert outcome.symptom == "wrong-model"
    assert done.returncode == 1, done.stderr[-2000:]
    assert "BUG: wrong model with onnxruntime optimizations off" in done.stdout


@pytest.mark.parametrize("converter", ["tf2onnx", "keras-export"])
def test_keras_gelu_repro_fails_with_logged_crash(tmp_path, converter):
    graph = Graph("keras", (GraphInput("x0", TensorType((2, 5))),),
                  (Node("n0", "gelu", ("x0",), (("approximate", "none"),)),), ("n0",))
    outcome, done = run_repro(tmp_path, Case(graph, Target(converter, 17), 0))
    assert outcome.symptom == "crash"
    assert done.returncode == 1, done.stderr[-2000:]
    assert "BUG: the converter logged a failure" in done.stdout and "Erfc" in done.stdout


def test_passing_case_repro_exits_zero(tmp_path):
    graph = Graph("torch", (GraphInput("x0", TensorType((3, 2, 6))),),
                  (Node("n0", "roll", ("x0",), (("axis", 0), ("shift", 1))),), ("n0",))
    case = Case(graph, Target("torch-script", 17), 0)
    outcome = run_case(case)
    assert outcome.status == "pass"
    script = tmp_path / "repro.py"
    script.write_text(repro_script(case, outcome, 1e-4))
    done = subprocess.run([sys.executable, str(RUNNER), str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "FIXED: every step passes" in done.stdout, done.stdout + done.stderr[-1000:]


@pytest.mark.parametrize("frontend, converter", [("torch", "torch-script"), ("torch", "torch-dynamo"),
                                                 ("keras", "tf2onnx"), ("keras", "keras-export")])
def test_dynamic_shape_repro_passes_at_two_shapes(tmp_path, frontend, converter):
    """Batch and a spatial axis exported as dynamic: the converted model holds at a second shape."""
    graph = Graph(frontend, (GraphInput("x0", TensorType((2, 3, 5))),), (Node("n0", "tanh", ("x0",)),), ("n0",))
    case = Case(graph, Target(converter, 18 if converter == "torch-dynamo" else 17, (("dynamic", "spatial"),)), 0)
    assert dynamic_axes(case) == (((0, 2),) if frontend == "torch" else ((0,),))
    outcome = run_case(case)
    assert outcome.status == "pass", outcome.message
    assert dict(outcome.timings).get("runtime-second-shape", 0) > 0, "the second shape was run"
    script = tmp_path / "repro.py"
    script.write_text(repro_script(case, outcome, 1e-4))
    done = subprocess.run([sys.executable, str(RUNNER), str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-1500:]
    assert "second input shape: all outputs agree" in done.stdout


def test_dynamic_axes_follow_the_batch_and_the_layout():
    x = GraphInput("x0", TensorType((2, 3, 4, 5)))
    same_batch = GraphInput("x1", TensorType((2, 3, 4, 5)))
    other = GraphInput("x2", TensorType((1, 5)))
    graph = Graph("torch", (x, same_batch, other), (Node("n0", "tanh", ("x0",)),), ("n0",))
    assert dynamic_axes(Case(graph, Target("torch-script", 17), 0)) == ()
    assert dynamic_axes(Case(graph, Target("torch-script", 17, (("dynamic", True),)), 0)) == ((0,), (0,), ())
    spatial = Case(graph, Target("torch-script", 17, (("dynamic", "spatial"),)), 0)
    assert dynamic_axes(spatial) == ((0, 3), (0, 3), ())
    keras = Case(Graph("keras", graph.inputs, graph.nodes, graph.outputs), Target("tf2onnx", 17, (("dynamic", "spatial"),)), 0)
    assert dynamic_axes(keras) == ((0,), (0,), ()), "Keras inputs have fixed spatial sizes"
