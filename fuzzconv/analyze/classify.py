"""The decisive test of the sequence hypothesis: do operator sequences predict failure on
held-out cases better than operator types alone?

Per converter, two L2 logistic regressions share graph size (log node count) and the opset:
`types` sees which operators a case holds, `sequences` sees those and its operator pairs and
3-grams. Out-of-fold predictions of a stratified k-fold split give each model's held-out AUC;
a paired bootstrap over cases gives intervals for both AUCs and their difference, at a level
Bonferroni-corrected for the number of converters. ONNX-graph features are left out: a
converted graph exists only when conversion succeeded, so they would leak the label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from fuzzconv.analyze.data import CaseRecord, by_converter
from fuzzconv.analyze.sections import ALPHA

TYPE_FAMILIES = ("op",)
SEQUENCE_FAMILIES = ("op", "edge", "ngram3")
MIN_PER_CLASS = 20  # failing and passing cases a converter needs before it is modelled
FOLDS = 5


@dataclass
class Comparison:
    converter: str
    cases: int
    failing: int
    auc_types: float
    auc_sequences: float
    interval_types: tuple[float, float]
    interval_sequences: tuple[float, float]
    interval_gain: tuple[float, float]
    level: float

    @property
    def gain(self) -> float:
        return self.auc_sequences - self.auc_types

    @property
    def sequences_win(self) -> bool:
        return self.interval_gain[0] > 0

    def row(self) -> list[object]:
        def ci(pair: tuple[float, float]) -> str:
            return f"[{pair[0]:.3f}, {pair[1]:.3f}]"
        return [self.converter, self.cases, self.failing, f"{self.auc_types:.3f} {ci(self.interval_types)}",
                f"{self.auc_sequences:.3f} {ci(self.interval_sequences)}", f"{self.gain:+.3f} {ci(self.interval_gain)}"]


COLUMNS = ["converter", "cases", "failing", "AUC types (CI)", "AUC types + sequences (CI)", "gain (CI)"]


def design(cases: list[CaseRecord], families: tuple[str, ...]) -> sparse.csr_matrix:
    """Binary feature columns of `families`, then log node count and one column per opset."""
    vocabulary: dict[str, int] = {}
    rows, cols, values = [], [], []
    for i, case in enumerate(cases):
        for family in families:
            for feature in case.features[family]:
                rows.append(i)
                cols.append(vocabulary.setdefault(f"{family}:{feature}", len(vocabulary)))
                values.append(1.0)
        for name, value in ((f"opset:{case.opset}", 1.0), ("log-nodes", math.log1p(case.node_count))):
            rows.append(i)
            cols.append(vocabulary.setdefault(name, len(vocabulary)))
            values.append(value)
    return sparse.csr_matrix((values, (rows, cols)), shape=(len(cases), len(vocabulary)))


def held_out_scores(matrix: sparse.csr_matrix, labels: np.ndarray, seed: int) -> np.ndarray:
    scores = np.zeros(len(labels))
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    for train, test in folds.split(np.zeros(len(labels)), labels):
        model = LogisticRegression(C=1.0, solver="liblinear", max_iter=1000)
        model.fit(matrix[train], labels[train])
        scores[test] = model.predict_proba(matrix[test])[:, 1]
    return scores


def _bootstrap(labels: np.ndarray, a: np.ndarray, b: np.ndarray, resamples: int, level: float,
               rng: np.random.Generator) -> tuple[tuple[float, float], ...]:
    draws = []
    for _ in range(resamples):
        pick = rng.integers(0, len(labels), len(labels))
        if labels[pick].all() or not labels[pick].any():
            continue
        auc_a, auc_b = roc_auc_score(labels[pick], a[pick]), roc_auc_score(labels[pick], b[pick])
        draws.append((auc_a, auc_b, auc_b - auc_a))
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(np.array(draws), [tail, 100 - tail], axis=0)
    return tuple((float(lo), float(hi)) for lo, hi in zip(low, high))


def compare(cases: list[CaseRecord], seed: int, resamples: int) -> tuple[list[Comparison], list[str]]:
    """Comparisons for converters with enough data, and a line for each one left out."""
    eligible, skipped = {}, []
    for converter, group in by_converter(cases).items():
        failing = sum(c.failed for c in group)
        if min(failing, len(group) - failing) < MIN_PER_CLASS:
            skipped.append(f"{converter}: {failing} failing of {len(group)} cases "
                           f"(needs {MIN_PER_CLASS} failing and {MIN_PER_CLASS} passing)")
        else:
            eligible[converter] = group
    level = 1 - ALPHA / max(1, len(eligible))
    rng = np.random.default_rng(seed)
    results = []
    for converter, group in eligible.items():
        labels = np.array([c.failed for c in group], dtype=int)
        types = held_out_scores(design(group, TYPE_FAMILIES), labels, seed)
        sequences = held_out_scores(design(group, SEQUENCE_FAMILIES), labels, seed)
        ci_types, ci_sequences, ci_gain = _bootstrap(labels, types, sequences, resamples, level, rng)
        results.append(Comparison(converter, len(group), int(labels.sum()), float(roc_auc_score(labels, types)),
                                  float(roc_auc_score(labels, sequences)), ci_types, ci_sequences, ci_gain, level))
    return results, skipped
