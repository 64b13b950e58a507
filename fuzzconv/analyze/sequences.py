"""The study's own measure of the sequence hypothesis, and what shuffled labels make of it.

Measure: the share of failing cases that hold an operator sequence (pair, 3-gram or 4-gram
of the source graph) never seen in a passing case of the same converter. The study found
312 of 320 mismatching models so. Larger graphs hold more rare sequences, so the same share
is also computed with the failure labels permuted within each converter, and permuted within
each converter and graph size (node count): an observed share inside those ranges says the
measure reflects graph size and the failure rate, not sequences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from fuzzconv.analyze.data import SEQUENCE_FAMILIES, CaseRecord, by_converter


@dataclass
class Group:
    """One converter's cases as a binary case x sequence matrix."""

    matrix: sparse.csr_matrix
    failed: np.ndarray
    sizes: np.ndarray


@dataclass
class UnseenShare:
    holders: int
    failing: int
    permuted: list[float]
    permuted_by_size: list[float]

    @property
    def share(self) -> float:
        return self.holders / self.failing if self.failing else float("nan")

    def p_value(self, baseline: list[float]) -> float:
        """One-sided: how often shuffled labels give a share at least as high as observed."""
        return (1 + sum(b >= self.share - 1e-12 for b in baseline)) / (1 + len(baseline))


def sequence_matrix(cases: list[CaseRecord], families: tuple[str, ...] = SEQUENCE_FAMILIES) -> sparse.csr_matrix:
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for i, case in enumerate(cases):
        for family in families:
            for feature in case.features[family]:
                rows.append(i)
                cols.append(vocabulary.setdefault(f"{family}:{feature}", len(vocabulary)))
    data = np.ones(len(rows), dtype=np.float64)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(cases), max(1, len(vocabulary))))


def groups(cases: list[CaseRecord]) -> list[Group]:
    return [Group(sequence_matrix(g), np.array([c.failed for c in g]), np.array([c.node_count for c in g]))
            for g in by_converter(cases).values()]


def unseen_holders(group: Group, failed: np.ndarray) -> int:
    """Failing cases holding at least one sequence that no passing case holds."""
    seen_passing = np.asarray(group.matrix[~failed].sum(axis=0)).ravel() > 0
    unseen = group.matrix[failed] @ (~seen_passing).astype(np.float64)
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
    return UnseenShare(observed, failing, plain, by_size)
