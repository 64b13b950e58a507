"""The parent side of check-model: run the worker, survive its hangs and deaths, measure memory.

The worker process is spawned (never forked), so the parent never imports a framework. A
worker that hangs past the time limit or dies is replaced; the converter it was on gets a
`hang` or `abort` verdict at the stage it last reported (the campaign's rule), and the new
worker goes on with the converters left.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import signal
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fuzzconv.checkmodel.loader import ModelSpec, UserModelError
from fuzzconv.triage import title

EXIT_PASS, EXIT_FAILED = 0, 1


@dataclass(frozen=True)
class CheckSettings:
    converters: tuple[str, ...] = ()  # empty: every converter for the model's frontend
    opset: int | None = None
    n_random: int = 8
    seed: int = 0
    tolerance: float = 1e-3
    repeats: int = 30
    robustness: bool = True
    memory: bool = True
    attack_samples: int = 256
    eps_fraction: float = 0.1
    pgd_steps: int = 10
    timeout_s: float = 600.0


class WorkerLost(Exception):
    def __init__(self, symptom: str, reason: str) -> None:
        super().__init__(reason)
        self.symptom, self.reason = symptom, reason


class CheckRun:
    """One check of one model: the worker's messages gathered into the report's parts."""

    def __init__(self, spec: ModelSpec, data: str | None, settings: CheckSettings, workdir: Path) -> None:
        self.spec, self.data, self.settings, self.workdir = spec, data, settings, workdir
        self.source: dict[str, Any] | None = None
        self.results: dict[str, dict[str, Any]] = {}
        self.step: tuple[str, str] = ("", "start")
        self.log_path = workdir / "worker.log"

    def job(self, converters: list[str]) -> dict[str, Any]:
        return {"file": str(self.spec.path), "func": self.spec.func, "data": self.data, "converters": converters,
                "workdir": str(self.workdir), **{k: v for k, v in asdict(self.settings).items() if k != "converters"}}

    def run(self) -> None:
        remaining = list(self.settings.converters)
        while True:
            try:
                self._run_worker(remaining)
                return
            except WorkerLost as lost:
                converter, step = self.step
                if not converter:
                    raise UserModelError(f"{self.spec.text}: the worker {lost.reason} while loading or running the "
                                         f"model in its own framework; see {self._log_tail()}") from None
                self.results[converter] = lost_result(converter, step, lost.symptom, lost.reason)
                remaining = [c for c in self._all_converters() if c not in self.results]
                if not remaining:
                    return

    def _all_converters(self) -> list[str]:
        from fuzzconv.checkmodel.convert import converters_for

        if self.settings.converters:
            return list(self.settings.converters)
        return list(converters_for(self.source["frontend"])) if self.source else []

    def _run_worker(self, converters: list[str]) -> None:
        from fuzzconv.checkmodel.worker import check_worker

        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=check_worker, args=(child, self.job(converters), str(self.log_path)),
                                  daemon=True, name="fuzzconv-check-model")
        process.start()
        child.close()
        try:
            self._serve(parent, process)
        finally:
            if process.is_alive():
                process.kill()
            process.join(timeout=10)

    def _serve(self, conn: Any, process: Any) -> None:
        while True:
            if not conn.poll(self.settings.timeout_s):
                raise WorkerLost("hang", f"gave no answer within {self.settings.timeout_s:g}s")
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                process.join(timeout=5)
                code = process.exitcode
                reason = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
                raise WorkerLost("abort", reason) from None
            if kind == "end":
                return
            self._take(kind, payload)

    def _take(self, kind: str, payload: Any) -> None:
        if kind == "step":
            self.step = (str(payload[0]), str(payload[1]))
        elif kind == "source":
            self.source = payload
        elif kind == "converter":
            self.results[payload["converter"]] = payload
        elif kind == "usage":
            raise UserModelError(payload)
        elif kind == "error":
            raise RuntimeError(f"fuzzconv check-model worker failed (fuzzconv's own bug):\n{payload}")

    def _log_tail(self) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
        except OSError:
            return "no log"
        return " | ".join(tail) or "an empty log"


def lost_result(converter: str, step: str, symptom: str, reason: str) -> dict[str, Any]:
    from fuzzconv.workers import STAGE_OF_STEP

    stage = STAGE_OF_STEP.get(step, "conversion")
    detail = "time limit" if symptom == "hang" else reason if reason.startswith("signal") else "nonzero exit"
    return {"converter": converter, "status": "finding", "stage": stage, "symptom": symptom,
            "title": title(converter, stage, symptom, detail), "decided_by": "last stage the worker reported",
            "message": f"the worker {reason} during step {step!r}"}


def check_model(spec: ModelSpec, data: str | None, settings: CheckSettings, out: Path) -> dict[str, Any]:
    """The whole check as one JSON-ready record; buckets for failures are written under `out`."""
    workdir = Path(tempfile.mkdtemp(prefix="fuzzconv-check-"))
    try:
        run = CheckRun(spec, data, settings, workdir)
        run.run()
        assert run.source is not None, "the worker ended without describing the source model"
        if settings.memory:
            _measure_memory(run)
        report = assemble(run)
        _write_buckets(run, report, out)
        return report
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _measure_memory(run: CheckRun) -> None:
    from fuzzconv.checkmodel.memory import peak_memory_mb

    assert run.source is not None
    inputs = str(run.workdir / "inputs.npz")
    run.source["peak_memory_mb"] = peak_memory_mb(["source", run.source["frontend"], str(run.spec.path),
                                                   run.spec.func, inputs])
    for converter, result in run.results.items():
        model = run.workdir / f"{converter}.onnx"
        if model.is_file():
            result["peak_memory_mb"] = peak_memory_mb(["onnx", str(model), inputs])


def assemble(run: CheckRun) -> dict[str, Any]:
    from fuzzconv.pipeline import library_versions

    assert run.source is not None
    source = run.source
    failed = [c for c, r in run.results.items() if r["status"] != "pass"]
    return {
        "model": {"spec": run.spec.text, "file": str(run.spec.path), "func": run.spec.func,
                  **{k: source[k] for k in ("frontend", "inputs", "outputs", "parameters", "native_size_bytes")}},
        "data": {"path": run.data, "rows": source["data_rows"], "labels": source["labels"]} if run.data else None,
        "settings": {k: v for k, v in asdict(run.settings).items() if k != "converters"},
        "source": {k: source.get(k) for k in ("latency_ms", "peak_memory_mb", "accuracy", "attack_success",
                                               "attack_eps")},
        "converters": list(run.results.values()),
        "versions": dict(library_versions(source["frontend"])),
        "failed": failed,
        "exit_code": EXIT_FAILED if failed else EXIT_PASS,
    }


def _write_buckets(run: CheckRun, report: dict[str, Any], out: Path) -> None:
    from fuzzconv.checkmodel.bucket import write_bucket

    for result in report["converters"]:
        if result["status"] == "pass":
            continue
        inputs = run.workdir / f"{result['converter']}-inputs.npz"
        folder = write_bucket(out, report, result, inputs if inputs.is_file() else run.workdir / "inputs.npz")
        result["bucket"] = str(folder)


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=1, default=str)
