"""Numbers about a source model and its converted twin: errors, top-1 agreement, accuracy, latency.

Converted models are exported at the example inputs' fixed batch size, so larger inputs are run
in chunks of that size, the last chunk padded by repeating its final row and cut afterwards.
Pure numpy; the models come in as functions from a list of input arrays to a list of outputs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fuzzconv.compare import required_tolerance

RunFn = Callable[[list[np.ndarray]], list[np.ndarray]]
REL_ERR_FLOOR = 1e-3  # max_rel_err looks only at elements whose source value is at least this large


def run_batched(run: RunFn, inputs: list[np.ndarray], batch: int) -> list[np.ndarray]:
    """`run` over rows of `inputs` in chunks of exactly `batch` rows; outputs concatenated."""
    rows = len(inputs[0])
    chunks: list[list[np.ndarray]] = []
    for start in range(0, rows, batch):
        part = [x[start:start + batch] for x in inputs]
        short = batch - len(part[0])
        if short:
            part = [np.concatenate([p, np.repeat(p[-1:], short, axis=0)]) for p in part]
        outputs = run(part)
        chunks.append([o[:batch - short] if o.ndim and len(o) == batch else o for o in outputs])
    return [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]


def random_inputs_like(examples: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Floats from N(mean, std) of the example; integers uniform over the example's [min, max]."""
    drawn = []
    for x in examples:
        if np.issubdtype(x.dtype, np.floating):
            std = float(x.std()) or 1.0
            drawn.append(rng.normal(float(x.mean()), std, x.shape).astype(x.dtype))
        elif np.issubdtype(x.dtype, np.integer):
            drawn.append(rng.integers(int(x.min()), int(x.max()) + 1, x.shape).astype(x.dtype))
        else:
            drawn.append(rng.integers(0, 2, x.shape).astype(x.dtype))
    return drawn


@dataclass
class Agreement:
    """How converted outputs compare with the source's over a set of inputs."""

    samples: int = 0
    max_abs_err: float = 0.0
    max_rel_err: float = 0.0  # |a - e| / |e| where |e| >= REL_ERR_FLOOR
    required_tol: float = 0.0  # max |a - e| / (1 + |e|): the campaign's tolerance metric
    shape_ok: bool = True
    nonfinite_ok: bool = True
    top1_agreement: float | None = None  # fraction of rows whose argmax agrees (classifier outputs)
    accuracy_source: float | None = None
    accuracy_converted: float | None = None

    def within(self, tolerance: float) -> bool:
        return self.shape_ok and self.nonfinite_ok and self.required_tol <= tolerance

    def to_json(self) -> dict[str, Any]:
        return {k: _rounded(v) for k, v in asdict(self).items()}


def _rounded(value: Any) -> Any:
    return float(f"{value:.6g}") if isinstance(value, float) else value


def agreement(expected: list[np.ndarray], actual: list[np.ndarray], labels: np.ndarray | None = None) -> Agreement:
    result = Agreement(samples=len(expected[0]) if expected and expected[0].ndim else 1)
    if len(expected) != len(actual):
        result.shape_ok = False
        return result
    for e, a in zip(expected, actual):
        if e.shape != a.shape:
            result.shape_ok = False
            continue
        _add_errors(result, e, a)
    if result.shape_ok and is_classifier_output(expected[0]):
        e_top, a_top = expected[0].argmax(axis=1), actual[0].argmax(axis=1)
        result.top1_agreement = float((e_top == a_top).mean())
        if labels is not None:
            result.accuracy_source = float((e_top == labels).mean())
            result.accuracy_converted = float((a_top == labels).mean())
    return result


def _add_errors(result: Agreement, e: np.ndarray, a: np.ndarray) -> None:
    if not (np.issubdtype(e.dtype, np.number) and np.issubdtype(a.dtype, np.number)) or e.size == 0:
        return
    e64, a64 = e.astype(np.float64), a.astype(np.float64)
    if not np.array_equal(np.isfinite(e64), np.isfinite(a64)):
        result.nonfinite_ok = False
    finite = np.isfinite(e64) & np.isfinite(a64)
    if not finite.any():
        return
    diff = np.abs(a64[finite] - e64[finite])
    result.max_abs_err = max(result.max_abs_err, float(diff.max()))
    large = np.abs(e64[finite]) >= REL_ERR_FLOOR
    if large.any():
        result.max_rel_err = max(result.max_rel_err, float((diff[large] / np.abs(e64[finite][large])).max()))
    result.required_tol = max(result.required_tol, required_tolerance(a, e))


def is_classifier_output(output: np.ndarray) -> bool:
    return output.ndim == 2 and output.shape[1] > 1 and np.issubdtype(output.dtype, np.floating)


def merge(parts: list[Agreement]) -> Agreement:
    """The worst errors and the sample-weighted rates of several agreements."""
    total = sum(p.samples for p in parts) or 1
    merged = Agreement(
        samples=sum(p.samples for p in parts),
        max_abs_err=max((p.max_abs_err for p in parts), default=0.0),
        max_rel_err=max((p.max_rel_err for p in parts), default=0.0),
        required_tol=max((p.required_tol for p in parts), default=0.0),
        shape_ok=all(p.shape_ok for p in parts),
        nonfinite_ok=all(p.nonfinite_ok for p in parts),
    )
    if parts and all(p.top1_agreement is not None for p in parts):
        merged.top1_agreement = sum(p.samples * (p.top1_agreement or 0.0) for p in parts) / total
    return merged


def median_latency_ms(run: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    """Median wall time of `run()` over `repeats` calls after `warmup` untimed ones, in ms."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0
