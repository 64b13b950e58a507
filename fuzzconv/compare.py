"""The tolerance policy: compare converted outputs with the source's. Returns results, never raises.

For floats, the error of one element is |actual - expected| / (1 + |expected|), a mix of
absolute error near zero and relative error for large values; the smallest tolerance that
would have passed is the largest such error. NaN/Inf positions are a check of their own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from fuzzconv.case import OutputDiff

VERDICT_TOLERANCES = (1e-7, 1e-5, 1e-3, 1e-1)

# A converted output is wrong only when it is this many times further from the float64
# answer than the source framework's own float32 answer is (plus the tolerance).
REFERENCE_FACTOR = 10.0


def required_tolerance(actual: np.ndarray, expected: np.ndarray) -> float:
    """Smallest t with |a - e| <= t * (1 + |e|) at every finite position (0 when none)."""
    return _errors(actual.astype(np.float64), expected.astype(np.float64))[1]


def _errors(a: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """(largest absolute error, required tolerance) over the positions finite in both (float64 arrays)."""
    finite = np.isfinite(a) & np.isfinite(e)
    if finite.all():
        a_f, e_f = a, e
    elif finite.any():
        a_f, e_f = a[finite], e[finite]
    else:
        return 0.0, 0.0
    diff = np.abs(a_f - e_f)
    return float(diff.max()), float((diff / (1.0 + np.abs(e_f))).max())


def nonfinite_match(actual: np.ndarray, expected: np.ndarray) -> bool:
    if not np.issubdtype(expected.dtype, np.floating) and not np.issubdtype(actual.dtype, np.floating):
        return True
    return _nonfinite_match(actual.astype(np.float64), expected.astype(np.float64))


def _nonfinite_match(a: np.ndarray, e: np.ndarray) -> bool:
    return bool(
        np.array_equal(np.isnan(a), np.isnan(e))
        and np.array_equal(np.isposinf(a), np.isposinf(e))
        and np.array_equal(np.isneginf(a), np.isneginf(e))
    )


def compare_output(name: str, actual: np.ndarray, expected: np.ndarray, tolerance: float) -> OutputDiff:
    shape_ok = tuple(actual.shape) == tuple(expected.shape)
    dtype_ok = actual.dtype == expected.dtype
    base: dict[str, Any] = dict(
        name=name,
        shape_ok=shape_ok,
        dtype_ok=dtype_ok,
        tolerance=tolerance,
        expected_shape=tuple(int(d) for d in expected.shape),
        actual_shape=tuple(int(d) for d in actual.shape),
        expected_dtype=str(expected.dtype),
        actual_dtype=str(actual.dtype),
    )
    if not shape_ok:
        return OutputDiff(nonfinite_ok=True, max_abs_err=float("inf"), required_tol=float("inf"), ok=False, **base)
    if dtype_ok and _same_values(actual, expected):  # the common case, at a fraction of the cost
        return OutputDiff(nonfinite_ok=True, max_abs_err=0.0, required_tol=0.0, ok=True, **base)
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    floating = np.issubdtype(expected.dtype, np.floating) or np.issubdtype(actual.dtype, np.floating)
    nonfinite_ok = _nonfinite_match(a, e) if floating else True
    if actual.size == 0:
        return OutputDiff(nonfinite_ok=nonfinite_ok, max_abs_err=0.0, required_tol=0.0,
                          ok=dtype_ok and nonfinite_ok, **base)
    max_abs, required = _errors(a, e)
    ok = dtype_ok and nonfinite_ok and required <= tolerance
    return OutputDiff(nonfinite_ok=nonfinite_ok, max_abs_err=max_abs, required_tol=required, ok=ok, **base)


def same_bits(actual: np.ndarray, expected: np.ndarray) -> bool:
    """The same dtype, shape and bits: most outputs, checked at a 40th of `array_equal`'s cost."""
    return actual.dtype == expected.dtype and actual.shape == expected.shape and actual.tobytes() == expected.tobytes()


def _same_values(actual: np.ndarray, expected: np.ndarray) -> bool:
    """Equal element for element, NaN where the other has NaN (arrays of one shape and dtype)."""
    if same_bits(actual, expected):
        return True
    if np.issubdtype(actual.dtype, np.floating) or np.issubdtype(actual.dtype, np.complexfloating):
        return bool(np.array_equal(actual, expected, equal_nan=True))
    return bool(np.array_equal(actual, expected))


def compare_all(names: list[str], actual: list[np.ndarray], expected: list[np.ndarray],
                tolerances: list[float]) -> tuple[OutputDiff, ...]:
    if len(actual) != len(expected):
        missing = OutputDiff(
            name="<output count>", shape_ok=False, dtype_ok=True, nonfinite_ok=True,
            max_abs_err=float("inf"), required_tol=float("inf"), tolerance=0.0, ok=False,
            expected_shape=(len(expected),), actual_shape=(len(actual),),
        )
        return (missing,)
    return tuple(
        compare_output(name, a, e, tol) for name, a, e, tol in zip(names, actual, expected, tolerances)
    )


def all_ok(diffs: tuple[OutputDiff, ...]) -> bool:
    return all(d.ok for d in diffs)


def verdicts(diffs: tuple[OutputDiff, ...]) -> dict[str, bool]:
    """Whether the case would be called wrong at each of the study's tolerances."""
    worst = max((d.required_tol for d in diffs), default=0.0)
    structural = any(not (d.shape_ok and d.dtype_ok and d.nonfinite_ok) for d in diffs)
    return {f"{t:g}": structural or worst > t for t in VERDICT_TOLERANCES}


def rejudge_with_reference(diffs: tuple[OutputDiff, ...], actual: list[np.ndarray], expected: list[np.ndarray],
                           reference: list[np.ndarray]) -> tuple[OutputDiff, ...]:
    """Judge value differences against the source's float64 answer.

    Where the float32 source is itself far from float64 (ill-conditioned graphs, rounding
    near a step of floor/round/argmax), a converted model that is no further off is not wrong.
    NaN/Inf positions differ acceptably only where the float32 source itself overflowed (its
    NaN/Inf pattern differs from float64's there); shape and dtype differences are never waived.
    """
    judged = []
    for diff, a, e, r in zip(diffs, actual, expected, reference, strict=True):
        if diff.ok or not (diff.shape_ok and diff.dtype_ok) or r.shape != e.shape:
            judged.append(diff)
            continue
        if not diff.nonfinite_ok:
            if not nonfinite_differs_only_where_source_overflowed(a, e, r):
                judged.append(diff)
                continue
            a, e, r = _finite_where_source_is_right(a, e, r)
            diff = replace(diff, nonfinite_ok=True)
        source_err = required_tolerance(e, r)
        converted_err = required_tolerance(a, r)
        ok = converted_err <= REFERENCE_FACTOR * source_err + diff.tolerance
        judged.append(replace(diff, ok=ok, source_ref_err=source_err, converted_ref_err=converted_err))
    return tuple(judged)


def _nonfinite(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    return np.where(np.isnan(x64), 2, np.where(np.isposinf(x64), 3, np.where(np.isneginf(x64), 4, 0)))


def nonfinite_differs_only_where_source_overflowed(actual: np.ndarray, expected: np.ndarray,
                                                   reference: np.ndarray) -> bool:
    """True when every NaN/Inf disagreement lies where float32 source and float64 reference disagree too."""
    source_unreliable = _nonfinite(expected) != _nonfinite(reference)
    disagreement = _nonfinite(actual) != _nonfinite(expected)
    return bool(source_unreliable.any() and not (disagreement & ~source_unreliable).any())


def _finite_where_source_is_right(actual: np.ndarray, expected: np.ndarray,
                                  reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three arrays with the positions where the float32 source overflowed set to zero."""
    keep = _nonfinite(expected) == _nonfinite(reference)
    return tuple(np.where(keep, x.astype(np.float64), 0.0) for x in (actual, expected, reference))  # type: ignore[return-value]
