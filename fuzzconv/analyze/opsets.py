"""Section 4: do opsets that changed more operator schemas fail more often (the study's H_RQ3)?

Schema changes per opset come from onnx's own definitions: the number of ai.onnx operator
schemas whose `since_version` is that opset (new operators and new versions of old ones).
The failure rate of an opset is the mean of its converters' rates, so that the mix of
converters cannot make one opset look worse than another.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from scipy.stats import chi2_contingency, spearmanr

from fuzzconv.analyze.data import CaseRecord, by_converter
from fuzzconv.analyze.sections import (
    ALPHA,
    NOT_ENOUGH,
    NOT_SUPPORTED,
    SUPPORTED,
    Figure,
    Section,
    Table,
    fmt_p,
)

MIN_OPSETS = 3
MIN_CASES_PER_OPSET = 30


@lru_cache(maxsize=1)
def schema_changes() -> dict[int, int]:
    """ai.onnx opset -> operator schemas introduced or changed in it."""
    import onnx.defs

    changed = Counter(s.since_version for s in onnx.defs.get_all_schemas_with_history() if s.domain in ("", "ai.onnx"))
    return dict(sorted(changed.items()))


def _rates(cases: list[CaseRecord]) -> tuple[dict[int, float], dict[int, int], dict[str, dict[int, tuple[int, int]]]]:
    per_converter: dict[str, dict[int, tuple[int, int]]] = {}
    for converter, group in by_converter(cases).items():
        counts: dict[int, list[int]] = {}
        for case in group:
            counts.setdefault(case.opset, [0, 0])
            counts[case.opset][0] += case.failed
            counts[case.opset][1] += 1
        per_converter[converter] = {o: (f, n) for o, (f, n) in sorted(counts.items())}
    opsets = sorted({case.opset for case in cases})
    sizes = {o: sum(v.get(o, (0, 0))[1] for v in per_converter.values()) for o in opsets}
    rates = {}
    for opset in opsets:
        shares = [f / n for v in per_converter.values() if (f_n := v.get(opset)) for f, n in [f_n]]
        rates[opset] = sum(shares) / len(shares)
    return rates, sizes, per_converter


def _independence(per_converter: dict[str, dict[int, tuple[int, int]]]) -> list[list[object]]:
    rows = []
    for converter, counts in per_converter.items():
        table = [[f for f, _ in counts.values()], [n - f for f, n in counts.values()]]
        if len(counts) < 2 or 0 in (sum(table[0]), sum(table[1])):
            continue
        result = chi2_contingency(table)
        rows.append([converter, len(counts), sum(n for _, n in counts.values()), f"{result.statistic:.2f}",
                     fmt_p(float(result.pvalue))])
    return rows


def section(cases: list[CaseRecord]) -> Section:
    rates, sizes, per_converter = _rates(cases)
    changes = schema_changes()
    usable = [o for o in rates if sizes[o] >= MIN_CASES_PER_OPSET]
    rows = [[o, sizes[o], f"{100 * rates[o]:.2f} %", changes.get(o, 0)] for o in rates]
    tables = [Table("Failure rate per opset", ["opset", "valid cases", "failure rate (mean over converters)",
                                               "schema changes in this opset"], rows),
              Table("Does the failure rate depend on the opset at all? (chi-square, per converter)",
                    ["converter", "opsets", "cases", "chi2", "p"], _independence(per_converter))]
    lines = {c: [[o, round(100 * f / n, 3)] for o, (f, n) in v.items()] for c, v in per_converter.items()}
    figures = [Figure("opsets-rate", "Failure rate per opset and converter", "lines", {"series": lines},
                      xlabel="opset", ylabel="failing cases (%)"),
               Figure("opsets-changes", "Failure rate against schema changes per opset", "scatter",
                      {"points": [{"x": changes.get(o, 0), "y": round(100 * rates[o], 3), "label": f"opset {o}",
                                   "highlight": o in usable} for o in rates], "labels": 30, "label_all": True,
                       "legend": [f"fewer than {MIN_CASES_PER_OPSET} cases", f"{MIN_CASES_PER_OPSET} or more cases"]},
                      xlabel="operator schemas changed in the opset", ylabel="failure rate (%)")]
    basis = f"{len(cases)} valid cases over opsets {', '.join(map(str, rates)) or 'none'}; schema history of onnx's own definitions."
    question = "Do opsets with more operator-schema changes fail more often?"
    if len(usable) < MIN_OPSETS:
        return Section("opsets", "4. Opsets", question, NOT_ENOUGH,
                       f"Not enough data: {len(usable)} opsets have {MIN_CASES_PER_OPSET} or more valid cases; "
                       f"the correlation needs {MIN_OPSETS} (run a sweep, e.g. fuzzconv fuzz --opset 13-18).",
                       basis, tables, figures)
    result = spearmanr([changes.get(o, 0) for o in usable], [rates[o] for o in usable])
    rho, p = float(result.statistic), float(result.pvalue)
    numbers = f"Spearman rho = {rho:.2f}, p = {fmt_p(p)} over {len(usable)} opsets ({sum(sizes[o] for o in usable)} cases)"
    busiest = max(usable, key=lambda o: changes.get(o, 0))
    notes = [f"The correlation rests on {len(usable)} points, one per opset: only a strong one can reach "
             f"significance, and the opset that changed most schemas ({busiest}: {changes.get(busiest, 0)}) weighs "
             "as much as any other. "
             "The chi-square table says whether the opset matters at all, converter by converter."]
    if rho > 0 and p < ALPHA:
        return Section("opsets", "4. Opsets", question, SUPPORTED,
                       f"Supported: {numbers} (the study reported rho = 0.34 and rejected it).", basis, tables, figures,
                       notes, findings=[f"opsets: rho {rho:.2f}"])
    return Section("opsets", "4. Opsets", question, NOT_SUPPORTED,
                   f"Not supported: {numbers} (the study reported rho = 0.34 and rejected it too).", basis, tables,
                   figures, notes)
