"""The tolerance policy: shapes, dtypes, NaN/Inf positions, values, and the float64 judgement."""

import numpy as np

from fuzzconv.compare import (
    compare_output,
    rejudge_with_reference,
    required_tolerance,
    verdicts,
)


def test_required_tolerance_is_the_smallest_that_passes():
    expected = np.array([0.0, 1.0, -3.0], dtype=np.float32)
    actual = expected + np.array([1e-3, 0.0, 4e-3], dtype=np.float32)
    tol = required_tolerance(actual, expected)
    assert abs(tol - 1e-3) < 1e-6
    assert compare_output("y", actual, expected, tol * 1.01).ok
    assert not compare_output("y", actual, expected, tol * 0.9).ok


def test_nan_where_source_is_finite_is_a_mismatch():
    expected = np.array([1.0, 2.0], dtype=np.float32)
    actual = np.array([1.0, np.nan], dtype=np.float32)
    diff = compare_output("y", actual, expected, 1.0)
    assert not diff.nonfinite_ok and not diff.ok


def test_same_nan_positions_agree():
    both = np.array([np.nan, np.inf, 1.0], dtype=np.float32)
    assert compare_output("y", both.copy(), both, 1e-6).ok


def test_identical_outputs_pass_at_zero_error_and_any_change_is_measured():
    """Equal outputs take a shortcut; it must agree with the full comparison on what differs."""
    rng = np.random.default_rng(3)
    for dtype in ("float16", "float32", "float64", "int64", "bool"):
        expected = (rng.standard_normal((4, 5)) * 3).astype(dtype)
        if dtype.startswith("float"):
            expected.flat[[1, 7, 11]] = [np.nan, np.inf, -np.inf]
        same = compare_output("y", expected.copy(), expected, 0.0)
        assert same.ok and same.nonfinite_ok and same.required_tol == 0.0 and same.max_abs_err == 0.0
        changed = expected.copy()
        changed.flat[3] = not changed.flat[3] if dtype == "bool" else changed.flat[3] + 1
        diff = compare_output("y", changed, expected, 1e-3)
        assert not diff.ok and diff.required_tol > 1e-3 and diff.max_abs_err > 0
        if dtype.startswith("float"):
            moved = expected.copy()
            moved.flat[[1, 2]] = moved.flat[[2, 1]]  # a NaN at another position
            assert not compare_output("y", moved, expected, 10.0).nonfinite_ok


def test_shape_and_dtype_are_checked_first():
    expected = np.zeros((2, 3), dtype=np.float32)
    assert not compare_output("y", np.zeros((3, 2), dtype=np.float32), expected, 1.0).shape_ok
    assert not compare_output("y", np.zeros((2, 3), dtype=np.float64), expected, 1.0).ok


def test_verdicts_at_the_study_tolerances():
    expected = np.ones(4, dtype=np.float32)
    actual = expected + 2e-4
    diff = compare_output("y", actual, expected, 1e-4)
    assert verdicts((diff,)) == {"1e-07": True, "1e-05": True, "0.001": False, "0.1": False}


def test_ill_conditioned_source_waives_an_equally_far_conversion():
    reference = np.array([0.5, 1.0], dtype=np.float64)
    expected = np.array([0.6, 1.0], dtype=np.float32)  # the source's own float32 answer is off
    actual = np.array([0.4, 1.0], dtype=np.float32)  # converted: as far off, other side
    diff = compare_output("y", actual, expected, 1e-4)
    assert not diff.ok
    (judged,) = rejudge_with_reference((diff,), [actual], [expected], [reference])
    assert judged.ok and judged.source_ref_err > 0


def test_conversion_far_from_float64_stays_wrong():
    reference = np.array([0.5, 1.0], dtype=np.float64)
    expected = np.array([0.5, 1.0], dtype=np.float32)
    actual = np.array([0.9, 1.0], dtype=np.float32)
    diff = compare_output("y", actual, expected, 1e-4)
    (judged,) = rejudge_with_reference((diff,), [actual], [expected], [reference])
    assert not judged.ok and judged.converted_ref_err > 0.2


def test_nan_from_float32_overflow_in_the_source_is_waived():
    reference = np.array([1e39, 1.0], dtype=np.float64)  # float64 stays finite
    expected = np.array([np.inf, 1.0], dtype=np.float32)  # the float32 source overflows
    actual = np.array([np.nan, 1.0], dtype=np.float32)  # converted: NaN there, right elsewhere
    diff = compare_output("y", actual, expected, 1e-4)
    assert not diff.ok and not diff.nonfinite_ok
    (judged,) = rejudge_with_reference((diff,), [actual], [expected], [reference])
    assert judged.ok


def test_nan_where_the_source_is_right_stays_wrong():
    reference = np.array([2.0, 1.0], dtype=np.float64)
    expected = np.array([2.0, 1.0], dtype=np.float32)
    actual = np.array([np.nan, 1.0], dtype=np.float32)
    diff = compare_output("y", actual, expected, 1e-4)
    (judged,) = rejudge_with_reference((diff,), [actual], [expected], [reference])
    assert not judged.ok


def test_the_same_bits_shortcut_leaves_signed_zeros_and_nan_payloads_to_the_full_comparison():
    expected = np.array([0.0, 1.0, np.nan], dtype=np.float32)
    actual = expected.copy()
    actual[0] = -0.0  # other bits, the same value
    actual.view(np.uint32)[2] = 0x7FC00001  # a NaN with another payload
    diff = compare_output("y", actual, expected, 0.0)
    assert diff.ok and diff.nonfinite_ok and diff.required_tol == 0.0


def test_onnxruntimes_two_answers_are_judged_once_only_when_they_are_the_same_bits():
    from fuzzconv.pipeline import _same_bits

    one = [np.array([1.0, 2.0], dtype=np.float32), np.array([3], dtype=np.int64)]
    assert _same_bits(one, [x.copy() for x in one])
    assert not _same_bits(one, [one[0] + 1, one[1]])
    assert not _same_bits(one, [one[0].astype(np.float64), one[1]])  # equal values, another dtype
    assert not _same_bits(one, [one[0].reshape(2, 1), one[1]])
    assert not _same_bits(one, one[:1])
