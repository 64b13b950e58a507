"""The analysis written out: report.html (self-contained, plots embedded), summary.md, figures.json."""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

from fuzzconv.analyze import plots
from fuzzconv.analyze.analysis import Analysis
from fuzzconv.analyze.sections import Section, Table
from fuzzconv.store import atomic_write

MARKDOWN_ROWS = 15

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; padding: 1rem 1.5rem;
       max-width: 1180px; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
h3 { font-size: 1.02rem; margin-bottom: .3rem; }
.verdict { padding: .6rem .8rem; border-radius: 6px; margin: .6rem 0; background: #f4f4f6; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: 4px; font-weight: 600; margin-right: .4rem;
         font-size: .8rem; text-transform: uppercase; white-space: nowrap; }
.supported { background: #d9f2dd; color: #12591f; } .not-supported { background: #fbe0de; color: #7a1710; }
.not-enough-data { background: #fff1c7; color: #6b4e00; } .descriptive { background: #e3ecfa; color: #163f7a; }
.basis, .note, .caption { color: #555; font-size: .9rem; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; font-size: .85rem; table-layout: auto; }
th, td { border: 1px solid #d6d6d6; padding: .25rem .45rem; text-align: left; vertical-align: top;
         overflow-wrap: break-word; white-space: normal; }
.scroll { overflow-x: auto; max-width: 100%; }
th { background: #f0f0f3; }
td.num { text-align: right; white-space: nowrap; }
figure { margin: .8rem 0; } img { max-width: 100%; height: auto; display: block; }
code { background: #f4f4f6; padding: 0 .2rem; overflow-wrap: anywhere; }
"""


def _slug(verdict: str) -> str:
    return verdict.replace(" ", "-")


def _cell(value: Any) -> str:
    text = html.escape(str(value))
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>"


def table_html(table: Table) -> str:
    rows = table.rows if table.limit is None else table.rows[: table.limit]
    more = len(table.rows) - len(rows)
    parts = [f"<h3>{html.escape(table.title)}</h3>"]
    if table.note:
        parts.append(f'<p class="note">{html.escape(table.note)}</p>')
    if not table.rows:
        parts.append('<p class="note">(no rows)</p>')
        return "\n".join(parts)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "\n".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    parts.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div>')
    if more:
        parts.append(f'<p class="note">{more} more rows in figures.json.</p>')
    return "\n".join(parts)


def section_html(section: Section) -> str:
    parts = [f'<h2 id="{section.key}">{html.escape(section.title)}</h2>',
             f"<p><em>{html.escape(section.question)}</em></p>",
             f'<div class="verdict"><span class="badge {_slug(section.verdict)}">{html.escape(section.verdict)}</span>'
             f"{html.escape(section.sentence)}</div>",
             f'<p class="basis">Data: {html.escape(section.basis)}</p>']
    for figure in section.figures:
        if plots.is_empty(figure):
            parts.append(f'<p class="note">{html.escape(figure.title)}: no data to plot.</p>')
            continue
        caption = f'<figcaption class="caption">{html.escape(figure.caption)}</figcaption>' if figure.caption else ""
        parts.append(f'<figure><img alt="{html.escape(figure.title)}" '
                     f'src="data:image/png;base64,{plots.png_base64(figure)}">{caption}</figure>')
    parts.extend(table_html(t) for t in section.tables)
    parts.extend(f'<p class="note">{html.escape(n)}</p>' for n in section.notes)
    return "\n".join(parts)


def _campaign_line(analysis: Analysis) -> str:
    return "; ".join(f"{c.folder} ({c.duration_s / 60:.0f} min, {len(c.cases)} valid cases)" for c in analysis.campaigns)


LABEL_NOTE = ("A case fails when its status is 'finding'. Cases the source framework rejected ('invalid') and "
              "version skew in the environment ('environment') are left out of every denominator. "
              "Sections 2 and 3 share an error budget of 5 %: the Fisher tests of both are one Benjamini-Hochberg "
              "family at a false discovery rate of 2.5 %, the classifier comparison uses the other 2.5 % "
              "(Bonferroni over converters), so that data without any effect yields no claim in at least 95 % of "
              "campaigns.")


def to_html(analysis: Analysis) -> str:
    summary = "\n".join(
        f'<tr><td><a href="#{s.key}">{html.escape(s.title)}</a></td><td><span class="badge {_slug(s.verdict)}">'
        f"{html.escape(s.verdict)}</span></td><td>{html.escape(s.sentence)}</td></tr>" for s in analysis.sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>fuzzconv analysis</title><style>{CSS}</style></head><body>
<h1>fuzzconv analysis: the ISSTA 2024 structural-cause hypotheses</h1>
<p class="basis">Campaigns: {html.escape(_campaign_line(analysis))}. Written {analysis.created}; seed {analysis.settings.seed},
{analysis.settings.permutations} label shuffles, {analysis.settings.resamples} bootstrap resamples.</p>
<p class="note">{html.escape(LABEL_NOTE)}</p>
<table><thead><tr><th>section</th><th>verdict</th><th>in one sentence</th></tr></thead><tbody>
{summary}
</tbody></table>
{"".join(section_html(s) for s in analysis.sections)}
</body></html>
"""


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Table, rows_shown: int = MARKDOWN_ROWS) -> str:
    lines = [f"**{table.title}**", ""]
    if table.note:
        lines += [table.note, ""]
    if not table.rows:
        return "\n".join(lines + ["(no rows)", ""])
    lines.append("| " + " | ".join(map(_md_cell, table.columns)) + " |")
    lines.append("|" + "---|" * len(table.columns))
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows[:rows_shown]]
    if len(table.rows) > rows_shown:
        lines.append(f"\n({len(table.rows) - rows_shown} more rows in report.html and figures.json)")
    return "\n".join(lines + [""])


def to_markdown(analysis: Analysis) -> str:
    lines = ["# fuzzconv analysis: the ISSTA 2024 structural-cause hypotheses", "",
             f"Campaigns: {_campaign_line(analysis)}. Written {analysis.created}.", "", LABEL_NOTE, "",
             "| section | verdict | in one sentence |", "|---|---|---|"]
    lines += [f"| {s.title} | {s.verdict} | {_md_cell(s.sentence)} |" for s in analysis.sections]
    for s in analysis.sections:
        lines += ["", f"## {s.title}", "", f"**{s.verdict}.** {s.sentence}", "", f"Data: {s.basis}", ""]
        lines += [table_markdown(t) for t in s.tables[:3]]
    return "\n".join(lines) + "\n"


def _finite(data: Any) -> Any:
    """JSON without Infinity/NaN: they become null (strict JSON readers refuse them)."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def _readable(path: Path) -> None:
    """atomic_write leaves a private temporary file's mode; a report is for sharing, as the umask allows."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


def write(analysis: Analysis, out: Path) -> dict[str, Path]:
    paths = {"html": out / "report.html", "markdown": out / "summary.md", "json": out / "figures.json"}
    atomic_write(paths["json"], json.dumps(_finite(analysis.to_json()), indent=1, allow_nan=False) + "\n")
    atomic_write(paths["markdown"], to_markdown(analysis))
    atomic_write(paths["html"], to_html(analysis))
    for path in paths.values():
        _readable(path)
    return paths
