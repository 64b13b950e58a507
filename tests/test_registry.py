"""Every registered operator materializes in each frontend it claims, and its shape rule holds."""

import pytest

from fuzzconv import ops
from fuzzconv.case import Case, Graph, Target
from fuzzconv.frontends.materialize import materialize, run_eager
from fuzzconv.generate import RandomChooser, _Builder, generate_case
from fuzzconv.graphcheck import infer_types

pytestmark = pytest.mark.slow

CONVERTER = {"torch": "torch-script", "keras": "tf2onnx"}


def single_op_cases(op, frontend, count=3):
    cases, seed = [], 0
    while len(cases) < count and seed < 200:
        builder = _Builder(RandomChooser(seed), frontend)
        seed += 1
        if builder.try_add(op):
            graph = Graph(frontend, tuple(builder.inputs), tuple(builder.nodes), builder.outputs())
            cases.append(Case(graph, Target(CONVERTER[frontend], 17), seed))
    return cases


def test_registry_size():
    assert len(ops.for_frontend("torch")) >= 40
    assert len(ops.for_frontend("keras")) >= 30


@pytest.mark.parametrize("frontend", ["torch", "keras"])
def test_every_op_materializes_with_its_shape_rule(frontend):
    failures = []
    for op in ops.for_frontend(frontend):
        cases = single_op_cases(op, frontend)
        if not cases:
            failures.append(f"{op.name}: the generator could not place it")
        for case in cases:
            types = infer_types(case.graph)
            try:
                built = materialize(case)
                outputs = run_eager(frontend, built.model, built.inputs)
            except Exception as exc:  # collected, so one run lists every broken op
                failures.append(f"{op.name}: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            for name, out in zip(case.graph.outputs, outputs):
                if (tuple(out.shape), str(out.dtype)) != (types[name].shape, types[name].dtype):
                    failures.append(f"{op.name}: eager {out.shape} {out.dtype} vs rule {types[name]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("converter", ["torch-script", "tf2onnx"])
def test_generated_cases_are_valid(converter):
    """Over 300 seeds at least 95 % of generated cases are accepted by the source framework."""
    seeds = 300
    rejected = []
    for seed in range(seeds):
        case = generate_case(seed, converter)
        try:
            built = materialize(case)
            run_eager(case.graph.frontend, built.model, built.inputs)
        except Exception as exc:
            rejected.append(f"{seed} {case.graph.op_sequence}: {type(exc).__name__}")
    assert len(rejected) <= 0.05 * seeds, "\n".join(rejected[:20])
