"""Run one case end to end. The one boundary where exceptions become outcomes.

source (materialize, eager run) -> convert -> validate -> onnxruntime load (optimizations off
and on) -> run -> compare; a wrong model is then attributed by toggles. Every step reports
its stage first, so a parent that sees the process die or hang knows where it was.
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from typing import Any

import numpy as np

from fuzzconv import ops
from fuzzconv.case import Case, Outcome, OutputDiff
from fuzzconv.compare import all_ok, compare_all
from fuzzconv.graphcheck import infer_types, producers
from fuzzconv.triage import (
    CrashInfo,
    crash_detail,
    crash_info,
    crash_stage,
    culprit,
    invalid_title,
    logged_failure,
    mask,
    title,
)

StageCallback = Callable[[str], None]

PACKAGES = {
    "torch": ("torch", "onnx", "onnxscript", "onnx-ir", "onnxruntime", "numpy"),
    "keras": ("tensorflow-cpu", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy"),
}


@lru_cache(maxsize=None)
def library_versions(frontend: str) -> tuple[tuple[str, str], ...]:
    found = []
    for name in PACKAGES[frontend]:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(found)


@dataclass
class _Run:
    case: Case
    on_stage: StageCallback
    timings: dict[str, float] = field(default_factory=dict)
    onnx_ops: tuple[str, ...] = ()
    log: str = ""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.on_stage(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def outcome(self, status: str, stage: str = "", symptom: str = "", detail: str = "",
                message: str = "", decided_by: str = "", diffs: tuple[OutputDiff, ...] = ()) -> Outcome:
        converter = self.case.target.converter
        if status == "invalid":
            bucket = detail
        elif status == "pass":
            bucket = ""
        else:
            bucket = title(converter, stage, symptom, detail)
        return Outcome(
            case_id=self.case.id,
            status=status,
            stage=stage,
            symptom=symptom,
            title=bucket,
            message=message[:2000],
            decided_by=decided_by,
            diffs=diffs,
            versions=library_versions(self.case.graph.frontend),
            timings=tuple(self.timings.items()),
            onnx_ops=self.onnx_ops,
            log_tail=self.log[-4000:],
        )


def run_case(case: Case, on_stage: StageCallback = lambda stage: None) -> Outcome:
    """The outcome of one case; never raises for anything the frameworks do."""
    run = _Run(case, on_stage)
    infer_types(case.graph)  # a case that is not valid is fuzzconv's own bug: fail loudly
    from fuzzconv.frontends.materialize import materialize, run_eager
    from fuzzconv.frontends.source import model_source

    try:
        with run.stage("source"):
            materialized = materialize(case)
            expected = run_eager(case.graph.frontend, materialized.model, materialized.inputs)
    except Exception as exc:  # the source framework rejected the graph: invalid, not a finding
        info = crash_info(exc)
        op = _source_op(case, exc, model_source(case.graph))
        return run.outcome("invalid", "source", "crash", invalid_title(case.graph.frontend, info, op),
                           message=info.message)
    return _convert_and_check(run, materialized.model, materialized.inputs, expected)


def _source_op(case: Case, exc: BaseException, source: str) -> str:
    """The op whose line of the generated source raised, or ""."""
    lines = source.splitlines()
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<fuzzconv-model>"]
    for frame in reversed(frames):
        text = lines[frame.lineno - 1] if frame.lineno and frame.lineno <= len(lines) else ""
        match = re.match(r"\s*(?:self\.)?(n\d+)(?:_\d+)?\b", text)
        if match:
            return case.graph.node(match.group(1)).op
    return ""


def _convert_and_check(run: _Run, model: Any, inputs: list[np.ndarray], expected: list[np.ndarray]) -> Outcome:
    from fuzzconv.converters import convert

    case = run.case
    optimize = bool(case.target.option.get("optimize", True))
    try:
        with run.stage("convert"):
            converted = convert(case, model, inputs, optimize=optimize)
    except Exception as exc:
        info = crash_info(exc)
        stage, how = crash_stage(case.target.converter, info)
        return run.outcome("finding", stage, "crash", crash_detail(info), info.message, how)
    run.log = converted.log
    logged = logged_failure(converted.log)
    if logged:
        return run.outcome("finding", logged.stage, "crash", logged.detail, logged.evidence,
                           "the converter logged the failure instead of raising")
    return _validate_and_execute(run, converted.model_bytes, inputs, expected, model)


def _validate_and_execute(run: _Run, model_bytes: bytes, inputs: list[np.ndarray], expected: list[np.ndarray],
                          source_model: Any) -> Outcome:
    from fuzzconv.execute import onnx_op_types, ort_session, validate

    try:
        run.onnx_ops = onnx_op_types(model_bytes)
    except Exception as exc:
        info = crash_info(exc)
        return run.outcome("finding", "serialization", "invalid-model", crash_detail(info), info.message,
                           "the emitted bytes do not parse as an ONNX model")
    try:
        with run.stage("validate"):
            validate(model_bytes)
    except Exception as exc:
        info = crash_info(exc)
        return run.outcome("finding", "validation", "invalid-model", _validation_detail(info), info.message,
                           "onnx.checker full_check / strict shape inference")
    sessions = {}
    for level in ("off", "on"):
        try:
            with run.stage("runtime-load"):
                sessions[level] = ort_session(model_bytes, level)
        except Exception as exc:
            return _load_failure(run, exc, level, model_bytes)
    return _execute(run, sessions, model_bytes, inputs, expected, source_model)


def _validation_detail(info: CrashInfo) -> str:
    op = culprit(info.innermost_message)
    return f"{info.exc_type} in {op}" if op else f"{info.exc_type}: {mask(info.innermost_message)}"


def _load_failure(run: _Run, exc: Exception, level: str, model_bytes: bytes) -> Outcome:
    info = crash_info(exc)
    message = info.innermost_message
    if re.search(r"IR version|ir_version", message, re.I):
        return run.outcome("environment", "environment", "invalid-model", "runtime does not support IR version",
                           message, "onnxruntime refused the model's IR version")
    if re.search(r"opset.*(not supported|under development|is till opset)", message, re.I):
        return run.outcome("environment", "environment", "invalid-model", "runtime does not support opset",
                           message, "onnxruntime refused the model's opset")
    missing = re.search(r"Could not find an implementation for (\w+)", message)
    if missing:
        return run.outcome("environment", "runtime-load", "invalid-model", f"missing-kernel {missing.group(1)}",
                           message, "onnxruntime has no kernel for this op and type")
    unknown = re.search(r"No Op registered for (\w+)", message)
    if unknown and not _is_onnx_op(unknown.group(1)):
        return run.outcome("finding", "conversion", "invalid-model", f"non-ONNX op {unknown.group(1)} emitted",
                           message, "the model holds an op that is not in the ONNX standard")
    stage = "runtime-load" if level == "off" else "runtime-optimization"
    return run.outcome("finding", stage, "crash" if level == "on" else "invalid-model", crash_detail(info),
                       message, f"onnxruntime failed to load the model with optimizations {level}")


def _is_onnx_op(op_type: str) -> bool:
    import onnx.defs

    return bool(onnx.defs.has(op_type))


def _tolerances(case: Case, expected: list[np.ndarray]) -> list[float]:
    graph_ops = [ops.get(name) for name in set(case.graph.op_sequence)]
    result = []
    for array in expected:
        dtype = str(array.dtype)
        known = dtype if dtype in ("float16", "float32", "float64", "int32", "int64", "bool") else "float32"
        result.append(max(op.tol(known) for op in graph_ops))
    return result


def _execute(run: _Run, sessions: dict[str, Any], model_bytes: bytes, inputs: list[np.ndarray],
             expected: list[np.ndarray], source_model: Any) -> Outcome:
    from fuzzconv.execute import run_ort

    case = run.case
    names = [i.name for i in case.graph.inputs]
    outputs: dict[str, list[np.ndarray]] = {}
    for level in ("off", "on"):
        try:
            with run.stage(f"runtime-run-{level}"):
                outputs[level] = run_ort(sessions[level], names, inputs)
        except Exception as exc:
            info = crash_info(exc)
            stage = "runtime-kernel" if level == "off" else "runtime-optimization"
            return run.outcome("finding", stage, "crash", crash_detail(info), info.message,
                               f"onnxruntime raised while running with optimizations {level}")
    tolerances = _tolerances(case, expected)
    out_names = list(case.graph.outputs)
    with run.stage("compare"):
        diffs_off = compare_all(out_names, outputs["off"], expected, tolerances)
        diffs_on = compare_all(out_names, outputs["on"], expected, tolerances)
    if all_ok(diffs_off) and all_ok(diffs_on):
        return run.outcome("pass", diffs=diffs_on)
    detail = wrong_model_detail(case, diffs_off if not all_ok(diffs_off) else diffs_on)
    if all_ok(diffs_off):
        return run.outcome("finding", "runtime-optimization", "wrong-model", detail, _diff_message(diffs_on),
                           "right with onnxruntime optimizations off, wrong with them on", diffs_on)
    stage, how = _attribute_wrong_model(run, model_bytes, inputs, expected, tolerances, source_model)
    return run.outcome("finding", stage, "wrong-model", detail, _diff_message(diffs_off), how, diffs_off)


def _attribute_wrong_model(run: _Run, model_bytes: bytes, inputs: list[np.ndarray], expected: list[np.ndarray],
                           tolerances: list[float], source_model: Any) -> tuple[str, str]:
    """Toggles, in order: the converter's own optimizations off, then the reference evaluator."""
    from fuzzconv.converters import convert
    from fuzzconv.execute import ort_session, run_ort, run_reference

    case = run.case
    names = [i.name for i in case.graph.inputs]
    out_names = list(case.graph.outputs)
    if case.target.option.get("optimize", True):
        try:
            with run.stage("toggle-converter-optimize-off"):
                plain = convert(case, source_model, inputs, optimize=False)
                plain_out = run_ort(ort_session(plain.model_bytes, "off"), names, inputs)
            if all_ok(compare_all(out_names, plain_out, expected, tolerances)):
                return "optimization", "right with the converter's own optimizations off"
        except Exception:
            pass  # the toggle itself failing tells nothing about this difference
    try:
        with run.stage("toggle-reference"):
            reference = run_reference(model_bytes, names, inputs)
        if all_ok(compare_all(out_names, reference, expected, tolerances)):
            return "runtime-kernel", "the ONNX reference evaluator agrees with the source; onnxruntime does not"
    except Exception:
        pass
    return "conversion", "no toggle made the difference vanish"


def _diff_message(diffs: tuple[OutputDiff, ...]) -> str:
    bad = [d for d in diffs if not d.ok]
    return "; ".join(
        f"{d.name}: shape {d.actual_shape} vs {d.expected_shape}, dtype {d.actual_dtype} vs {d.expected_dtype}, "
        f"nan/inf positions {'agree' if d.nonfinite_ok else 'differ'}, max abs err {d.max_abs_err:.3g}, "
        f"needs tolerance {d.required_tol:.3g} (allowed {d.tolerance:g})"
        for d in bad
    )


def wrong_model_detail(case: Case, diffs: tuple[OutputDiff, ...]) -> str:
    """The culprit sequence: the ops on the path into the first wrong output, and what differs."""
    bad = next(d for d in diffs if not d.ok)
    kind = "shape" if not bad.shape_ok else "dtype" if not bad.dtype_ok else "nan-inf" if not bad.nonfinite_ok else "values"
    producer = producers(case.graph)
    node = producer.get(bad.name)
    if node is None:
        return f"{kind}: output count"
    path = [node.op]
    parent = next((producer[a] for a in node.args if a in producer), None)
    if parent is not None:
        path.insert(0, parent.op)
    return f"{kind}: {'>'.join(path)}"
