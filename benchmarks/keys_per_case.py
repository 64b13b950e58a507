"""Coverage keys a case carries, and what they cost the parent and the disk, in one campaign.

Runs a campaign of CONVERTER alone, as benchmarks/throughput.py does (replays 1, no
minimizing), and prints its cases/s, the parent's CPU per case, the coverage keys per stored
case, the new coverage rows per case and the database's bytes per case. For an A/B against other code, run this script from the
folder of a checkout of it, with PYTHONPATH set to that folder (the workers import fuzzconv
from the current folder first), alternating with this one: this machine drifts by a fifth
within minutes. Not part of the test suite.
Usage: python benchmarks/keys_per_case.py [CONVERTER] [SECONDS] [JOBS]
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import tempfile
import zlib
from pathlib import Path

import nnsmith_baseline  # beside this script: its scratch folder is the benchmarks' own
from throughput import run_alone  # a campaign of one converter, as the throughput benchmark runs it

from fuzzconv.campaign_db import FILENAME


def main() -> None:
    converter = sys.argv[1] if len(sys.argv) > 1 else "torch-script"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 45.0
    jobs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    scratch = Path(tempfile.mkdtemp(prefix="fuzzconv-keys-", dir=nnsmith_baseline.scratch_root()))
    try:
        stats, cpu, _ = run_alone(converter, jobs, seconds, seed=77, keep_in=scratch)
        (out,) = scratch.iterdir()
        cases = max(1, sum(stats.cases.values()))
        db = sqlite3.connect(f"file:{out / FILENAME}?mode=ro", uri=True)
        rows = db.execute("SELECT COUNT(*) FROM coverage").fetchone()[0]
        per_case = [len(json.loads(zlib.decompress(blob))) for (blob,) in db.execute("SELECT coverage_keys FROM cases")]
        db.close()
        size = sum(path.stat().st_size for path in out.glob(FILENAME + "*"))
        print(f"{converter}, {jobs} workers, {seconds:g}s: {cases / seconds:.1f} cases/s, parent "
              f"{1000 * cpu / cases:.3f} ms a case, {sum(per_case) / max(1, len(per_case)):.1f} keys a case, "
              f"{rows / cases:.1f} new coverage rows a case, database {size / cases:.0f} B a case", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    os._exit(0)  # the campaign's worker processes are gone; skip the frameworks' slow teardown


if __name__ == "__main__":
    main()
