"""What a long campaign writes to disk: database bytes per case (per table) and corpus files.

Runs a two-worker torch-script campaign (the settings of benchmarks/throughput.py) for SECONDS in a temporary
folder, then prints the database's bytes per case by table (SQLite's dbstat), the coverage keys
reached, the corpus files written and the disk they take, and what that comes to in a day at
the rates of the run's last quarter. For a ratio in the same run, the campaign's rows are also written again the
way schema 2 stored them (plain JSON coverage keys, the whole outcome in outcome_json, a coverage
table with a unique index on the key) into a second file. Not part of the test suite.
Usage: python benchmarks/storage.py [SECONDS]
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from fuzzconv import campaign_db
from fuzzconv.campaign_db import FILENAME, CampaignDB
from fuzzconv.case import canonical_json
from fuzzconv.engine import Campaign, CampaignConfig
from fuzzconv.store import Store

DAY_S = 86400.0


def table_bytes(path: Path) -> dict[str, int]:
    """Bytes of each table with its indexes, read with dbstat."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables = {name: table for name, table in conn.execute("SELECT name, tbl_name FROM sqlite_master")}
        sizes: dict[str, int] = {}
        for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            owner = tables.get(name) or name.removeprefix("sqlite_autoindex_").rsplit("_", 1)[0]
            sizes[owner] = sizes.get(owner, 0) + int(size)
        return sizes
    finally:
        conn.close()


def schema_two_copy(source: Path, target: Path) -> None:
    """The source database's rows as schema 2 wrote them: plain JSON, whole outcome, indexed coverage."""
    dumps = campaign_db._dumps
    conn = sqlite3.connect(target)
    for statement in campaign_db._SCHEMA:
        conn.execute(statement)
    conn.execute("ALTER TABLE cases ADD COLUMN coverage_keys TEXT NOT NULL DEFAULT '[]'")
    with CampaignDB.open(source, readonly=True) as db:
        conn.executemany("INSERT INTO coverage VALUES (?, ?, ?)",
                         db.conn.execute("SELECT key, first_case_id, first_seen FROM coverage"))
        conn.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", db.conn.execute("SELECT * FROM runs"))
        rows = []
        for row in db.iter_cases():
            outcome = row["outcome"]
            rows.append((row["case_id"], row["run_id"], row["generation_index"], row["data_seed"], row["converter"],
                         row["frontend"], row["opset"], row["status"], row["stage"], row["symptom"], row["title"],
                         row["decided_by"], dumps(row["timings"]), row["total_s"], dumps(row["source_ops"]),
                         dumps(row["onnx_ops"]), dumps(row["coverage_keys"]), row["node_count"],
                         dumps(row["versions"]), row["finished"], canonical_json(row["case"]),
                         dumps(outcome)))
        columns = ", ".join(campaign_db.PLAIN_CASE_COLUMNS)
        conn.executemany(f"INSERT INTO cases ({columns}) VALUES ({', '.join('?' * len(campaign_db.PLAIN_CASE_COLUMNS))})",
                         rows)
    conn.commit()
    conn.close()


def corpus_disk(folder: Path, since: float) -> tuple[int, int, int, int]:
    """(files, bytes of content, bytes of disk blocks, files written after `since`) under `folder`."""
    files = content = disk = late = 0
    for root, _, names in os.walk(folder):
        for name in names:
            info = os.stat(os.path.join(root, name))
            files, content, disk = files + 1, content + info.st_size, disk + info.st_blocks * 512
            late += info.st_mtime >= since
    return files, content, disk, late


def keys_since(path: Path, since: str) -> int:
    with CampaignDB.open(path, readonly=True) as db:
        return int(db.conn.execute("SELECT COUNT(*) FROM coverage WHERE first_seen >= ?", (since,)).fetchone()[0])


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0
    with tempfile.TemporaryDirectory(prefix="fuzzconv-storage-") as folder:
        out = Path(folder) / "out"
        config = CampaignConfig(out, ("torch-script",), seconds, seed=1234, jobs=2, replays=1,
                                minimize_budget_s=0, progress_every_s=1e9)
        campaign = Campaign(config, Store(out).open(), db=CampaignDB.open(out / FILENAME))
        cpu = time.process_time()
        stats = campaign.run()
        wall_started = time.time() - (time.monotonic() - stats.started)
        cpu = time.process_time() - cpu
        cases = sum(stats.cases.values())
        per_day = DAY_S / stats.elapsed_s
        print(f"{cases} cases in {stats.elapsed_s:.0f} s ({cases / stats.elapsed_s:.1f} c/s), parent CPU "
              f"{1000 * cpu / max(1, cases):.2f} ms/case, {stats.coverage_count} coverage keys")
        now = table_bytes(out / FILENAME)
        old_path = Path(folder) / "schema2.sqlite"
        schema_two_copy(out / FILENAME, old_path)
        old = table_bytes(old_path)
        for name in sorted(set(now) | set(old), key=lambda n: -now.get(n, 0)):
            if max(now.get(name, 0), old.get(name, 0)) < 64 * 1024:
                continue
            print(f"  {name:10s} schema {campaign_db.SCHEMA_VERSION}: {now.get(name, 0) / cases:8.0f} B/case   "
                  f"schema 2: {old.get(name, 0) / cases:8.0f} B/case")
        total_now, total_old = sum(now.values()), sum(old.values())
        print(f"  database   schema {campaign_db.SCHEMA_VERSION}: {total_now / cases:8.0f} B/case   schema 2: "
              f"{total_old / cases:8.0f} B/case   ratio {total_old / max(1, total_now):.2f}x")
        # New coverage keys and corpus files slow down as a campaign goes on: a day is projected
        # from the rates of the run's last quarter (still an overestimate), rows from the whole run.
        quarter_s = stats.elapsed_s / 4
        late_keys = keys_since(out / FILENAME, utc_iso(wall_started + 3 * quarter_s))
        key_bytes = now.get("coverage", 0) / max(1, stats.coverage_count)
        day_gb = (now.get("cases", 0) / cases * cases * per_day + key_bytes * late_keys * DAY_S / quarter_s) / 1e9
        print(f"  coverage   {late_keys / quarter_s * 60:.0f} new keys/min in the last quarter, "
              f"{key_bytes:.0f} B each; a day at these rates: about {day_gb:.0f} GB")
        files, content, disk, late = corpus_disk(out / "corpus", wall_started + 3 * quarter_s)
        print(f"  corpus     {files} files ({100 * stats.corpus_saved / max(1, cases):.0f} % of cases), "
              f"{content / max(1, files):.0f} B each, {disk / max(1, files):.0f} B of disk each; "
              f"{late / quarter_s * 60:.0f} files/min in the last quarter, so at most "
              f"{late * DAY_S / quarter_s / 1e6:.2f} M files a day")


def utc_iso(epoch_s: float) -> str:
    """A time in the database's format (UTC ISO-8601 with milliseconds)."""
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


if __name__ == "__main__":
    main()
