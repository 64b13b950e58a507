"""The campaign loop: a pool of warm workers, wall time shared between converters.

Each worker serves one frontend (a torch worker never imports TensorFlow). Workers are split
between frontends by the converters' time shares; an idle worker takes the converter of its
frontend that is furthest below its share of busy time, so a dynamo export (about a second)
and a TorchScript export (a few ms) get the time they are given, not equal counts. New buckets
are replayed to measure reliability and minimized in a separate worker per frontend, so
fuzzing never waits for them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Protocol

from fuzzconv.case import CONVERTER_FRONTEND, Case, Outcome
from fuzzconv.compare import verdicts
from fuzzconv.coverage import KEYS_VERSION, coverage_keys, earns_corpus_file
from fuzzconv.fuzz_job import fuzz_job
from fuzzconv.seen import SeenSequences
from fuzzconv.store import Store
from fuzzconv.workers import Result, WorkerHandle, tune_gc


@dataclass
class CampaignConfig:
    out: Path
    converters: tuple[str, ...]
    budget_s: float
    seed: int
    max_nodes: int = 8
    case_timeout_s: float = 60.0
    recycle_after: int = 5000  # cases per worker process; the memory limit recycles sooner when needed
    progress_every_s: float = 10.0
    replays: int = 3  # runs of a new bucket's case, the first included, before it is reported
    minimize_budget_s: float = 60.0  # per new bucket, in a separate worker; 0 turns it off
    minimize_calls: int = 150
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    shares: dict[str, float] = field(default_factory=dict)  # converter -> weight, default 1
    memory_limit_mb: int = 3072
    python: str | None = None  # run workers under this interpreter (another environment)
    engine: str = "local"
    ray_address: str | None = None
    opsets: dict[str, tuple[int, ...]] = field(default_factory=dict)  # converter -> swept opsets; default: its own
    guide: bool = True  # favour uncovered operators and pairs, and mutate corpus cases
    min_free_mb: int = 1024  # stop cleanly when the output folder's disk has less free space; 0: never

    def share(self, converter: str) -> float:
        return self.shares.get(converter, 1.0)


# How many coverage keys the parent keeps in memory when the database holds them all: about
# 120 MB (benchmarks/coverage_memory.py measured 46 MB for 376,000 keys); a two-worker
# torch-script campaign passes a million in about 15 minutes, after which keys memory does not
# hold are looked up in the database.
COVERAGE_IN_MEMORY = 1_000_000


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    cases: Counter[str] = field(default_factory=Counter)
    busy_s: Counter[str] = field(default_factory=Counter)  # seconds (float counts)
    # The workers' CPU seconds on fuzz cases, this run: against busy_s, how much of a core a
    # worker got (benchmarks/throughput.py compares it for 1 and 2 workers).
    cpu_s: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    stages: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    buckets: dict[str, int] = field(default_factory=dict)
    new_buckets: list[str] = field(default_factory=list)
    # Coverage keys known to be reached: all of them without a database; with one, whose coverage
    # table is the whole set, at most COVERAGE_IN_MEMORY of them (a long campaign reaches millions).
    coverage: set[str] = field(default_factory=set)
    coverage_count: int = 0
    invalid_titles: Counter[str] = field(default_factory=Counter)
    corpus_saved: int = 0
    internal_errors: int = 0
    flaky: set[str] = field(default_factory=set)
    replays_run: int = 0
    # cases whose outputs would be called wrong at each of the ISSTA study's tolerances
    wrong_at_tolerance: Counter[str] = field(default_factory=Counter)
    minimized: dict[str, tuple[int, int]] = field(default_factory=dict)  # title -> (nodes before, after)
    unminimized: list[str] = field(default_factory=list)
    stage_s: Counter[str] = field(default_factory=Counter)  # time inside each pipeline step
    mutated: int = 0
    carried_cases: int = 0  # cases of earlier runs of a resumed campaign
    interrupted: bool = False
    stopped_for: str = ""  # why the campaign stopped before its time, when something made it
    unstored: int = 0  # finished cases lost because storing them failed (disk full)
    ended: float | None = None  # when the loop stopped, before the workers are shut down

    @property
    def elapsed_s(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def achieved_shares(self) -> dict[str, float]:
        total = sum(self.busy_s.values()) or 1.0
        return {converter: busy / total for converter, busy in self.busy_s.items()}


class Handle(Protocol):
    """What the loop needs of a worker, local process or Ray actor."""

    frontend: str
    seen: SeenSequences | None  # the campaign's covered operator sequences of this frontend

    @property
    def busy(self) -> bool: ...

    def start(self) -> None: ...

    def spawn(self) -> None: ...

    def wait_ready(self) -> None: ...

    def submit(self, case: Case) -> None: ...

    def submit_fuzz(self, job: dict[str, Any]) -> None: ...

    def submit_minimize(self, case: Case, title: str, max_calls: int, budget_s: float) -> None: ...

    def collect(self) -> Result | None: ...

    def deadline(self) -> float: ...

    def waitable(self) -> Any: ...

    def stop(self) -> None: ...


HandleFactory = Callable[[str, str], Handle]  # (frontend, role) -> handle

MUTATE_PERCENT = 10  # share of guided cases that mutate a corpus case instead of starting afresh
FLUSH_EVERY_S = 5.0  # how often repeated bucket hits are written (see Store.flush); every case is in the database
DISK_CHECK_EVERY_S = 5.0  # how often the free space of the output folder's disk is read
MAX_PARENTS = 200


def free_disk_mb(folder: Path) -> int:
    """Free space, in MB, on the file system that holds `folder` (or its nearest existing parent)."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free // (1024 * 1024)


def case_seed(campaign_seed: int, converter: str, index: int) -> int:
    digest = hashlib.sha256(f"{campaign_seed}:{converter}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def allocate_workers(converters: tuple[str, ...], jobs: int, shares: dict[str, float]) -> dict[str, int]:
    """Workers per frontend: at least one each, the rest in proportion to the frontends' shares."""
    weight: dict[str, float] = defaultdict(float)
    for converter in converters:
        weight[CONVERTER_FRONTEND[converter]] += shares.get(converter, 1.0)
    frontends = sorted(weight)
    allocation = dict.fromkeys(frontends, 1)
    total = sum(weight.values())
    for _ in range(max(0, jobs - len(frontends))):
        lagging = max(frontends, key=lambda f: weight[f] / total - allocation[f] / sum(allocation.values()))
        allocation[lagging] += 1
    return allocation


class Campaign:
    def __init__(self, config: CampaignConfig, store: Store, handle_factory: HandleFactory | None = None,
                 db: Any = None, on_progress: Callable[[Campaign], None] | None = None,
                 on_bucket: Callable[[str, Case], None] | None = None) -> None:
        self.config = config
        self.store = store
        self.db = db
        self.run_id: int | None = None
        self.stats = Stats()
        self.on_progress = on_progress or (lambda campaign: None)
        self.on_bucket = on_bucket or (lambda title, case: None)
        self.make_handle = handle_factory or self._local_handle
        self.counters: Counter[str] = Counter()
        self.replay_queue: dict[str, list[tuple[Case, str]]] = defaultdict(list)
        self.minimize_queue: dict[str, list[tuple[Case, str]]] = defaultdict(list)
        self.jobs: dict[int, tuple[str, str]] = {}  # id(handle) -> (kind, bucket title)
        # Per frontend, the operator pairs and 3-grams covered so far, in memory shared with the
        # workers: what guided generation there steers away from (fuzzconv.seen).
        self.seen = {frontend: SeenSequences.shared(frontend)
                     for frontend in sorted({CONVERTER_FRONTEND[c] for c in config.converters})}
        allocation = allocate_workers(config.converters, config.jobs, config.shares)
        self.workers: list[Handle] = [self.make_handle(f, "fuzz") for f, n in allocation.items() for _ in range(n)]
        for worker in self.workers:
            worker.seen = self.seen[worker.frontend]
        self.minimizers: dict[str, Handle] = {}
        self.parents: dict[str, list[Case]] = defaultdict(list)  # corpus cases to mutate, per converter

    def _local_handle(self, frontend: str, role: str) -> Handle:
        index = sum(1 for w in getattr(self, "workers", []) if w.frontend == frontend)
        name = f"{role}-{frontend}-{index}" if role == "fuzz" else f"{role}-{frontend}"
        return WorkerHandle(
            frontend,
            log_path=self.store.out / f".fuzzconv-{name}.log",
            case_timeout_s=self.config.case_timeout_s,
            recycle_after=self.config.recycle_after,
            memory_limit_bytes=self.config.memory_limit_mb * 2**20,
            keep_spare=role == "fuzz",
            python=self.config.python,
        )

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> Stats:
        self._resume()
        tune_gc()  # what is loaded by now (modules, the resumed coverage) is never collected
        for worker in self.workers:
            worker.spawn()  # all start their imports at once
        for worker in self.workers:
            worker.wait_ready()
        self.stats.started = time.monotonic()  # the budget is fuzzing time, worker start-up excluded
        deadline = time.monotonic() + self.config.budget_s
        last_progress = last_flush = last_disk = time.monotonic()
        self.store.defer_hits = True
        try:
            while self._step(deadline):
                if time.monotonic() - last_disk >= DISK_CHECK_EVERY_S:
                    last_disk = time.monotonic()
                    self._check_disk()
                if time.monotonic() - last_flush >= FLUSH_EVERY_S:
                    last_flush = time.monotonic()
                    self._storing(self.store.flush)
                if self.stats.stopped_for:
                    deadline = min(deadline, time.monotonic())  # start no case; record those in flight
                if time.monotonic() - last_progress >= self.config.progress_every_s:
                    last_progress = time.monotonic()
                    self.on_progress(self)
        except KeyboardInterrupt:
            self.stats.interrupted = True
        finally:
            self.stats.ended = time.monotonic()
            self._shut_down()
        return self.stats

    def _check_disk(self) -> None:
        """Note the reason to stop once the output folder's disk has less than min_free_mb free:
        a full disk would fail the next write, so the campaign stops while it can still store."""
        if not self.config.min_free_mb or self.stats.stopped_for:
            return
        free_mb = free_disk_mb(self.config.out)
        if free_mb < self.config.min_free_mb:
            self.stats.stopped_for = (f"the disk of {self.config.out} has {free_mb} MB free, less than "
                                      f"--min-free-disk {self.config.min_free_mb} MB; free some space, then run "
                                      "the same command again to resume")

    def _step(self, deadline: float) -> bool:
        """Feed idle workers, wait a little, record what finished; False once all is done."""
        now = time.monotonic()
        if now < deadline:
            self._feed()
        busy = [w for w in self.workers if w.busy]
        if not busy:
            return False
        busy += [m for m in self.minimizers.values() if m.busy]
        timeout = min(1.0, max(0.02, min(w.deadline() for w in busy) - now))
        waitables = [w.waitable() for w in busy]
        wait_any = getattr(busy[0], "wait_any", None)  # a remote engine's own way to wait for its handles
        if wait_any is not None:
            wait_any(busy, timeout)
        elif all(item is not None for item in waitables):
            wait(waitables, timeout=timeout)
        else:
            time.sleep(0.02)
        finished = []
        for worker in busy:
            result = worker.collect()
            if result is None:
                continue
            job = self.jobs.pop(id(worker), ("case", ""))
            if time.monotonic() >= deadline and hasattr(worker, "drop_queued"):
                worker.drop_queued()  # time is up: what was queued never started, so it is not run
            if worker.busy:  # it already runs the job prefetched for it
                self.jobs[id(worker)] = ("case", "")
            elif any(worker is w for w in self.workers) and time.monotonic() < deadline:
                self._give_work(worker)  # the worker runs its next case while this one is recorded
            finished.append((job, result))
        if finished:
            self._dispatch_all(finished)
        if time.monotonic() < deadline:
            self._prefetch()
        return True

    def _dispatch_all(self, finished: list[tuple[tuple[str, str], Result]]) -> None:
        """Record what finished in one loop turn; its database rows land in one commit."""
        def record() -> None:
            if self.db is None:
                for job, result in finished:
                    self._dispatch(job, result)
                return
            with self.db.transaction():
                for job, result in finished:
                    self._dispatch(job, result)

        if not self._storing(record):
            self.stats.unstored += sum(kind == "case" for (kind, _), _ in finished)

    def _storing(self, write: Callable[[], None]) -> bool:
        """Run a write to the database or the store; if the disk is full or the file system
        refuses, stop the campaign cleanly (what was committed stays) instead of crashing."""
        try:
            write()
            return True
        except (sqlite3.OperationalError, OSError) as exc:
            if not self.stats.stopped_for:
                self.stats.stopped_for = (f"cannot store results in {self.config.out} ({type(exc).__name__}: {exc}); "
                                          "what was stored before is kept: free some space or fix the folder, then "
                                          "run the same command again to resume")
            return False

    def _prefetch(self) -> None:
        """Queue one more job on each fuzz worker (local processes only), so that a worker never
        waits for the parent between cases."""
        for worker in self.workers:
            while getattr(worker, "can_prefetch", False) and not self.replay_queue[worker.frontend]:
                worker.prefetch(self._next_job(worker.frontend))  # type: ignore[attr-defined]

    def _feed(self) -> None:
        for worker in self.workers:
            if not worker.busy:
                self._give_work(worker)
        for frontend, queue in self.minimize_queue.items():
            if queue and not self._minimizer(frontend).busy:
                case, title = queue.pop(0)
                self.jobs[id(self.minimizers[frontend])] = ("minimize", title)
                self.minimizers[frontend].submit_minimize(case, title, self.config.minimize_calls,
                                                          self.config.minimize_budget_s)

    def _give_work(self, worker: Handle) -> None:
        queue = self.replay_queue[worker.frontend]
        if queue:
            case, title = queue.pop(0)
            self.jobs[id(worker)] = ("replay", title)
            worker.submit(case)
        else:
            self.jobs[id(worker)] = ("case", "")
            worker.submit_fuzz(self._next_job(worker.frontend))

    def _next_job(self, frontend: str) -> dict[str, Any]:
        """The next fuzz job of the frontend's converter furthest below its time share; the worker
        makes the case (guided, or now and then a mutant of a corpus case)."""
        mine = [c for c in self.config.converters if CONVERTER_FRONTEND[c] == frontend]
        converter = min(mine, key=lambda c: (self.stats.busy_s[c] / self.config.share(c), self.stats.cases[c]))
        index = self.counters[converter]
        self.counters[converter] += 1
        opsets = self.config.opsets.get(converter)
        opset = opsets[index % len(opsets)] if opsets else None
        seed = case_seed(self.config.seed, converter, index)
        parents = self.parents[converter]
        parent = None
        if self.config.guide and parents and seed % 100 < MUTATE_PERCENT:
            self.stats.mutated += 1
            parent = parents[seed % len(parents)]
        return fuzz_job(converter, index, seed, opset, self.config.max_nodes, self.config.guide, parent)

    def _learn(self, keys: set[str]) -> None:
        """Mark each frontend's new operator pairs and 3-grams where the workers read them."""
        for seen in self.seen.values():
            seen.add_keys(keys)

    def _minimizer(self, frontend: str) -> Handle:
        if frontend not in self.minimizers:
            self.minimizers[frontend] = self.make_handle(frontend, "minimizer")
            self.minimizers[frontend].spawn()  # its first job is sent once it is ready
        return self.minimizers[frontend]

    def _dispatch(self, job: tuple[str, str], result: Result) -> None:
        kind, title = job
        if kind == "minimize":
            self._record_minimized(title, result)
        elif kind == "replay":
            self._record_replay(title, result)
        else:
            self._record(result)

    def _resume(self) -> None:
        """Carry over an earlier run's totals, seeds and coverage (database) and the coverage of
        corpus cases the database does not hold (curated, or from a campaign without one): a
        days-long campaign's corpus has millions of files, too many to read at every start."""
        corpus = self.store.corpus_cases(self.db.stored_ids if self.db is not None else None)
        for converter in self.config.converters:  # a resumed campaign mutates where it left off
            self.parents[converter] = self.store.recent_corpus(converter, MAX_PARENTS)
        if self.db is None:
            for case in corpus:
                self.stats.coverage |= coverage_keys(case, None)
            self.stats.coverage_count = len(self.stats.coverage)
            self._learn(self.stats.coverage)
            return
        self.run_id = self.db.start_run(self.config.seed, list(self.config.converters), _config_json(self.config))
        for converter in self.config.converters:
            self.counters[converter] = self.db.next_generation_index(converter)
        with self.db.transaction():
            for case in corpus:  # first seen, for this database, by the corpus case
                self.db.add_coverage(coverage_keys(case, None), case.id)
        self.stats.coverage_count = self.db.coverage_count()
        self.stats.coverage = self.db.coverage_keys(limit=COVERAGE_IN_MEMORY)
        self._learn(self.db.coverage_keys(prefixes=[f"{kind}:{frontend}:" for frontend in self.seen
                                                    for kind in ("edge", "ngram3")]))
        totals = self.db.totals()
        self.stats.carried_cases = int(sum(totals.get("cases", {}).values()))
        for name in ("cases", "busy_s", "statuses", "stages", "invalid_titles"):
            getattr(self.stats, name).update(totals.get(name, {}))

    def _shut_down(self) -> None:
        self._storing(self.store.flush)
        for worker in [*self.workers, *self.minimizers.values()]:
            worker.stop()
        in_flight = [title for kind, title in self.jobs.values() if kind == "minimize"]
        self.stats.unminimized += in_flight + [t for q in self.minimize_queue.values() for _, t in q]
        db, run_id = self.db, self.run_id
        if db is not None:
            if run_id is not None:
                self._storing(lambda: db.end_run(run_id))
            db.close()

    # --- recording -------------------------------------------------------------------------

    def _record(self, result: Result) -> None:
        case, outcome = result.case, result.outcome
        converter = case.target.converter
        self.stats.cases[converter] += 1
        self.stats.busy_s[converter] += result.elapsed_s  # type: ignore[assignment]
        self.stats.cpu_s[converter] += result.cpu_s  # type: ignore[assignment]
        if outcome is None:
            self.stats.internal_errors += 1
            self.store.save_internal_error(case, result.error)
            return
        index = result.index if result.index is not None else -1
        keys = set(result.keys) if result.keys else self._keys(case, outcome)
        if self.db is None:
            self._count_file_cover(case, outcome, keys)
            return
        with self.db.transaction():  # the case row and its coverage keys land together or not at all
            self.db.record_case(case, outcome, self.run_id, index, elapsed_s=result.elapsed_s, coverage=keys)
            self._count_file_cover(case, outcome, keys)

    def _count_file_cover(self, case: Case, outcome: Outcome, keys: set[str]) -> None:
        self._count(case, outcome)
        if outcome.status in ("finding", "environment"):
            self._file(case, outcome)
        self._cover(case, outcome, keys)

    def _count(self, case: Case, outcome: Outcome) -> None:
        converter = case.target.converter
        self.stats.statuses[(converter, outcome.status)] += 1
        self.stats.stage_s.update(dict(outcome.timings))
        if outcome.diffs:
            self.stats.wrong_at_tolerance.update(t for t, wrong in verdicts(outcome.diffs).items() if wrong)
        if outcome.status == "invalid":
            self.stats.invalid_titles[outcome.title] += 1

    def _file(self, case: Case, outcome: Outcome) -> None:
        converter = case.target.converter
        self.stats.stages[(converter, outcome.stage, outcome.symptom)] += 1
        recorded = self.store.record_finding(case, outcome)
        self.stats.buckets[outcome.title] = self.stats.buckets.get(outcome.title, 0) + 1
        if not recorded.new_bucket:
            return
        self.stats.new_buckets.append(outcome.title)
        self.on_bucket(outcome.title, case)
        self.replay_queue[case.graph.frontend].extend([(case, outcome.title)] * max(0, self.config.replays - 1))
        if self.config.minimize_budget_s > 0 and outcome.status == "finding":
            self.minimize_queue[case.graph.frontend].append((case, outcome.title))

    def _keys(self, case: Case, outcome: Outcome) -> set[str]:
        try:
            return coverage_keys(case, outcome)
        except ValueError as exc:  # a case the registry rejects is fuzzconv's own bug
            self.stats.internal_errors += 1
            self.store.save_internal_error(case, f"coverage of an invalid case: {exc}")
            return set()

    def _cover(self, case: Case, outcome: Outcome, all_keys: set[str]) -> None:
        unknown = all_keys - self.stats.coverage
        if not unknown:
            return
        # With a database, what memory does not hold is looked up there (past the memory cap).
        keys = self.db.add_coverage(unknown, case.id) if self.db is not None else unknown
        if self.db is None or len(self.stats.coverage) < COVERAGE_IN_MEMORY:
            self.stats.coverage |= unknown
        if not keys:
            return
        self.stats.coverage_count += len(keys)
        self._learn(keys)
        if outcome.status == "pass":  # any new key makes it a parent; a corpus file needs more
            parents = self.parents[case.target.converter]
            parents.append(case)
            del parents[:-MAX_PARENTS]
            if earns_corpus_file(keys):
                self.store.save_corpus(case)
                self.stats.corpus_saved += 1

    def _record_minimized(self, title: str, result: Result) -> None:
        if result.reduced is None:  # the minimizer hung, died or hit a bug: the bucket stays as found
            self.stats.unminimized.append(title)
            if result.error:
                self.stats.internal_errors += 1
                self.store.save_internal_error(result.case, result.error)
            return
        self.store.save_reduction(self.store.bucket_folder(title), result.reduced)
        stats = result.reduced["stats"]
        self.stats.minimized[title] = (int(stats["nodes_before"]), int(stats["nodes_after"]))

    def _record_replay(self, title: str, result: Result) -> None:
        self.stats.busy_s[result.case.target.converter] += result.elapsed_s  # type: ignore[assignment]
        self.stats.replays_run += 1
        reproduced = result.outcome is not None and result.outcome.title == title
        if self.store.record_replay(title, reproduced).get("flaky"):
            self.stats.flaky.add(title)


def _config_json(config: CampaignConfig) -> dict[str, Any]:
    return {
        "budget_s": config.budget_s, "max_nodes": config.max_nodes, "case_timeout_s": config.case_timeout_s,
        "jobs": config.jobs, "shares": config.shares, "replays": config.replays,
        "minimize_budget_s": config.minimize_budget_s, "engine": config.engine,
        "opsets": {c: list(o) for c, o in config.opsets.items()}, "guide": config.guide, "python": config.python,
        "coverage_keys": KEYS_VERSION,
    }


def summary_rows(stats: Stats, converters: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    shares = stats.achieved_shares()
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
                "share": shares.get(converter, 0.0),
                **{s: statuses.get(s, 0) for s in ("pass", "finding", "invalid", "environment")},
            }
        )
    return rows


def outcomes_by_stage(stats: Stats) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for (_, stage, symptom), count in stats.stages.items():
        totals[(stage, symptom)] += count
    return dict(totals)
