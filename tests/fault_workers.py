"""Worker bodies that misbehave on purpose, to test the parent's hang and abort handling."""

import os
import time


def hanging_worker(conn, frontend, log_path, step_buffer=None):
    conn.send(("ready", os.getpid()))
    conn.recv()
    conn.send(("stage", "convert"))
    time.sleep(600)


def aborting_worker(conn, frontend, log_path, step_buffer=None):
    conn.send(("ready", os.getpid()))
    conn.recv()
    conn.send(("stage", "runtime-run-on"))
    time.sleep(0.2)
    os.abort()
