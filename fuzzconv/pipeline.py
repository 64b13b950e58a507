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
from functools import cache, lru_cache
from importlib import metadata
from typing import Any

import numpy as np

from fuzzconv import ops
from fuzzconv.case import Case, Outcome, OutputDiff
from fuzzconv.compare import all_ok, compare_all, rejudge_with_reference, same_bits
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


@cache
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
    """The state of one case as it flows through the stages."""

    case: Case
    on_stage: StageCallback
    built: Any = None
    expected: list[np.ndarray] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    onnx_ops: tuple[str, ...] = ()
    onnx_keys: tuple[str, ...] = ()
    log: str = ""
    dynamic: bool = False  # a dynamic-batch case whose source model runs at a second batch size
    second: tuple[list[np.ndarray], list[np.ndarray]] | None = None  # (inputs, source outputs) there
    _reference: list[np.ndarray] | None = None
    _reference_tried: bool = False

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.case.graph.inputs]

    @property
    def output_names(self) -> list[str]:
        return list(self.case.graph.outputs)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.on_stage(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def reference64(self) -> list[np.ndarray] | None:
        """The source model in float64, computed once and only when a comparison needs it."""
        if not self._reference_tried:
            self._reference_tried = True
            from fuzzconv.frontends.materialize import run_float64

            try:
                with self.stage("source-float64"):
                    self._reference = run_float64(self.case, self.built)
            except Exception:  # some kernels have no float64 version: judge without it
                self._reference = None
        return self._reference

    def judge(self, actual: list[np.ndarray]) -> tuple[OutputDiff, ...]:
        """Compare with the source; values that differ are re-judged against float64."""
        tolerances = _tolerances(self.case, self.expected)
        diffs = compare_all(self.output_names, actual, self.expected, tolerances)
        if all_ok(diffs) or _nondeterministic(self.case):
            return _waive_values(diffs) if _nondeterministic(self.case) else diffs
        reference = self.reference64()
        if reference is None or len(reference) != len(actual):
            return diffs
        return rejudge_with_reference(diffs, actual, self.expected, reference)

    def outcome(self, status: str, stage: str = "", symptom: str = "", detail: str = "",
                message: str = "", decided_by: str = "", diffs: tuple[OutputDiff, ...] = ()) -> Outcome:
        if status == "invalid":
            bucket = detail
        elif status == "pass":
            bucket = ""
        else:
            bucket = title(self.case.target.converter, stage, symptom, detail)
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
            onnx_keys=self.onnx_keys,
            log_tail=self.log[-4000:],
        )


def run_case(case: Case, on_stage: StageCallback = lambda stage: None) -> Outcome:
    """The outcome of one case; never raises for anything the frameworks do."""
    from fuzzconv.frontends.materialize import materialize, run_eager

    run = _Run(case, on_stage)
    infer_types(case.graph)  # a case that is not valid is fuzzconv's own bug: fail loudly
    try:
        with run.stage("materialize"):
            run.built = materialize(case)
        with run.stage("source"):
            run.expected = run_eager(case.graph.frontend, run.built.model, run.built.inputs)
    except Exception as exc:  # the source framework rejected the graph: invalid, not a finding
        info = crash_info(exc)
        op = _source_op(case, exc, run.built.source if run.built else _source(case))
        return run.outcome("invalid", "source", "crash", invalid_title(case.graph.frontend, info, op),
                           message=info.message)
    _try_second_shape(run)
    return _convert(run)


def _try_second_shape(run: _Run) -> None:
    """For a dynamic case, run the source at a second batch size; export dynamically only if it can."""
    from fuzzconv.converters import dynamic_axes
    from fuzzconv.frontends.materialize import run_eager, second_inputs

    axes = dynamic_axes(run.case)
    if not any(axes):
        return
    inputs = second_inputs(run.case, axes)
    try:
        with run.stage("source-second-shape"):
            run.second = (inputs, run_eager(run.case.graph.frontend, run.built.model, inputs))
    except Exception:
        return  # the source model itself is tied to its batch size: export it as static
    run.dynamic = True


def _source(case: Case) -> str:
    from fuzzconv.frontends.source import model_source

    return model_source(case.graph, case.data_mode)


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


def _convert(run: _Run) -> Outcome:
    from fuzzconv.converters import convert

    case = run.case
    optimize = bool(case.target.option.get("optimize", True))
    try:
        with run.stage("convert"):
            converted = convert(case, run.built.model, run.built.inputs, optimize=optimize, dynamic=run.dynamic)
    except Exception as exc:
        info = crash_info(exc)
        stage, how = crash_stage(case.target.converter, info)
        return run.outcome("finding", stage, "crash", crash_detail(info), info.message, how)
    run.log = converted.log
    logged = logged_failure(converted.log)
    if logged:
        return run.outcome("finding", logged.stage, "crash", logged.detail, logged.evidence,
                           "the converter logged the failure instead of raising")
    return _validate(run, converted.model_bytes)


def _validate(run: _Run, model_bytes: bytes) -> Outcome:
    from fuzzconv.coverage import onnx_graph_keys
    from fuzzconv.execute import onnx_model, onnx_op_types, ort_session, validate

    try:
        model = onnx_model(model_bytes)  # parsed once for the op list, the coverage keys and the checks
        run.onnx_ops = onnx_op_types(model)
        run.onnx_keys = onnx_graph_keys(model)
    except Exception as exc:
        info = crash_info(exc)
        return run.outcome("finding", "serialization", "invalid-model", crash_detail(info), info.message,
                           "the emitted bytes do not parse as an ONNX model")
    try:
        with run.stage("validate"):
            validate(model)
    except Exception as exc:
        info = crash_info(exc)
        return run.outcome("finding", "validation", "invalid-model", validation_detail(info), info.message,
                           "onnx.checker full_check / strict shape inference")
    sessions = {}
    for level in ("off", "on"):
        try:
            with run.stage("runtime-load"):
                sessions[level] = ort_session(model_bytes, level)
        except Exception as exc:
            return _load_failure(run, exc, level)
    return _execute(run, sessions, model_bytes)


def validation_detail(info: CrashInfo) -> str:
    op = culprit(info.innermost_message)
    return f"{info.exc_type} in {op}" if op else f"{info.exc_type}: {mask(info.innermost_message)}"


def _load_failure(run: _Run, exc: Exception, level: str) -> Outcome:
    return run.outcome(*load_failure(exc, level))


def load_failure(exc: Exception, level: str) -> tuple[str, str, str, str, str, str]:
    """onnxruntime refused a model at optimization `level`: (status, stage, symptom, detail,
    message, how it was decided). Version skew and missing kernels are not converter bugs."""
    info = crash_info(exc)
    message = info.innermost_message
    if re.search(r"IR version|ir_version", message, re.I):
        return ("environment", "environment", "invalid-model", "runtime does not support IR version",
                message, "onnxruntime refused the model's IR version")
    if re.search(r"opset.*(not supported|under development|is till opset)", message, re.I):
        return ("environment", "environment", "invalid-model", "runtime does not support opset",
                message, "onnxruntime refused the model's opset")
    missing = re.search(r"Could not find an implementation for (\w+)", message)
    if missing:
        return ("environment", "runtime-load", "invalid-model", f"missing-kernel {missing.group(1)}",
                message, "onnxruntime has no kernel for this op and type")
    unknown = re.search(r"No Op registered for (\w+)", message)
    if unknown and not _is_onnx_op(unknown.group(1)):
        return ("finding", "conversion", "invalid-model", f"non-ONNX op {unknown.group(1)} emitted",
                message, "the model holds an op that is not in the ONNX standard")
    stage = "runtime-load" if level == "off" else "runtime-optimization"
    return ("finding", stage, "crash" if level == "on" else "invalid-model", crash_detail(info),
            message, f"onnxruntime failed to load the model with optimizations {level}")


def _is_onnx_op(op_type: str) -> bool:
    import onnx.defs

    return bool(onnx.defs.has(op_type))


TOLERANCE_DTYPES = ("float16", "float32", "float64", "int32", "int64", "bool")


def _same_bits(one: list[np.ndarray], other: list[np.ndarray]) -> bool:
    """The same outputs to the bit (then they are judged the same): onnxruntime's optimizations
    mostly change nothing."""
    return len(one) == len(other) and all(same_bits(a, b) for a, b in zip(one, other))


def _tolerances(case: Case, expected: list[np.ndarray]) -> list[float]:
    """Per output, the loosest tolerance any of the graph's operators declares for its dtype."""
    table = _tolerance_table(frozenset(case.graph.op_sequence))
    return [table.get(str(a.dtype), table["float32"]) for a in expected]


@lru_cache(maxsize=4096)  # bounded: most large graphs have an operator set of their own
def _tolerance_table(op_names: frozenset[str]) -> dict[str, float]:
    """dtype -> tolerance for a set of operators (graphs share operator sets, so this is cached)."""
    graph_ops = [ops.get(name) for name in op_names]
    return {dtype: max(op.tol(dtype) for op in graph_ops) for dtype in TOLERANCE_DTYPES}


def _nondeterministic(case: Case) -> bool:
    return _any_nondeterministic(frozenset(case.graph.op_sequence))


@lru_cache(maxsize=4096)
def _any_nondeterministic(op_names: frozenset[str]) -> bool:
    return any(ops.get(name).nondeterministic for name in op_names)


def _waive_values(diffs: tuple[OutputDiff, ...]) -> tuple[OutputDiff, ...]:
    """Nondeterministic graphs are held to shape and dtype only."""
    from dataclasses import replace

    return tuple(replace(d, ok=d.shape_ok and d.dtype_ok) for d in diffs)


def _execute(run: _Run, sessions: dict[str, Any], model_bytes: bytes) -> Outcome:
    from fuzzconv.execute import run_ort

    outputs: dict[str, list[np.ndarray]] = {}
    for level in ("off", "on"):
        try:
            with run.stage(f"runtime-run-{level}"):
                outputs[level] = run_ort(sessions[level], run.input_names, run.built.inputs)
        except Exception as exc:
            info = crash_info(exc)
            stage = "runtime-kernel" if level == "off" else "runtime-optimization"
            return run.outcome("finding", stage, "crash", crash_detail(info), info.message,
                               f"onnxruntime raised while running with optimizations {level}")
    second_shape_session = sessions["off"] if run.dynamic else None
    with run.stage("runtime-release"):  # onnxruntime's own teardown of the two sessions, timed as its work
        sessions.clear()
    with run.stage("compare"):
        diffs_off = run.judge(outputs["off"])
        diffs_on = diffs_off if _same_bits(outputs["on"], outputs["off"]) else run.judge(outputs["on"])
    if all_ok(diffs_off) and all_ok(diffs_on):
        return _check_second_shape(run, second_shape_session) or run.outcome("pass", diffs=diffs_on)
    level = "on" if all_ok(diffs_off) else "off"
    diffs = diffs_on if level == "on" else diffs_off
    detail = _localized_detail(run, level) or wrong_model_detail(run.case, diffs)
    if level == "on":
        how = "right with onnxruntime optimizations off, wrong with them on" + _narrow_ort(run, model_bytes)
        return run.outcome("finding", "runtime-optimization", "wrong-model", detail, _diff_message(diffs), how, diffs)
    stage, how = _attribute_wrong_model(run, model_bytes)
    return run.outcome("finding", stage, "wrong-model", detail, _diff_message(diffs), how, diffs)


def _check_second_shape(run: _Run, session: Any) -> Outcome | None:
    """A dynamic export must also be right at another shape; None when it is (or cannot tell)."""
    from fuzzconv.execute import run_ort

    if not run.dynamic or run.second is None:
        return None
    inputs, expected = run.second
    what = "dynamic spatial" if run.case.target.option.get("dynamic") == "spatial" else "dynamic batch"
    how = f"the {what} export is right at the traced shape, not at another"
    try:
        with run.stage("runtime-second-shape"):
            actual = run_ort(session, run.input_names, inputs)
    except Exception as exc:
        info = crash_info(exc)
        return run.outcome("finding", "conversion", "wrong-model", f"{what}: {info.exc_type}", info.message, how)
    diffs = compare_all(run.output_names, actual, expected, _tolerances(run.case, expected))
    if all_ok(diffs):
        return None
    detail = f"{what}: {wrong_model_detail(run.case, diffs)}"
    return run.outcome("finding", "conversion", "wrong-model", detail, _diff_message(diffs), how, diffs)


def _localized_detail(run: _Run, level: str) -> str:
    """Expose every intermediate tensor as an output and name the first op that goes wrong.

    The probe is converted and run like the case; the culprit is the earliest node whose
    output is wrong while every input it takes from other nodes is right. When the probe no
    longer shows the difference (exposing tensors can defeat a fusion), it says nothing.
    """
    from fuzzconv.converters import convert
    from fuzzconv.execute import ort_session, run_ort
    from fuzzconv.frontends.materialize import materialize, run_eager

    probe_case = probe_of(run.case)
    try:
        # The probe's materialization and comparison are the harness's work, so only its source
        # run, conversion and onnxruntime run are timed as the step, which counts as the tools'.
        with run.stage("localize-materialize"):
            built = materialize(probe_case)
        with run.stage("localize"):
            expected = run_eager(probe_case.graph.frontend, built.model, built.inputs)
            converted = convert(probe_case, built.model, built.inputs, dynamic=run.dynamic)
            actual = run_ort(ort_session(converted.model_bytes, level), run.input_names, built.inputs)
        with run.stage("localize-compare"):
            diffs = compare_all(list(probe_case.graph.outputs), actual, expected, _tolerances(probe_case, expected))
    except Exception:
        return ""
    if len(diffs) != len(probe_case.graph.outputs):
        return ""
    wrong = {d.name for d in diffs if not d.ok and not _float_noise(d)}
    producer = producers(probe_case.graph)
    for node in probe_case.graph.nodes:
        outs = [name for name, owner in producer.items() if owner is node]
        inputs_right = all(a not in wrong for a in node.args)
        bad = next((d for d in diffs if d.name in outs and d.name in wrong), None)
        if bad is not None and inputs_right:
            return f"{_diff_kind(bad)}: {node.op}"
    return ""


def _float_noise(diff: OutputDiff) -> bool:
    """A value difference small enough that only the float64 check could call it (not used to localize)."""
    return diff.shape_ok and diff.dtype_ok and diff.nonfinite_ok and diff.required_tol < 1e-3


def probe_of(case: Case) -> Case:
    """The same case with every node output exposed as a graph output, in node order."""
    from dataclasses import replace

    producer = producers(case.graph)
    outputs = tuple(name for name in producer)
    return replace(case, graph=replace(case.graph, outputs=outputs))


def _diff_kind(diff: OutputDiff) -> str:
    if not diff.shape_ok:
        return "shape"
    if not diff.dtype_ok:
        return "dtype"
    return "values" if diff.nonfinite_ok else "nan-inf"


def _narrow_ort(run: _Run, model_bytes: bytes) -> str:
    """Name the onnxruntime transformer whose disabling makes the optimized run right."""
    from fuzzconv.execute import modified_transformers, ort_session, run_ort

    try:
        with run.stage("toggle-ort-transformers"):
            candidates = modified_transformers(model_bytes)
        for name in candidates:
            with run.stage("toggle-ort-transformers"):  # onnxruntime's work; the comparison is not
                session = ort_session(model_bytes, "on", disabled_optimizers=(name,))
                outputs = run_ort(session, run.input_names, run.built.inputs)
            if all_ok(run.judge(outputs)):
                return f"; disabling onnxruntime transformer {name} alone fixes it"
    except Exception:
        return ""
    return f"; transformers that changed the graph: {', '.join(candidates)}" if candidates else ""


def _attribute_wrong_model(run: _Run, model_bytes: bytes) -> tuple[str, str]:
    """Toggles, in order: the converter's own optimizations off, then the reference evaluator."""
    from fuzzconv.execute import run_reference

    if run.case.target.option.get("optimize", True) and _right_when_converted(run, optimize=False):
        return "optimization", "right with the converter's own optimizations off" + _narrow_tf2onnx(run)
    try:
        with run.stage("toggle-reference"):
            reference = run_reference(model_bytes, run.input_names, run.built.inputs)
        if all_ok(run.judge(reference)):
            return "runtime-kernel", "the ONNX reference evaluator agrees with the source; onnxruntime does not"
    except Exception:
        pass  # the reference evaluator lacks some ops: no opinion
    return "conversion", "no toggle made the difference vanish (converter optimizations off, reference evaluator)"


def _right_when_converted(run: _Run, optimize: bool, only_optimizers: tuple[str, ...] | None = None) -> bool:
    from fuzzconv.converters import convert
    from fuzzconv.execute import ort_session, run_ort

    try:
        with run.stage("toggle-converter-optimize-off"):
            plain = convert(run.case, run.built.model, run.built.inputs, optimize, only_optimizers, run.dynamic)
            outputs = run_ort(ort_session(plain.model_bytes, "off"), run.input_names, run.built.inputs)
    except Exception:
        return False  # the toggle itself failing tells nothing about this difference
    return all_ok(run.judge(outputs))


def _narrow_tf2onnx(run: _Run) -> str:
    """For tf2onnx paths, the optimizers that reproduce the difference when run alone."""
    if run.case.target.converter not in ("tf2onnx", "keras-export"):
        return ""
    from fuzzconv.converters.keras_tf2onnx import tf2onnx_optimizer_names

    culprits = [name for name in tf2onnx_optimizer_names() if not _right_when_converted(run, True, (name,))]
    return f"; tf2onnx optimizer(s) that reproduce it alone: {', '.join(culprits)}" if culprits else ""


def _diff_message(diffs: tuple[OutputDiff, ...]) -> str:
    bad = [d for d in diffs if not d.ok]
    return "; ".join(
        f"{d.name}: shape {d.actual_shape} vs {d.expected_shape}, dtype {d.actual_dtype} vs {d.expected_dtype}, "
        f"nan/inf positions {'agree' if d.nonfinite_ok else 'differ'}, max abs err {d.max_abs_err:.3g}, "
        f"needs tolerance {d.required_tol:.3g} (allowed {d.tolerance:g})"
        + (f", float64 error source {d.source_ref_err:.3g} vs converted {d.converted_ref_err:.3g}"
           if d.converted_ref_err >= 0 else "")
        for d in bad
    )


def wrong_model_detail(case: Case, diffs: tuple[OutputDiff, ...]) -> str:
    """The culprit sequence: the ops on the path into the first wrong output, and what differs."""
    bad = next(d for d in diffs if not d.ok)
    kind = _diff_kind(bad)
    producer = producers(case.graph)
    node = producer.get(bad.name)
    if node is None:
        return f"{kind}: output count"
    path = [node.op]
    parent = next((producer[a] for a in node.args if a in producer), None)
    if parent is not None:
        path.insert(0, parent.op)
    return f"{kind}: {'>'.join(path)}"
