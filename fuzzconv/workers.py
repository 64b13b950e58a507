"""Warm worker processes, one frontend each, and the parent's handle on them.

A worker imports its framework once and then runs cases sent over a pipe, reporting each
stage before it starts it. The parent enforces the per-case time limit; a worker that dies
or hangs is replaced and the case recorded as `abort` or `hang` at the last stage reported.
A torch worker never imports TensorFlow and a Keras worker never imports torch.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from fuzzconv.case import Case, CaseError, Outcome
from fuzzconv.fuzz_job import answer_outcome, stand_in_case
from fuzzconv.seen import SeenSequences
from fuzzconv.triage import title

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 180.0
STEP_BYTES = 64  # a step's name, '@' and the time.monotonic() it began
CASE_BYTES = 256 * 1024  # the shared buffer for the case a fuzz job made; larger ones go as a message

# Where a pipeline stage sits in the stage vocabulary, for hangs and aborts.
STAGE_OF_STEP = {
    "materialize": "source",
    "source": "source",
    "source-second-shape": "source",
    "convert": "conversion",
    "validate": "validation",
    "source-float64": "source",
    "runtime-load": "runtime-load",
    "runtime-run-off": "runtime-kernel",
    "runtime-run-on": "runtime-optimization",
    "runtime-release": "runtime-load",
    "runtime-second-shape": "runtime-kernel",
    "compare": "conversion",
    "toggle-converter-optimize-off": "conversion",
    "toggle-reference": "runtime-kernel",
    "toggle-ort-transformers": "runtime-optimization",
    "localize-materialize": "conversion",  # the probe that exposes every intermediate tensor
    "localize": "conversion",
    "localize-compare": "conversion",
}


def _quiet_process(log_path: str | None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if log_path:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    import warnings

    warnings.simplefilter("ignore")


# A worker's log holds what the frameworks print past Python (the TorchScript exporter dumps
# its graph on every failure: about 1 MB a minute for one torch-script worker). Past the limit
# it is cut back to its newest part, so a campaign of days does not fill the disk with it.
LOG_LIMIT_BYTES = 16 * 2**20
LOG_KEEP_BYTES = 2**20


def bound_log(log_path: str, fd: int = 1, limit: int | None = None, keep: int | None = None) -> bool:
    """Cut the log that `fd` appends to back to its last `keep` bytes (from a line start) once it
    is over `limit` (LOG_KEEP_BYTES and LOG_LIMIT_BYTES unless given); True if it was cut. Other
    processes appending to it (the spare, a recycled worker) go on at its new end: every writer
    opened it for appending."""
    limit = LOG_LIMIT_BYTES if limit is None else limit
    keep = LOG_KEEP_BYTES if keep is None else keep
    try:
        size = os.fstat(fd).st_size
        if size <= limit:
            return False
        sys.stdout.flush()
        sys.stderr.flush()
        with open(log_path, "rb") as log:
            log.seek(max(0, size - keep))
            tail = log.read(keep)
        start = tail.find(b"\n") + 1
        os.ftruncate(fd, 0)
        os.write(fd, f"[fuzzconv: this log passed {limit} bytes and was cut to its last part]\n".encode()
                 + tail[start:])
        return True
    except OSError:  # the log went away or cannot be read: leave it
        return False


def _warm_up(frontend: str) -> None:
    if frontend == "torch":
        import torch  # noqa: F401

        torch.set_num_threads(1)
    else:
        import keras  # noqa: F401
        import tensorflow

        # One worker per core: TensorFlow's own pools would otherwise spread each worker's ops
        # (and tf2onnx's graph passes) over every core and make the workers compete.
        tensorflow.config.threading.set_intra_op_parallelism_threads(1)
        tensorflow.config.threading.set_inter_op_parallelism_threads(1)
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401

    from fuzzconv.ops import all_ops

    all_ops()  # the operator registry, imported once here rather than on the first case
    tune_gc()


def tune_gc() -> None:
    """Keep the cyclic garbage collector off the imported frameworks: what is loaded by now lives
    as long as the process (frozen, so no collection walks it again, and a forked child does
    not touch its pages), and a case allocates hundreds of thousands of objects, most of them
    freed by reference counting, so the youngest generation is collected less often."""
    import gc

    if os.environ.get("FUZZCONV_GC_DEFAULT") == "1":  # for comparison in benchmarks
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 50)


GC_YOUNG_THRESHOLD = 20_000  # Python's default is 700


# A module a worker imports at start, named by this variable: how tests inject a converter
# that crashes or hangs the process for real (see tests/fault_converters.py).
PLUGIN_VARIABLE = "FUZZCONV_WORKER_PLUGIN"


def worker_main(conn: Connection, frontend: str, log_path: str | None, step_buffer: Any = None,
                sys_path: list[str] | None = None, case_buffer: Any = None, seen_buffer: Any = None) -> None:
    """Serve jobs over `conn`; the current pipeline step is written into the shared `step_buffer`
    (no message per step, so the parent wakes only when a job is done), and the case a fuzz job
    made into `case_buffer`, for the parent to read should this process die or hang on it.
    `seen_buffer` is the parent's shared memory of covered operator sequences (fuzzconv.seen).

    `sys_path` is another interpreter's own module path (`fuzz --python`): multiprocessing gives a
    spawned child the parent's path, so it is put back before any framework is imported."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if sys_path is not None:
        import importlib

        sys.path[:] = [str(REPO_ROOT), *sys_path]
        importlib.invalidate_caches()
    _quiet_process(log_path)
    _warm_up(frontend)
    if os.environ.get(PLUGIN_VARIABLE):
        import importlib

        importlib.import_module(os.environ[PLUGIN_VARIABLE])
    from fuzzconv.fuzz_job import Knowledge

    knowledge = Knowledge({frontend: SeenSequences(frontend, seen_buffer)} if seen_buffer is not None else None)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        report = step_reporter(conn, step_buffer)
        report("queued")
        if case_buffer is not None:
            case_buffer.value = b""  # until this job has made its case, it has none
        kind, payload = run_job(message, report, knowledge, _case_publisher(conn, case_buffer))
        conn.send((kind, payload))
        if log_path:
            bound_log(log_path)


def _case_publisher(conn: Connection, case_buffer: Any) -> Callable[[str], None]:
    """Where a fuzz job puts the case it made before running it: the shared buffer, or a message
    when the case is too large for it (or there is no buffer)."""
    def publish(text: str) -> None:
        data = text.encode()
        if case_buffer is not None and len(data) < CASE_BYTES:
            case_buffer.value = data
        else:
            if case_buffer is not None:
                case_buffer.value = b""
            conn.send(("case", text))

    return publish


def step_reporter(conn: Connection, step_buffer: Any) -> Callable[[str], None]:
    """How a worker tells the parent which pipeline step it is in: written into the shared
    buffer with the moment the step began (no message per step), else sent as a message."""
    if step_buffer is None:
        return lambda step: conn.send(("stage", step))

    def report(step: str) -> None:
        step_buffer.value = f"{step}@{time.monotonic():.4f}".encode()[:STEP_BYTES - 1]

    return report


def read_step(value: bytes) -> tuple[str, float | None]:
    """(step, the time.monotonic() it began, when the worker said) from the step buffer."""
    step, _, began = value.decode().partition("@")
    try:
        return step, float(began) if began else None
    except ValueError:
        return step, None


def lost_outcome(case: Case, step: str, symptom: str, reason: str, in_step_s: float | None = None) -> Outcome:
    """The outcome of a case whose worker hung or died during pipeline step `step`, after
    `in_step_s` in it when known: its timings hold that step alone, since the worker's own
    record of the steps before went with it."""
    timings = ((step, in_step_s),) if in_step_s is not None else ()
    stage = STAGE_OF_STEP.get(step, "conversion")
    if stage == "source":  # the source framework itself died: not a converter bug
        return Outcome(case.id, "invalid", "source", symptom, f"{case.graph.frontend}: invalid: {symptom}",
                       message=reason, timings=timings)
    detail = "time limit" if symptom == "hang" else reason if reason.startswith("signal") else "nonzero exit"
    return Outcome(case.id, "finding", stage, symptom, title(case.target.converter, stage, symptom, detail),
                   message=f"{reason} during step {step!r}", decided_by="last stage the worker reported",
                   timings=timings)


def run_job(job: dict[str, Any], report_stage: Callable[[str], None], knowledge: Any = None,
            publish: Callable[[str], None] = lambda text: None) -> tuple[str, dict[str, Any]]:
    """Run one job: a fuzz job (make the case here, run it), a given case, or a bucket to minimize.
    Returns (kind of answer, its data: JSON-shaped, which the pipe pickles as it is; pickling a
    fuzz answer and loading it took a third of the time of json.dumps and json.loads, 29 against
    64 us for the 13.6 kB of an average torch-script answer); an "error" answer is fuzzconv's own
    bug, with its traceback and the case it hit, when there was one."""
    from fuzzconv.pipeline import run_case

    case: Case | None = None
    cpu_start = time.process_time()
    try:
        if job["kind"] == "fuzz":
            from fuzzconv.fuzz_job import Knowledge, done_payload, make_case

            report_stage("generate")
            # Not loaded back here: the parent loads the case's text as any case file
            # (answer_result), and a case that does not load is reported as fuzzconv's bug.
            case = make_case(job, knowledge if knowledge is not None else Knowledge())
            publish(case.canonical_text)
            outcome = run_case(case, on_stage=report_stage)
            payload = done_payload(case, case.canonical_text, outcome, job["index"])
            payload["cpu_s"] = time.process_time() - cpu_start
            return "fuzzed", payload
        case = Case.from_json(job["case"])
        if job["kind"] == "minimize":
            from fuzzconv.reduce_job import reduce_bucket

            result = reduce_bucket(case, job["title"], job["max_calls"], job["budget_s"], report_stage)
            return "reduced", result
        return "done", run_case(case, on_stage=report_stage).to_json()
    except Exception:  # fuzzconv's own bug: report it loudly, keep the worker
        return "error", {"traceback": traceback.format_exc(), "case": case.to_json() if case is not None else None}


def answer_result(kind: str, data: dict[str, Any], job: dict[str, Any], case: Case | None, elapsed_s: float) -> Result:
    """A worker's answer to `job` as a Result; `case` is the job's case when the parent knows it.
    The answer's data is checked here as a case file's would be: the worker is fuzzconv's code
    but its case is the generator's, and one that does not load is fuzzconv's bug."""
    if kind == "fuzzed":
        try:
            keys = tuple(data.get("keys", ()))
            made = Case.from_canonical(data["case"]) if isinstance(data["case"], str) else Case.from_json(data["case"])
            outcome = answer_outcome(data["outcome"], keys)
        except (CaseError, KeyError, TypeError, ValueError) as exc:  # the generator made it: fuzzconv's bug
            return Result(stand_in_case(job), None, elapsed_s,
                          error=f"the worker's case does not load: {exc}\n{json.dumps(data.get('case'))}")
        return Result(made, outcome, elapsed_s, index=data.get("index"), keys=keys,
                      cpu_s=float(data.get("cpu_s", 0.0)))
    if kind == "error":
        found = Case.from_json(data["case"]) if data.get("case") else case
        return Result(found or stand_in_case(job), None, elapsed_s, error=data["traceback"])
    assert case is not None
    if kind == "reduced":
        return Result(case, None, elapsed_s, reduced=data)
    return Result(case, Outcome.from_json(data), elapsed_s)


class InterpreterError(Exception):
    """The interpreter given with --python cannot host workers; the message says why."""


_FOREIGN_PATHS: dict[str, list[str]] = {}


def foreign_sys_path(python: str) -> list[str]:
    """`python`'s own module path, after checking it is the same Python version as this one
    (multiprocessing's spawn protocol is only kept between equal versions)."""
    if python not in _FOREIGN_PATHS:
        probe = "import json, sys; print(json.dumps([list(sys.version_info[:2]), sys.path[1:]]))"
        try:
            done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InterpreterError(f"cannot run {python}: {exc}") from None
        if done.returncode != 0:
            raise InterpreterError(f"{python} failed to start (exit code {done.returncode}): "
                                   f"{done.stderr.strip()[-200:]}")
        version, path = json.loads(done.stdout.strip().splitlines()[-1])
        if tuple(version) != tuple(sys.version_info[:2]):
            raise InterpreterError(
                f"{python} is Python {version[0]}.{version[1]}, this is {sys.version_info[0]}.{sys.version_info[1]};"
                " workers need the same Python version (make env-candidate builds one)")
        _FOREIGN_PATHS[python] = [p for p in path if p]
    return _FOREIGN_PATHS[python]


def case_job(case: Case, kind: str = "run", **fields: Any) -> dict[str, Any]:
    """A job that carries its case: run it ("run"), or minimize it ("minimize", with title and budget)."""
    return {"kind": kind, **fields, "case": case.to_json()}


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


# Jobs a worker holds beyond the one it runs: enough to ride out a parent busy for a moment
# (a database checkpoint, a new bucket's synced files, the once-a-second flush of bucket hits).
PREFETCH_DEPTH = 2

# A replacement process is started this far ahead of a count-based recycle (a fraction of
# recycle_after, at least one case) or of the memory limit, so that it has imported its
# framework by the time it takes over.
SPARE_LEAD = 0.1


@dataclass
class Result:
    case: Case
    outcome: Outcome | None
    elapsed_s: float
    error: str = ""
    reduced: dict[str, Any] | None = None  # what a minimize job produced
    index: int | None = None  # a fuzz job's place in its converter's seed stream
    keys: tuple[str, ...] = ()  # a fuzz job's coverage keys, computed in the worker
    cpu_s: float = 0.0  # the worker process's CPU time for a fuzz job, making the case included


def _context(frontend: str, python: str | None) -> Any:
    """How a worker process is started. PyTorch workers are forked from a fork server that has
    imported torch and onnxruntime once (fuzzconv.torch_zygote), so a replacement for a worker
    that died is ready at once; Keras workers are spawned afresh (TensorFlow is not fork-safe),
    and so is every worker under another environment's interpreter (`fuzz --python`)."""
    if frontend == "torch" and python is None and os.environ.get(SPAWN_VARIABLE) != "1":
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["fuzzconv.torch_zygote"])
        return context
    return multiprocessing.get_context("spawn")


RSS_EVERY_S = 0.5  # how often a worker's memory is read for the recycling limit


# Set to 1 to spawn PyTorch workers afresh too (for comparison, or where forking misbehaves).
SPAWN_VARIABLE = "FUZZCONV_SPAWN_WORKERS"


class _Process:
    """One worker process. It is spawned at once and ready once it has imported its framework;
    nothing waits for that unless asked to (`wait_ready`), so a restart never stalls the campaign."""

    def __init__(self, frontend: str, log_path: Path | None, target: Callable[..., None], python: str | None,
                 seen: SeenSequences | None = None) -> None:
        context = _context(frontend, python)
        parent_conn, child_conn = context.Pipe()
        self.frontend, self.log_path = frontend, log_path
        self.step_buffer = context.Array("c", STEP_BYTES, lock=False)
        self.case_buffer = context.Array("c", CASE_BYTES, lock=False)
        args: tuple[Any, ...] = (child_conn, frontend, str(log_path) if log_path else None, self.step_buffer)
        if python:
            context.set_executable(python)
        args += (foreign_sys_path(python) if python else None,)
        kwargs = {"case_buffer": self.case_buffer}
        if seen is not None:
            kwargs["seen_buffer"] = seen.buffer
        self.process = context.Process(target=target, args=args, kwargs=kwargs,
                                       daemon=True, name=f"fuzzconv-{frontend}")
        self.process.start()
        child_conn.close()
        self.conn: Connection = parent_conn
        self.spawned_at = time.monotonic()
        self.ready = False
        self.forked = context.get_start_method() == "forkserver"  # started in milliseconds, sharing its imports
        self.big_case = ""  # a made case too large for the shared buffer, sent as a message

    def check_ready(self) -> bool:
        """Whether the process has said it is ready; never blocks. Raises RuntimeError when it died
        importing its framework or did not get ready within READY_TIMEOUT_S."""
        if self.ready:
            return True
        try:
            if self.conn.poll():
                self.conn.recv()
                self.ready = True
                return True
        except (EOFError, OSError):
            self.kill()
            raise RuntimeError(
                f"the {self.frontend} worker died while importing its framework; see {self.log_path}") from None
        if time.monotonic() - self.spawned_at > READY_TIMEOUT_S:
            self.kill()
            raise RuntimeError(f"the {self.frontend} worker did not start within {READY_TIMEOUT_S:.0f}s")
        return False

    def wait_ready(self) -> None:
        while not self.check_ready():
            self.conn.poll(max(0.0, min(1.0, self.spawned_at + READY_TIMEOUT_S - time.monotonic())) + 0.01)

    def send(self, job: dict[str, Any]) -> None:
        self.conn.send(job)

    def made_case(self) -> Case | None:
        """The case the current fuzz job made, if the process published it before it was lost."""
        text = self.case_buffer.value.decode() or self.big_case
        try:
            return Case.loads(text) if text else None
        except ValueError:
            return None

    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=10)


@dataclass
class WorkerHandle:
    """The parent's handle on one worker slot: the running process, the job it runs and the one
    queued behind it, and (with `keep_spare`) a second process that has already imported its
    framework, so that a death, hang or recycle costs no start-up time."""

    frontend: str
    log_path: Path | None = None
    case_timeout_s: float = 60.0
    recycle_after: int = 5000
    memory_limit_bytes: int = 3 * 2**30
    keep_spare: bool = False
    proc: _Process | None = None
    spare: _Process | None = None  # the next process, importing or ready, to take over at once
    job: dict[str, Any] | None = None  # what the worker runs now
    case: Case | None = None  # its case, when the parent knows it (not for a fuzz job)
    stage: str = ""
    started_at: float = 0.0
    cases_done: int = 0
    restarts: int = 0
    hangs: int = 0
    aborts: int = 0
    recycles: int = 0
    limit_s: float = 60.0
    target: Callable[..., None] = worker_main
    step_seen: bytes = b""
    step_began: float | None = None  # when the worker began `stage`, if it said
    python: str | None = None  # another environment's interpreter (`fuzz --python`)
    # The next jobs, already sent down the pipe so that the worker starts each the moment the
    # one before is done, without waiting for the parent: (job, case, time limit), in order.
    queued: list[tuple[dict[str, Any], Case | None, float]] = field(default_factory=list)
    # The current job while its process is still starting: sent once it is ready.
    unsent: bool = False
    dropped: bool = False  # prefetched jobs were dropped: the process may still be running one
    rss_seen: int = 0  # at the end of a case, measured at most every RSS_EVERY_S
    rss_at: float = 0.0
    # The campaign's covered operator sequences of this frontend (fuzzconv.seen), shared with
    # each process so that guided generation in the worker knows them.
    seen: SeenSequences | None = None

    @property
    def process(self) -> Any:
        return self.proc.process if self.proc is not None else None

    @property
    def conn(self) -> Connection | None:
        return self.proc.conn if self.proc is not None else None

    def spawn(self) -> None:
        """Start the worker process without waiting for it: a job submitted meanwhile is sent
        once it is ready."""
        self.proc = self._new_process()
        self.cases_done = 0

    def _new_process(self) -> _Process:
        return _Process(self.frontend, self.log_path, self.target, self.python, self.seen)

    def wait_ready(self) -> None:
        """Block until the process has imported its framework (RuntimeError if it cannot)."""
        assert self.proc is not None
        self.proc.wait_ready()
        self._send_unsent()

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    @property
    def busy(self) -> bool:
        return self.job is not None

    def submit(self, case: Case) -> None:
        """Run one given case."""
        self._send(case_job(case), case, self.case_timeout_s)

    def submit_fuzz(self, job: dict[str, Any]) -> None:
        """Make and run one case in the worker (see fuzzconv.fuzz_job)."""
        self._send(job, None, self.case_timeout_s)

    @property
    def can_prefetch(self) -> bool:
        """Whether `prefetch` may send a job now: running one, fewer than PREFETCH_DEPTH queued,
        not about to be recycled."""
        return (self.busy and not self.unsent and len(self.queued) < PREFETCH_DEPTH
                and self.cases_done + 1 + len(self.queued) < self.recycle_after)

    def prefetch(self, job: dict[str, Any], case: Case | None = None) -> None:
        """Send the job to run after those before it; it becomes current when they are collected."""
        assert self.proc is not None and self.can_prefetch
        self.queued.append((job, case, self.case_timeout_s))
        try:
            self.proc.send(job)
        except OSError:  # the process died and `collect` has not seen it yet: it resends the queue
            pass

    def submit_minimize(self, case: Case, title: str, max_calls: int, budget_s: float) -> None:
        """Minimize one bucket's case against its title; the time limit is the budget plus slack."""
        job = case_job(case, "minimize", title=title, max_calls=max_calls, budget_s=budget_s)
        self._send(job, case, budget_s + 2 * self.case_timeout_s + 60)

    def _send(self, job: dict[str, Any], case: Case | None, limit_s: float) -> None:
        assert self.job is None
        if self.proc is None or not self.proc.alive():
            self.restart()
        self.job, self.case = job, case
        self.stage, self.step_began = "queued", None
        self.limit_s = limit_s
        self.unsent = True
        self._send_unsent()

    def _send_unsent(self) -> None:
        """Send the current job if its process is ready (RuntimeError if it cannot start)."""
        assert self.proc is not None
        if not self.unsent or not self.proc.check_ready():
            return
        assert self.job is not None
        self.unsent = False
        self.proc.step_buffer.value = self.step_seen = b"queued"
        self.step_began = None
        self.started_at = time.monotonic()
        self.proc.send(self.job)
        for job, _, _ in self.queued:  # after a restart: the jobs that went down the old pipe
            self.proc.send(job)

    def deadline(self) -> float:
        if self.unsent and self.proc is not None:  # still waiting for a new process
            return self.proc.spawned_at + READY_TIMEOUT_S
        return self.started_at + self.limit_s

    def waitable(self) -> Connection | None:
        """What `multiprocessing.connection.wait` can block on until the worker says something."""
        return self.conn

    def rss_bytes(self) -> int:
        return rss_bytes(self.process.pid) if self.process is not None and self.process.is_alive() else 0

    def _due_for_recycle(self) -> bool:
        if time.monotonic() - self.rss_at >= RSS_EVERY_S:  # /proc costs more than a fast case's recording
            self.rss_seen, self.rss_at = self.rss_bytes(), time.monotonic()
        return self.cases_done >= self.recycle_after or self.rss_seen > self.memory_limit_bytes

    def _start_spare(self) -> None:
        """Have a replacement process importing or ready once a recycle is near, so that the swap
        costs no start-up; with `keep_spare` always, where a process is forked (it costs nothing),
        and once this slot has lost a process, where it is spawned (TensorFlow takes seconds of
        CPU to import, worth spending ahead only for a worker that has died or hung before)."""
        near = (self.recycle_after - self.cases_done <= max(1, int(self.recycle_after * SPARE_LEAD))
                or self.rss_seen > self.memory_limit_bytes * (1 - SPARE_LEAD))
        standing = self.keep_spare and self.proc is not None and (self.proc.forked or self.restarts > 0)
        if self.spare is None and (near or standing):
            self.spare = self._new_process()
        elif self.spare is not None and not self.spare.alive():  # it died importing: try again later
            self.spare = None

    def collect(self) -> Result | None:
        """Read what the worker sent; a Result once the job is finished (or the worker died)."""
        assert self.proc is not None and self.job is not None
        if self.unsent:  # its process is still starting
            self._send_unsent()
            return None
        if self.proc.step_buffer.value != self.step_seen:
            self.step_seen = self.proc.step_buffer.value
            self.stage, self.step_began = read_step(self.step_seen)
        try:
            answer = self._read_answer()
            if answer is None and not self.proc.alive():
                answer = self._read_answer()  # what it sent between that read and its death
                if answer is None:
                    return self._died()
        except (EOFError, OSError):
            return self._died()
        if answer is not None:
            return self._answered(*answer)
        if time.monotonic() > self.deadline():
            return self._hung()
        return None

    def _read_answer(self) -> tuple[str, dict[str, Any]] | None:
        """Read the worker's messages up to its answer to the current job, if it has sent one."""
        assert self.proc is not None
        while self.proc.conn.poll():
            kind, payload = self.proc.conn.recv()
            if kind == "stage":
                self.stage, self.step_began = payload, None
            elif kind == "case":
                self.proc.big_case = payload
            else:
                return kind, payload
        return None

    def _answered(self, kind: str, payload: dict[str, Any], recycle: bool = True) -> Result:
        assert self.job is not None
        self.proc.big_case = ""  # type: ignore[union-attr]
        return self._finish(answer_result(kind, payload, self.job, self.case, time.monotonic() - self.started_at),
                            recycle)

    def _finish(self, result: Result, recycle: bool = True) -> Result:
        self.job = self.case = None
        self.cases_done += 1
        if recycle and self._due_for_recycle():
            self.recycles += 1
            self.restart(count=False)  # sends the prefetched job again
        elif recycle:
            self._promote_queued(resend=False)
            self._start_spare()
        return result

    def _promote_queued(self, resend: bool) -> None:
        """The first prefetched job becomes the current one; after a restart it and those behind
        it are sent again, since they went down the old process's pipe."""
        if not self.queued:
            return
        job, case, limit_s = self.queued.pop(0)
        if resend:
            self._send(job, case, limit_s)
            return
        self.job, self.case = job, case
        self.stage, self.step_began = "queued", None
        # The worker began this job the moment it sent its answer to the last, and the step
        # buffer may already have been read for it: read it again, or a death in that step
        # would be put in "queued".
        self.step_seen = b""
        self.limit_s = limit_s
        self.started_at = time.monotonic()

    def _lost_case(self) -> Case:
        """The case of a job whose worker was lost: given, published by the worker, or a stand-in."""
        assert self.job is not None and self.proc is not None
        return self.case or self.proc.made_case() or stand_in_case(self.job)

    def _lost(self, symptom: str, reason: str) -> Result:
        assert self.job is not None
        case = self._lost_case()
        elapsed_s = time.monotonic() - self.started_at
        index = self.job.get("index") if self.job["kind"] == "fuzz" else None  # its seed stays used
        if self.stage == "generate":  # fuzzconv's own generator hung or crashed the process
            return self._finish(Result(case, None, elapsed_s, error=f"worker {symptom} ({reason}) while generating",
                                       index=index), recycle=False)
        in_step_s = min(elapsed_s, max(0.0, time.monotonic() - self.step_began)) if self.step_began else None
        return self._finish(Result(case, lost_outcome(case, self.stage, symptom, reason, in_step_s), elapsed_s,
                                   index=index), recycle=False)

    def _hung(self) -> Result:
        self.kill()
        try:  # it may have answered between the last read and the kill
            answer = self._read_answer()
        except (EOFError, OSError):
            answer = None
        if answer is not None:
            result = self._answered(*answer, recycle=False)
            self.restart(count=False)  # what was queued went down the killed process's pipe
            return result
        self.hangs += 1
        result = self._lost("hang", f"no answer within {self.limit_s:g}s")
        self.restart()
        return result

    def _died(self) -> Result:
        self.aborts += 1
        self.process.join(timeout=5)
        code = self.process.exitcode
        reason = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        result = self._lost("abort", reason)
        self.restart()
        return result

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    def restart(self, count: bool = True) -> None:
        """Replace the process, by the spare if one was started; never waits for the new one."""
        self.kill()
        self.restarts += int(count)
        spare = self.spare if self.spare is not None and self.spare.alive() else None
        if self.spare is not None and spare is None:
            self.spare.kill()
        self.proc, self.spare = spare or self._new_process(), None
        self.cases_done = 0
        self.rss_seen, self.rss_at = 0, 0.0
        if self.job is None:  # first, so that the new process starts on them while the next spare forks
            self._promote_queued(resend=True)
        if self.keep_spare:
            self._start_spare()

    def drop_queued(self) -> None:
        """Forget the prefetched jobs (the campaign's time is up): they are never recorded, and
        `stop` then ends the process at once instead of letting it run them first."""
        if self.queued:
            self.queued = []
            self.dropped = True

    def stop(self) -> None:
        if self.proc is not None and not self.dropped:
            try:
                self.proc.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
            self.proc.process.join(timeout=5)
        self.kill()
        if self.spare is not None:
            self.spare.kill()
            self.spare = None
