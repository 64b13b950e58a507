"""Isolation: a worker that hangs or dies becomes a hang/abort outcome at its last stage."""

import json
import time

import pytest

from fuzzconv.coverage import coverage_keys
from fuzzconv.fuzz_job import Knowledge, fuzz_job, make_case
from fuzzconv.generate import generate_case
from fuzzconv.seen import SeenSequences
from fuzzconv.workers import WorkerHandle, case_job
from tests.fault_workers import (
    IN_STEP_S,
    aborting_worker,
    answering_then_aborting_worker,
    hanging_worker,
    publishing_aborting_worker,
    stepping_then_answering_then_aborting_worker,
)


def _run_one(worker, case, limit_s=60):
    worker.start()
    worker.submit(case)
    end = time.monotonic() + limit_s
    try:
        while time.monotonic() < end:
            result = worker.collect()
            if result is not None:
                return result
            worker.conn.poll(0.1)
    finally:
        worker.stop()
    raise AssertionError("no result")


def test_hang_is_recorded_at_last_stage_and_worker_replaced():
    case = generate_case(1, "torch-script")
    worker = WorkerHandle("torch", case_timeout_s=1.5, target=hanging_worker)
    result = _run_one(worker, case)
    assert result.outcome.symptom == "hang"
    assert result.outcome.stage == "conversion"
    assert result.outcome.title == "torch/script: conversion: hang: time limit"
    assert worker.hangs == 1 and worker.restarts == 1


def test_abort_is_recorded_with_signal():
    case = generate_case(2, "tf2onnx")
    worker = WorkerHandle("keras", case_timeout_s=30, target=aborting_worker)
    result = _run_one(worker, case)
    assert result.outcome.symptom == "abort"
    assert result.outcome.stage == "runtime-optimization"
    assert result.outcome.title == "keras/tf2onnx: runtime-optimization: abort: signal SIGABRT"
    assert worker.aborts == 1


def test_fuzz_refuses_an_interpreter_that_is_not_one(tmp_path, capsys):
    from fuzzconv.cli import main

    code = main(["fuzz", "--python", str(tmp_path / "nope" / "python"), "--time", "5s", "--out", str(tmp_path)])
    assert code == 2
    assert "no such interpreter" in capsys.readouterr().err
    assert not (tmp_path / "campaign.sqlite").exists()


@pytest.mark.slow
def test_fuzz_runs_its_workers_under_another_environment(tmp_path):
    """A candidate environment with an older onnxruntime: the campaign's cases ran under it."""
    import sqlite3

    from fuzzconv.candidate_env import env_python, make_candidate
    from fuzzconv.cli import main

    make_candidate(tmp_path / "env", ["onnxruntime==1.20.1"])
    out = tmp_path / "campaign"
    code = main(["fuzz", "--python", str(env_python(tmp_path / "env")), "--converter", "torch-script", "-j", "1",
                 "--time", "10s", "--seed", "3", "--minimize-budget", "0", "--replays", "1", "--out", str(out)])
    assert code == 0
    with sqlite3.connect(out / "campaign.sqlite") as db:
        versions = {row[0] for row in db.execute("SELECT versions FROM cases")}
    # a case that failed before onnxruntime was imported in its worker records no onnxruntime version
    seen = {json.loads(v).get("onnxruntime") for v in versions} - {None}
    assert seen == {"1.20.1"}


def _results(worker, count, limit_s=120):
    results, end = [], time.monotonic() + limit_s
    while len(results) < count and time.monotonic() < end:
        result = worker.collect() if worker.busy else None
        if result is not None:
            results.append(result)
        else:
            worker.conn.poll(0.05)
    return results


def test_prefetched_cases_run_in_order_and_survive_their_worker_dying():
    cases = [generate_case(seed, "torch-script") for seed in (1, 2, 3)]
    worker = WorkerHandle("torch")
    worker.start()
    try:
        worker.submit(cases[0])
        for case in cases[1:]:
            assert worker.can_prefetch
            worker.prefetch(case_job(case), case)
        assert not worker.can_prefetch  # PREFETCH_DEPTH jobs are queued
        results = _results(worker, 3)
        assert [r.case.id for r in results] == [c.id for c in cases]
        assert all(r.outcome is not None and r.outcome.case_id == r.case.id for r in results)
    finally:
        worker.stop()

    dying = WorkerHandle("torch", target=aborting_worker)
    dying.start()
    try:
        dying.submit(cases[0])
        for case in cases[1:]:
            dying.prefetch(case_job(case), case)
        results = _results(dying, 3)
        # the queued cases went down the dead process's pipe: they were sent again to the new one
        assert [(r.case.id, r.outcome.symptom) for r in results] == [(c.id, "abort") for c in cases]
        assert dying.restarts == 3
    finally:
        dying.stop()


def test_after_a_death_the_queued_job_goes_to_the_new_process_before_the_next_spare_starts():
    """Starting a process waits for the fork server's fork (milliseconds of a large process's
    page tables): the replacement takes the queued job first, so it does not wait for that."""
    cases = [generate_case(seed, "torch-script") for seed in (1, 2)]
    worker = WorkerHandle("torch", keep_spare=True, target=aborting_worker)
    worker.start()
    started_with_a_job: list[bool] = []
    new_process = worker._new_process

    def tracked():
        started_with_a_job.append(worker.job is not None)
        return new_process()

    worker._new_process = tracked  # type: ignore[method-assign]
    try:
        worker.submit(cases[0])
        worker.prefetch(case_job(cases[1]), cases[1])
        [lost] = _results(worker, 1)
        assert lost.outcome.symptom == "abort" and lost.case.id == cases[0].id
        # the replacement (no spare stood yet), then the spare, started once the queued job was current
        assert started_with_a_job == [False, True]
        assert worker.case.id == cases[1].id and worker.spare is not None
    finally:
        worker.stop()


def test_a_recycle_swaps_in_a_process_started_ahead_of_time():
    """The replacement is started before the recycle is due, so the next case waits for no import."""
    cases = [generate_case(seed, "torch-script") for seed in range(4)]
    worker = WorkerHandle("torch", recycle_after=3)
    worker.start()
    try:
        first_pid, spare_pids = worker.process.pid, []
        for case in cases:
            worker.submit(case)
            assert len(_results(worker, 1)) == 1
            spare_pids.append(worker.spare.process.pid if worker.spare else None)
        assert spare_pids[:2] == [None, spare_pids[1]] and spare_pids[1] is not None
        assert worker.recycles == 1 and worker.restarts == 0
        assert worker.process.pid == spare_pids[1] != first_pid  # the spare became the worker
        assert worker.proc.ready  # it had finished importing while the old process ran its last case
    finally:
        worker.stop()


def test_a_fuzz_job_makes_its_case_in_the_worker_with_the_campaigns_shared_knowledge():
    """The worker makes the same case the job names in-process, from the sequences the parent
    marked in shared memory after the worker had started, runs it and sends its coverage keys."""
    job = fuzz_job("torch-script", 7, 1234, None, 8, True)
    plain = make_case(dict(job), Knowledge())
    learned = sorted(coverage_keys(plain, None))  # steer the guide away from what it made unguided
    local = Knowledge()
    local.sequences("torch").add_keys(learned)
    expected = make_case(dict(job), local)
    assert expected != plain  # the knowledge changes the case, so the test below can fail
    seen = SeenSequences.shared("torch")
    worker = WorkerHandle("torch", seen=seen)
    worker.start()
    try:
        seen.add_keys(learned)  # after the process started: it reads the parent's memory, not a copy
        worker.submit_fuzz(job)
        assert worker.case is None  # the parent does not know the case until the worker says
        [result] = _results(worker, 1)
    finally:
        worker.stop()
    assert result.case == expected and result.index == 7
    assert result.outcome is not None and result.outcome.case_id == expected.id
    assert f"op:torch:{expected.graph.nodes[0].op}" in result.keys
    assert 0 < result.cpu_s < result.elapsed_s + 0.5  # the worker's own CPU time, for benchmarks


def test_a_worker_lost_on_a_fuzz_job_is_recorded_against_the_case_it_made():
    job = fuzz_job("torch-script", 3, 99, None, 8, True)
    expected = make_case(dict(job), Knowledge())
    worker = WorkerHandle("torch", target=publishing_aborting_worker)
    worker.start()
    try:
        worker.submit_fuzz(job)
        [result] = _results(worker, 1)
    finally:
        worker.stop()
    assert result.case == expected
    assert (result.outcome.symptom, result.outcome.stage) == ("abort", "conversion")
    assert result.outcome.case_id == expected.id
    assert result.index == 3  # its seed is used: a resumed campaign never reruns it
    # the time it spent in the step it died in, from the moment the worker reported the step
    [(step, in_step_s)] = result.outcome.timings
    assert step == "convert" and IN_STEP_S <= in_step_s <= min(result.elapsed_s, IN_STEP_S + 5)


class _PollLate:
    """A worker's pipe whose first poll finds nothing and returns only once the process is gone:
    the worker answered and died between the parent's read and its look at the process."""

    def __init__(self, conn, process):
        self.conn, self.process, self.first = conn, process, True

    def poll(self, *args):
        if self.first:
            self.first = False
            self.process.join(timeout=60)
            return False
        return self.conn.poll(*args)

    def __getattr__(self, name):
        return getattr(self.conn, name)


def test_an_answer_sent_just_before_the_worker_died_is_kept():
    first, second = (fuzz_job("torch-script", i, 40 + i, None, 8, True) for i in (0, 1))
    worker = WorkerHandle("torch", target=answering_then_aborting_worker)
    worker.start()
    try:
        worker.submit_fuzz(first)
        worker.prefetch(second)
        worker.proc.conn = _PollLate(worker.proc.conn, worker.process)
        results = _results(worker, 2)
    finally:
        worker.stop()
    assert [r.index for r in results] == [0, 1]
    assert results[0].outcome is not None and results[0].outcome.symptom != "abort"  # its real answer
    assert results[1].outcome.symptom == "abort" and worker.aborts == 1


def _mapped_libraries(pid):
    with open(f"/proc/{pid}/maps") as maps:
        return maps.read()


def test_torch_workers_fork_from_a_warm_server_that_never_loads_tensorflow():
    """A replacement torch worker is ready in well under the second a fresh interpreter needs to
    import torch, and neither it nor its fork server has TensorFlow loaded."""
    worker = WorkerHandle("torch")
    worker.start()
    try:
        worker.submit(generate_case(4, "torch-script"))
        assert len(_results(worker, 1)) == 1
        libraries = _mapped_libraries(worker.process.pid)
        assert "libtorch" in libraries and "tensorflow" not in libraries
        started = time.monotonic()
        worker.restart()
        worker.wait_ready()
        assert time.monotonic() - started < 0.8
    finally:
        worker.stop()


def test_a_spare_stands_ready_where_it_is_cheap_or_has_been_needed():
    """Forked (torch) slots keep a spare from the first case on; a spawned slot only once it
    has lost a process, since a spawned spare costs an interpreter's imports."""
    forked = WorkerHandle("torch", keep_spare=True)
    forked.start()
    try:
        forked.submit(generate_case(5, "torch-script"))
        assert len(_results(forked, 1)) == 1
        assert forked.spare is not None and forked.spare.forked
    finally:
        forked.stop()
    spawned = WorkerHandle("keras", keep_spare=True, target=aborting_worker)
    spawned.start()
    try:
        assert spawned.spare is None and not spawned.proc.forked
        spawned.submit(generate_case(6, "tf2onnx"))
        [lost] = _results(spawned, 1)
        assert lost.outcome.symptom == "abort"
        assert spawned.spare is not None  # the replacement took over and a spare stands behind it
    finally:
        spawned.stop()


def test_a_case_the_parent_cannot_load_is_an_internal_error_not_a_crash():
    from fuzzconv.workers import answer_result

    job = fuzz_job("torch-script", 0, 5, None, 8, True)
    case = generate_case(5, "torch-script")
    data = case.to_json()
    data["graph"]["inputs"][0]["shape"] = [1, 99999]
    payload = {"case": data, "outcome": {"case_id": case.id, "status": "pass"}, "index": 0, "keys": []}
    result = answer_result("fuzzed", payload, job, None, 0.1)
    assert result.outcome is None and "does not load" in result.error and "99999" in result.error


def test_a_fuzz_answer_sent_as_data_reads_back_as_its_json_would():
    """The pipe pickles a worker's answer as it is, not as JSON text: what the parent makes of it
    must not depend on that (tuples, numpy floats, NaN distances all become what JSON gives)."""
    import pickle

    from fuzzconv.fuzz_job import Knowledge
    from fuzzconv.workers import answer_result, run_job

    knowledge = Knowledge()
    for seed in (11, 12, 13):
        job = fuzz_job("torch-script", 0, seed, None, 4, True)
        kind, payload = run_job(job, lambda step: None, knowledge)
        assert kind == "fuzzed", payload
        piped = answer_result(kind, pickle.loads(pickle.dumps(payload)), job, None, 0.1)
        as_json = answer_result(kind, json.loads(json.dumps(payload)), job, None, 0.1)
        assert not piped.error and piped.outcome is not None
        assert (piped.case, piped.outcome, piped.keys, piped.index) == \
               (as_json.case, as_json.outcome, as_json.keys, as_json.index)


def test_a_fuzz_answer_carries_the_onnx_keys_once_and_a_finding_gets_them_back():
    from dataclasses import replace

    from fuzzconv.case import Outcome
    from fuzzconv.fuzz_job import done_payload
    from fuzzconv.workers import answer_result

    job = fuzz_job("torch-script", 0, 5, None, 8, True)
    case = generate_case(5, "torch-script")
    onnx_keys = ("onnx-edge:Add>Relu", "onnx-ngram3:Add>Relu>Neg")
    passed = Outcome(case.id, "pass", onnx_ops=("Add", "Relu", "Neg"), onnx_keys=onnx_keys)
    found = replace(passed, status="finding", stage="conversion", symptom="wrong-model", title="t")
    for outcome in (passed, found):
        payload = done_payload(case, case.canonical_text, outcome, 0)
        assert json.dumps(payload).count("Add>Relu>Neg") == 1
        result = answer_result("fuzzed", payload, job, None, 0.1)
        assert "onnx-ngram3:torch-script:Add>Relu>Neg" in result.keys
        assert result.outcome == (found if outcome is found else replace(passed, onnx_keys=()))


def test_prefetching_to_a_process_that_just_died_does_not_stop_the_campaign():
    """A worker can die between two looks of the parent; the job queued to it then is sent again."""
    import os
    import signal

    cases = [generate_case(seed, "torch-script") for seed in (7, 8)]
    worker = WorkerHandle("torch")
    worker.start()
    try:
        worker.submit(cases[0])
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.join(timeout=10)
        worker.prefetch(case_job(cases[1]), cases[1])  # the pipe is broken: no exception
        results = _results(worker, 2)
        assert [(r.case.id, r.outcome.symptom) for r in results][0] == (cases[0].id, "abort")
        assert results[1].case.id == cases[1].id and results[1].outcome.symptom != "abort"
    finally:
        worker.stop()


@pytest.mark.parametrize("limits", [{"recycle_after": 2}, {"memory_limit_bytes": 2**20}])
def test_a_worker_is_recycled_after_its_cases_or_past_its_memory_limit(limits):
    """A torch worker holds hundreds of MB, so a 1 MB limit recycles it after its first case; the
    case that was queued behind goes to the new process and nothing is lost."""
    cases = [generate_case(seed, "torch-script") for seed in (1, 2, 3)]
    worker = WorkerHandle("torch", **limits)
    worker.start()
    try:
        first = worker.process.pid
        worker.submit(cases[0])
        worker.prefetch(case_job(cases[1]), cases[1])
        results = _results(worker, 2)  # the second ran on the replacement when the limit was memory
        worker.submit(cases[2])
        results += _results(worker, 1)
    finally:
        worker.stop()
    assert [r.case for r in results] == cases
    assert all(r.outcome is not None for r in results)
    assert worker.recycles >= 1 and worker.process.pid != first and worker.restarts == 0


def test_a_death_in_a_prefetched_job_is_put_in_the_step_the_worker_reported_for_it():
    """The worker reports the next job's step before the parent has read the answer to the
    one before; the parent must still put the death in that step, not in "queued"."""
    first, second = (fuzz_job("torch-script", i, 60 + i, None, 8, True) for i in (0, 1))
    worker = WorkerHandle("torch", target=stepping_then_answering_then_aborting_worker)
    worker.start()
    try:
        worker.submit_fuzz(first)
        worker.prefetch(second)
        answered, lost = _results(worker, 2)
    finally:
        worker.stop()
    assert answered.outcome is not None and answered.index == 0
    assert lost.outcome.symptom == "abort" and lost.index == 1
    assert "during step 'runtime-load'" in lost.outcome.message
    assert lost.outcome.stage == "runtime-load"
    [(step, in_step_s)] = lost.outcome.timings
    assert step == "runtime-load" and in_step_s >= IN_STEP_S


def test_a_log_over_its_limit_is_cut_to_its_newest_lines_and_writers_go_on_at_its_end(tmp_path):
    import os

    from fuzzconv.workers import bound_log

    path = tmp_path / "worker.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    other = os.open(path, os.O_WRONLY | os.O_APPEND)  # the spare's descriptor on the same log
    try:
        for line in range(100):
            os.write(fd, f"line {line:03d} {'y' * 40}\n".encode())
        assert not bound_log(str(path), fd, limit=10_000, keep=1_000)
        for line in range(100, 300):
            os.write(fd, f"line {line:03d} {'y' * 40}\n".encode())
        assert bound_log(str(path), fd, limit=10_000, keep=1_000)
        os.write(other, b"after the cut\n")
    finally:
        os.close(fd)
        os.close(other)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("[fuzzconv: this log passed 10000 bytes")
    assert lines[1].startswith("line 2") and lines[-2].startswith("line 299") and lines[-1] == "after the cut"
    assert path.stat().st_size < 1_200

