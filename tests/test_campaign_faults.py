"""Long-campaign robustness: real segfaults and hangs, SIGKILL of the main process and resume."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fuzz(out, seconds, extra_env=None, extra_args=()):
    env = {**os.environ, "PYTHONPATH": ROOT, **(extra_env or {})}
    return [sys.executable, "-m", "fuzzconv.cli", "fuzz", "-j", "1", "--converter", "torch-script", "--time",
            f"{seconds}s", "--seed", "9", "--minimize-budget", "0", "--replays", "1", "--out", str(out),
            *extra_args], env


def test_segfault_and_hang_are_recorded_and_the_campaign_goes_on(tmp_path):
    out = tmp_path / "faults"
    argv, env = fuzz(out, 40, {"FUZZCONV_WORKER_PLUGIN": "tests.fault_converters"}, ("--case-timeout", "3s"))
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    titles = {p.read_text().strip() for p in (out / "crashes").glob("*/title.txt")}
    assert "torch/script: conversion: abort: signal SIGSEGV" in titles, titles
    assert "torch/script: conversion: hang: time limit" in titles, titles
    rows = sqlite3.connect(out / "campaign.sqlite").execute(
        "SELECT status, COUNT(*) FROM cases GROUP BY status").fetchall()
    assert dict(rows).get("pass", 0) > 10, rows  # fuzzing went on after the faults


def test_a_workers_log_stays_bounded_however_much_the_frameworks_print(tmp_path):
    """Each job prints 3 kB past Python (tests/chatty_worker.py, limit 20 kB): the log is cut
    back to its newest lines as it passes the limit, and the campaign goes on."""
    out = tmp_path / "chatty"
    journal = tmp_path / "journal.txt"
    argv, env = fuzz(out, 12, {"FUZZCONV_WORKER_PLUGIN": "tests.chatty_worker", "CHATTY_JOURNAL": str(journal)})
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    log = out / ".fuzzconv-fuzz-torch-0.log"
    text = log.read_text()
    assert "this log passed 20000 bytes" in text
    assert log.stat().st_size <= 20_000  # checked after each job; the worker stops after its last check
    printed = journal.read_text().split()
    kept = re.findall(r"^job (\S+) ", text, re.MULTILINE)
    assert len(printed) > 10 and 0 < len(kept) < len(printed), (len(printed), kept)
    assert kept == printed[-len(kept):]  # the newest lines kept, in order; the oldest cut


def _rows(db):
    if not db.exists():
        return []
    try:
        connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return connection.execute("SELECT case_id, generation_index FROM cases").fetchall()
        finally:
            connection.close()
    except sqlite3.OperationalError:  # not created yet, or busy
        return []


def test_sigkill_then_resume_loses_nothing_and_stores_nothing_twice(tmp_path):
    out = tmp_path / "killed"
    argv, env = fuzz(out, 120)
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = out / "campaign.sqlite"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_rows(db)) < 60:
        time.sleep(0.5)
    before = _rows(db)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert len(before) >= 60
    argv, env = fuzz(out, 10)
    resumed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _rows(db)
    ids = [case_id for case_id, _ in after]
    indices = [index for _, index in after]
    assert len(ids) == len(set(ids)), "a case was stored twice"
    assert None not in indices, "a case of the seed stream was stored without its index"
    assert len(indices) == len(set(indices)), "a seed was used twice"
    assert set(before) <= set(after), "a completed case was lost"
    assert len(after) > len(before), "the resumed run added new cases"
    assert "cases from earlier runs" in resumed.stdout


def test_foreign_database_is_refused_untouched(tmp_path):
    out = tmp_path / "foreign"
    out.mkdir()
    foreign = out / "campaign.sqlite"
    connection = sqlite3.connect(foreign)
    connection.execute("CREATE TABLE invoices (id INTEGER)")
    connection.commit()
    connection.close()
    before = foreign.read_bytes()
    argv, env = fuzz(out, 5)
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "not a fuzzconv campaign database" in run.stderr and "--out" in run.stderr
    assert foreign.read_bytes() == before
    assert json.dumps(sorted(p.name for p in out.iterdir())) == json.dumps(["campaign.sqlite", "corpus", "crashes"])


def test_a_disk_running_low_stops_the_campaign_cleanly_and_it_resumes(tmp_path, monkeypatch):
    """Before a full disk fails a write, the campaign stops starting cases, records those in
    flight, says why; the same command later resumes it."""
    from fuzzconv import engine
    from fuzzconv.campaign_db import CampaignDB
    from fuzzconv.store import Store

    out = tmp_path / "low-disk"
    free = iter([5000] * 3)  # MB free at the first three checks, then 100
    monkeypatch.setattr(engine, "DISK_CHECK_EVERY_S", 1.0)
    monkeypatch.setattr(engine, "free_disk_mb", lambda folder: next(free, 100))

    def run(budget_s: float):
        config = engine.CampaignConfig(out, ("torch-script",), budget_s, seed=5, jobs=1, replays=1,
                                       minimize_budget_s=0, progress_every_s=1e9, min_free_mb=1000)
        db = CampaignDB.open(out / "campaign.sqlite")
        stats = engine.Campaign(config, Store(out).open(), db=db).run()
        with CampaignDB.open(out / "campaign.sqlite", readonly=True) as reader:
            rows = reader.conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
        return stats, rows

    stats, rows = run(300)
    assert "100 MB free, less than --min-free-disk 1000 MB" in stats.stopped_for and "resume" in stats.stopped_for
    assert 2 < stats.elapsed_s < 30  # stopped at the fourth check, not after 300 s
    assert rows == sum(stats.cases.values()) > 0  # every case run, those in flight included, is stored
    free = iter([5000] * 1000)
    resumed, rows_after = run(3)
    assert not resumed.stopped_for and resumed.carried_cases == rows and rows_after > rows


def test_a_full_disk_mid_campaign_stops_it_cleanly_keeping_what_was_stored(tmp_path, monkeypatch):
    """SQLite raising 'database or disk is full' (what a full disk does to a commit) stops the
    campaign with the reason, instead of a traceback; every row committed before stays."""
    import sqlite3 as sqlite

    from fuzzconv import engine
    from fuzzconv.campaign_db import CampaignDB
    from fuzzconv.store import Store

    out = tmp_path / "full"
    calls = {"n": 0}
    real = CampaignDB.record_case

    def record_case(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 20:
            raise sqlite.OperationalError("database or disk is full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(CampaignDB, "record_case", record_case)
    config = engine.CampaignConfig(out, ("torch-script",), 300, seed=6, jobs=1, replays=1, minimize_budget_s=0,
                                   progress_every_s=1e9)
    stats = engine.Campaign(config, Store(out).open(), db=CampaignDB.open(out / "campaign.sqlite")).run()
    assert "database or disk is full" in stats.stopped_for and "resume" in stats.stopped_for
    assert stats.elapsed_s < 60 and stats.unstored >= 1
    with CampaignDB.open(out / "campaign.sqlite", readonly=True) as db:
        assert db.conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 20
        assert db.conn.execute("SELECT ended FROM runs").fetchone()[0] is not None
