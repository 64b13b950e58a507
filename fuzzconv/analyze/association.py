"""Fisher exact tests of one feature (an operator, a pair, an n-gram) against failure, within
each converter, Benjamini-Hochberg corrected together: every test of sections 2 and 3 is one
family, so that the false discovery rate holds for the whole report, not for each table.

Two kinds of test:
- marginal: failure rate of cases with the feature against cases without it;
- beyond its operators (sequences only): among the cases that hold every operator of the
  sequence, failure rate with the sequence against without it. A sequence that merely
  contains a failing operator is not significant here; one whose order matters is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from scipy.stats import false_discovery_control, fisher_exact

from fuzzconv.analyze.data import CaseRecord, by_converter
from fuzzconv.analyze.sections import ALPHA_FISHER

MIN_SUPPORT = 5  # a feature is tested only when at least this many cases hold it and this many do not


@dataclass(frozen=True)
class Association:
    converter: str
    family: str
    feature: str
    fail_with: int
    n_with: int
    fail_without: int
    n_without: int
    p: float
    q: float = math.nan
    beyond: bool = False  # tested among the cases holding all the sequence's operators

    @property
    def rate_with(self) -> float:
        return self.fail_with / self.n_with

    @property
    def rate_without(self) -> float:
        return self.fail_without / self.n_without

    @property
    def odds_ratio(self) -> float:
        """Sample odds ratio with 0.5 added to every cell (finite when a cell is empty)."""
        a, b = self.fail_with + 0.5, self.n_with - self.fail_with + 0.5
        c, d = self.fail_without + 0.5, self.n_without - self.fail_without + 0.5
        return (a * d) / (b * c)

    @property
    def significant(self) -> bool:
        return self.q < ALPHA_FISHER

    def row(self) -> list[object]:
        return [self.converter, self.feature, f"{self.fail_with}/{self.n_with} ({100 * self.rate_with:.1f} %)",
                f"{self.fail_without}/{self.n_without} ({100 * self.rate_without:.1f} %)",
                f"{self.odds_ratio:.3g}", f"{self.p:.2g}", f"{self.q:.2g}"]


COLUMNS = ["converter", "feature", "failing with", "failing without", "odds ratio", "p (Fisher)", "q (BH)"]


@lru_cache(maxsize=200_000)
def fisher_p(fail_with: int, pass_with: int, fail_without: int, pass_without: int) -> float:
    return float(fisher_exact([[fail_with, pass_with], [fail_without, pass_without]]).pvalue)


def _index(cases: list[CaseRecord], family: str) -> dict[str, set[int]]:
    holders: dict[str, set[int]] = {}
    for i, case in enumerate(cases):
        for feature in case.features[family]:
            holders.setdefault(feature, set()).add(i)
    return holders


def _test(converter: str, family: str, feature: str, with_: set[int], population: set[int] | range,
          failing: set[int]) -> Association | None:
    n_with, n_without = len(with_), len(population) - len(with_)
    if n_with < MIN_SUPPORT or n_without < MIN_SUPPORT:
        return None
    fail_with = len(with_ & failing)
    fail_without = sum(1 for i in population if i in failing) - fail_with
    p = fisher_p(fail_with, n_with - fail_with, fail_without, n_without - fail_without)
    return Association(converter, family, feature, fail_with, n_with, fail_without, n_without, p)


def marginal_tests(cases: list[CaseRecord], family: str) -> list[Association]:
    """Every testable feature of `family`, per converter, BH-corrected together."""
    tests = []
    for converter, group in by_converter(cases).items():
        failing = {i for i, c in enumerate(group) if c.failed}
        if not failing or len(failing) == len(group):
            continue
        everyone = range(len(group))
        for feature, holders in sorted(_index(group, family).items()):
            if (test := _test(converter, family, feature, holders, everyone, failing)) is not None:
                tests.append(test)
    return adjust(tests)


def conditional_tests(cases: list[CaseRecord], family: str, op_family: str) -> list[Association]:
    """Sequences of `family` tested among the cases that hold all their operators (of `op_family`)."""
    tests = []
    for converter, group in by_converter(cases).items():
        failing = {i for i, c in enumerate(group) if c.failed}
        if not failing or len(failing) == len(group):
            continue
        op_holders = _index(group, op_family)
        for feature, holders in sorted(_index(group, family).items()):
            if len(holders) < MIN_SUPPORT:
                continue
            population = set.intersection(*(op_holders.get(op, set()) for op in set(feature.split(">"))))
            if (test := _test(converter, family, feature, holders & population, population, failing)) is not None:
                tests.append(replace(test, beyond=True))
    return adjust(tests)


def adjust(tests: list[Association]) -> list[Association]:
    """The tests with Benjamini-Hochberg q-values, most significant first."""
    if not tests:
        return []
    qs = false_discovery_control([t.p for t in tests], method="bh")
    return ranked([replace(t, q=float(q)) for t, q in zip(tests, qs)])


def ranked(tests: list[Association]) -> list[Association]:
    """Most significant first."""
    return sorted(tests, key=lambda t: (t.q, t.p, -t.odds_ratio, t.converter, t.feature))


def converted(cases: list[CaseRecord]) -> list[CaseRecord]:
    """Cases whose converter produced a graph: only they can be asked which ONNX operators they hold."""
    return [c for c in cases if c.features["onnx"]]


def structural_tests(cases: list[CaseRecord]) -> dict[str, list[Association]]:
    """All tests of sections 2 and 3, BH-corrected as one family, by table:
    op, onnx (types); edge, ngram3 (marginal sequences); beyond, onnx-beyond (sequences given their ops)."""
    made = converted(cases)
    raw = {"op": marginal_tests(cases, "op"), "onnx": marginal_tests(made, "onnx"),
           "edge": marginal_tests(cases, "edge"), "ngram3": marginal_tests(cases, "ngram3"),
           "beyond": conditional_tests(cases, "edge", "op") + conditional_tests(cases, "ngram3", "op"),
           "onnx-beyond": conditional_tests(made, "onnx-edge", "onnx")}
    pooled = adjust([t for tests in raw.values() for t in tests])
    table = {"op": "op", "onnx": "onnx", "edge": "edge", "ngram3": "ngram3", "onnx-edge": "onnx-beyond"}
    split: dict[str, list[Association]] = {key: [] for key in raw}
    for test in pooled:
        split["beyond" if test.beyond and test.family in ("edge", "ngram3") else table[test.family]].append(test)
    return split
