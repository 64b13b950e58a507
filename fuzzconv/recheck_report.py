"""What `fuzzconv recheck` prints: versions side by side, counts per verdict, the items, as text, markdown or JSON.

Every bucket gets a row; corpus cases get one only when something about them changed, since a
corpus holds hundreds of cases that normally still pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fuzzconv.recheck import VERDICTS, WORSE, Checked, only_runtime_status_differs, repro_agrees, worse
from fuzzconv.recheck_worker import VERSIONED_PACKAGES

VERDICT_LABEL = {
    "fixed": "fixed",
    "still-failing": "still failing (same title)",
    "changed": "failing differently (new title)",
    "new-failure": "new failure (passed before)",
    "still-passing": "still passing",
    "error": "error (could not replay)",
}
# Stored versions name the distribution that was installed; the tables use the first name of each row.
DISTRIBUTION_ALIASES = {names[i]: names[0] for names in VERSIONED_PACKAGES for i in range(1, len(names))}


@dataclass
class RecheckReport:
    folders: list[str]
    python: str
    current: dict[str, str]
    rechecked: dict[str, str]
    checked: list[Checked]

    @property
    def worse(self) -> list[Checked]:
        return worse(self.checked)

    @property
    def exit_code(self) -> int:
        return 1 if self.worse else 0

    def stored_versions(self) -> dict[str, str]:
        """package -> the version(s) the stored outcomes were found with, joined when they differ."""
        seen: dict[str, set[str]] = {}
        for one in self.checked:
            for name, version in one.item.stored_versions:
                seen.setdefault(DISTRIBUTION_ALIASES.get(name, name), set()).add(version)
        return {name: ", ".join(sorted(versions)) for name, versions in seen.items()}

    def version_rows(self) -> list[tuple[str, str, str, str]]:
        """(package, stored, this environment, rechecked) for every package any of the three has."""
        stored = self.stored_versions()
        rows = []
        for name in ["python", *(names[0] for names in VERSIONED_PACKAGES)]:
            row = (name, stored.get(name, ""), self.current.get(name, ""), self.rechecked.get(name, ""))
            if any(row[1:]):
                rows.append(row)
        return rows

    def counts(self) -> dict[str, dict[str, int]]:
        table = {verdict: {"bucket": 0, "corpus": 0} for verdict in VERDICTS}
        for one in self.checked:
            table[one.verdict][one.item.kind] += 1
        return table

    def listed(self) -> list[Checked]:
        """Every bucket, and the corpus cases whose verdict is not 'still passing'."""
        order = {verdict: i for i, verdict in enumerate(VERDICTS)}
        rows = [c for c in self.checked if c.item.kind == "bucket" or c.verdict != "still-passing"]
        return sorted(rows, key=lambda c: (order[c.verdict], c.item.kind, c.item.case.target.converter, c.item.label))

    def verdict_line(self) -> str:
        bad = self.worse
        if not bad:
            return "nothing got worse (exit code 0)"
        counts = {VERDICT_LABEL[v]: sum(1 for c in bad if c.verdict == v) for v in VERDICTS if v in WORSE}
        parts = ", ".join(f"{n} {label}" for label, n in counts.items() if n)
        return f"WORSE: {parts} (exit code 1)"

    def to_json(self) -> dict[str, Any]:
        return {
            "folders": self.folders, "python": self.python,
            "versions": {"stored": self.stored_versions(), "current": self.current, "rechecked": self.rechecked},
            "counts": self.counts(), "worse": len(self.worse), "exit_code": self.exit_code,
            "items": [c.to_json() for c in self.checked],
        }


def after_text(one: Checked) -> str:
    if one.verdict == "error":
        lines = one.error.strip().splitlines()
        return f"error: {lines[-1] if lines else 'no outcome'}"
    if one.after_status == "pass":
        return "pass"
    if only_runtime_status_differs(one.item.before_title, one.after_title):
        return f"(only the onnxruntime status differs) {one.after_title}"
    return one.after_title or one.after_status


def before_text(one: Checked) -> str:
    return "pass" if one.item.before_status == "pass" else one.item.before_title or one.item.before_status


def repro_text(one: Checked) -> str:
    if not one.repro:
        return ""
    return one.repro + ("" if repro_agrees(one) else " (disagrees)")


def _item_rows(report: RecheckReport) -> list[list[str]]:
    rows = []
    for one in report.listed():
        after = "(same)" if one.verdict == "still-failing" else after_text(one)
        flaky = " (flaky)" if one.item.flaky else ""
        rows.append([one.verdict, one.item.kind, before_text(one) + flaky, after, repro_text(one), one.item.label])
    return rows


def _count_rows(report: RecheckReport) -> list[list[str]]:
    counts = report.counts()
    return [[VERDICT_LABEL[v], str(counts[v]["bucket"]), str(counts[v]["corpus"])]
            for v in VERDICTS if counts[v]["bucket"] or counts[v]["corpus"]]


VERSION_HEADER = ["package", "found with (stored)", "this environment", "rechecked"]
ITEM_HEADER = ["verdict", "kind", "before", "after", "repro.py", "bucket / case"]


def _plain_table(header: list[str], rows: list[list[str]], widths: list[int] | None = None) -> list[str]:
    cells = [header, *rows]
    sizes = [max(len(row[i]) for row in cells) for i in range(len(header))]
    if widths:
        sizes = [min(size, cap) for size, cap in zip(sizes, widths)]
    clip = [[cell if len(cell) <= size else cell[: size - 1] + "…" for cell, size in zip(row, sizes)] for row in cells]
    lines = ["  ".join(cell.ljust(size) for cell, size in zip(row, sizes)).rstrip() for row in clip]
    lines.insert(1, "  ".join("-" * size for size in sizes))
    return lines


def text_report(report: RecheckReport) -> str:
    lines = [f"fuzzconv recheck of {', '.join(report.folders)} under {report.python}", ""]
    lines += _plain_table(VERSION_HEADER, [[*row[:3], _marked(row)] for row in report.version_rows()])
    lines += ["", *_plain_table(["verdict", "buckets", "corpus cases"], _count_rows(report)), ""]
    lines += _plain_table(ITEM_HEADER, _item_rows(report), widths=[13, 6, 70, 70, 26, 60])
    return "\n".join(lines + ["", report.verdict_line()]) + "\n"


def _marked(row: tuple[str, str, str, str]) -> str:
    """The rechecked version, starred where it differs from this environment's."""
    return row[3] + (" *" if row[3] != row[2] else "")


def _code(text: str) -> str:
    """A bucket title as inline code; 'pass' and '(same)' as they are."""
    return text if text in ("pass", "(same)") else f"`{text}`"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_md_escape(cell) for cell in row) + " |" for row in rows]


def markdown_report(report: RecheckReport) -> str:
    folders = ", ".join(f"`{f}`" for f in report.folders)
    lines = [f"## fuzzconv recheck of {folders}", "", f"Rechecked under `{report.python}`.", ""]
    versions = [[row[0], row[1], row[2], f"**{row[3]}**" if row[3] != row[2] else row[3]]
                for row in report.version_rows()]
    lines += _md_table(VERSION_HEADER, versions) + [""]
    lines += _md_table(["verdict", "buckets", "corpus cases"], _count_rows(report)) + [""]
    rows = [[f"**{r[0]}**" if r[0] in WORSE else r[0], r[1], _code(r[2]), _code(r[3]), r[4], r[5]]
            for r in _item_rows(report)]
    lines += _md_table(ITEM_HEADER, rows)
    return "\n".join(lines + ["", f"**{report.verdict_line()}**"]) + "\n"


def json_report(report: RecheckReport) -> str:
    return json.dumps(report.to_json(), indent=1) + "\n"
