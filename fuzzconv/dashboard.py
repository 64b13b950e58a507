"""The live view of a running campaign: a rich dashboard on a terminal, plain lines elsewhere."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from fuzzconv.case import Case
from fuzzconv.known_issues import known_issue

if TYPE_CHECKING:
    from fuzzconv.engine import Campaign, CampaignConfig

NEW_BUCKETS_SHOWN = 8


class Dashboard:
    """Progress for `fuzzconv fuzz`: `update` is called by the campaign loop."""

    def __init__(self, config: CampaignConfig, console: Console) -> None:
        self.config = config
        self.console = console
        self.live: Live | None = None
        self.started = time.monotonic()
        self.recent: list[str] = []

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal

    def start(self) -> None:
        self.console.print(
            f"fuzzconv: campaign seed {self.config.seed}, {self.config.budget_s:.0f}s, {self.config.jobs} worker(s), "
            f"converters {', '.join(self.config.converters)}, output {self.config.out.resolve()}"
        )
        if self.interactive:
            self.live = Live(console=self.console, refresh_per_second=2, transient=False)
            self.live.start()
        else:
            self.console.print("fuzzconv: starting workers (importing frameworks takes a few seconds)")

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def new_bucket(self, title: str, case: Case) -> None:
        self.recent = ([title] + self.recent)[:NEW_BUCKETS_SHOWN]
        if not self.interactive:
            self.console.print(f"new bucket {title}", markup=False)

    def update(self, campaign: Campaign) -> None:
        if self.live is not None:
            self.live.update(self.render(campaign))
        else:
            self.console.print(progress_line(campaign), markup=False)

    def render(self, campaign: Campaign) -> Group:
        return Group(self._header(campaign), self._converters(campaign), self._outcomes(campaign),
                     self._buckets(campaign), self._health(campaign))

    def _header(self, campaign: Campaign) -> str:
        stats = campaign.stats
        remaining = max(0.0, self.config.budget_s - stats.elapsed_s)
        return (f"[bold]fuzzconv[/] elapsed {stats.elapsed_s:.0f}s, remaining {remaining:.0f}s; "
                f"buckets {len(stats.buckets)}; coverage keys {stats.coverage_count}; corpus +{stats.corpus_saved}; "
                f"replays {stats.replays_run}; minimized {len(stats.minimized)}")

    def _converters(self, campaign: Campaign) -> Table:
        from fuzzconv.engine import summary_rows

        table = Table(title="converters", title_justify="left")
        for column in ("converter", "cases", "cases/s", "time share", "pass", "finding", "invalid", "environment"):
            table.add_column(column, justify="left" if column == "converter" else "right")
        for row in summary_rows(campaign.stats, self.config.converters):
            table.add_row(str(row["converter"]), str(row["cases"]), f"{row['cases_per_s']:.2f}",
                          f"{100 * float(row['share']):.0f}%", str(row["pass"]), str(row["finding"]),
                          str(row["invalid"]), str(row["environment"]))
        return table

    def _outcomes(self, campaign: Campaign) -> Table:
        from fuzzconv.engine import outcomes_by_stage

        table = Table(title="findings by stage", title_justify="left")
        table.add_column("stage")
        table.add_column("symptom")
        table.add_column("hits", justify="right")
        for (stage, symptom), count in sorted(outcomes_by_stage(campaign.stats).items(), key=lambda kv: -kv[1])[:8]:
            table.add_row(stage, symptom, str(count))
        return table

    def _buckets(self, campaign: Campaign) -> Table:
        table = Table(title="new buckets (latest first)", title_justify="left")
        table.add_column("hits", justify="right")
        table.add_column("title")
        for title in self.recent:
            mark = "[dim]known[/] " if known_issue(title) else "[bold yellow]new[/] "
            table.add_row(str(campaign.stats.buckets.get(title, 0)), mark + escape(title))
        return table

    def _health(self, campaign: Campaign) -> Table:
        table = Table(title="workers", title_justify="left")
        for column in ("worker", "cases", "restarts", "hangs", "aborts", "memory MB", "doing"):
            table.add_column(column, justify="left" if column in ("worker", "doing") else "right")
        handles = [("fuzz", w) for w in campaign.workers] + [("minimize", m) for m in campaign.minimizers.values()]
        for role, handle in handles:
            table.add_row(f"{role} {handle.frontend}", str(getattr(handle, "cases_done", "")),
                          str(getattr(handle, "restarts", "")), str(getattr(handle, "hangs", "")),
                          str(getattr(handle, "aborts", "")),
                          f"{getattr(handle, 'rss_bytes', lambda: 0)() / 2**20:.0f}",
                          getattr(handle, "stage", "") if handle.busy else "idle")
        return table


def progress_line(campaign: Campaign) -> str:
    stats = campaign.stats
    per = " ".join(f"{c}={stats.cases[c]}" for c in campaign.config.converters)
    findings = sum(n for (_, s), n in stats.statuses.items() if s == "finding")
    invalid = sum(n for (_, s), n in stats.statuses.items() if s == "invalid")
    restarts = sum(getattr(w, "restarts", 0) for w in campaign.workers)
    return (f"[{stats.elapsed_s:6.0f}s] cases {sum(stats.cases.values())} ({per}) findings {findings} "
            f"buckets {len(stats.buckets)} invalid {invalid} coverage {stats.coverage_count} "
            f"minimized {len(stats.minimized)} worker restarts {restarts}")
