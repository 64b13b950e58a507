"""Worker bodies that misbehave on purpose, to test the parent's hang and abort handling."""

import os
import time


def hanging_worker(conn, frontend, log_path, *args, **kwargs):
    conn.send(("ready", os.getpid()))
    conn.recv()
    conn.send(("stage", "convert"))
    time.sleep(600)


def aborting_worker(conn, frontend, log_path, *args, **kwargs):
    conn.send(("ready", os.getpid()))
    conn.recv()
    conn.send(("stage", "runtime-run-on"))
    time.sleep(0.2)
    os.abort()


def publishing_aborting_worker(conn, frontend, log_path, step_buffer=None, sys_path=None, case_buffer=None, **kwargs):
    """Makes the fuzz job's case and publishes it as the real worker does, then dies in
    conversion, IN_STEP_S after reporting that step."""
    from fuzzconv.fuzz_job import Knowledge, make_case
    from fuzzconv.workers import step_reporter

    conn.send(("ready", os.getpid()))
    job = conn.recv()
    case_buffer.value = make_case(job, Knowledge()).dumps().encode()
    step_reporter(conn, step_buffer)("convert")
    time.sleep(IN_STEP_S)
    os.abort()


IN_STEP_S = 0.3


def answering_then_aborting_worker(conn, frontend, log_path, step_buffer=None, sys_path=None, case_buffer=None,
                                   **kwargs):
    """Answers its first job as the real worker does, then dies the moment it takes the next one:
    both messages are in the pipe before the parent can notice that the process is gone."""
    from fuzzconv.workers import run_job

    conn.send(("ready", os.getpid()))
    first = conn.recv()
    answer = run_job(first, lambda step: None)
    conn.recv()  # the prefetched second job
    conn.send(answer)
    os.abort()


def stepping_then_answering_then_aborting_worker(conn, frontend, log_path, step_buffer=None, sys_path=None,
                                                 case_buffer=None, **kwargs):
    """Takes its first and its prefetched second job, reports the second's first step, then
    answers the first and dies IN_STEP_S later: the parent reads that step before the answer
    that makes the second job its current one."""
    from fuzzconv.workers import run_job, step_reporter

    conn.send(("ready", os.getpid()))
    first = conn.recv()
    answer = run_job(first, lambda step: None)
    conn.recv()
    step_reporter(conn, step_buffer)("runtime-load")
    time.sleep(0.2)  # the parent reads the step buffer on its next look
    conn.send(answer)
    time.sleep(IN_STEP_S)
    os.abort()
