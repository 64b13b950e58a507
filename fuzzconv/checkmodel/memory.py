"""Peak memory of loading a model and running it once, each in a fresh process.

`python -m fuzzconv.checkmodel.memory source FRONTEND FILE FUNC INPUTS.npz` or `... onnx MODEL.onnx
INPUTS.npz` prints one JSON line. The figure is the growth of the process's resident set size
(RSS, Linux /proc/self/status) from just after the imports to its peak while the model is
loaded (FUNC called, or an onnxruntime session created) and run once on the example inputs.
The peak counter (VmHWM) is reset after the imports by writing 5 to /proc/self/clear_refs, so
import-time peaks do not count. It measures native allocations too (framework and onnxruntime
arenas), which tracemalloc would miss; it includes any framework state first touched by the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _load_inputs(path: str) -> list[np.ndarray]:
    with np.load(path) as archive:
        return [archive[f"arr_{i}"] for i in range(len(archive.files))]


def measure_source(frontend: str, file: str, func: str, inputs_path: str) -> dict[str, Any]:
    from fuzzconv.checkmodel.loader import import_file
    from fuzzconv.checkmodel.source import source_for

    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    if frontend == "torch":
        import torch

        torch.set_num_threads(1)
    else:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    inputs = _load_inputs(inputs_path)
    baseline, reset = _status_kib("VmRSS"), _reset_peak()
    model, _ = getattr(import_file(Path(file)), func)()
    source_for(frontend, model).run(inputs)
    return _report(baseline, reset)


def measure_onnx(model_path: str, inputs_path: str) -> dict[str, Any]:
    import onnxruntime  # noqa: F401

    from fuzzconv.execute import ort_session, run_ort

    inputs = _load_inputs(inputs_path)
    model_bytes = Path(model_path).read_bytes()
    baseline, reset = _status_kib("VmRSS"), _reset_peak()
    run_ort(ort_session(model_bytes, "on"), [f"input_{i}" for i in range(len(inputs))], inputs)
    return _report(baseline, reset)


def _report(baseline_kib: int, reset: bool) -> dict[str, Any]:
    peak = _status_kib("VmHWM")
    return {"peak_mb": round(max(0, peak - baseline_kib) / 1024, 2), "peak_reset": reset}


def peak_memory_mb(args: list[str], timeout_s: float = 300.0) -> float | None:
    """Run one measurement in a fresh interpreter; None when it failed (the figure is then missing)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "fuzzconv.checkmodel.memory", *args], capture_output=True,
                              text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return None
    return float(json.loads(lines[-1])["peak_mb"])


def main(argv: list[str]) -> int:
    import warnings

    warnings.simplefilter("ignore")
    if argv[0] == "source":
        result = measure_source(*argv[1:5])
    else:
        result = measure_onnx(*argv[1:3])
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
