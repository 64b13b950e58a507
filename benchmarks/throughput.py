"""Throughput and harness overhead: each converter alone, with 1 and with 2 workers.

Each run is a real campaign: worker processes, the campaign database and the file store in a
temporary folder. A configuration's time is split into rounds that alternate 1 and 2 workers
(this machine's speed drifts by a fifth within minutes; alternating puts the drift on both),
each round with its own campaign seed, the same for its 1- and its 2-worker run.
Prints, pooled over the rounds: cases/s (the cases answered within the time budget, per
second of it; worker start-up excluded, and the drain of the cases still running at the
deadline, which one slow case can make long, not counted; `wall s` includes it); the
speed-up of 2 workers over 1, and its range over the rounds; the harness overhead, the share of
worker wall time (from the start to each worker's last answer, so a worker idle while another
drains its last case is not counted) spent outside the converter, the source model's run and
onnxruntime (that is generation, materialization, comparison, storage and IPC; a case lost
with its worker counts its time in the step it died in, as the worker reported it); the part of
that spent outside the case pipeline (generation in the worker, waiting for the parent, IPC);
the parent's CPU time per case; and the workers' own CPU time per case and the share of a core
each worker had while busy, which tell the machine's cost of running two workers (caches and
memory shared, a core lent to the parent) from the harness's; and the speed-up on the same
cases: each round also runs 1 and 2 workers unguided, for a round's time each, and times both on
the cases 1 worker answered (the guided runs' speed-up also tells which cases each run met,
and two workers go twice as deep into the stream), both from the first to the last answer of
those cases and by the time each worker spent on them (`_worker_time_s`), which one slow last
case does not sway. For torch-script, at fuzzconv's
default graphs and at NNSmith's graph size, each round ends with NNSmith 0.1.0's own torch ->
onnxruntime loop for as long (`nnsmith_baseline.py`), and the line's cases/s is given as a
ratio to NNSmith's in the same run.
Not part of the test suite. Usage: python benchmarks/throughput.py [SECONDS_PER_CONFIGURATION] [CONVERTER ...]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nnsmith_baseline  # beside this script

from fuzzconv.campaign_db import FILENAME, CampaignDB
from fuzzconv.case import CONVERTERS
from fuzzconv.engine import Campaign, CampaignConfig, Stats
from fuzzconv.store import Store

# Pipeline steps that are the tools' own work, not the harness's.
TOOL_STEPS = ("source", "source-float64", "source-second-shape", "convert", "validate", "runtime-load",
              "runtime-run-off", "runtime-run-on", "runtime-release", "runtime-second-shape", "toggle-converter-optimize-off",
              "toggle-reference", "toggle-ort-transformers", "localize")
# Where the benchmark's campaigns live: beside the repository, as a campaign's `--out` would,
# not in /tmp. On this machine creating a file in /tmp cost 0.3-0.9 ms of CPU against 0.02 ms
# in the repository's folder (the same ext4 disk), and a campaign creates a file for most cases
# (corpus, bucket logs): in /tmp the parent spent 0.65 ms a case opening files, there 0.13.
# The folder is nnsmith_baseline.SCRATCH, .bench/scratch.
NNSMITH_CASES_PER_S = 34.0  # measured here on another day (../shared/FACTS.md): used only if NNSmith cannot run
NNSMITH_MAX_NODES = 5  # NNSmith's default graph size (mgen.max_nodes), for a like-for-like line
ROUNDS = 3  # each configuration's time, split into rounds that alternate 1 and 2 workers


def run_alone(converter: str, jobs: int, seconds: float, max_nodes: int = 8,
              seed: int = 1234, keep_in: Path | None = None, guide: bool = True) -> tuple[Stats, float, float]:
    """A campaign of one converter: its stats, the parent's CPU seconds, and operators per case.
    `stats.worker_wall_s` is the summed time from the start until each worker's last answer, and
    `stats.answers` says when each case was answered: (time.monotonic(), its index in the seed
    stream, the worker's CPU seconds on it, the worker slot that answered it).
    With `keep_in`, the campaign's folder is made there and left for the caller to remove."""
    place = (nullcontext(tempfile.mkdtemp(prefix="fuzzconv-bench-", dir=keep_in)) if keep_in is not None
             else tempfile.TemporaryDirectory(prefix="fuzzconv-bench-", dir=nnsmith_baseline.scratch_root()))
    with place as folder:
        out = Path(folder)
        config = CampaignConfig(out, (converter,), seconds, seed=seed, jobs=jobs, replays=1, max_nodes=max_nodes,
                                minimize_budget_s=0, progress_every_s=1e9, guide=guide)
        campaign = Campaign(config, Store(out).open(), db=CampaignDB.open(out / FILENAME))
        last_answer = [0.0] * len(campaign.workers)
        answers: list[tuple[float, int | None, float, int]] = []
        for slot, worker in enumerate(campaign.workers):
            worker.collect = _timed(worker.collect, last_answer, slot, answers)  # type: ignore[method-assign]
        cpu = time.process_time()
        stats = campaign.run()
        cpu = time.process_time() - cpu
        stats.worker_wall_s = sum(max(0.0, min(t, stats.ended or t) - stats.started)  # type: ignore[attr-defined]
                                  for t in last_answer)
        stats.in_time = sum(t <= stats.started + seconds for t, _, _, _ in answers)  # type: ignore[attr-defined]
        stats.answers = answers  # type: ignore[attr-defined]
        with CampaignDB.open(out / FILENAME, readonly=True) as db:
            nodes = db.conn.execute("SELECT AVG(node_count) FROM cases").fetchone()[0] or 0.0
        return stats, cpu, float(nodes)


def _timed(collect: Any, last_answer: list[float], slot: int,
           answers: list[tuple[float, int | None, float, int]]) -> Any:
    """`collect`, noting when each answer came and for which case (cases/s counts those within
    the time budget) and when the slot's last one did: a worker whose last case ended before
    another's drain at the end of the run is idle then, which is not harness overhead."""
    def timed() -> Any:
        result = collect()
        if result is not None:
            last_answer[slot] = time.monotonic()
            answers.append((last_answer[slot], result.index, result.cpu_s, slot))
        return result

    return timed


@dataclass
class SameCases:
    """The time 1 and 2 workers took for the same cases, or None where 2 did not answer them all."""

    cases: int
    one_s: float
    two_s: float | None
    one_cpu_s: float = 0.0  # the workers' CPU time on these cases
    two_cpu_s: float = 0.0
    # Two workers' time on these cases by worker time (see `_worker_time_s`). One worker's is
    # `one_s`: its per-case times add up to the stretch from the answer before to the last.
    two_worker_s: float = 0.0

    @property
    def speed_up(self) -> float | None:
        return self.one_s / self.two_s if self.two_s else None


WARM_UP_SHARE = 0.2  # of the cases timed on the same cases: the first ones, which time the start


def same_cases(converter: str, seconds: float, max_nodes: int, seed: int, keep_in: Path | None,
               two_first: bool = False) -> SameCases:
    """1 and then 2 workers on the same seed stream, unguided: without the guide and corpus
    mutation a case depends only on its index, so both runs make the same cases in the same
    order. The cases/s of guided runs depend on which cases each run met, and two workers go
    twice as deep into the stream; here both are timed on the same cases: those 1 worker
    answered in its budget, less the first fifth. Each time runs from the moment the cases
    before were all answered to the moment these were: two workers finish a stretch of the
    stream unevenly (one may still hold a slow case and two queued), at its start as at its
    end, so the unevenness cancels, which it would not if timed from the campaign's start.
    `two_first` runs 2 workers first: rounds alternate the order, as the machine's speed drifts."""
    runs = {jobs: run_alone(converter, jobs, seconds, max_nodes, seed, keep_in, guide=False)[0]
            for jobs in ((2, 1) if two_first else (1, 2))}
    one, two = _by_index(runs[1]), _by_index(runs[2])
    count = sum(1 for t, _ in one.values() if t <= runs[1].started + seconds)
    first = int(count * WARM_UP_SHARE)
    timed, before = range(first, count), range(first)
    one_s = _stretch_s(one, timed, before, runs[1].started)
    if count - first < 2 or any(index not in one or index not in two for index in range(count)):
        return SameCases(count - first, one_s, None)
    return SameCases(count - first, one_s, _stretch_s(two, timed, before, runs[2].started),
                     sum(one[index][1] for index in timed), sum(two[index][1] for index in timed),
                     _worker_time_s(runs[2], timed))


def _by_index(stats: Stats) -> dict[int, tuple[float, float]]:
    """A run's answers by index in the seed stream: (when answered, the worker's CPU seconds on it)."""
    return {index: (t, cpu) for t, index, cpu, _ in stats.answers if index is not None}  # type: ignore[attr-defined]


def _worker_time_s(stats: Stats, timed: range) -> float:
    """The time a run's workers took for the cases `timed`, per worker. Per case, the time its
    worker spent on it: from that worker's previous answer (it starts its next case the moment
    it answers, the job already queued) to this one, so any wait for the parent, a restart
    after a crash and the parent's CPU taken from the worker's core all count; summed over the
    cases, over the number of workers. Unlike the stretch from the first to the last answer, it
    does not depend on how the stretch's last slow case falls: the other worker goes on into
    cases past the stretch meanwhile, which a campaign, which has no end in sight, never waits
    for. A worker's first answer has no previous one and is left out."""
    previous: dict[int, float] = {}
    spent = 0.0
    for t, index, _, slot in sorted(stats.answers, key=lambda answer: answer[0]):  # type: ignore[attr-defined]
        if slot in previous and index in timed:
            spent += t - previous[slot]
        previous[slot] = t
    return spent / max(1, len(previous))


def _stretch_s(answered: dict[int, tuple[float, float]], timed: range, before: range, started: float) -> float:
    """From the moment every case of `before` was answered (or the start) to when all of `timed` were."""
    def when(index: int) -> float:
        return answered[index][0] if index in answered else started

    return (max((when(index) for index in timed), default=started)
            - max((when(index) for index in before), default=started))


@dataclass
class Pooled:
    """One configuration's rounds added up: what its line reports."""

    cases: int = 0
    in_time: int = 0  # cases answered within the time budget
    budget_s: float = 0.0
    elapsed_s: float = 0.0
    worker_wall_s: float = 0.0
    tool_s: float = 0.0  # in the tools' own steps
    pipeline_s: float = 0.0  # in any step of the case pipeline
    parent_cpu_s: float = 0.0
    worker_cpu_s: float = 0.0  # the workers' CPU time on their cases
    busy_s: float = 0.0  # the workers' wall time on their cases, as the parent measured it
    nodes: float = 0.0  # summed over cases
    rates: list[float] = field(default_factory=list)  # cases/s of each round
    same_cases: list[SameCases] = field(default_factory=list)  # 2 workers only: each round's same-cases run

    def add(self, stats: Stats, budget_s: float, parent_cpu_s: float, nodes: float) -> None:
        cases = sum(stats.cases.values())
        self.cases += cases
        self.in_time += stats.in_time  # type: ignore[attr-defined]
        self.budget_s += budget_s
        self.elapsed_s += stats.elapsed_s
        self.worker_wall_s += stats.worker_wall_s  # type: ignore[attr-defined]
        self.tool_s += sum(stats.stage_s[step] for step in TOOL_STEPS)
        self.pipeline_s += sum(stats.stage_s.values())
        self.parent_cpu_s += parent_cpu_s
        self.worker_cpu_s += sum(stats.cpu_s.values())
        self.busy_s += sum(stats.busy_s.values())
        self.nodes += nodes * cases
        self.rates.append(stats.in_time / budget_s)  # type: ignore[attr-defined]

    @property
    def rate(self) -> float:
        """Cases answered within the budget, per second of it: the cases still running at the
        deadline are drained (and stored) but not counted, since one slow last case would
        otherwise weigh on a short round."""
        return self.in_time / self.budget_s if self.budget_s else 0.0

    def overhead(self) -> tuple[float, float]:
        """(harness share of worker wall time, the part of it spent outside the case pipeline:
        waiting for the parent, IPC, JSON), both as fractions."""
        if not self.worker_wall_s:
            return 0.0, 0.0
        return max(0.0, 1.0 - self.tool_s / self.worker_wall_s), max(0.0, 1.0 - self.pipeline_s / self.worker_wall_s)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    converters = tuple(sys.argv[2:]) or CONVERTERS
    print(f"each configuration runs {seconds:g}s in {ROUNDS} rounds, 1 and 2 workers alternating")
    print(f"{'converter':14s} {'workers':>7s} {'cases':>7s} {'cases/s':>9s} {'speed-up':>9s} {'rounds':>12s} "
          f"{'harness':>8s} {'outside':>8s} {'parent ms/case':>15s} {'worker cpu ms/case':>19s} {'core':>5s} "
          f"{'ops/case':>9s} {'wall s':>7s} {'same cases (rounds), cpu 2w/1w; by worker time (rounds)':>32s}")
    # Every run's folder is removed at the end, not after its run: deleting a campaign's
    # thousands of files right before the next run started made each later run's parent
    # 0.5-1.4 ms a case dearer (kernel work on the deleted files lingers), more every round.
    folders = Path(tempfile.mkdtemp(prefix="fuzzconv-bench-runs-", dir=nnsmith_baseline.scratch_root()))
    nnsmith = _nnsmith_session() if "torch-script" in converters else None
    try:
        for converter in converters:
            runs = [(converter, 8)] + ([("torch-script", NNSMITH_MAX_NODES)] if converter == "torch-script" else [])
            for name, max_nodes in runs:
                label = name if max_nodes == 8 else f"{name}/{max_nodes}"
                pooled, baselines = measure(name, seconds, max_nodes, folders,
                                            nnsmith if name == "torch-script" else None)
                for jobs in (1, 2):
                    print_line(label, jobs, pooled)
                if name == "torch-script":
                    print_against_nnsmith(label, pooled, baselines)
    finally:
        shutil.rmtree(folders, ignore_errors=True)
        if nnsmith is not None:
            nnsmith.close()


def _nnsmith_session() -> nnsmith_baseline.Session | None:
    try:
        return nnsmith_baseline.Session(nnsmith_baseline.install())
    except nnsmith_baseline.Unavailable as exc:
        print(f"NNSmith cannot run here, so torch-script is compared with {NNSMITH_CASES_PER_S:.0f} cases/s "
              f"measured on another day: {exc}", flush=True)
        return None


def print_against_nnsmith(label: str, pooled: dict[int, Pooled], baselines: list[nnsmith_baseline.Baseline]) -> None:
    """The torch-script line against NNSmith's loop, measured in rounds between this line's own."""
    cases = sum(b.cases for b in baselines)
    seconds = sum(b.seconds for b in baselines)
    if seconds:
        rate = cases / seconds
        rates = [b.rate for b in baselines]
        restarts = sum(b.restarts for b in baselines)
        ops = sum(b.ops for b in baselines) / max(1, sum(b.graphs for b in baselines))
        print(f"{'NNSmith 0.1.0':14s} {1:7d} {cases:7d} {rate:9.2f}   (its torch -> onnxruntime loop, rounds "
              f"{min(rates):.2f}-{max(rates):.2f} c/s, {restarts} restarts after a crash, "
              f"{ops:.2f} ops per graph)", flush=True)
        source = "NNSmith in this run"
    else:
        rate, source = NNSMITH_CASES_PER_S, f"NNSmith's {NNSMITH_CASES_PER_S:.0f} cases/s of another day"
    print(f"{'':14s} {label} with 2 workers vs {source}: {pooled[2].rate / rate:.2f}x; one worker: "
          f"{pooled[1].rate / rate:.2f}x", flush=True)


def measure(converter: str, seconds: float, max_nodes: int, keep_in: Path | None = None,
            nnsmith: nnsmith_baseline.Session | None = None) -> tuple[dict[int, Pooled], list[nnsmith_baseline.Baseline]]:
    """Run the converter alone with 1 and with 2 workers, alternating, in ROUNDS rounds that add
    up to `seconds` each: the machine's speed drifts (by a fifth within minutes, here), and
    alternating puts the drift on both alike. Each round has its own seed stream: where a
    stream puts its slow cases (a tf2onnx case can take 17 s) would otherwise repeat in every
    round, and two workers, going twice as deep, meet slow cases one worker never reaches.
    Each round then times 1 and 2 workers on the same cases (`same_cases`), for as long.
    With `nnsmith`, each round ends with NNSmith's loop for as long as a round, for the ratio to it."""
    pooled = {1: Pooled(), 2: Pooled()}
    baselines: list[nnsmith_baseline.Baseline] = []
    for round_index in range(ROUNDS):
        for jobs in (1, 2):  # the same seed for both: a round compares like with like
            stats, parent_cpu_s, nodes = run_alone(converter, jobs, seconds / ROUNDS, max_nodes, 1234 + round_index,
                                                   keep_in)
            pooled[jobs].add(stats, seconds / ROUNDS, parent_cpu_s, nodes)
        pooled[2].same_cases.append(same_cases(converter, seconds / ROUNDS, max_nodes, 4321 + round_index, keep_in,
                                               two_first=round_index % 2 == 1))
        if nnsmith is not None:
            try:
                baselines.append(nnsmith.run(seconds / ROUNDS, seed=1234 + round_index))
            except nnsmith_baseline.Unavailable as exc:
                print(f"NNSmith's round {round_index + 1} did not run: {exc}", flush=True)
    return pooled, baselines


def print_line(label: str, jobs: int, pooled: dict[int, Pooled]) -> None:
    """One configuration's line; for 2 workers, the speed-up pooled and its range over rounds."""
    runs = pooled[jobs]
    speed_up = rounds = same = ""
    if jobs == 2 and pooled[1].rate:
        speed_up = f"{runs.rate / pooled[1].rate:.2f}x"
        each = [two / one for one, two in zip(pooled[1].rates, runs.rates, strict=True) if one]
        rounds = f"{min(each):.2f}-{max(each):.2f}x" if each else ""
        same = _same_cases_text(runs.same_cases)
    harness, outside = runs.overhead()
    core = runs.worker_cpu_s / runs.busy_s if runs.busy_s else 0.0
    print(f"{label:14s} {jobs:7d} {runs.cases:7d} {runs.rate:9.2f} {speed_up:>9s} {rounds:>12s} "
          f"{100 * harness:7.1f}% {100 * outside:7.1f}% {1000 * runs.parent_cpu_s / max(1, runs.cases):15.2f} "
          f"{1000 * runs.worker_cpu_s / max(1, runs.cases):19.2f} {core:5.2f} "
          f"{runs.nodes / max(1, runs.cases):9.2f} {runs.elapsed_s:7.1f} {same:>32s}", flush=True)


def _same_cases_text(runs: list[SameCases]) -> str:
    """Pooled speed-up on the same cases (all rounds' 1-worker time over their 2-worker time), its range."""
    if not runs:
        return ""
    timed = [run for run in runs if run.two_s]
    few = sum(1 for run in runs if run.cases < 2)
    if few:
        return f"too few cases in {few} of {len(runs)}"
    if len(timed) < len(runs):  # 2 workers did not answer in their budget what 1 did in the same time
        return f"under 1x in {len(runs) - len(timed)} of {len(runs)}"
    pooled = sum(run.one_s for run in timed) / sum(run.two_s or 0.0 for run in timed)
    each = [run.speed_up or 0.0 for run in timed]
    cpu = sum(run.two_cpu_s for run in timed) / max(1e-9, sum(run.one_cpu_s for run in timed))
    by_worker = sum(run.one_s for run in timed) / max(1e-9, sum(run.two_worker_s for run in timed))
    each_worker = [run.one_s / run.two_worker_s for run in timed if run.two_worker_s]
    return (f"{pooled:.2f}x ({min(each):.2f}-{max(each):.2f}x), cpu {cpu:.2f}x; by worker time "
            f"{by_worker:.2f}x ({min(each_worker, default=0):.2f}-{max(each_worker, default=0):.2f}x)")


if __name__ == "__main__":
    main()
