"""The same campaign with workers as Ray actors, on a local Ray or a cluster.

Each actor supervises one local worker process on its node, with the code and the handle a
local campaign uses (`fuzzconv.workers.WorkerHandle`): a case that kills or hangs its process
is recorded there as `abort` or `hang`, at the step the process reported and with its time in
that step, and the process is replaced from the node's warm spare in milliseconds, as on one
machine. The actor imports no framework and outlives its worker processes. As in a local
campaign, the worker makes each fuzz job's case and computes its coverage keys; the driver only
picks converters and seeds and stores results, which come back to it alone (it writes the store
and the campaign database). The covered operator sequences that guide generation reach each
actor with its jobs: all of them with the first job a new actor gets, then the ones learned
since its last job. An actor that itself dies or stops answering is killed and replaced, and
its case recorded against the step it last read (for a fuzz job, as the unguided case of its
seed, as a local worker that dies before it names its case).
"""

from __future__ import annotations

import os
import time
from typing import Any

from fuzzconv.case import Case
from fuzzconv.engine import CampaignConfig
from fuzzconv.fuzz_job import stand_in_case
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
        # The driver's covered sequences, as its jobs bring them, shared with this node's worker processes.
        self.handle.seen = SeenSequences.shared(frontend)
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
        """(kind of answer, its data as a local worker sends it, the worker's health) for a fuzz,
        run or minimize job; a lost worker's case comes back as its `abort` or `hang` outcome."""
        from multiprocessing.connection import wait

        handle = self.handle
        job = dict(job)
        snapshot, learned = job.pop("seen_snapshot", b""), job.pop("learned", ())
        if (snapshot or learned) and handle.seen is not None:
            handle.seen.load(snapshot, learned)
        if job["kind"] == "fuzz":
            handle.submit_fuzz(job)
        elif job["kind"] == "minimize":
            handle.submit_minimize(Case.from_json(job["case"]), job["title"], job["max_calls"], job["budget_s"])
        else:
            handle.submit(Case.from_json(job["case"]))
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
        if result.outcome is None:
            return "error", {"traceback": result.error, "case": result.case.to_json()}, self.health()
        if job["kind"] == "fuzz":  # the case the worker made travels with its answer, as from a local worker
            outcome = result.outcome.to_json()
            if result.keys:  # the ONNX keys travel among the coverage keys (fuzzconv.fuzz_job.done_payload)
                del outcome["onnx_keys"]
            return "fuzzed", {"case": result.case.canonical_text, "outcome": outcome, "index": result.index,
                              "keys": list(result.keys), "cpu_s": result.cpu_s}, self.health()
        return "done", result.outcome.to_json(), self.health()

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

    A fuzz job goes to the actor as it is, with the covered sequences the actor lacks: the
    actor's worker makes the case and its coverage keys, as a local worker does. Making cases
    here instead cost the driver 0.4 ms a case more, which caps how many actors one driver can
    keep busy."""

    def __init__(self, engine: RayEngine, frontend: str, num_cpus: float) -> None:
        self.engine = engine
        self.ray = engine.ray
        self.frontend = frontend
        self.num_cpus = num_cpus
        self.case_timeout_s = engine.config.case_timeout_s
        self.actor: Any = None
        self.pending: Any = None
        self.job: dict[str, Any] | None = None  # the job being run
        self.case: Case | None = None  # its case, unless a fuzz job (the actor's worker makes that)
        self.index: int | None = None  # the seed-stream index of the fuzz job being run
        self._seen: SeenSequences | None = None
        self._learned: list[int] = []  # bits the campaign marked since the actor's last job
        self._actor_knows = False  # whether the current actor has had the whole of `seen`
        self.stage = ""
        self.limit_s = self.case_timeout_s
        self.started_at = 0.0
        self.cases_done = 0
        self.lost_actors = {"restarts": 0, "hangs": 0, "aborts": 0}  # counts of this slot's replaced actors
        self.health: dict[str, int] = {}  # what the current actor last said of its worker
        # Jobs sent to the actor behind the current one: (job, its case, seed-stream index, time limit, reference).
        self.queued: list[tuple[dict[str, Any], Case | None, int | None, float, Any]] = []

    @property
    def seen(self) -> SeenSequences | None:
        """The campaign's covered sequences of this frontend (set by the campaign)."""
        return self._seen

    @seen.setter
    def seen(self, seen: SeenSequences | None) -> None:
        self._seen = seen
        self._learned = seen.follow() if seen is not None else []
        self._actor_knows = False

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
        return self.job is not None

    def spawn(self) -> None:
        """Create the actor; calls made before it is up wait in its queue."""
        config = self.engine.config
        self.actor = self.engine.actor_class.options(num_cpus=self.num_cpus).remote(
            self.frontend, self.case_timeout_s, config.recycle_after, config.memory_limit_mb * 2**20)
        self._actor_knows = False

    def wait_ready(self) -> None:
        self.ray.get(self.actor.ready.remote(), timeout=READY_TIMEOUT_S)

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def submit(self, case: Case) -> None:
        self._send(case_job(case), case, self.case_timeout_s)

    def submit_fuzz(self, job: dict[str, Any]) -> None:
        self._send(job, None, self.case_timeout_s)
        self.index = job["index"]

    @property
    def can_prefetch(self) -> bool:
        return self.busy and self.actor is not None and len(self.queued) < PREFETCH_DEPTH

    def prefetch(self, job: dict[str, Any]) -> None:
        """Send a fuzz job to run after the current one; it becomes current when that is collected."""
        self._queue(job, None, job["index"], self.case_timeout_s)

    def _queue(self, job: dict[str, Any], case: Case | None, index: int | None, limit_s: float) -> None:
        self.queued.append((job, case, index, limit_s, self._remote(job)))

    def _remote(self, job: dict[str, Any]) -> Any:
        """Start `job` on the actor, with what it has not been told of the covered sequences."""
        if self._seen is not None and job["kind"] == "fuzz":
            if not self._actor_knows:
                job = {**job, "seen_snapshot": self._seen.snapshot()}
                self._actor_knows = True
            elif self._learned:
                job = {**job, "learned": list(self._learned)}
            self._learned.clear()
        return self.actor.run.remote(job)

    def drop_queued(self) -> None:
        """Forget the prefetched jobs (the campaign's time is up): cancelled before they start,
        never recorded."""
        for *_, ref in self.queued:
            try:
                self.ray.cancel(ref)
            except Exception:  # noqa: BLE001 - already running or done: its answer is ignored
                pass
        self.queued = []
        self._actor_knows = False  # what those jobs would have told it is sent again in full

    def submit_minimize(self, case: Case, title: str, max_calls: int, budget_s: float) -> None:
        job = case_job(case, "minimize", title=title, max_calls=max_calls, budget_s=budget_s)
        self._send(job, case, budget_s + 2 * self.case_timeout_s + 60)

    def _send(self, job: dict[str, Any], case: Case | None, limit_s: float) -> None:
        self.job, self.case, self.limit_s, self.stage, self.index = job, case, limit_s, "queued", None
        self.started_at = time.monotonic()
        self.pending = self._remote(job)

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
        assert self.job is not None
        return self._finish(answer_result(kind, payload, self.job, self.case, time.monotonic() - self.started_at))

    def _lost(self, symptom: str, reason: str) -> Result:
        assert self.job is not None
        # A fuzz job's case died with the actor: it is named as a local worker's that dies before
        # publishing its case, by the unguided case of the same seed.
        case = self.case if self.case is not None else stand_in_case(self.job)
        try:
            self.stage = self.ray.get(self.actor.current_step.options(concurrency_group=CONTROL).remote(), timeout=2)
        except Exception:
            pass  # the actor is gone: keep the step last seen
        self.lost_actors["hangs" if symptom == "hang" else "aborts"] += 1
        outcome = lost_outcome(case, self.stage, symptom, reason)
        queued, self.queued = self.queued, []  # they went to the lost actor: sent again to the new one
        result = self._finish(Result(case, outcome, time.monotonic() - self.started_at))
        self.restart()
        for job, queued_case, index, limit_s, _ in queued:
            if self.busy:
                self._queue(job, queued_case, index, limit_s)
            else:
                self._send(job, queued_case, limit_s)
                self.index = index
        return result

    def _finish(self, result: Result) -> Result:
        result.index = self.index
        self.job, self.case, self.pending, self.index = None, None, None, None
        self.cases_done += 1
        if self.queued:  # the actor began it the moment it answered the last
            self.job, self.case, self.index, self.limit_s, self.pending = self.queued.pop(0)
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
