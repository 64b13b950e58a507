"""Every registered operator materializes in each frontend it claims, and its shape rule holds."""

import pytest

from fuzzconv import ops
from fuzzconv.case import Case, Graph, Target
from fuzzconv.frontends.materialize import materialize, run_eager
from fuzzconv.generate import RandomChooser, _Builder, generate_case
from fuzzconv.graphcheck import infer_types

pytestmark = pytest.mark.slow

CONVERTER = {"torch": "torch-script", "keras": "tf2onnx"}


def single_op_cases(op, frontend, per_dtype=3):
    """Cases holding just `op`: up to `per_dtype` for each dtype its first argument claims."""
    claimed = op.arg_dtypes(op.args[0], frontend) if op.args else ("float32",)
    found = {dtype: [] for dtype in claimed}
    seed = 0
    while seed < 400 and any(len(cases) < per_dtype for cases in found.values()):
        builder = _Builder(RandomChooser(seed), frontend)
        seed += 1
        if not builder.try_add(op):
            continue
        graph = Graph(frontend, tuple(builder.inputs), tuple(builder.nodes), builder.outputs())
        first = infer_types(graph)[graph.nodes[0].args[0]].dtype if op.args else "float32"
        if len(found.get(first, ())) < per_dtype:
            found.setdefault(first, []).append(Case(graph, Target(CONVERTER[frontend], 17), seed))
    return found


def test_registry_size():
    assert len(ops.for_frontend("torch")) >= 40
    assert len(ops.for_frontend("keras")) >= 30


@pytest.mark.parametrize("frontend", ["torch", "keras"])
def test_every_op_materializes_with_its_shape_rule_at_every_dtype(frontend):
    failures = []
    for op in ops.for_frontend(frontend):
        by_dtype = single_op_cases(op, frontend)
        for dtype, cases in by_dtype.items():
            if not cases:
                failures.append(f"{op.name}: claims {dtype} but the generator could not place it so")
            for case in cases:
                types = infer_types(case.graph)
                try:
                    built = materialize(case)
                    outputs = run_eager(frontend, built.model, built.inputs)
                except Exception as exc:  # collected, so one run lists every broken op
                    failures.append(f"{op.name} ({dtype}): {type(exc).__name__}: {str(exc)[:120]}")
                    continue
                for name, out in zip(case.graph.outputs, outputs):
                    if (tuple(out.shape), str(out.dtype)) != (types[name].shape, types[name].dtype):
                        failures.append(f"{op.name} ({dtype}): eager {out.shape} {out.dtype} vs rule {types[name]}")
    assert not failures, "\n".join(failures)


CONVERTERS_OF = {"torch": ("torch-script", "torch-dynamo"), "keras": ("tf2onnx", "keras-export")}


@pytest.mark.parametrize("frontend", ["torch", "keras"])
def test_every_op_converts_somewhere_or_has_a_known_issue(frontend):
    """Each operator converts under at least one converter of its frontend, or every converter
    that fails it is listed among its known issues with a reason."""
    from fuzzconv.converters import convert

    failures = []
    for op in ops.for_frontend(frontend):
        found = single_op_cases(op, frontend, per_dtype=1)
        case = (found.get("float32") or [c for cases in found.values() for c in cases])[0]
        built = materialize(case)
        errors = {}
        for converter in CONVERTERS_OF[frontend]:
            target = Target(converter, 18 if converter == "torch-dynamo" else 17)
            try:
                convert(Case(case.graph, target, case.data_seed), built.model, built.inputs)
                break
            except Exception as exc:
                errors[converter] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}"
        else:
            known = {issue.converter for issue in op.known_issues if issue.reason}
            unexplained = {c: e for c, e in errors.items() if c not in known}
            if unexplained:
                failures.append(f"{op.name}: converts nowhere, no known issue for {unexplained}")
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
