"""The same campaign with workers as Ray actors, on a local Ray or a cluster.

Each actor supervises one local worker process on its node, with the code and the handle a
local campaign uses (`fuzzconv.workers.WorkerHandle`): a case that kills or hangs its process
is recorded there as `abort` or `hang`, at the step the process reported and with its time in
that step, and the process is replaced from the node's warm spare in milliseconds, as on one
machine. The actor imports no framework and outlives its worker processes. Results come back to
the driver, which alone writes the store and the campaign database. An actor that itself dies
or stops answering is killed, replaced, and its case recorded against the step it last read.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fuzzconv.case import Case
from fuzzconv.engine import CampaignConfig
from fuzzconv.seen import SeenSequences
from fuzzconv.workers import READY_TIMEOUT_S, Result, answer_result, case_job, lost_outcome

QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "OMP_NUM_THREADS": "1"}


CONTROL = "control"  # the actor's concurrency group for calls made while a job runs
PREFETCH_DEPTH = 1  # jobs sent to an actor behind the one it runs, so it never waits for the driver
ACTOR_SLACK_S = READY_TIMEOUT_S  # beyond a job's own limit: a new worker process may be starting
POLL_S = 0.5  # how often a waiting actor reads its worker's step, for `current_step`


class CaseRunner:
    """The actor body: one warm worker process of a frontend, supervised as a local campaign
    does; one job at a time, the worker's current step readable meanwhile."""

    def __init__(self, frontend: str, case_timeout_s: float, recycle_after: int, memory_limit_bytes: int) -> None:
        import tempfile
        from pathlib import Path

        from fuzzconv.workers import WorkerHandle

        self.log_dir = Path(tempfile.mkdtemp(prefix="fuzzconv-ray-"))  # on the actor's node; removed at close
        self.handle = WorkerHandle(frontend, log_path=self.log_dir / f"{frontend}-worker.log",
                                   case_timeout_s=case_timeout_s, recycle_after=recycle_after,
                                   memory_limit_bytes=memory_limit_bytes, keep_spare=True)
        self.handle.start()

    def ready(self) -> int:
        return os.getpid()

    def current_step(self) -> str:
        return self.handle.stage

    def health(self) -> dict[str, int]:
        handle = self.handle
        return {"restarts": handle.restarts, "hangs": handle.hangs, "aborts": handle.aborts,
                "rss_bytes": handle.rss_bytes()}

    def run(self, job: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, int]]:
        """(kind of answer, its data as a local worker sends it, the worker's health) for a run or
        minimize job; a lost worker's case comes back as its `abort` or `hang` outcome."""
        from multiprocessing.connection import wait

        handle = self.handle
        case = Case.from_json(job["case"])
        if job["kind"] == "minimize":
            handle.submit_minimize(case, job["title"], job["max_calls"], job["budget_s"])
        else:
            handle.submit(case)
        while True:
            result = handle.collect()
            if result is not None:
                break
            waitable = handle.waitable()
            timeout = max(0.0, min(POLL_S, handle.deadline() - time.monotonic()))
            if waitable is not None:
                wait([waitable], timeout)
            else:
                time.sleep(timeout)
        if result.reduced is not None:
            return "reduced", result.reduced, self.health()
        if result.outcome is not None:
            return "done", result.outcome.to_json(), self.health()
        return "error", {"traceback": result.error, "case": result.case.to_json()}, self.health()

    def close(self) -> None:
        import shutil

        self.handle.stop()
        shutil.rmtree(self.log_dir, ignore_errors=True)


class RayEngine:
    """Connects to (or starts) Ray and makes one actor handle per worker slot."""

    def __init__(self, config: CampaignConfig) -> None:
        import ray

        self.ray = ray
        self.config = config
        self.started_ray = False
        if not ray.is_initialized():
            if config.ray_address:
                ray.init(address=config.ray_address, runtime_env={"env_vars": QUIET_ENV}, log_to_driver=False)
            else:
                ray.init(num_cpus=max(1, config.jobs), _node_ip_address="127.0.0.1", include_dashboard=False,
                         runtime_env={"env_vars": QUIET_ENV}, log_to_driver=False)
                self.started_ray = True
        # Jobs run one at a time in the default group, in the order sent (a prefetched job waits
        # behind the current one); reading the step and stopping go through a group of their own.
        self.actor_class = ray.remote(concurrency_groups={CONTROL: 2})(CaseRunner)  # type: ignore[call-overload]

    def handle(self, frontend: str, role: str) -> RayWorkerHandle:
        # Minimizers take no CPU reservation so they never wait behind the fuzzing actors.
        return RayWorkerHandle(self, frontend, num_cpus=1.0 if role == "fuzz" else 0.0)

    def shutdown(self) -> None:
        if self.started_ray:
            self.ray.shutdown()


class RayWorkerHandle:
    """The engine's view of one actor; same interface as `fuzzconv.workers.WorkerHandle`.

    A fuzz job's case is made here on the driver (with the same guide knowledge a local worker
    keeps) and sent to the actor as a case to run: a remote actor that dies takes nothing with
    it that the driver cannot name, and the driver computes the coverage keys."""

    def __init__(self, engine: RayEngine, frontend: str, num_cpus: float) -> None:
        self.engine = engine
        self.ray = engine.ray
        self.frontend = frontend
        self.num_cpus = num_cpus
        self.case_timeout_s = engine.config.case_timeout_s
        self.actor: Any = None
        self.pending: Any = None
        self.case: Case | None = None
        self.index: int | None = None  # the seed-stream index of the fuzz job being run
        self.seen: SeenSequences | None = None  # the campaign's covered sequences, set by the campaign
        self.knowledge: Any = None
        self.stage = ""
        self.limit_s = self.case_timeout_s
        self.started_at = 0.0
        self.cases_done = 0
        self.lost_actors = {"restarts": 0, "hangs": 0, "aborts": 0}  # counts of this slot's replaced actors
        self.health: dict[str, int] = {}  # what the current actor last said of its worker
        # Jobs sent to the actor behind the current one: (case, seed-stream index, time limit, reference).
        self.queued: list[tuple[Case, int | None, float, Any]] = []

    def _count(self, name: str) -> int:
        return self.lost_actors[name] + self.health.get(name, 0)

    @property
    def restarts(self) -> int:
        return self._count("restarts")

    @property
    def hangs(self) -> int:
        return self._count("hangs")

    @property
    def aborts(self) -> int:
        return self._count("aborts")

    def rss_bytes(self) -> int:
        return self.health.get("rss_bytes", 0)

    @property
    def busy(self) -> bool:
        return self.case is not None

    def spawn(self) -> None:
        """Create the actor; calls made before it is up wait in its queue."""
        config = self.engine.config
        self.actor = self.engine.actor_class.options(num_cpus=self.num_cpus).remote(
            self.frontend, self.case_timeout_s, config.recycle_after, config.memory_limit_mb * 2**20)

    def wait_ready(self) -> None:
        self.ray.get(self.actor.ready.remote(), timeout=READY_TIMEOUT_S)

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def submit(self, case: Case) -> None:
        self._send(case, case_job(case), self.case_timeout_s)

    def _make(self, job: dict[str, Any]) -> Case:
        from fuzzconv.fuzz_job import Knowledge, make_case

        if self.knowledge is None:  # cases are made here on the driver, which owns the seen sequences
            self.knowledge = Knowledge({self.frontend: self.seen} if self.seen is not None else None)
        return make_case(job, self.knowledge)

    def submit_fuzz(self, job: dict[str, Any]) -> None:
        self.submit(self._make(job))
        self.index = job["index"]

    @property
    def can_prefetch(self) -> bool:
        return self.busy and self.actor is not None and len(self.queued) < PREFETCH_DEPTH

    def prefetch(self, job: dict[str, Any]) -> None:
        """Send a fuzz job to run after the current one; it becomes current when that is collected."""
        self._queue(self._make(job), job["index"], self.case_timeout_s)

    def _queue(self, case: Case, index: int | None, limit_s: float) -> None:
        self.queued.append((case, index, limit_s, self.actor.run.remote(case_job(case))))

    def drop_queued(self) -> None:
        """Forget the prefetched jobs (the campaign's time is up): cancelled before they start,
        never recorded."""
        for _, _, _, ref in self.queued:
            try:
                self.ray.cancel(ref)
            except Exception:  # noqa: BLE001 - already running or done: its answer is ignored
                pass
        self.queued = []

    def submit_minimize(self, case: Case, title: str, max_calls: int, budget_s: float) -> None:
        job = case_job(case, "minimize", title=title, max_calls=max_calls, budget_s=budget_s)
        self._send(case, job, budget_s + 2 * self.case_timeout_s + 60)

    def _send(self, case: Case, job: dict[str, Any], limit_s: float) -> None:
        self.case, self.limit_s, self.stage, self.index = case, limit_s, "queued", None
        self.started_at = time.monotonic()
        self.pending = self.actor.run.remote(job)

    def deadline(self) -> float:
        """The actor enforces the job's own limit on its worker; this one is for the actor itself."""
        return self.started_at + self.limit_s + ACTOR_SLACK_S

    def waitable(self) -> None:
        return None  # not a connection: the loop waits through `wait_any`

    def wait_any(self, handles: list[Any], timeout: float) -> None:
        """Block until one of the handles' jobs is done, or `timeout` (so the loop wakes the moment
        an answer comes, rather than polling)."""
        refs = [h.pending for h in handles if getattr(h, "pending", None) is not None]
        if refs:
            self.ray.wait(refs, num_returns=1, timeout=timeout)
        else:
            time.sleep(min(timeout, 0.02))

    def collect(self) -> Result | None:
        done, _ = self.ray.wait([self.pending], timeout=0)
        if done:
            try:
                kind, payload, self.health = self.ray.get(done[0])
            except self.ray.exceptions.RayError as exc:
                return self._lost("abort", f"actor died: {type(exc).__name__}")
            return self._answer(kind, payload)
        if time.monotonic() > self.deadline():
            return self._lost("hang", f"the actor gave no answer within {self.limit_s + ACTOR_SLACK_S:g}s")
        return None

    def _answer(self, kind: str, payload: dict[str, Any]) -> Result:
        assert self.case is not None
        job = {"kind": "run"}
        return self._finish(answer_result(kind, payload, job, self.case, time.monotonic() - self.started_at))

    def _lost(self, symptom: str, reason: str) -> Result:
        assert self.case is not None
        try:
            self.stage = self.ray.get(self.actor.current_step.options(concurrency_group=CONTROL).remote(), timeout=2)
        except Exception:
            pass  # the actor is gone: keep the step last seen
        self.lost_actors["hangs" if symptom == "hang" else "aborts"] += 1
        outcome = lost_outcome(self.case, self.stage, symptom, reason)
        queued, self.queued = self.queued, []  # they went to the lost actor: sent again to the new one
        result = self._finish(Result(self.case, outcome, time.monotonic() - self.started_at))
        self.restart()
        for case, index, limit_s, _ in queued:
            if self.busy:
                self._queue(case, index, limit_s)
            else:
                self._send(case, case_job(case), limit_s)
                self.index = index
        return result

    def _finish(self, result: Result) -> Result:
        result.index = self.index
        self.case, self.pending, self.index = None, None, None
        self.cases_done += 1
        if self.queued:  # the actor began it the moment it answered the last
            self.case, self.index, self.limit_s, self.pending = self.queued.pop(0)
            self.stage, self.started_at = "queued", time.monotonic()
        return result

    def restart(self) -> None:
        self.stop(graceful=False)
        for name in self.lost_actors:
            self.lost_actors[name] += self.health.get(name, 0)
        self.lost_actors["restarts"] += 1
        self.health = {}
        self.start()

    def stop(self, graceful: bool = True) -> None:
        """End the actor; `graceful` first lets an idle actor stop its worker processes (a lost
        actor is killed at once, so that nothing runs beside a job it may still be in)."""
        if self.actor is not None:
            if graceful:
                try:
                    self.ray.get(self.actor.close.options(concurrency_group=CONTROL).remote(), timeout=10)
                except Exception:  # noqa: BLE001 - the actor is dead or stuck: ray.kill below ends it
                    pass
            self.ray.kill(self.actor, no_restart=True)
            self.actor = None
