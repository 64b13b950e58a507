"""What the command line prints: progress lines, the campaign summary, one outcome, the registry."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fuzzconv.case import Case, Outcome
from fuzzconv.compare import verdicts
from fuzzconv.engine import CampaignConfig, Stats, outcomes_by_stage, summary_rows
from fuzzconv.known_issues import known_issue

# Piped or in CI rich would assume 80 columns and cut the converter names; tables get room there.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 140)


def print_summary(stats: Stats, config: CampaignConfig) -> None:
    carried = f", {stats.carried_cases} cases from earlier runs" if stats.carried_cases else ""
    table = Table(title=f"fuzzconv campaign: {stats.elapsed_s:.0f}s, seed {config.seed}{carried}")
    for column in ("converter", "cases", "cases/s", "time share", "pass", "finding", "invalid", "environment"):
        table.add_column(column, justify="left" if column == "converter" else "right")
    for row in summary_rows(stats, config.converters):
        table.add_row(str(row["converter"]), str(row["cases"]), f"{row['cases_per_s']:.2f}",
                      f"{100 * float(row['share']):.0f}%", str(row["pass"]),
                      str(row["finding"]), str(row["invalid"]), str(row["environment"]))
    console.print(table)
    _print_stage_table(stats)
    _print_buckets(stats, config)
    total = sum(stats.cases.values())
    invalid = sum(stats.invalid_titles.values())
    console.print(f"invalid cases: {invalid} of {total} ({100 * invalid / max(1, total):.1f}%)")
    for invalid_title, count in stats.invalid_titles.most_common(5):
        console.print(f"  {count:5d}  {invalid_title}")
    if stats.wrong_at_tolerance:
        console.print("compared cases wrong at tolerance " + ", ".join(
            f"{t}: {stats.wrong_at_tolerance[t]}" for t in ("1e-07", "1e-05", "0.001", "0.1")))
    console.print(f"coverage keys: {stats.coverage_count}; corpus cases saved: {stats.corpus_saved}; "
                  f"replays run: {stats.replays_run}, flaky buckets: {len(stats.flaky)}")
    if stats.minimized:
        sizes = sorted(after for _, after in stats.minimized.values())
        console.print(f"minimized buckets: {len(stats.minimized)} (median size {sizes[len(sizes) // 2]} operators)")
    if stats.unminimized:
        console.print(f"not minimized in time: {len(stats.unminimized)}; run `fuzzconv minimize "
                      f"{config.out / 'crashes'}/*` to finish them")
    if stats.internal_errors:
        console.print(f"[bold red]fuzzconv internal errors: {stats.internal_errors}[/] "
                      f"(see {config.out / 'internal-errors'}; these are fuzzconv's own bugs)")


def _print_stage_table(stats: Stats) -> None:
    by_stage = outcomes_by_stage(stats)
    if not by_stage:
        return
    table = Table(title="findings by stage and symptom")
    table.add_column("stage")
    table.add_column("symptom")
    table.add_column("hits", justify="right")
    for (stage, symptom), count in sorted(by_stage.items(), key=lambda kv: -kv[1]):
        table.add_row(stage, symptom, str(count))
    console.print(table)


def _print_buckets(stats: Stats, config: CampaignConfig) -> None:
    if not stats.buckets:
        console.print("no buckets")
        return
    table = Table(title=f"buckets (in {config.out / 'crashes'})")
    table.add_column("hits", justify="right")
    table.add_column("title")
    for title, hits in sorted(stats.buckets.items(), key=lambda kv: -kv[1]):
        marks = []
        if title in stats.new_buckets:
            marks.append("[bold yellow]new[/]")
        if known_issue(title):
            marks.append("[dim]known[/]")
        if title in stats.flaky:
            marks.append("[magenta]flaky[/]")
        table.add_row(str(hits), " ".join(marks + [escape(title)]))
    console.print(table)


def print_bucket_check(bucket_title: str, outcome: Outcome) -> None:
    """After replaying a bucket's case: does it still land in that bucket?"""
    known = known_issue(bucket_title)
    if outcome.title == bucket_title:
        console.print(f"bucket    reproduces: {escape(bucket_title)}")
    else:
        console.print(f"bucket    [bold]no longer reproduces[/]: was {escape(bucket_title)!s}")
    if known:
        console.print(f"known     {known.reason} ({known.link})")


def print_outcome(case: Case, outcome: Outcome) -> None:
    console.print(f"case      {case.id} ({case.target.converter}, opset {case.target.opset})")
    console.print(f"status    {outcome.status}")
    if outcome.title:
        console.print(f"title     {escape(outcome.title)}")
    if outcome.stage:
        console.print(f"stage     {outcome.stage}")
        console.print(f"decided   {outcome.decided_by}")
        console.print(f"symptom   {outcome.symptom}")
    if outcome.diffs:
        worst = max(d.required_tol for d in outcome.diffs)
        console.print(f"tolerance needed {worst:.3g}; wrong at " + ", ".join(
            f"{t}: {'yes' if wrong else 'no'}" for t, wrong in verdicts(outcome.diffs).items()))
    if outcome.message and outcome.status != "pass":
        console.print(f"message   {escape(outcome.message.splitlines()[0][:300])}")


def print_ops(registry: list[Any]) -> None:
    table = Table(title=f"operator registry ({len(registry)} operators)")
    for column in ("operator", "family", "frontends", "dtypes"):
        table.add_column(column)
    for op in registry:
        table.add_row(op.name, op.family, ", ".join(op.frontends), ", ".join(op.dtypes()))
    console.print(table)


def print_minimized(target: str, title: str, reduced: dict[str, Any]) -> None:
    stats = reduced["stats"]
    table = Table(title=f"minimize {target}")
    for column in ("pass", "calls", "accepted", "nodes", "seconds"):
        table.add_column(column, justify="left" if column == "pass" else "right")
    for row in passes_by_name(stats["passes"]):
        table.add_row(row["name"], str(row["calls"]), str(row["accepted"]),
                      f"{row['nodes_before']} -> {row['nodes_after']}", f"{row['seconds']:.1f}")
    console.print(table)
    console.print(f"title     {escape(title)}")
    console.print(f"nodes     {stats['nodes_before']} -> {stats['nodes_after']} in {stats['calls']} runs, "
                  f"{stats['seconds']:.1f}s" + (" (budget exhausted)" if stats["budget_exhausted"] else ""))
    console.print(f"nearest passing variant: {escape(reduced['nearest_passing'])}")


def passes_by_name(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per pass over all rounds: calls, accepted and seconds summed, nodes first -> last."""
    rows: dict[str, dict[str, Any]] = {}
    for report in reports:
        row = rows.setdefault(report["name"], {**report, "calls": 0, "accepted": 0, "seconds": 0.0})
        row["calls"] += report["calls"]
        row["accepted"] += report["accepted"]
        row["seconds"] += report["seconds"]
        row["nodes_after"] = report["nodes_after"]
    return list(rows.values())


def print_status(path: Any, summary: dict[str, Any]) -> None:
    console.print(f"campaign {path}: {summary.get('runs', 0)} run(s), {summary.get('cases', 0)} cases, "
                  f"{summary.get('first', '')} .. {summary.get('last', '')}")
    table = Table(title="converters")
    for column in ("converter", "cases", "cases/s", "busy s", "statuses"):
        table.add_column(column, justify="left" if column in ("converter", "statuses") else "right")
    for converter, row in sorted(summary.get("converters", {}).items()):
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(row.get("statuses", {}).items()))
        table.add_row(converter, str(row.get("cases", 0)), f"{row.get('cases_per_s', 0):.2f}",
                      f"{row.get('busy_s', 0):.0f}", statuses)
    console.print(table)
    titles = Table(title="top titles")
    titles.add_column("cases", justify="right")
    titles.add_column("title")
    for entry in summary.get("top_titles", []):
        titles.add_row(str(entry.get("cases", "")), escape(str(entry.get("title", ""))))
    console.print(titles)
    console.print(f"coverage keys: {summary.get('coverage', 0)}; invalid: {summary.get('invalid', 0)} "
                  f"({100 * float(summary.get('invalid_rate', 0)):.1f}%)")


def print_coverage(summary: dict[str, Any]) -> None:
    table = Table(title="coverage by kind")
    for column in ("kind", "scope", "covered", "of", "share"):
        table.add_column(column, justify="left" if column in ("kind", "scope") else "right")
    for row in summary["kinds"]:
        total = row.get("total")
        share = f"{100 * row['covered'] / total:.1f}%" if total else ""
        table.add_row(row["kind"], row["scope"], str(row["covered"]), str(total or ""), share)
    console.print(table)
    for frontend, rows in summary["least_covered"].items():
        listed = ", ".join(f"{op} ({count})" for op, count in rows)
        console.print(f"least-covered {frontend} operators (cases): {listed}")
