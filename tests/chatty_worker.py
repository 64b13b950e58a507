"""Loaded into a worker through FUZZCONV_WORKER_PLUGIN: the log limit made small and each job
printing a line past Python (file descriptor 1, as the frameworks' C++ code does) as it ends, to test that
a worker's log stays bounded. Each line's id also goes to the journal file CHATTY_JOURNAL names,
which nothing cuts: the test compares the two."""

import itertools
import os

from fuzzconv import workers

workers.LOG_LIMIT_BYTES = 20_000
workers.LOG_KEEP_BYTES = 5_000
_run_job = workers.run_job
_jobs = itertools.count(1)


def chatty_run_job(*args, **kwargs):
    """The line goes out as the job ends, so it is the newest in the log when the worker checks
    the log's size: whatever a converter printed during the job (a TorchScript graph dump can be
    larger than the part of the log that is kept) cannot push every job line out of a cut log."""
    try:
        return _run_job(*args, **kwargs)
    finally:
        job_id = f"{os.getpid()}-{next(_jobs)}"
        with open(os.environ["CHATTY_JOURNAL"], "a") as journal:
            journal.write(job_id + "\n")
        os.write(1, f"job {job_id} {'x' * 3000}\n".encode())


workers.run_job = chatty_run_job
