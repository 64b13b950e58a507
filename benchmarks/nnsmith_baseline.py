"""NNSmith's torch -> ONNX -> onnxruntime loop, measured on this machine in the same run as fuzzconv.

The torch-script target is a ratio to NNSmith (ASPLOS 2023), so `throughput.py` runs NNSmith
0.1.0 in rounds between its own, rather than dividing by a figure measured on another day:
this machine's speed drifts by a fifth within minutes and differs more between machines.

NNSmith and the few libraries it needs that fuzzconv does not (z3, hydra) are installed from
PyPI, pinned, into `.bench/nnsmith-0.1.0` (ignored by git), never into the project's venv;
torch, onnx and onnxruntime are the venv's own. `nnsmith_mended.py` applies the two run-time
mends NNSmith needs on current torch and onnx. NNSmith runs as it ships otherwise: one process,
its default graphs (at most 5 operators), with both cores its own while it runs. One setting is
ours: torch gets one thread (OMP_NUM_THREADS=1), as in fuzzconv's workers. With torch's default
two threads, NNSmith made 25 cases/s here in place of 38, the difference spent spinning in the
kernel (31 s of system time in a 30 s run, against 3): one thread is its faster setting, so the
comparison is the stricter one.

A run counts the cases NNSmith completes (its own `Timing:` lines) from the start of its loop
for the given seconds; its start-up and operator probe are not counted, nor the case still in
flight at the deadline, as for fuzzconv. If NNSmith dies first (it segfaults now and then), it
is restarted for the rest of the time and the restart is not counted either; if it dies before
its loop starts, it is started again, up to MAX_RESTARTS times in a round.

Usage alone: python benchmarks/nnsmith_baseline.py [SECONDS]
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / ".bench" / "nnsmith-0.1.0"
SCRATCH = REPO / ".bench" / "scratch"  # the benchmarks' campaign and run folders (see throughput.py)


def scratch_root() -> Path:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    return SCRATCH
MENDED = Path(__file__).resolve().parent / "nnsmith_mended.py"
# NNSmith 0.1.0 and what it needs beyond fuzzconv's own dependencies, pinned.
PACKAGES = ("nnsmith==0.1.0", "z3-solver==5.4.1.0", "hydra-core==1.3.2", "omegaconf==2.3.0",
            "antlr4-python3-runtime==4.9.3", "hydra-colorlog==1.2.0", "colorlog==6.12.0",
            "multipledispatch==1.0.0", "appdirs==1.4.4")
START_TIMEOUT_S = 180.0  # start-up and the operator probe, on a cold cache
MAX_RESTARTS = 3  # in one round: NNSmith dying more often than that is no rate to compare with
LOOP_STARTED = "FUZZ_LOOP_STARTED"


class Unavailable(Exception):
    """NNSmith cannot be installed or run here; the message says why."""


class EndedAtStart(Unavailable):
    """NNSmith's process ended before its loop started (it crashes now and then): worth a retry."""


def install(site: Path = SITE) -> Path:
    """NNSmith's folder, installing it there first if needed."""
    stamp = site / ".installed"
    if stamp.exists() and stamp.read_text() == "\n".join(PACKAGES):
        return site
    shutil.rmtree(site, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--target", str(site), *PACKAGES]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(site, ignore_errors=True)
        raise Unavailable(f"pip could not install NNSmith ({done.stderr.strip()[-300:]})")
    stamp.write_text("\n".join(PACKAGES))
    return site


@dataclass
class Baseline:
    """What NNSmith did in one timed run."""

    cases: int
    seconds: float
    restarts: int = 0
    graphs: int = 0  # graphs generated, and their operators in all
    ops: int = 0

    @property
    def rate(self) -> float:
        return self.cases / self.seconds if self.seconds else 0.0


class Session:
    """Runs of NNSmith that share one operator-probe cache and one scratch folder."""

    def __init__(self, site: Path) -> None:
        self.site = site
        self.scratch = Path(tempfile.mkdtemp(prefix="fuzzconv-bench-nnsmith-", dir=scratch_root()))
        self.runs = 0

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, seconds: float, seed: int) -> Baseline:
        """NNSmith's cases completed in `seconds` of its loop (restarted if it dies first)."""
        total = Baseline(0, 0.0)
        left = seconds
        while left > 0.5:
            try:
                cases, looped, died, graph_ops = self._once(left, seed + total.restarts)
            except EndedAtStart:
                if total.restarts >= MAX_RESTARTS:
                    raise
                total.restarts += 1
                continue
            except Unavailable:
                if not total.restarts:
                    raise
                break  # a restart that fails keeps what the runs before it counted
            total.graphs += len(graph_ops)
            total.ops += sum(graph_ops)
            total.cases += cases
            total.seconds += looped
            left -= looped
            if not died:
                break
            total.restarts += 1
        return total

    def _once(self, seconds: float, seed: int) -> tuple[int, float, bool, list[int]]:
        """(cases completed, seconds of loop counted, whether NNSmith died before the deadline,
        the operators of each graph it generated)."""
        self.runs += 1
        root = self.scratch / f"run-{self.runs}"
        # Warnings off from the start: the TorchScript exporter warns of its deprecation once per case.
        env = {**os.environ, "PYTHONPATH": str(self.site), "XDG_CACHE_HOME": str(self.scratch / "cache"),
               "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
        command = [sys.executable, str(MENDED), "model.type=onnx", "backend.type=onnxruntime",
                   f"fuzz.time={int(seconds) + 600}", f"fuzz.root={root}", f"fuzz.seed={seed}",
                   f"hydra.run.dir={root}-hydra"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                   env=env, cwd=self.scratch, start_new_session=True)
        started = threading.Event()
        start: list[float] = []
        finished: list[float] = []
        graph_ops: list[int] = []
        reader = threading.Thread(target=_read, args=(process, started, start, finished, graph_ops), daemon=True)
        reader.start()
        try:
            if not started.wait(START_TIMEOUT_S):
                raise Unavailable(f"NNSmith's loop did not start within {START_TIMEOUT_S:.0f} s")
            if not start:
                raise EndedAtStart(f"NNSmith ended before its loop started (exit code {_exit_code(process)})")
            t0 = start[0]
            deadline = t0 + seconds
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
                died = True
            except subprocess.TimeoutExpired:
                died = False
            end = min(deadline, time.monotonic())
        finally:
            _stop(process)
            reader.join(timeout=10)
        cases = sum(1 for t in finished if t <= end)
        if cases == 0 and died:
            raise Unavailable(f"NNSmith exited with code {process.returncode} before completing a case")
        return cases, end - t0, died, graph_ops


def _read(process: subprocess.Popen[str], started: threading.Event, start: list[float],
          finished: list[float], graph_ops: list[int]) -> None:
    """Note when the loop starts, when each case ends, and each generated graph's operators."""
    assert process.stdout is not None
    for line in process.stdout:
        if LOOP_STARTED in line:
            start.append(time.monotonic())
            started.set()
        elif "Timing:" in line:
            finished.append(time.monotonic())
        elif line.startswith("FUZZ_GRAPH_OPS "):
            graph_ops.append(int(line.split()[1]))
    started.set()  # it ended: let the waiter see that


def _exit_code(process: subprocess.Popen[str]) -> int | None:
    """Its exit code, once its output has ended (None if it still runs after closing it)."""
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return None


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    with Session(install()) as session:
        result = session.run(seconds, seed=1234)
    print(f"NNSmith 0.1.0: {result.cases} cases in {result.seconds:.1f} s of its loop, "
          f"{result.rate:.2f} cases/s, {result.restarts} restarts, "
          f"{result.ops / max(1, result.graphs):.2f} operators per generated graph")


if __name__ == "__main__":
    main()
