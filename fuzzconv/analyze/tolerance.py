"""Section 5: how many verdicts survive each of the study's tolerances?

A compared case (one whose converted model ran, so outputs could be compared) is called wrong
at tolerance t when the smallest tolerance it needs exceeds t; a shape, dtype or NaN/Inf
difference needs an infinite one. The campaign's own verdicts use per-dtype tolerances.
"""

from __future__ import annotations

import math

from fuzzconv.analyze.data import CaseRecord, by_converter
from fuzzconv.analyze.sections import NOT_ENOUGH, NOT_SUPPORTED, SUPPORTED, Figure, Section, Table

TOLERANCES = (1e-7, 1e-5, 1e-3, 1e-1)


def _row(converter: str, compared: list[CaseRecord]) -> list[object]:
    wrong = [c for c in compared if c.symptom == "wrong-model" and c.failed]
    structural = sum(math.isinf(c.required_tol or 0.0) for c in compared)
    at = [sum((c.required_tol or 0.0) > t for c in compared) for t in TOLERANCES]
    return [converter, len(compared), len(wrong), *at, structural]


def _curve(compared: list[CaseRecord]) -> list[list[float]]:
    """(log10 t, % of cases needing more than t) from 1e-10 to 1e2."""
    needed = [c.required_tol or 0.0 for c in compared]
    grid = [x / 4 for x in range(-40, 9)]
    return [[x, round(100 * sum(n > 10 ** x for n in needed) / len(needed), 3)] for x in grid]


def section(cases: list[CaseRecord]) -> Section:
    compared = [c for c in cases if c.required_tol is not None]
    groups = by_converter(compared)
    rows = [_row(converter, group) for converter, group in groups.items()]
    table = Table("Compared cases called wrong at each tolerance",
                  ["converter", "compared cases", "campaign wrong-model findings",
                   *(f"wrong at {t:g}" for t in TOLERANCES), "of them shape/dtype/NaN (any tolerance)"], rows,
                  "The campaign decides with per-dtype tolerances and a float64 reference; these columns re-decide "
                  "every compared case at one fixed tolerance.")
    series = {c: [round(math.log10(max(x.required_tol or 0.0, 1e-12)), 3) for x in g
                  if x.required_tol is not None and not math.isinf(x.required_tol)] for c, g in groups.items()}
    markers = {f"{t:g}": math.log10(t) for t in TOLERANCES}
    figures = [Figure("tolerance-curve", "Share of compared cases called wrong at each tolerance", "lines",
                      {"series": {c: _curve(g) for c, g in groups.items()}, "markers": markers},
                      xlabel="log10 tolerance", ylabel="called wrong (%)"),
               Figure("tolerance-required", "Required tolerance of every compared case", "hist",
                      {"series": series, "markers": markers, "bins": 40, "outline": True},
                      xlabel="log10 of the smallest passing tolerance (exact matches at -12)", ylabel="cases",
                      log_y=True)]
    basis = f"{len(compared)} compared cases of {len(cases)} valid cases."
    question = "Does the choice of tolerance in the study's range (1e-7 to 1e-3) change how many models are wrong?"
    if not compared:
        return Section("tolerance", "5. Tolerance", question, NOT_ENOUGH,
                       "Not enough data: no case reached the comparison of outputs.", basis, [table], figures)
    totals = [sum(row[3 + i] for row in rows) for i in range(len(TOLERANCES))]  # type: ignore[misc]
    counts = ", ".join(f"{n} at {t:g}" for n, t in zip(totals, TOLERANCES))
    if totals[0] > totals[2]:
        sentence = (f"Supported: of {len(compared)} compared cases, {counts} are called wrong, so the study's range "
                    f"alone moves {totals[0] - totals[2]} verdicts.")
        return Section("tolerance", "5. Tolerance", question, SUPPORTED, sentence, basis, [table], figures,
                       findings=[f"tolerance: {totals[0] - totals[2]}"])
    return Section("tolerance", "5. Tolerance", question, NOT_SUPPORTED,
                   f"Not supported: the verdicts do not depend on it here; of {len(compared)} compared cases {counts} are called wrong.",
                   basis, [table], figures)
