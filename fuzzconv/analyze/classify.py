"""The decisive test of the sequence hypothesis: do operator sequences predict failure on
held-out cases better than operator types alone?

Per converter, two L2 logistic regressions share graph size (log node count), the opset, which
operators a case holds and which two operators it holds together (unordered co-occurrence,
so that an interaction of operator types is not mistaken for a sequence effect); `sequences`
also sees the directed producer>consumer operator pairs. The gain of `sequences` is then what
order and adjacency add beyond the bag of operators. (3-grams are left to the Fisher tests: as
features they add mostly noise at these sizes.) Cross-fitting: the cases are split into k stratified folds, each fold is scored by a
model fitted on the other folds, and a model's held-out AUC is the mean of its k within-fold
AUCs. A paired bootstrap (resampling within each fold) gives intervals for both AUCs and
their difference, at a level Bonferroni-corrected for the number of converters (ALPHA_CLASSIFIER in all).
Sequences win when the gain's interval lies above 0, the sequence model's above 0.5, and the
gain is at least MIN_GAIN (with tens of thousands of cases a negligible gain is significant).
(Out-of-fold predictions pooled over k folds into one AUC were tried first: on data without
any effect they are anti-correlated with the labels, AUC well below 0.5 for the smaller model,
which made a spurious gain for the larger one. Within one fold the scores come from one model
that never saw that fold's labels.)
ONNX-graph features are left out: a converted graph exists only when conversion succeeded, so
they would leak the label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from fuzzconv.analyze.data import CaseRecord, by_converter
from fuzzconv.analyze.sections import ALPHA_CLASSIFIER

TYPE_FAMILIES = ("op",)
SEQUENCE_FAMILIES = ("op", "edge")
MIN_PER_CLASS = 30  # failing and passing cases a converter needs before it is modelled
FOLDS = 5
INNER_FOLDS = 3
STRENGTHS = [0.03, 0.1, 0.3, 1.0, 3.0]  # inverse L2 strengths C tried by the inner CV
MIN_GAIN = 0.01  # a smaller AUC gain is reported as negligible even when significant (large campaigns)


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
    def significant(self) -> bool:
        return self.interval_gain[0] > 0 and self.interval_sequences[0] > 0.5

    @property
    def sequences_win(self) -> bool:
        """A significant gain that is also large enough to matter."""
        return self.significant and self.gain >= MIN_GAIN

    def row(self) -> list[object]:
        def ci(pair: tuple[float, float]) -> str:
            return f"[{pair[0]:.3f}, {pair[1]:.3f}]"
        return [self.converter, self.cases, self.failing, f"{self.auc_types:.3f} {ci(self.interval_types)}",
                f"{self.auc_sequences:.3f} {ci(self.interval_sequences)}", f"{self.gain:+.3f} {ci(self.interval_gain)}"]


COLUMNS = ["converter", "cases", "failing", "AUC types (CI)", "AUC types + directed pairs (CI)", "gain (CI)"]


def _names(case: CaseRecord, families: tuple[str, ...]) -> list[str]:
    names = [f"{family}:{feature}" for family in families for feature in case.features[family]]
    ops = sorted(case.features["op"])
    names += [f"with:{a}&{b}" for i, a in enumerate(ops) for b in ops[i + 1:]]
    return names


def design(cases: list[CaseRecord], families: tuple[str, ...]) -> sparse.csr_matrix:
    """Binary columns of `families` and of operator co-occurrence, then log node count and the opset."""
    vocabulary: dict[str, int] = {}
    rows, cols, values = [], [], []
    for i, case in enumerate(cases):
        for name in _names(case, families):
            rows.append(i)
            cols.append(vocabulary.setdefault(name, len(vocabulary)))
            values.append(1.0)
        for name, value in ((f"opset:{case.opset}", 1.0), ("log-nodes", math.log1p(case.node_count))):
            rows.append(i)
            cols.append(vocabulary.setdefault(name, len(vocabulary)))
            values.append(value)
    return sparse.csr_matrix((values, (rows, cols)), shape=(len(cases), len(vocabulary)))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney), ties counted half."""
    positives = labels.astype(bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _model(strength: float) -> LogisticRegression:
    return LogisticRegression(C=strength, solver="liblinear", max_iter=1000)


def _chosen_strength(matrix: sparse.csr_matrix, labels: np.ndarray) -> float:
    """The C of STRENGTHS with the best mean within-fold AUC in an inner cross-validation."""
    inner = StratifiedKFold(n_splits=INNER_FOLDS, shuffle=True, random_state=0)
    splits = list(inner.split(np.zeros(len(labels)), labels))
    scores = []
    for strength in STRENGTHS:
        aucs = [auc(labels[test], _model(strength).fit(matrix[train], labels[train]).decision_function(matrix[test]))
                for train, test in splits]
        scores.append(float(np.mean(aucs)))
    return STRENGTHS[int(np.argmax(scores))]


def held_out_scores(matrix: sparse.csr_matrix, labels: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Scores of `test` from a model fitted on `train`, its L2 strength chosen by inner CV on `train` only,
    so that neither model is handicapped by a strength that suits the other."""
    strength = _chosen_strength(matrix[train], labels[train])
    return _model(strength).fit(matrix[train], labels[train]).decision_function(matrix[test])


def cross_fit(matrix: sparse.csr_matrix, labels: np.ndarray, folds: list[np.ndarray]) -> list[np.ndarray]:
    """Scores of each fold from a model fitted on the other folds."""
    scores = []
    for fold in folds:
        train = np.setdiff1d(np.arange(len(labels)), fold)
        scores.append(held_out_scores(matrix, labels, train, fold))
    return scores


def mean_auc(labels: np.ndarray, folds: list[np.ndarray], scores: list[np.ndarray],
             picks: list[np.ndarray] | None = None) -> float:
    values = []
    for i, (fold, score) in enumerate(zip(folds, scores)):
        pick = picks[i] if picks is not None else np.arange(len(fold))
        values.append(auc(labels[fold][pick], score[pick]))
    return float(np.mean(values))


def _bootstrap(labels: np.ndarray, folds: list[np.ndarray], a: list[np.ndarray], b: list[np.ndarray],
               resamples: int, level: float, rng: np.random.Generator) -> tuple[tuple[float, float], ...]:
    draws = []
    for _ in range(resamples):
        picks = [rng.integers(0, len(fold), len(fold)) for fold in folds]
        if any(labels[fold][pick].all() or not labels[fold][pick].any() for fold, pick in zip(folds, picks)):
            continue
        auc_a, auc_b = mean_auc(labels, folds, a, picks), mean_auc(labels, folds, b, picks)
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
    level = 1 - ALPHA_CLASSIFIER / max(1, len(eligible))
    rng = np.random.default_rng(seed)
    results = []
    for converter, group in eligible.items():
        labels = np.array([c.failed for c in group], dtype=int)
        split = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)
        folds = [test for _, test in split]
        types = cross_fit(design(group, TYPE_FAMILIES), labels, folds)
        sequences = cross_fit(design(group, SEQUENCE_FAMILIES), labels, folds)
        ci_types, ci_sequences, ci_gain = _bootstrap(labels, folds, types, sequences, resamples, level, rng)
        results.append(Comparison(converter, len(group), int(labels.sum()), mean_auc(labels, folds, types),
                                  mean_auc(labels, folds, sequences), ci_types, ci_sequences, ci_gain, level))
    return results, skipped
