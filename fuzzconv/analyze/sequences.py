"""The study's own measure of the sequence hypothesis, and what shuffled labels make of it.

Measure: the share of failing cases that hold an operator sequence (pair, 3-gram or 4-gram
of the source graph) never seen in a passing case of the same converter. The study found
312 of 320 mismatching models so. Larger graphs hold more rare sequences, so the same share
is also computed with the failure labels permuted within each converter, and permuted within
each converter and graph size (node count): an observed share inside those ranges says the
measure reflects graph size and the failure rate, not sequences. A share above them can still
come from operator types alone (every sequence through an operator that always fails is
unseen in passing cases), so the measure is also given counting only sequences made of
operators that each occur in some passing case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from fuzzconv.analyze.data import SEQUENCE_FAMILIES, CaseRecord, by_converter


@dataclass
class Group:
    """One converter's cases as binary case x sequence and case x operator matrices, and which
    operators make up each sequence (sequence x operator)."""

    matrix: sparse.csr_matrix
    failed: np.ndarray
    sizes: np.ndarray
    ops: sparse.csr_matrix
    made_of: sparse.csr_matrix


@dataclass
class UnseenShare:
    holders: int
    failing: int
    permuted: list[float]
    permuted_by_size: list[float]
    holders_of_known_ops: int  # counting only sequences whose operators all occur in passing cases

    @property
    def share(self) -> float:
        return self.holders / self.failing if self.failing else float("nan")

    def p_value(self, baseline: list[float]) -> float:
        """One-sided: how often shuffled labels give a share at least as high as observed."""
        return (1 + sum(b >= self.share - 1e-12 for b in baseline)) / (1 + len(baseline))


def _binary(rows: list[int], cols: list[int], shape: tuple[int, int]) -> sparse.csr_matrix:
    matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    matrix.data[:] = 1.0  # a repeated (row, col) pair is still one
    return matrix


def group_of(cases: list[CaseRecord], families: tuple[str, ...] = SEQUENCE_FAMILIES) -> Group:
    sequences: dict[str, int] = {}
    operators: dict[str, int] = {}
    rows, cols, op_rows, op_cols = [], [], [], []
    for i, case in enumerate(cases):
        for family in families:
            for feature in case.features[family]:
                rows.append(i)
                cols.append(sequences.setdefault(f"{family}:{feature}", len(sequences)))
        for op in case.features["op"]:
            op_rows.append(i)
            op_cols.append(operators.setdefault(op, len(operators)))
    seq_rows, seq_cols = [], []
    for name, column in sequences.items():
        for op in set(name.split(":", 1)[1].split(">")):
            seq_rows.append(column)
            seq_cols.append(operators.setdefault(op, len(operators)))
    n_seq, n_ops = max(1, len(sequences)), max(1, len(operators))
    return Group(_binary(rows, cols, (len(cases), n_seq)), np.array([c.failed for c in cases]),
                 np.array([c.node_count for c in cases]), _binary(op_rows, op_cols, (len(cases), n_ops)),
                 _binary(seq_rows, seq_cols, (n_seq, n_ops)))


def groups(cases: list[CaseRecord]) -> list[Group]:
    return [group_of(g) for g in by_converter(cases).values()]


def unseen_holders(group: Group, failed: np.ndarray, known_ops_only: bool = False) -> int:
    """Failing cases holding at least one sequence that no passing case holds (optionally only
    sequences whose operators each occur in some passing case)."""
    seen_passing = np.asarray(group.matrix[~failed].sum(axis=0)).ravel() > 0
    counted = ~seen_passing
    if known_ops_only:
        op_seen = np.asarray(group.ops[~failed].sum(axis=0)).ravel() > 0
        counted &= (group.made_of @ (~op_seen).astype(np.float64)) == 0
    unseen = group.matrix[failed] @ counted.astype(np.float64)
    return int((unseen > 0).sum())


def _shuffle_within(labels: np.ndarray, strata: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shuffled = labels.copy()
    for stratum in np.unique(strata):
        where = np.flatnonzero(strata == stratum)
        shuffled[where] = labels[rng.permutation(where)]
    return shuffled


def unseen_share(cases: list[CaseRecord], permutations: int, seed: int) -> UnseenShare:
    rng = np.random.default_rng(seed)
    parts = groups(cases)
    failing = sum(int(g.failed.sum()) for g in parts)
    observed = sum(unseen_holders(g, g.failed) for g in parts)
    plain, by_size = [], []
    for _ in range(permutations):
        if failing:
            plain.append(sum(unseen_holders(g, rng.permutation(g.failed)) for g in parts) / failing)
            by_size.append(sum(unseen_holders(g, _shuffle_within(g.failed, g.sizes, rng)) for g in parts) / failing)
    known = sum(unseen_holders(g, g.failed, known_ops_only=True) for g in parts)
    return UnseenShare(observed, failing, plain, by_size, known)
