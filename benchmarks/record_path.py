"""The parent's cost of recording a case, and the database bytes it leaves, from a stored campaign.

Reads every case row of CAMPAIGN's database (a copy of it, migrated to this code's schema, so
the campaign is left as it was), turns each back into the answer a worker sent for it (fuzzconv.fuzz_job.done_payload), and
feeds the answers one loop turn at a time through a fresh campaign's record path (decoding the
answer, the database row and its coverage, bucket and corpus files) in a temporary folder
(under .bench/scratch, as benchmarks/throughput.py's campaigns).
Prints the parent's CPU per case and the new database's bytes per case by table (SQLite's
dbstat). No worker runs, so two versions of the code can be compared on the same answers:
run it with PYTHONPATH set to each checkout, on a campaign written by the older of the two
(a newer schema is refused by older code), alternating (this machine drifts within minutes).
Not part of the test suite.
Usage: python benchmarks/record_path.py CAMPAIGN_FOLDER
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nnsmith_baseline  # beside this script
from storage import table_bytes

from fuzzconv import campaign_db
from fuzzconv.campaign_db import FILENAME, CampaignDB
from fuzzconv.case import Case, Outcome
from fuzzconv.engine import Campaign, CampaignConfig
from fuzzconv.fuzz_job import done_payload, fuzz_job
from fuzzconv.store import Store
from fuzzconv.workers import answer_result


def stored_answers(folder: Path, scratch: Path) -> list[bytes]:
    """Each stored case as a worker's pickled answer, read from a migrated copy of the database."""
    copy = scratch / FILENAME
    shutil.copyfile(folder / FILENAME, copy)
    answers = []
    with CampaignDB.open(copy) as db:
        for index, row in enumerate(db.iter_cases()):
            case = Case.from_json(row["case"])
            data = done_payload(case, case.canonical_text, Outcome.from_json(row["outcome"]), index)
            answers.append(pickle.dumps(("fuzzed", {**data, "cpu_s": 0.0})))
    return answers


def main() -> None:
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / FILENAME).is_file():
        sys.exit(f"usage: python benchmarks/record_path.py CAMPAIGN_FOLDER (a folder holding {FILENAME})")
    scratch = Path(tempfile.mkdtemp(prefix="fuzzconv-record-", dir=nnsmith_baseline.scratch_root()))
    try:
        answers = stored_answers(Path(sys.argv[1]), scratch)
        out = scratch / "out"
        config = CampaignConfig(out, ("torch-script",), 1.0, seed=1, jobs=1, replays=1, minimize_budget_s=0,
                                progress_every_s=1e9)
        campaign = Campaign(config, Store(out).open(), db=CampaignDB.open(out / FILENAME))
        campaign._resume()
        campaign.store.defer_hits = True  # as in a campaign's loop
        job = fuzz_job("torch-script", 0, 1, None, 8, True)
        cpu = time.process_time()
        for blob in answers:
            kind, data = pickle.loads(blob)
            campaign._dispatch_all([(("case", "torch-script"), answer_result(kind, data, job, None, 0.0))])
        campaign.store.flush()
        cpu = time.process_time() - cpu
        assert campaign.db is not None
        campaign.db.close()
        cases = max(1, len(answers))
        sizes = table_bytes(out / FILENAME)
        print(f"schema {campaign_db.SCHEMA_VERSION}: {len(answers)} answers, parent CPU {1000 * cpu / cases:.3f} ms "
              f"a case; database {sum(sizes.values()) / cases:.0f} B a case: "
              + ", ".join(f"{name} {size / cases:.0f}" for name, size in sorted(sizes.items(), key=lambda i: -i[1])
                          if size / cases >= 10))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    os._exit(0)


if __name__ == "__main__":
    main()
