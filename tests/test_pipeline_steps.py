"""Which pipeline step a piece of work is timed in, and which stage a death in each step is filed under."""

import time

import pytest

import fuzzconv.execute as execute
from fuzzconv.case import Case, Graph, GraphInput, Node, Target, TensorType
from fuzzconv.pipeline import run_case
from fuzzconv.workers import lost_outcome

pytestmark = pytest.mark.slow

TEARDOWN_S = 0.05


def tiny_case(option=()):
    graph = Graph("torch", (GraphInput("x0", TensorType((2, 3, 4))),), (Node("n0", "tanh", ("x0",)),), ("n0",))
    return Case(graph, Target("torch-script", 17, option), 3)


class SlowToFree:
    """An onnxruntime session whose teardown takes TEARDOWN_S and notes the step it happened in."""

    def __init__(self, session, steps, freed_in):
        self._session, self._steps, self._freed_in = session, steps, freed_in

    def __getattr__(self, name):
        return getattr(self._session, name)

    def __del__(self):
        time.sleep(TEARDOWN_S)
        self._freed_in.append(self._steps[-1])


@pytest.fixture
def slow_sessions(monkeypatch):
    """(the steps a case reports, the step each session was freed in), with SlowToFree sessions."""
    steps, freed_in = [], []
    real_session = execute.ort_session
    monkeypatch.setattr(execute, "ort_session",
                        lambda *args, **kwargs: SlowToFree(real_session(*args, **kwargs), steps, freed_in))
    return steps, freed_in


def test_the_sessions_teardown_is_timed_as_onnxruntimes_own_step(slow_sessions):
    steps, freed_in = slow_sessions
    outcome = run_case(tiny_case(), on_stage=steps.append)
    assert outcome.status == "pass"
    assert freed_in == ["runtime-release", "runtime-release"]
    timings = dict(outcome.timings)
    assert timings["runtime-release"] >= 2 * TEARDOWN_S
    assert timings["compare"] < TEARDOWN_S


def test_a_dynamic_case_keeps_its_session_until_the_second_shape_is_run(slow_sessions):
    steps, freed_in = slow_sessions
    outcome = run_case(tiny_case((("dynamic", True),)), on_stage=steps.append)
    assert outcome.status == "pass"
    assert "runtime-second-shape" in dict(outcome.timings)
    assert freed_in[0] == "runtime-release"  # the optimized session; the plain one ran the second shape
    assert len(freed_in) == 2


@pytest.mark.parametrize(("step", "status", "stage"), [
    ("materialize", "invalid", "source"),
    ("source-float64", "invalid", "source"),  # the source framework's own float64 run: never a converter bug
    ("convert", "finding", "conversion"),
    ("runtime-release", "finding", "runtime-load"),
    ("runtime-second-shape", "finding", "runtime-kernel"),
    ("toggle-ort-transformers", "finding", "runtime-optimization"),
])
def test_a_death_is_filed_under_the_stage_of_the_step_it_died_in(step, status, stage):
    outcome = lost_outcome(tiny_case(), step, "abort", "signal SIGSEGV", in_step_s=0.1)
    assert (outcome.status, outcome.stage) == (status, stage)
    assert outcome.timings == ((step, 0.1),)
