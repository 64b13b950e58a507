"""The campaign loop: one warm worker per frontend, time shared equally between converters.

Both frontends' workers run at once (two cores, two processes). Within a frontend the next
case goes to the converter that has used the least wall time so far, so a dynamo export
(about a second) and a TorchScript export (a few ms) get equal time, not equal counts.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable

from fuzzconv.case import CONVERTER_FRONTEND, Case, Outcome
from fuzzconv.compare import verdicts
from fuzzconv.coverage import coverage_keys
from fuzzconv.generate import generate_case
from fuzzconv.store import Store
from fuzzconv.workers import Result, WorkerHandle


@dataclass
class CampaignConfig:
    out: Path
    converters: tuple[str, ...]
    budget_s: float
    seed: int
    max_nodes: int = 8
    case_timeout_s: float = 60.0
    recycle_after: int = 300
    progress_every_s: float = 10.0
    replays: int = 3  # runs of a new bucket's case, the first included, before it is reported
    minimize_budget_s: float = 60.0  # per new bucket, in a separate worker; 0 turns it off
    minimize_calls: int = 150


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    cases: Counter[str] = field(default_factory=Counter)
    busy_s: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    stages: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    buckets: dict[str, int] = field(default_factory=dict)
    new_buckets: list[str] = field(default_factory=list)
    coverage: set[str] = field(default_factory=set)
    invalid_titles: Counter[str] = field(default_factory=Counter)
    corpus_saved: int = 0
    internal_errors: int = 0
    flaky: set[str] = field(default_factory=set)
    replays_run: int = 0
    # cases whose outputs would be called wrong at each of the ISSTA study's tolerances
    wrong_at_tolerance: Counter[str] = field(default_factory=Counter)
    minimized: dict[str, tuple[int, int]] = field(default_factory=dict)  # title -> (nodes before, after)
    unminimized: list[str] = field(default_factory=list)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


def case_seed(campaign_seed: int, converter: str, index: int) -> int:
    digest = hashlib.sha256(f"{campaign_seed}:{converter}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class Campaign:
    def __init__(self, config: CampaignConfig, store: Store, on_progress: Callable[[Stats], None] | None = None,
                 on_bucket: Callable[[str, Case], None] | None = None) -> None:
        self.config = config
        self.store = store
        self.stats = Stats()
        self.on_progress = on_progress or (lambda stats: None)
        self.on_bucket = on_bucket or (lambda title, case: None)
        self.counters: Counter[str] = Counter()
        # case id -> (bucket title, replays still to run); replays go before new cases
        self.replay_queue: dict[str, list[tuple[Case, str]]] = defaultdict(list)
        self.replaying: dict[str, str] = {}
        # new buckets wait here for a minimizer worker (one per frontend, started on demand)
        self.minimize_queue: dict[str, list[tuple[Case, str]]] = defaultdict(list)
        self.minimizers: dict[str, WorkerHandle] = {}
        self.minimizing: dict[str, str] = {}  # frontend -> title in progress
        self.workers = {
            frontend: WorkerHandle(
                frontend,
                log_path=store.out / f".fuzzconv-worker-{frontend}.log",
                case_timeout_s=config.case_timeout_s,
                recycle_after=config.recycle_after,
            )
            for frontend in sorted({CONVERTER_FRONTEND[c] for c in config.converters})
        }

    def _next_case(self, frontend: str) -> Case:
        if self.replay_queue[frontend]:
            case, title = self.replay_queue[frontend].pop(0)
            self.replaying[case.id] = title
            return case
        mine = [c for c in self.config.converters if CONVERTER_FRONTEND[c] == frontend]
        converter = min(mine, key=lambda c: (self.stats.busy_s[c], self.stats.cases[c]))
        index = self.counters[converter]
        self.counters[converter] += 1
        return generate_case(case_seed(self.config.seed, converter, index), converter, self.config.max_nodes)

    def run(self) -> Stats:
        for case in self.store.corpus_cases():
            self.stats.coverage |= coverage_keys(case, None)
        for worker in self.workers.values():
            worker.start()
        deadline = time.monotonic() + self.config.budget_s
        last_progress = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if now < deadline:
                    self._feed_workers()
                busy = [w for w in self.workers.values() if w.busy]
                if not busy:
                    break
                busy += [m for m in self.minimizers.values() if m.busy]
                timeout = max(0.05, min(w.deadline() for w in busy) - now)
                wait([w.conn for w in busy if w.conn is not None], timeout=min(timeout, 1.0))
                for worker in busy:
                    result = worker.collect()
                    if result is None:
                        continue
                    if worker is self.minimizers.get(worker.frontend):
                        self._record_minimized(worker.frontend, result)
                    else:
                        self._record(result)
                if time.monotonic() - last_progress >= self.config.progress_every_s:
                    last_progress = time.monotonic()
                    self.on_progress(self.stats)
        finally:
            for worker in [*self.workers.values(), *self.minimizers.values()]:
                worker.stop()
            self.stats.unminimized += [*self.minimizing.values()] + [t for q in self.minimize_queue.values() for _, t in q]
        return self.stats

    def _feed_workers(self) -> None:
        for frontend, worker in self.workers.items():
            if not worker.busy:
                worker.submit(self._next_case(frontend))
        for frontend, queue in self.minimize_queue.items():
            minimizer = self._minimizer(frontend)
            if queue and not minimizer.busy:
                case, title = queue.pop(0)
                self.minimizing[frontend] = title
                minimizer.submit_minimize(case, title, self.config.minimize_calls, self.config.minimize_budget_s)

    def _minimizer(self, frontend: str) -> WorkerHandle:
        if frontend not in self.minimizers:
            self.minimizers[frontend] = WorkerHandle(
                frontend, log_path=self.store.out / f".fuzzconv-minimizer-{frontend}.log",
                case_timeout_s=self.config.case_timeout_s,
            )
            self.minimizers[frontend].start()
        return self.minimizers[frontend]

    def _record(self, result: Result) -> None:
        case, outcome = result.case, result.outcome
        converter = case.target.converter
        if case.id in self.replaying:
            self._record_replay(case, outcome, result.elapsed_s)
            return
        self.stats.cases[converter] += 1
        self.stats.busy_s[converter] += result.elapsed_s
        if outcome is None:
            self.stats.internal_errors += 1
            self.store.save_internal_error(case, result.error)
            return
        self.stats.statuses[(converter, outcome.status)] += 1
        if outcome.diffs:
            self.stats.wrong_at_tolerance.update(t for t, wrong in verdicts(outcome.diffs).items() if wrong)
        if outcome.status == "invalid":
            self.stats.invalid_titles[outcome.title] += 1
        if outcome.status in ("finding", "environment"):
            self.stats.stages[(converter, outcome.stage, outcome.symptom)] += 1
            recorded = self.store.record_finding(case, outcome)
            self.stats.buckets[outcome.title] = self.stats.buckets.get(outcome.title, 0) + 1
            if recorded.new_bucket:
                self.stats.new_buckets.append(outcome.title)
                self.on_bucket(outcome.title, case)
                replays = [(case, outcome.title)] * max(0, self.config.replays - 1)
                self.replay_queue[case.graph.frontend].extend(replays)
                if self.config.minimize_budget_s > 0 and outcome.status == "finding":
                    self.minimize_queue[case.graph.frontend].append((case, outcome.title))
        try:
            keys = coverage_keys(case, outcome) - self.stats.coverage
        except ValueError as exc:  # a case the registry rejects is fuzzconv's own bug
            self.stats.internal_errors += 1
            self.store.save_internal_error(case, f"coverage of an invalid case: {exc}")
            return
        if keys and outcome.status == "pass":
            self.stats.coverage |= keys
            self.store.save_corpus(case)
            self.stats.corpus_saved += 1
        elif keys:
            self.stats.coverage |= keys


    def _record_minimized(self, frontend: str, result: Result) -> None:
        title = self.minimizing.pop(frontend)
        if result.reduced is None:  # the minimizer hung, died or hit a bug: the bucket stays as found
            self.stats.unminimized.append(title)
            if result.error:
                self.stats.internal_errors += 1
                self.store.save_internal_error(result.case, result.error)
            return
        self.store.save_reduction(self.store.bucket_folder(title), result.reduced)
        stats = result.reduced["stats"]
        self.stats.minimized[title] = (int(stats["nodes_before"]), int(stats["nodes_after"]))

    def _record_replay(self, case: Case, outcome: Outcome | None, elapsed_s: float) -> None:
        title = self.replaying.pop(case.id)
        self.stats.busy_s[case.target.converter] += elapsed_s
        self.stats.replays_run += 1
        stats = self.store.record_replay(title, outcome is not None and outcome.title == title)
        if stats.get("flaky"):
            self.stats.flaky.add(title)


def summary_rows(stats: Stats, converters: tuple[str, ...]) -> list[dict[str, object]]:
    rows = []
    for converter in converters:
        count = stats.cases[converter]
        busy = stats.busy_s[converter]
        statuses = {s: n for (c, s), n in stats.statuses.items() if c == converter}
        rows.append(
            {
                "converter": converter,
                "cases": count,
                "cases_per_s": count / busy if busy else 0.0,
                "busy_s": busy,
                **{s: statuses.get(s, 0) for s in ("pass", "finding", "invalid", "environment")},
            }
        )
    return rows


def outcomes_by_stage(stats: Stats) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for (_, stage, symptom), count in stats.stages.items():
        totals[(stage, symptom)] += count
    return dict(totals)
