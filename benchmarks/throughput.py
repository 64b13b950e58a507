"""Throughput and harness overhead: each converter alone, with 1 and with 2 workers.

Each run is a real campaign: worker processes, the campaign database and the file store in a
temporary folder. Prints cases/s (wall clock of the fuzzing loop, worker start-up and shut-down
excluded, the drain of the cases still running at the end included: `wall s`), the speed-up of 2 workers over 1, the harness overhead: the share of worker wall
time (from the start to each worker's last answer, so a worker idle while another drains its
last case is not counted) spent outside the converter, the source model's run and onnxruntime (that is generation,
materialization, comparison, storage and IPC), the part of that spent outside the case pipeline
(generation in the worker, waiting for the parent, IPC), and the parent's CPU time per case.
Not part of the test suite. Usage: python benchmarks/throughput.py [SECONDS_PER_RUN] [CONVERTER ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fuzzconv.campaign_db import FILENAME, CampaignDB
from fuzzconv.case import CONVERTERS
from fuzzconv.engine import Campaign, CampaignConfig, Stats
from fuzzconv.store import Store

# Pipeline steps that are the tools' own work, not the harness's.
TOOL_STEPS = ("source", "source-float64", "source-second-shape", "convert", "validate", "runtime-load",
              "runtime-run-off", "runtime-run-on", "runtime-second-shape", "toggle-converter-optimize-off",
              "toggle-reference", "toggle-ort-transformers", "localize")
NNSMITH_CASES_PER_S = 34.0  # measured on this machine, see ../shared/FACTS.md
NNSMITH_MAX_NODES = 5  # NNSmith's default graph size (mgen.max_nodes), for a like-for-like line


def run_alone(converter: str, jobs: int, seconds: float, max_nodes: int = 8) -> tuple[Stats, float, float]:
    """A campaign of one converter: its stats, the parent's CPU seconds, and operators per case.
    `stats.worker_wall_s` is the summed time from the start until each worker's last answer."""
    with tempfile.TemporaryDirectory(prefix="fuzzconv-bench-") as folder:
        out = Path(folder)
        config = CampaignConfig(out, (converter,), seconds, seed=1234, jobs=jobs, replays=1, max_nodes=max_nodes,
                                minimize_budget_s=0, progress_every_s=1e9)
        campaign = Campaign(config, Store(out).open(), db=CampaignDB.open(out / FILENAME))
        last_answer = [0.0] * len(campaign.workers)
        for slot, worker in enumerate(campaign.workers):
            worker.collect = _timed(worker.collect, last_answer, slot)  # type: ignore[method-assign]
        cpu = time.process_time()
        stats = campaign.run()
        cpu = time.process_time() - cpu
        stats.worker_wall_s = sum(max(0.0, min(t, stats.ended or t) - stats.started)  # type: ignore[attr-defined]
                                  for t in last_answer)
        with CampaignDB.open(out / FILENAME, readonly=True) as db:
            nodes = db.conn.execute("SELECT AVG(node_count) FROM cases").fetchone()[0] or 0.0
        return stats, cpu, float(nodes)


def _timed(collect: Any, last_answer: list[float], slot: int) -> Any:
    """`collect`, noting when it last returned an answer: a worker whose last case ended before
    another's drain at the end of the run is idle then, which is not harness overhead."""
    def timed() -> Any:
        result = collect()
        if result is not None:
            last_answer[slot] = time.monotonic()
        return result

    return timed


def overhead(stats: Stats, jobs: int) -> tuple[float, float]:
    """(harness share of worker wall time, the part of it spent outside the case pipeline:
    waiting for the parent, IPC, JSON), both as fractions."""
    worker_wall = getattr(stats, "worker_wall_s", 0.0) or jobs * stats.elapsed_s
    if not worker_wall:
        return 0.0, 0.0
    tool = sum(stats.stage_s[step] for step in TOOL_STEPS)
    pipeline = sum(stats.stage_s.values())
    return max(0.0, 1.0 - tool / worker_wall), max(0.0, 1.0 - pipeline / worker_wall)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    converters = tuple(sys.argv[2:]) or CONVERTERS
    print(f"{'converter':14s} {'workers':>7s} {'cases':>7s} {'cases/s':>9s} {'speed-up':>9s} {'harness':>8s} "
          f"{'outside':>8s} {'parent ms/case':>15s} {'ops/case':>9s} {'wall s':>7s}")
    for converter in converters:
        runs = [(converter, 8)] + ([("torch-script", NNSMITH_MAX_NODES)] if converter == "torch-script" else [])
        for name, max_nodes in runs:
            label = name if max_nodes == 8 else f"{name}/{max_nodes}"
            rates: dict[int, float] = {}
            for jobs in (1, 2):
                measure(label, name, jobs, seconds, max_nodes, rates)
            if name == "torch-script":
                print(f"{'':14s} {label} with 2 workers vs NNSmith's {NNSMITH_CASES_PER_S:.0f} cases/s: "
                      f"{rates[2] / NNSMITH_CASES_PER_S:.2f}x; one worker: {rates[1] / NNSMITH_CASES_PER_S:.2f}x")


def measure(label: str, converter: str, jobs: int, seconds: float, max_nodes: int, rates: dict[int, float]) -> None:
    """Run one campaign, print its line, and keep its cases/s in `rates` (for the speed-up)."""
    stats, parent_cpu_s, nodes = run_alone(converter, jobs, seconds, max_nodes)
    cases = sum(stats.cases.values())
    rates[jobs] = cases / stats.elapsed_s
    speed_up = f"{rates[jobs] / rates[1]:.2f}x" if jobs == 2 and rates.get(1) else ""
    harness, outside = overhead(stats, jobs)
    print(f"{label:14s} {jobs:7d} {cases:7d} {rates[jobs]:9.2f} {speed_up:>9s} "
          f"{100 * harness:7.1f}% {100 * outside:7.1f}% {1000 * parent_cpu_s / max(1, cases):15.2f} {nodes:9.2f} {stats.elapsed_s:7.1f}", flush=True)


if __name__ == "__main__":
    main()
