"""The Ray engine runs a real campaign on a local Ray head bound to 127.0.0.1."""

import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest

from tests.test_campaign_faults import fuzz  # the local fault test's command

pytestmark = pytest.mark.slow


def test_ray_campaign_records_cases(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "campaign"
    run = subprocess.run(
        [sys.executable, "-m", "fuzzconv.cli", "fuzz", "--engine", "ray", "-j", "1", "--converter", "torch-script",
         "--time", "20s", "--seed", "1", "--minimize-budget", "0", "--replays", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "torch-script" in run.stdout
    buckets = list((out / "crashes").glob("*/stats.json"))
    assert buckets, run.stdout[-2000:]
    stats = json.loads(buckets[0].read_text())
    assert stats["hits"] >= 1 and stats["converter"] == "torch-script"
    assert list((out / "corpus" / "torch-script").glob("*.json"))


def test_a_ray_worker_that_segfaults_or_hangs_is_recorded_at_its_step_and_the_campaign_goes_on(tmp_path):
    """The fault converter of the local fault test, in the worker process an actor supervises:
    the actor survives, files each lost case at the step its worker reported, with the time
    spent in it, and the driver sees the worker's restarts."""
    pytest.importorskip("ray")
    out = tmp_path / "faults"
    argv, env = fuzz(out, 40, {"FUZZCONV_WORKER_PLUGIN": "tests.fault_converters"},
                     ("--case-timeout", "3s", "--engine", "ray"))
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    titles = {p.read_text().strip() for p in (out / "crashes").glob("*/title.txt")}
    assert "torch/script: conversion: abort: signal SIGSEGV" in titles, titles
    assert "torch/script: conversion: hang: time limit" in titles, titles
    db = sqlite3.connect(out / "campaign.sqlite")
    lost = db.execute("SELECT symptom, timings, total_s FROM cases WHERE symptom IN ('abort', 'hang')").fetchall()
    assert {symptom for symptom, _, _ in lost} == {"abort", "hang"}
    for symptom, timings, total_s in lost:
        in_step = json.loads(timings)
        assert list(in_step) == ["convert"], (symptom, in_step)
        assert in_step["convert"] <= total_s + 1e-6
        if symptom == "hang":
            assert in_step["convert"] >= 2.5  # the 3 s limit, less the step's start after the case's
    rows = dict(db.execute("SELECT status, COUNT(*) FROM cases GROUP BY status").fetchall())
    assert rows.get("pass", 0) > 10, rows  # fuzzing went on after the faults
    restarts = [int(n) for n in re.findall(r"worker restarts (\d+)", run.stdout)]
    assert restarts and max(restarts) > 0, run.stdout[-2000:]  # the actor's own restarts reach the driver


def test_the_jobs_queued_behind_a_lost_actor_go_to_its_replacement(tmp_path):
    """A job prefetched to an actor that is then SIGKILLed is sent again to the new actor, and
    its worker makes the case there (unguided here, so the case of its seed); the lost one is
    recorded as an abort, against the case of its seed."""
    pytest.importorskip("ray")
    import signal
    import time

    from fuzzconv.engine import CampaignConfig
    from fuzzconv.fuzz_job import fuzz_job, stand_in_case
    from fuzzconv.ray_engine import RayEngine

    engine = RayEngine(CampaignConfig(tmp_path, ("torch-script",), 30, seed=1, jobs=1))
    try:
        handle = engine.handle("torch", "fuzz")
        handle.start()
        pid = engine.ray.get(handle.actor.ready.remote())
        lost_job, queued_job = fuzz_job("torch-script", 0, 11, None, 4, False), fuzz_job("torch-script", 1, 12, None, 4, False)
        handle.submit_fuzz(lost_job)
        assert handle.can_prefetch
        handle.prefetch(queued_job)
        os.kill(pid, signal.SIGKILL)
        results = []
        deadline = time.monotonic() + 240
        while len(results) < 2 and time.monotonic() < deadline:
            handle.wait_any([handle], 1.0)
            result = handle.collect()
            if result is not None:
                results.append(result)
        assert len(results) == 2, results
        first, second = results
        assert (first.index, first.outcome.symptom) == (0, "abort")
        assert "actor died" in first.outcome.message and first.case.id == stand_in_case(lost_job).id
        assert second.index == 1 and second.case.id == stand_in_case(queued_job).id
        assert second.outcome.symptom != "abort", second.outcome
        assert second.keys and any(key.startswith("onnx:torch-script:") for key in second.keys)  # made in the worker
        assert handle.restarts == 1 and handle.aborts == 1
        handle.stop()
    finally:
        engine.shutdown()


def test_an_actor_is_told_all_covered_sequences_with_its_first_fuzz_job_then_only_what_is_new(tmp_path):
    """What the driver sends with each job (the actor's calls recorded); the actor's side of it,
    `SeenSequences.load`, is tested in test_seen."""
    from types import SimpleNamespace

    from fuzzconv.engine import CampaignConfig
    from fuzzconv.fuzz_job import fuzz_job
    from fuzzconv.ray_engine import RayWorkerHandle
    from fuzzconv.seen import SeenSequences

    sent = []
    actor = SimpleNamespace(run=SimpleNamespace(remote=lambda job: sent.append(job) or len(sent)))
    engine = SimpleNamespace(ray=None, config=CampaignConfig(tmp_path, ("torch-script",), 30, seed=1, jobs=1))
    handle = RayWorkerHandle(engine, "torch", 1.0)  # type: ignore[arg-type]
    seen = SeenSequences("torch")
    seen.add_keys(["edge:torch:relu>tanh"])
    handle.seen = seen
    handle.actor = actor
    handle.submit_fuzz(fuzz_job("torch-script", 0, 11, None, 4, True))
    seen.add_keys(["edge:torch:tanh>exp", "edge:torch:relu>tanh"])
    handle.prefetch(fuzz_job("torch-script", 1, 12, None, 4, True))
    first, second = sent
    copy = SeenSequences("torch")
    copy.load(first["seen_snapshot"])
    assert ("relu", "tanh") in copy and ("tanh", "exp") not in copy and "learned" not in first
    assert "seen_snapshot" not in second and len(second["learned"]) == 1
    copy.load(b"", second["learned"])
    assert bytes(copy.bits) == bytes(seen.bits)
    # Jobs dropped unstarted (time is up) take their news with them: the next job has it all.
    handle.ray = SimpleNamespace(cancel=lambda ref: None)
    handle.drop_queued()
    handle.job = None
    handle.submit_fuzz(fuzz_job("torch-script", 2, 13, None, 4, True))
    assert "seen_snapshot" in sent[-1]
