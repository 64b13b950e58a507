"""Capture real converter tracebacks as golden files: `python -m tests.golden.capture_tracebacks`.

Each scenario provokes a real failure in a real converter stage; the stage it belongs to is
written down here by a person, the title is what fuzzconv gave when the file was captured.
`tests/test_golden_tracebacks.py` checks both stay true. Run it once per frontend
(`... torch`, then `... keras`) after upgrading a converter, read the diff, and commit it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from fuzzconv.triage import crash_detail, crash_info, crash_stage, title

HERE = Path(__file__).parent / "tracebacks"


def torch_scenarios():
    import torch

    class DataDependent(torch.nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x

    class Histc(torch.nn.Module):
        def forward(self, x):
            return torch.histc(x, bins=4)

    class RmsNorm(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.rms_norm(x, (4,))

    class DictOut(torch.nn.Module):
        def forward(self, x):
            return {"y": x, "scale": 3}

    x = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")
    return [
        ("torch-dynamo", "capture", "dynamo_capture_data_dependent", DataDependent(), [x], 18),
        ("torch-dynamo", "conversion", "dynamo_conversion_histc", Histc(), [x], 18),
        ("torch-script", "conversion", "torchscript_conversion_rms_norm", RmsNorm(), [x], 17),
        ("torch-script", "capture", "torchscript_capture_dict_output", DictOut(), [x], 17),
    ]


CASE_SCENARIOS = {
    # golden case file (found by a campaign) -> stage a person assigned to its failure
    "keras_export_capture_squeeze": "capture",
    "keras_export_capture_none_values": "capture",
    "dynamo_validation_maxpool": "validation",
    "torchscript_validation_slice": "validation",
}


def capture_case(name: str, stage: str) -> None:
    """Re-run a stored case up to the failing step and keep that step's exception."""
    from fuzzconv.case import Case
    from fuzzconv.converters import convert
    from fuzzconv.execute import validate
    from fuzzconv.frontends.materialize import materialize, run_eager
    from fuzzconv.pipeline import validation_detail

    case = Case.loads((Path(__file__).parent / "cases" / f"{name}.json").read_text())
    frontend = "torch" if case.target.converter.startswith("torch") else "keras"
    if len(sys.argv) > 1 and sys.argv[1] != frontend:
        return
    built = materialize(case)
    run_eager(frontend, built.model, built.inputs)  # as in a campaign: Keras exports only called models
    try:
        converted = convert(case, built.model, built.inputs)
        validate(converted.model_bytes)
    except Exception as exc:
        info = crash_info(exc)
    else:
        print(f"{name}: no failure any more; scenario needs updating", file=sys.stderr)
        return
    detail = validation_detail(info) if stage == "validation" else crash_detail(info)
    symptom = "invalid-model" if stage == "validation" else "crash"
    got_stage, how = ("validation", "onnx.checker") if stage == "validation" else crash_stage(case.target.converter, info)
    write(name, case.target.converter, stage, title(case.target.converter, stage, symptom, detail), got_stage, how, info)


def capture(converter, stage, name, model, inputs, opset):
    from fuzzconv.case import Case, Graph, GraphInput, Node, Target, TensorType
    from fuzzconv.converters import convert

    graph = Graph("torch" if converter.startswith("torch") else "keras",
                  (GraphInput("x0", TensorType(inputs[0].shape)),), (Node("n0", "relu", ("x0",)),), ("n0",))
    case = Case(graph, Target(converter, opset), 0)
    try:
        convert(case, model, inputs)
    except Exception as exc:
        info = crash_info(exc)
    else:
        print(f"{name}: the converter did not fail; scenario needs updating", file=sys.stderr)
        return
    got_stage, how = crash_stage(converter, info)
    write(name, converter, stage, title(converter, stage, "crash", crash_detail(info)), got_stage, how, info)


def write(name, converter, stage, golden_title, got_stage, how, info) -> None:
    record = {
        "converter": converter,
        "expected_stage": stage,
        "golden_title": golden_title,
        "stage_at_capture": got_stage,
        "decided_by_at_capture": how,
        "info": dataclasses.asdict(info),
    }
    (HERE / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"{name}: {golden_title} ({how})")


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.simplefilter("ignore")
    frontend = sys.argv[1] if len(sys.argv) > 1 else "torch"
    if frontend == "torch":  # one frontend per process: a torch run never imports TensorFlow
        for scenario in torch_scenarios():
            capture(*scenario)
    for name, stage in CASE_SCENARIOS.items():
        capture_case(name, stage)


if __name__ == "__main__":
    main()
