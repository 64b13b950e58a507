"""A warm replay worker running under another Python interpreter, and the parent's handle on it.

The worker is `PYTHON -m fuzzconv.recheck_worker serve FRONTEND`, with this checkout of
fuzzconv first on its PYTHONPATH so the other environment needs only the frameworks and numpy.
Cases go in as JSON lines; steps and outcomes come back as JSON lines. The handle enforces the
per-case time limit and survives the worker dying: a hang or abort becomes the same outcome a
campaign records (`fuzzconv.workers.lost_outcome`), and the next case gets a fresh worker.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import fuzzconv
from fuzzconv.case import Case, Outcome
from fuzzconv.workers import READY_TIMEOUT_S, lost_outcome

REPO_ROOT = Path(fuzzconv.__file__).resolve().parent.parent


class RemoteWorkerError(Exception):
    """The other interpreter cannot run fuzzconv's replay worker; the message says why."""


def worker_env() -> dict[str, str]:
    """The environment for a subprocess of another interpreter: this fuzzconv importable, frameworks quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.pop("PYTHONHOME", None)
    return env


def interpreter_versions(python: str, timeout_s: float = 60.0) -> dict[str, str]:
    """Python and package versions as `python` resolves them (no framework is imported)."""
    try:
        done = subprocess.run([python, "-m", "fuzzconv.recheck_worker", "versions"], capture_output=True,
                              text=True, env=worker_env(), timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RemoteWorkerError(f"cannot run {python}: {exc}") from None
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RemoteWorkerError(f"{python} cannot run fuzzconv's recheck worker (exit code {done.returncode}): {tail}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def exit_reason(code: int | None) -> str:
    """'signal SIGSEGV' or 'exit code 3', worded as a campaign words it."""
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


@dataclass
class Replayed:
    """What one replay gave: an outcome, or fuzzconv's own error (a traceback) and no outcome."""

    outcome: Outcome | None
    error: str = ""
    elapsed_s: float = 0.0


@dataclass
class RemoteWorker:
    python: str
    frontend: str
    log_path: Path
    case_timeout_s: float = 60.0
    ready_timeout_s: float = READY_TIMEOUT_S
    process: subprocess.Popen[bytes] | None = None
    lost: int = 0  # workers that hung or died; the next case starts a fresh one
    _pending: bytes = b""
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        if self._log is None:
            self._log = open(self.log_path, "ab")  # closed by stop(); lives as long as the worker
        self.process = subprocess.Popen(
            [self.python, "-m", "fuzzconv.recheck_worker", "serve", self.frontend], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, env=worker_env(), start_new_session=True)
        self._pending = b""
        message, _ = self._next_message(time.monotonic() + self.ready_timeout_s)
        if message is None or "ready" not in message:
            self.stop()
            raise RemoteWorkerError(f"the {self.frontend} worker under {self.python} did not start; "
                                    f"its log {self.log_path} ends with: {self._log_tail()}")

    def replay(self, case: Case) -> Replayed:
        """Run one case under the other interpreter; a hang or a dead worker is an outcome, not an error."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        assert self.process is not None and self.process.stdin is not None
        started = time.monotonic()
        step = "queued"
        try:
            self.process.stdin.write((json.dumps(case.to_json()) + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            return self._lost(case, step, "abort", started)
        deadline = started + self.case_timeout_s
        while True:
            message, timed_out = self._next_message(deadline)
            if message is None:
                return self._lost(case, step, "hang" if timed_out else "abort", started)
            if "step" in message:
                step = str(message["step"])
            elif "outcome" in message:
                return Replayed(Outcome.from_json(message["outcome"]), elapsed_s=time.monotonic() - started)
            elif "error" in message:
                return Replayed(None, str(message["error"]), time.monotonic() - started)

    def _lost(self, case: Case, step: str, symptom: str, started: float) -> Replayed:
        if symptom == "hang":
            reason = f"no answer within {self.case_timeout_s:g}s"
            self.kill()
        else:
            assert self.process is not None
            reason = exit_reason(self.process.wait(timeout=30))
        self.process = None
        self.lost += 1
        return Replayed(lost_outcome(case, step, symptom, reason), elapsed_s=time.monotonic() - started)

    def _next_message(self, deadline: float) -> tuple[dict[str, Any] | None, bool]:
        """The next JSON line from the worker: (message, False), (None, True) at the deadline, (None, False) at EOF."""
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None, True
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None, False
                self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:
            return self._next_message(deadline)  # not ours: a stray write to the protocol stream
        return (message if isinstance(message, dict) else {}), False

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-3:]) or "(empty log)"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None:
            if self.process.stdin is not None:
                try:
                    self.process.stdin.close()
                except OSError:
                    pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.kill()
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
