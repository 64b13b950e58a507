"""Cases per second per converter in one campaign run, and each converter's cost relative to TorchScript.

Not part of the pass/fail suite. Usage: python benchmarks/throughput.py [SECONDS]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from fuzzconv.case import CONVERTERS
from fuzzconv.engine import Campaign, CampaignConfig, summary_rows
from fuzzconv.store import Store


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    with tempfile.TemporaryDirectory(prefix="fuzzconv-bench-") as folder:
        config = CampaignConfig(Path(folder), CONVERTERS, seconds, seed=1234, progress_every_s=1e9)
        stats = Campaign(config, Store(Path(folder)).open()).run()
    rows = {row["converter"]: row for row in summary_rows(stats, CONVERTERS)}
    baseline = float(rows["torch-script"]["cases_per_s"]) or 1.0
    print(f"{'converter':14s} {'cases':>7s} {'cases/s':>9s} {'cost vs torch-script':>22s}")
    for name, row in rows.items():
        rate = float(row["cases_per_s"])
        ratio = baseline / rate if rate else float("inf")
        print(f"{name:14s} {row['cases']:7d} {rate:9.2f} {ratio:21.1f}x")
    total = sum(int(r["cases"]) for r in rows.values())
    print(f"all converters: {total / stats.elapsed_s:.2f} cases/s over {stats.elapsed_s:.0f}s wall time")


if __name__ == "__main__":
    main()
