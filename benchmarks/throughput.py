"""Throughput and harness overhead: each converter alone, with 1 and with 2 workers.

Prints cases/s (wall clock), the speed-up of 2 workers over 1, and the harness overhead: the
share of worker wall time spent outside the converter, the source model's run and onnxruntime
(that is generation, materialization, comparison, storage and IPC), and the part of that spent
outside the case pipeline (waiting for the parent, IPC). Not part of the test suite. Usage: python benchmarks/throughput.py [SECONDS_PER_RUN] [CONVERTER ...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from fuzzconv.case import CONVERTERS
from fuzzconv.engine import Campaign, CampaignConfig, Stats
from fuzzconv.store import Store

# Pipeline steps that are the tools' own work, not the harness's.
TOOL_STEPS = ("source", "source-float64", "source-second-shape", "convert", "validate", "runtime-load",
              "runtime-run-off", "runtime-run-on", "runtime-second-shape", "toggle-converter-optimize-off",
              "toggle-reference", "toggle-ort-transformers", "localize")
NNSMITH_CASES_PER_S = 34.0  # measured on this machine, see ../shared/FACTS.md


def run_alone(converter: str, jobs: int, seconds: float) -> Stats:
    with tempfile.TemporaryDirectory(prefix="fuzzconv-bench-") as folder:
        config = CampaignConfig(Path(folder), (converter,), seconds, seed=1234, jobs=jobs, replays=1,
                                minimize_budget_s=0, progress_every_s=1e9)
        return Campaign(config, Store(Path(folder)).open()).run()


def overhead(stats: Stats, jobs: int) -> tuple[float, float]:
    """(harness share of worker wall time, the part of it spent outside the case pipeline:
    waiting for the parent, IPC, JSON), both as fractions."""
    worker_wall = jobs * stats.elapsed_s
    if not worker_wall:
        return 0.0, 0.0
    tool = sum(stats.stage_s[step] for step in TOOL_STEPS)
    pipeline = sum(stats.stage_s.values())
    return max(0.0, 1.0 - tool / worker_wall), max(0.0, 1.0 - pipeline / worker_wall)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    converters = tuple(sys.argv[2:]) or CONVERTERS
    print(f"{'converter':14s} {'workers':>7s} {'cases':>7s} {'cases/s':>9s} {'speed-up':>9s} {'harness':>8s} "
          f"{'outside':>8s}")
    for converter in converters:
        rates = {}
        for jobs in (1, 2):
            stats = run_alone(converter, jobs, seconds)
            cases = sum(stats.cases.values())
            rates[jobs] = cases / stats.elapsed_s
            speed_up = f"{rates[jobs] / rates[1]:.2f}x" if jobs == 2 and rates[1] else ""
            harness, outside = overhead(stats, jobs)
            print(f"{converter:14s} {jobs:7d} {cases:7d} {rates[jobs]:9.2f} {speed_up:>9s} "
                  f"{100 * harness:7.1f}% {100 * outside:7.1f}%")
        if converter == "torch-script":
            print(f"{'':14s} torch-script with 2 workers vs NNSmith's {NNSMITH_CASES_PER_S:.0f} cases/s: "
                  f"{rates[2] / NNSMITH_CASES_PER_S:.2f}x")


if __name__ == "__main__":
    main()
