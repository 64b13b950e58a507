"""Loaded into a worker through FUZZCONV_WORKER_PLUGIN: the log limit made small and each job
printing a numbered line past Python (file descriptor 1, as the frameworks' C++ code does),
to test that a worker's log stays bounded."""

import os

from fuzzconv import workers

workers.LOG_LIMIT_BYTES = 20_000
workers.LOG_KEEP_BYTES = 5_000
workers.bound_log.__defaults__ = (1, workers.LOG_LIMIT_BYTES, workers.LOG_KEEP_BYTES)
_run_job = workers.run_job
_jobs = 0


def chatty_run_job(*args, **kwargs):
    global _jobs
    _jobs += 1
    os.write(1, f"job {_jobs} {'x' * 3000}\n".encode())
    return _run_job(*args, **kwargs)


workers.run_job = chatty_run_job
