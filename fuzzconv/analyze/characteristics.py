"""Section 1: failure characteristics (converter, stage, symptom) beside the ISSTA 2024 study's."""

from __future__ import annotations

from collections import Counter

from fuzzconv.analyze import study
from fuzzconv.analyze.data import CaseRecord
from fuzzconv.analyze.sections import DESCRIPTIVE, NOT_ENOUGH, Figure, Section, Table, pct

AXES = ("converter", "stage", "symptom")
GROUP_LABELS = {"PyTorch": "torch.onnx (ours: torch-dynamo, torch-script)",
                "tf2onnx": "tf2onnx (ours: tf2onnx, keras-export)"}


def _category(case: CaseRecord, axis: str) -> str:
    """The case's category in the study's terms (converters are grouped as the study's two)."""
    value = getattr(case, axis)
    return study.CONVERTER_FAMILY.get(value, value) if axis == "converter" else value


def _ours(failing: list[CaseRecord], axis: str) -> tuple[Counter[str], Counter[str]]:
    """(buckets, cases) per category; a bucket is a distinct title, counted under its first case."""
    cases: Counter[str] = Counter(_category(c, axis) for c in failing)
    first: dict[str, str] = {}
    for case in failing:
        first.setdefault(case.title, _category(case, axis))
    return Counter(first.values()), cases


def _converter_table(cases: list[CaseRecord]) -> Table:
    rows = []
    for converter in sorted({c.converter for c in cases}):
        mine = [c for c in cases if c.converter == converter]
        failing = [c for c in mine if c.failed]
        rows.append([converter, study.CONVERTER_FAMILY.get(converter, "?"), len(mine), len(failing),
                     pct(len(failing), len(mine)), len({c.title for c in failing})])
    return Table("Our converters one by one", ["converter", "study's group", "valid cases", "failing cases",
                                               "failure rate", "buckets"], rows)


def _axis_table(failing: list[CaseRecord], axis: str) -> tuple[Table, Figure]:
    theirs = study.counts(axis)
    buckets, cases = _ours(failing, axis)
    categories = list(dict.fromkeys([*sorted(buckets, key=lambda k: -buckets[k]), *sorted(theirs, key=lambda k: -theirs[k])]))
    n_theirs, n_buckets, n_cases = sum(theirs.values()), sum(buckets.values()), sum(cases.values())
    rows = []
    for category in categories:
        label = GROUP_LABELS.get(category, category) if axis == "converter" else category
        rows.append([label, theirs.get(category, 0), pct(theirs.get(category, 0), n_theirs),
                     buckets.get(category, 0), pct(buckets.get(category, 0), n_buckets),
                     cases.get(category, 0), pct(cases.get(category, 0), n_cases)])
    table = Table(f"Failures by {axis}",
                  [axis, "study issues", "study share", "our buckets", "bucket share", "our failing cases", "case share"],
                  rows)
    series = {"study (issues)": [_share(theirs, k) for k in categories],
              "ours (buckets)": [_share(buckets, k) for k in categories],
              "ours (failing cases)": [_share(cases, k) for k in categories]}
    figure = Figure(f"characteristics-{axis}", f"Share of failures by {axis}", "bars",
                    {"categories": categories, "series": series}, ylabel="share of failures (%)")
    return table, figure


def _share(counter: Counter[str], key: str) -> float:
    total = sum(counter.values())
    return round(100 * counter.get(key, 0) / total, 2) if total else 0.0


def section(cases: list[CaseRecord]) -> Section:
    failing = [c for c in cases if c.failed]
    titles = len({c.title for c in failing})
    basis = (f"{len(failing)} failing cases in {titles} buckets (distinct titles) out of {len(cases)} valid cases; "
             f"the study: {sum(study.ISSUES.values())} issues. {study.SOURCE}.")
    question = "Where and how do converters fail here, next to the 200 real issues the study labelled?"
    if not failing:
        return Section("characteristics", "1. Failure characteristics", question, NOT_ENOUGH,
                       "Not enough data: no failing case yet, so there is nothing to set beside the study.", basis)
    tables, figures = zip(*(_axis_table(failing, axis) for axis in AXES))
    stage_buckets, _ = _ours(failing, "stage")
    conversion = pct(stage_buckets.get("conversion", 0), titles)
    theirs = study.counts("stage")
    sentence = (f"Conversion holds {conversion} of our {titles} buckets against "
                f"{pct(theirs['conversion'], sum(theirs.values()))} of the study's issues; crashes are "
                f"{pct(_ours(failing, 'symptom')[0].get('crash', 0), titles)} of our buckets against "
                f"{pct(study.counts('symptom')['crash'], 200)} of the study's.")
    notes = ["The study counts issues that people reported; we count distinct bucket titles (one per bug signature) "
             "and, beside them, every failing case. Stages after conversion that the study did not separate "
             "(runtime-load, runtime-optimization, runtime-kernel) are ours; 'not distinguishable', "
             "'unreported', 'build failure' and 'bad performance' are the study's."]
    return Section("characteristics", "1. Failure characteristics", question, DESCRIPTIVE, sentence, basis,
                   [*tables, _converter_table(cases)], list(figures), notes)
