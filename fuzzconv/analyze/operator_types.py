"""Section 2: are failures explained by which operator types a model holds?"""

from __future__ import annotations

import math

from fuzzconv.analyze import association
from fuzzconv.analyze.association import Association
from fuzzconv.analyze.data import CaseRecord
from fuzzconv.analyze.sections import (
    ALPHA_FISHER,
    FDR_TEXT,
    NOT_ENOUGH,
    NOT_SUPPORTED,
    SUPPORTED,
    Figure,
    Section,
    Table,
    pct,
)

SHOWN = 40


def result_table(title: str, tests: list[Association], what: str) -> Table:
    significant = [t for t in tests if t.significant]
    note = (f"{len(significant)} of {len(tests)} tested {what} are significant at a false discovery rate of {FDR_TEXT} "
            f"(Benjamini-Hochberg over all tests of sections 2 and 3). {'An' if what[0] in 'aeiou' else 'A'} {what[:-1]} is tested within a converter when at "
            f"least {association.MIN_SUPPORT} cases hold it and {association.MIN_SUPPORT} do not.")
    rows = [t.row() for t in (significant or tests[:10])]
    if not significant and tests:
        note += " None is significant; the ten lowest p-values are shown."
    return Table(title, association.COLUMNS, rows, note, limit=SHOWN)


def volcano(figure_id: str, title: str, tests: list[Association]) -> Figure:
    points = [{"x": round(math.log2(t.odds_ratio), 3), "y": round(-math.log10(max(t.q, 1e-300)), 3),
               "label": f"{t.converter}: {t.feature}", "highlight": t.significant} for t in tests]
    return Figure(figure_id, title, "scatter", {"points": points, "hline": -math.log10(ALPHA_FISHER), "labels": 12},
                  xlabel="log2 odds ratio (failure with / without)", ylabel="-log10 q (BH)",
                  caption=f"Each point is one feature within one converter; above the dashed line q < {ALPHA_FISHER:g}.")


def explained(cases: list[CaseRecord], tests: list[Association], family: str) -> tuple[int, int]:
    """(failing cases holding a significantly risky feature, failing cases)."""
    risky = {(t.converter, t.feature) for t in tests if t.significant and t.odds_ratio > 1}
    failing = [c for c in cases if c.failed]
    held = sum(any((c.converter, f) in risky for f in c.features[family]) for c in failing)
    return held, len(failing)


def section(cases: list[CaseRecord], tests: dict[str, list[Association]]) -> Section:
    source, onnx = tests["op"], tests["onnx"]
    failing = sum(c.failed for c in cases)
    basis = (f"{len(cases)} valid cases ({failing} failing); {len(source)} (converter, source operator) and "
             f"{len(onnx)} (converter, ONNX operator) tests; ONNX operators only over the "
             f"{len(association.converted(cases))} cases whose conversion produced a graph.")
    question = "Do cases holding a given operator fail more (or less) often than cases without it?"
    tables = [result_table("Source operators", source, "operators"),
              result_table("ONNX operators of the converted graph", onnx, "operators")]
    figures = [volcano("types-source", "Source operators: effect and significance", source),
               volcano("types-onnx", "ONNX operators: effect and significance", onnx)]
    significant = [t for t in source + onnx if t.significant]
    findings = [f"{t.family}: {t.converter}: {t.feature}" for t in significant]
    if not source and not onnx:
        return Section("types", "2. Operator types", question, NOT_ENOUGH,
                       f"Not enough data: no operator could be tested ({failing} failing of {len(cases)} cases).",
                       basis, tables, figures, findings=findings)
    held, total = explained(cases, source, "op")
    if significant:
        top = min(significant, key=lambda t: (t.q, -t.odds_ratio))
        sentence = (f"Supported: {len([t for t in source if t.significant])} of {len(source)} source operators and "
                    f"{len([t for t in onnx if t.significant])} of {len(onnx)} ONNX operators change the failure "
                    f"rate (FDR {FDR_TEXT}), e.g. {top.feature} in {top.converter} fails {100 * top.rate_with:.1f} % with, "
                    f"{100 * top.rate_without:.1f} % without; {held} of {total} failing cases ({pct(held, total)}) "
                    f"hold a risky source operator.")
        verdict = SUPPORTED
    else:
        sentence = (f"Not supported: none of {len(source)} source and {len(onnx)} ONNX operator tests is "
                    f"significant at a false discovery rate of {FDR_TEXT}.")
        verdict = NOT_SUPPORTED
    notes = ["An operator that only appears inside a failing sequence is associated with failure here too; "
             "section 3 asks whether sequences add anything beyond operator types."]
    return Section("types", "2. Operator types", question, verdict, sentence, basis, tables, figures, notes, findings)
