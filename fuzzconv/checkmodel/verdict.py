"""One converter on the user's model: the boundary where exceptions become statuses.

convert -> parse and validate -> onnxruntime load (optimizations off and on) -> run. Stages,
symptoms and titles follow the campaign's rules (`fuzzconv.triage`, `fuzzconv.pipeline`), so a
bucket from check-model reads like one from a campaign. A wrong model is attributed by the same
toggles: onnxruntime optimizations off, the converter's own optimizations off, the ONNX
reference evaluator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fuzzconv.checkmodel.convert import export_request, onnx_from_user_model
from fuzzconv.converters import Converted
from fuzzconv.triage import crash_detail, crash_info, crash_stage, logged_failure, title

StepFn = Callable[[str], None]


@dataclass
class Verdict:
    """What happened to one converter; `status` is pass, finding or environment."""

    converter: str
    status: str = "pass"
    stage: str = ""
    symptom: str = ""
    detail: str = ""
    decided_by: str = ""
    message: str = ""
    log: str = ""

    @property
    def title(self) -> str:
        return title(self.converter, self.stage, self.symptom, self.detail) if self.status != "pass" else ""

    def to_json(self) -> dict[str, Any]:
        return {"converter": self.converter, "status": self.status, "stage": self.stage, "symptom": self.symptom,
                "title": self.title, "decided_by": self.decided_by, "message": self.message[:2000]}


def failed(converter: str, status: str, stage: str, symptom: str, detail: str, message: str, how: str,
           log: str = "") -> Verdict:
    return Verdict(converter, status, stage, symptom, detail, how, message, log)


@dataclass
class Loaded:
    """A converted model that onnxruntime accepted, with a session per optimization level."""

    model_bytes: bytes
    sessions: dict[str, Any] = field(default_factory=dict)
    log: str = ""

    def run(self, inputs: list[np.ndarray], level: str = "on") -> list[np.ndarray]:
        from fuzzconv.execute import run_ort

        return run_ort(self.sessions[level], [f"input_{i}" for i in range(len(inputs))], inputs)


def convert_and_load(converter: str, model: Any, inputs: list[np.ndarray], outputs: int, opset: int,
                     step: StepFn) -> Verdict | Loaded:
    """The loaded model, or the verdict of the stage that failed on the way there."""
    request = export_request(inputs, outputs, opset)
    step("convert")
    try:
        converted = onnx_from_user_model(converter, model, inputs, request)
    except Exception as exc:
        info = crash_info(exc)
        stage, how = crash_stage(converter, info)
        return failed(converter, "finding", stage, "crash", crash_detail(info), info.message, how)
    logged = logged_failure(converted.log)
    if logged:
        return failed(converter, "finding", logged.stage, "crash", logged.detail, logged.evidence,
                      "the converter logged the failure instead of raising", converted.log)
    return _validate_and_load(converter, converted, step)


def _validate_and_load(converter: str, converted: Converted, step: StepFn) -> Verdict | Loaded:
    from fuzzconv.execute import onnx_op_types, ort_session, validate
    from fuzzconv.pipeline import validation_detail

    step("validate")
    try:
        onnx_op_types(converted.model_bytes)
    except Exception as exc:
        info = crash_info(exc)
        return failed(converter, "finding", "serialization", "invalid-model", crash_detail(info), info.message,
                      "the emitted bytes do not parse as an ONNX model", converted.log)
    try:
        validate(converted.model_bytes)
    except Exception as exc:
        info = crash_info(exc)
        return failed(converter, "finding", "validation", "invalid-model", validation_detail(info), info.message,
                      "onnx.checker full_check / strict shape inference", converted.log)
    loaded = Loaded(converted.model_bytes, log=converted.log)
    step("runtime-load")
    for level in ("off", "on"):
        try:
            loaded.sessions[level] = ort_session(converted.model_bytes, level)
        except Exception as exc:
            return load_failure(converter, exc, level, converted.log)
    return loaded


def load_failure(converter: str, exc: Exception, level: str, log: str) -> Verdict:
    """onnxruntime refused the model: the campaign's rules (version skew, missing kernel, ...)."""
    from fuzzconv import pipeline

    return failed(converter, *pipeline.load_failure(exc, level), log)


def run_failure(converter: str, exc: Exception, level: str) -> Verdict:
    info = crash_info(exc)
    stage = "runtime-kernel" if level == "off" else "runtime-optimization"
    return failed(converter, "finding", stage, "crash", crash_detail(info), info.message,
                  f"onnxruntime raised while running with optimizations {level}")


def wrong_model(converter: str, func: str, kind: str, stage: str, how: str, message: str) -> Verdict:
    """A model whose outputs differ beyond tolerance; the detail names the user's FUNC, not numbers."""
    return failed(converter, "finding", stage, "wrong-model", f"{kind} of {func}", message, how)


def attribute_wrong_model(converter: str, model: Any, loaded: Loaded, examples: list[np.ndarray],
                          inputs: list[np.ndarray], outputs: int, within: Callable[[list[np.ndarray]], bool],
                          opset: int) -> tuple[str, str]:
    """(stage, how decided) by the campaign's toggles, judged on the worst batch `inputs`.

    A re-export is traced at the same `examples` as the first one: tracing at the worst batch
    would hide bugs that depend on the inputs seen while tracing.
    """
    from fuzzconv.execute import ort_session, run_ort, run_reference

    if within(loaded.run(inputs, "off")):
        return "runtime-optimization", "right with onnxruntime optimizations off, wrong with them on"
    names = [f"input_{i}" for i in range(len(inputs))]
    try:
        plain = onnx_from_user_model(converter, model, examples, export_request(examples, outputs, opset, False))
        if within(run_ort(ort_session(plain.model_bytes, "off"), names, inputs)):
            return "optimization", "right with the converter's own optimizations off"
    except Exception:
        pass  # the toggle itself failing tells nothing about this difference
    try:
        if within(run_reference(loaded.model_bytes, names, inputs)):
            return "runtime-kernel", "the ONNX reference evaluator agrees with the source; onnxruntime does not"
    except Exception:
        pass  # the reference evaluator lacks some ops: no opinion
    return "conversion", "no toggle made the difference vanish (onnxruntime and converter optimizations off, reference)"
