"""What every analysis returns: a section with a one-sentence verdict, its data basis, tables
and figures. Figures are data (their JSON is written as is); plots.py draws them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
NOT_ENOUGH = "not enough data"
DESCRIPTIVE = "descriptive"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, NOT_ENOUGH, DESCRIPTIVE)
ALPHA = 0.05  # error level of every verdict
# The structural hypotheses (sections 2 and 3) make two kinds of claim; each gets half of ALPHA,
# so that on data without any effect the report claims anything at all at most 5 % of the time.
ALPHA_FISHER = ALPHA / 2  # false discovery rate of the Fisher tests (one Benjamini-Hochberg family)
ALPHA_CLASSIFIER = ALPHA / 2  # error level of the classifier comparison (Bonferroni over converters)
FDR_TEXT = f"{100 * ALPHA_FISHER:g} %"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""
    limit: int | None = None  # rows shown in the HTML and markdown; the JSON keeps all

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "note": self.note}


@dataclass
class Figure:
    """kind: 'bars' (categories x series), 'lines' (series of x/y points), 'hist' (series of values)."""

    id: str
    title: str
    kind: str
    data: dict[str, Any]
    xlabel: str = ""
    ylabel: str = ""
    caption: str = ""
    log_x: bool = False
    log_y: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "kind": self.kind, "xlabel": self.xlabel,
                "ylabel": self.ylabel, "caption": self.caption, "log_x": self.log_x, "log_y": self.log_y,
                "data": self.data}


@dataclass
class Section:
    key: str
    title: str
    question: str
    verdict: str
    sentence: str  # the verdict in one sentence, with its numbers
    basis: str  # how much data the verdict rests on
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # significant results, for summaries and tests

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r}; choose from: {', '.join(VERDICTS)}")

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "question": self.question, "verdict": self.verdict,
                "sentence": self.sentence, "basis": self.basis, "notes": self.notes, "findings": self.findings,
                "tables": [t.to_json() for t in self.tables], "figures": [f.to_json() for f in self.figures]}


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def fmt_p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"
