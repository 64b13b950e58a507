"""The parent's memory over a two-worker torch-script campaign, with a given in-memory coverage cap.

Runs the campaign of benchmarks/throughput.py (database and store in a temporary folder) with
`fuzzconv.engine.COVERAGE_IN_MEMORY` set to CAP, samples the parent's resident memory every 20 s,
and prints it with the coverage reached and how much of it memory held. Run it once with a low
cap and once with a high one to compare. Not part of the test suite.
Usage: python benchmarks/coverage_memory.py [CAP] [SECONDS]
"""

from __future__ import annotations

import sys
import threading
import time

from throughput import run_alone

from fuzzconv import engine


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    engine.COVERAGE_IN_MEMORY = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 180.0
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(round(rss_mb()))
            done.wait(20)

    threading.Thread(target=sample, daemon=True).start()
    started = time.monotonic()
    stats, _, _ = run_alone("torch-script", 2, seconds)
    done.set()
    cases = sum(stats.cases.values())
    print(f"cap {engine.COVERAGE_IN_MEMORY}: {cases} cases in {time.monotonic() - started:.0f} s "
          f"({cases / stats.elapsed_s:.1f} c/s), coverage keys {stats.coverage_count}, in memory "
          f"{len(stats.coverage)}; parent RSS MB every 20 s: {samples}")


if __name__ == "__main__":
    main()
