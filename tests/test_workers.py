"""Isolation: a worker that hangs or dies becomes a hang/abort outcome at its last stage."""

import time

from fuzzconv.generate import generate_case
from fuzzconv.workers import WorkerHandle
from tests.fault_workers import aborting_worker, hanging_worker


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
