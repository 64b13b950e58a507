"""The spawned process that checks one user model: it imports only what the user's file imports.

It loads FILE.py:FUNC, runs the source model on the example inputs, on random inputs drawn like
them and on the --data rows, crafts FGSM/PGD inputs on the source, then for each converter
converts, loads, runs and measures. It reports each step before starting it, so the parent
can name the stage of a hang or a crash of the whole process.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from fuzzconv.checkmodel.adversarial import ATTACKS, AttackSettings, craft, judge
from fuzzconv.checkmodel.loader import (
    Dataset,
    ModelSpec,
    UserModelError,
    check_data_fits,
    load_user_model,
    read_data,
)
from fuzzconv.checkmodel.measure import (
    Agreement,
    agreement,
    is_classifier_output,
    median_latency_ms,
    merge,
    random_inputs_like,
    run_batched,
)

Send = Callable[[tuple[str, Any]], None]


@dataclass
class Batch:
    """Inputs at the exported batch size; only the first `rows` rows are real (the rest pad)."""

    inputs: list[np.ndarray]
    labels: np.ndarray | None
    rows: int
    expected: list[np.ndarray] = field(default_factory=list)


@dataclass
class Plan:
    """The source model's answers, computed once and held against every converter."""

    spec: ModelSpec
    job: dict[str, Any]
    model: Any
    source: Any
    examples: list[np.ndarray]
    random: list[Batch]
    data: list[Batch]
    attack_inputs: list[np.ndarray] = field(default_factory=list)
    attack_labels: np.ndarray | None = None
    adversarial: dict[str, np.ndarray] = field(default_factory=dict)
    eps: float = 0.0

    @property
    def batch(self) -> int:
        return len(self.examples[0])


def check_worker(conn: Connection, job: dict[str, Any], log_path: str) -> None:
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")  # single-threaded like the onnxruntime sessions
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    from fuzzconv.workers import _quiet_process

    _quiet_process(log_path)
    try:
        run_check(job, conn.send)
    except UserModelError as exc:
        conn.send(("usage", str(exc)))
    except Exception:
        conn.send(("error", traceback.format_exc()))
    conn.send(("end", None))


def run_check(job: dict[str, Any], send: Send) -> None:
    from fuzzconv.checkmodel.convert import converters_for

    send(("step", ("", "source")))
    plan = make_plan(job)
    np.savez(Path(job["workdir"], "inputs.npz"), *plan.examples)  # for the memory probes and repro.py
    send(("source", source_summary(plan)))
    for converter in job.get("converters") or converters_for(plan.source.frontend):
        send(("converter", check_converter(plan, converter, _step_sender(send, converter))))


def _step_sender(send: Send, converter: str) -> Callable[[str], None]:
    return lambda step: send(("step", (converter, step)))


def make_plan(job: dict[str, Any]) -> Plan:
    from fuzzconv.checkmodel.source import source_for

    spec = ModelSpec(Path(job["file"]), job["func"])
    user = load_user_model(spec)
    job_converters = job.get("converters") or []
    wrong = [c for c in job_converters if not _converter_fits(c, user.frontend)]
    if wrong:
        raise UserModelError(f"converter {wrong[0]} does not take {user.frontend} models; for {user.frontend} use: "
                             + ", ".join(_fitting(user.frontend)))
    source = source_for(user.frontend, user.model)
    examples = user.inputs
    if not examples[0].ndim:
        raise UserModelError(f"{spec.text}: the first example input is a scalar; it needs a batch axis")
    data = check_data_fits(read_data(job["data"]), examples, job["data"]) if job.get("data") else None
    try:
        source.run(examples)
    except Exception as exc:
        raise UserModelError(f"{spec.text}: the model fails on its own example inputs: {type(exc).__name__}: {exc}") from None
    rng = np.random.default_rng(job.get("seed", 0))
    plan = Plan(spec, job, user.model, source, examples,
                [Batch(random_inputs_like(examples, rng), None, len(examples[0])) for _ in range(job.get("n_random", 8))],
                _data_batches(data, len(examples[0])) if data else [])
    for batch in plan.random + plan.data:
        batch.expected = _cut(source.run(batch.inputs), batch)
    if job.get("robustness", True):
        _craft_attacks(plan, data)
    return plan


def _converter_fits(converter: str, frontend: str) -> bool:
    from fuzzconv.case import CONVERTER_FRONTEND

    return CONVERTER_FRONTEND.get(converter) == frontend


def _fitting(frontend: str) -> list[str]:
    from fuzzconv.checkmodel.convert import converters_for

    return list(converters_for(frontend))


def _data_batches(data: Dataset, batch: int) -> list[Batch]:
    """Chunks of exactly `batch` rows (the exported size); the last is padded by repeating its final row."""
    chunks = []
    for start in range(0, data.size, batch):
        part = [x[start:start + batch] for x in data.inputs]
        rows = len(part[0])
        if rows < batch:
            part = [np.concatenate([p, np.repeat(p[-1:], batch - rows, axis=0)]) for p in part]
        labels = data.labels[start:start + rows] if data.labels is not None else None
        chunks.append(Batch(part, labels, rows))
    return chunks


def _cut(outputs: list[np.ndarray], batch: Batch) -> list[np.ndarray]:
    """Outputs without the rows that padded a short final chunk."""
    full = len(batch.inputs[0])
    return [o[:batch.rows] if o.ndim and len(o) == full else o for o in outputs]


def _craft_attacks(plan: Plan, data: Dataset | None) -> None:
    first = plan.random[0].expected[0] if plan.random else plan.source.run(plan.examples)[0]
    if not (is_classifier_output(first) and np.issubdtype(plan.examples[0].dtype, np.floating)):
        return  # robustness is defined here for classifiers with a float first input only
    limit = plan.job.get("attack_samples", 256)
    pool = data.inputs if data is not None else [np.concatenate(xs) for xs in zip(*(b.inputs for b in plan.random))]
    plan.attack_inputs = [x[:limit] for x in pool]
    given = data.labels[:limit] if data is not None and data.labels is not None else None
    plan.attack_labels = given if given is not None else _predict(plan.source.run, plan.attack_inputs, plan.batch)
    settings = AttackSettings(plan.job.get("eps_fraction", 0.1), plan.job.get("pgd_steps", 10))
    plan.eps, plan.adversarial = craft(plan.attack_inputs, plan.attack_labels, _batched_gradient(plan), settings)


def _predict(run: Callable[[list[np.ndarray]], list[np.ndarray]], inputs: list[np.ndarray], batch: int) -> np.ndarray:
    return run_batched(run, inputs, batch)[0].argmax(axis=1)


def _batched_gradient(plan: Plan) -> Callable[[list[np.ndarray], np.ndarray], np.ndarray]:
    """The source's loss gradient over chunks of the exported batch size (its sign is what attacks use)."""

    def gradient(inputs: list[np.ndarray], labels: np.ndarray) -> np.ndarray:
        parts = []
        for start in range(0, len(labels), plan.batch):
            chunk = [x[start:start + plan.batch] for x in inputs]
            parts.append(plan.source.loss_gradient(chunk, labels[start:start + plan.batch]))
        return np.concatenate(parts)

    return gradient


def source_summary(plan: Plan) -> dict[str, Any]:
    outputs = plan.source.run(plan.examples)
    repeats = plan.job.get("repeats", 30)
    summary: dict[str, Any] = {
        "frontend": plan.source.frontend,
        "inputs": [{"shape": list(x.shape), "dtype": str(x.dtype)} for x in plan.examples],
        "outputs": [{"shape": list(o.shape), "dtype": str(o.dtype)} for o in outputs],
        "parameters": plan.source.parameter_count(),
        "native_size_bytes": _native_size(plan.source),
        "latency_ms": round(median_latency_ms(lambda: plan.source.run(plan.examples), repeats), 4),
        "data_rows": sum(len(b.expected[0]) for b in plan.data) if plan.data else 0,
        "labels": bool(plan.data and plan.data[0].labels is not None),
    }
    labelled = [b for b in plan.data if b.labels is not None]
    if labelled and is_classifier_output(outputs[0]):
        hits = sum(int((b.expected[0].argmax(axis=1) == b.labels).sum()) for b in labelled)
        summary["accuracy"] = round(hits / sum(len(b.labels) for b in labelled if b.labels is not None), 6)
    if plan.adversarial:
        predicted = {a: _predict(plan.source.run, [x, *plan.attack_inputs[1:]], plan.batch)
                     for a, x in plan.adversarial.items()}
        summary["attack_success"] = {a: round(float((p != plan.attack_labels).mean()), 6) for a, p in predicted.items()}
        summary["attack_eps"] = round(plan.eps, 6)
    return summary


def _native_size(source: Any) -> int | None:
    try:
        return int(source.native_size_bytes())
    except Exception:  # saving natively is a courtesy figure; a model that cannot be saved has none
        return None


def check_converter(plan: Plan, converter: str, step: Callable[[str], None]) -> dict[str, Any]:
    from fuzzconv.checkmodel.convert import opset_for
    from fuzzconv.checkmodel.verdict import Verdict, convert_and_load, run_failure

    opset = opset_for(converter, plan.job.get("opset"))
    outputs = len(plan.random[0].expected) if plan.random else len(plan.source.run(plan.examples))
    loaded = convert_and_load(converter, plan.model, plan.examples, outputs, opset, step)
    if isinstance(loaded, Verdict):
        return {**loaded.to_json(), "opset": opset, "log_tail": loaded.log[-4000:]}
    for level in ("off", "on"):
        step(f"runtime-run-{level}")
        try:
            loaded.run(plan.examples, level)
        except Exception as exc:
            return {**run_failure(converter, exc, level).to_json(), "opset": opset, "log_tail": loaded.log[-4000:]}
    step("compare")
    return _measure_converter(plan, converter, loaded, opset, step)


def _measure_converter(plan: Plan, converter: str, loaded: Any, opset: int, step: Callable[[str], None]) -> dict:
    from fuzzconv.checkmodel.verdict import Verdict, attribute_wrong_model, wrong_model

    tolerance = plan.job.get("tolerance", 1e-3)
    per_batch = [(b, agreement(b.expected, _cut(loaded.run(b.inputs), b), b.labels)) for b in plan.random + plan.data]
    random = merge([a for b, a in per_batch[:len(plan.random)]])
    data = _merge_labelled([a for b, a in per_batch[len(plan.random):]])
    verdict = Verdict(converter)
    worst_batch, worst = max(per_batch, key=lambda pair: _badness(pair[1]), default=(None, Agreement()))
    if worst_batch is not None and not worst.within(tolerance):
        step("toggles")
        kind = "shape" if not worst.shape_ok else "nan-inf" if not worst.nonfinite_ok else "values"
        within = _within(worst_batch, tolerance)
        stage, how = attribute_wrong_model(converter, plan.model, loaded, plan.examples, worst_batch.inputs,
                                           len(worst_batch.expected), within, opset)
        message = (f"max abs err {worst.max_abs_err:.3g}, needs tolerance {worst.required_tol:.3g} "
                   f"(allowed {tolerance:g}), shapes {'agree' if worst.shape_ok else 'differ'}, "
                   f"nan/inf positions {'agree' if worst.nonfinite_ok else 'differ'}")
        verdict = wrong_model(converter, plan.spec.func, kind, stage, how, message)
        _save_inputs(plan, converter, worst_batch.inputs)
    step("latency")
    result = {**verdict.to_json(), "opset": opset, "log_tail": loaded.log[-4000:],
              "random": random.to_json(), "data": data.to_json() if plan.data else None,
              "onnx_size_bytes": len(loaded.model_bytes),
              "latency_ms": round(median_latency_ms(lambda: loaded.run(plan.examples), plan.job.get("repeats", 30)), 4)}
    if plan.adversarial:
        step("robustness")
        result["robustness"] = _robustness(plan, loaded)
    _save_onnx(plan, converter, loaded.model_bytes)
    return result


def _badness(a: Agreement) -> float:
    return float("inf") if not (a.shape_ok and a.nonfinite_ok) else a.required_tol


def _within(batch: Batch, tolerance: float) -> Callable[[list[np.ndarray]], bool]:
    return lambda actual: agreement(batch.expected, _cut(actual, batch)).within(tolerance)


def _merge_labelled(parts: list[Agreement]) -> Agreement:
    merged = merge(parts)
    labelled = [p for p in parts if p.accuracy_source is not None]
    if labelled and len(labelled) == len(parts):
        total = sum(p.samples for p in labelled)
        merged.accuracy_source = sum(p.samples * (p.accuracy_source or 0.0) for p in labelled) / total
        merged.accuracy_converted = sum(p.samples * (p.accuracy_converted or 0.0) for p in labelled) / total
    return merged


def _robustness(plan: Plan, loaded: Any) -> dict[str, Any]:
    assert plan.attack_labels is not None
    rest = plan.attack_inputs[1:]
    return {
        attack: judge(plan.adversarial[attack], rest, plan.attack_labels, plan.eps,
                      lambda xs: _predict(plan.source.run, xs, plan.batch),
                      lambda xs: _predict(loaded.run, xs, plan.batch)).to_json()
        for attack in ATTACKS
    }


def _save_onnx(plan: Plan, converter: str, model_bytes: bytes) -> None:
    Path(plan.job["workdir"], f"{converter}.onnx").write_bytes(model_bytes)


def _save_inputs(plan: Plan, converter: str, inputs: list[np.ndarray]) -> None:
    """The batch that was furthest off, for the bucket's repro.py."""
    np.savez(Path(plan.job["workdir"], f"{converter}-inputs.npz"), *inputs)
