"""Where a worker's harness time goes, in-process: the steps of the case pipeline and the
harness's own functions, per case, on the worker's own code path (`fuzzconv.workers.run_job`).

Runs CASES fuzz jobs of CONVERTER (guided, fuzzconv's default graphs) in a warmed process the
way a worker does (its frameworks imported, torch on one thread, the garbage collector tuned),
in forked chunks of 50 so that a case that crashes the process (converters do) loses only its
chunk. Prints the time a case takes, the tools' share (the steps benchmarks/throughput.py counts
as the converter's, the source run's and onnxruntime's) and the harness's, then each step and
each timed function in ms a case. Function times include what they call, and a function called
inside a step is counted in both. For an A/B against other code, run the same command with
PYTHONPATH set to a checkout of it (alternate the two: this machine drifts by a fifth within
minutes). Not part of the test suite.
Usage: python benchmarks/harness_split.py [CONVERTER] [CASES] [FIRST_SEED]
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import time
from typing import Any

from throughput import TOOL_STEPS  # beside this script

CHUNK = 50
TIMED = (  # (module, function) pairs, each a harness piece outside or inside the pipeline's steps
    ("fuzzconv.fuzz_job", "make_case"), ("fuzzconv.fuzz_job", "done_payload"),
    ("fuzzconv.pipeline", "infer_types"), ("fuzzconv.pipeline", "_try_second_shape"),
    ("fuzzconv.coverage", "onnx_graph_keys"), ("fuzzconv.coverage", "coverage_keys"),
    ("fuzzconv.execute", "onnx_model"), ("fuzzconv.execute", "onnx_op_types"),
    ("fuzzconv.frontends.materialize", "model_source"), ("fuzzconv.frontends.materialize", "load_source"),
    ("json", "dumps"),
)


def _timed(totals: dict[str, float], label: str, function: Any) -> Any:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[label] = totals.get(label, 0.0) + time.perf_counter() - start

    return timed


def _chunk(converter: str, seeds: range, knowledge: Any, totals: dict[str, float]) -> dict[str, Any]:
    """Run the chunk's jobs in a forked child; its figures, or {} when the child died."""
    from fuzzconv.fuzz_job import fuzz_job
    from fuzzconv.workers import run_job

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns: whatever happens, it exits here
        try:
            os.close(read)
            totals.clear()
            steps: dict[str, float] = {}
            wall = 0.0
            for index, seed in enumerate(seeds):
                start = time.perf_counter()
                _, payload = run_job(fuzz_job(converter, index, seed, None, 8, True), lambda step: None, knowledge)
                wall += time.perf_counter() - start
                for step, seconds in payload.get("outcome", {}).get("timings", {}).items():
                    steps[step] = steps.get(step, 0.0) + seconds
            report = json.dumps({"cases": len(seeds), "wall": wall, "steps": steps, "functions": totals}).encode()
            view = memoryview(report)
            while view:
                view = view[os.write(write, view):]
        finally:
            os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 1 << 20):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(data) if data else {}


def main() -> None:
    converter = sys.argv[1] if len(sys.argv) > 1 else "torch-script"
    cases = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    first_seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    from fuzzconv.case import CONVERTER_FRONTEND
    from fuzzconv.fuzz_job import Knowledge, fuzz_job
    from fuzzconv.workers import _quiet_process, _warm_up, run_job, tune_gc

    out = os.fdopen(os.dup(1), "w")  # the frameworks' own output goes to a log, as in a worker
    _quiet_process(os.path.join(os.getcwd(), ".bench", "harness_split.log") if os.path.isdir(".bench") else os.devnull)
    _warm_up(CONVERTER_FRONTEND[converter])
    tune_gc()
    totals: dict[str, float] = {}
    for module_name, name in TIMED:
        module = importlib.import_module(module_name)
        setattr(module, name, _timed(totals, f"{module_name.rsplit('.', 1)[-1]}.{name}", getattr(module, name)))
    knowledge = Knowledge()
    for index in range(30):  # warm: the first cases import and cache what the rest reuse
        run_job(fuzz_job(converter, index, 10**6 + index, None, 8, True), lambda step: None, knowledge)
    pooled: dict[str, Any] = {"cases": 0, "wall": 0.0, "steps": {}, "functions": {}}
    lost = 0
    for start in range(0, cases, CHUNK):
        got = _chunk(converter, range(first_seed + start, first_seed + min(cases, start + CHUNK)), knowledge, totals)
        if not got:
            lost += 1
            continue
        pooled["cases"] += got["cases"]
        pooled["wall"] += got["wall"]
        for kind in ("steps", "functions"):
            for name, seconds in got[kind].items():
                pooled[kind][name] = pooled[kind].get(name, 0.0) + seconds
    done = pooled["cases"] or 1
    tool = sum(seconds for step, seconds in pooled["steps"].items() if step in TOOL_STEPS)
    harness = pooled["wall"] - tool
    print(f"{converter}: {pooled['cases']} cases ({lost} chunks of {CHUNK} lost to a crash), "
          f"{1000 * pooled['wall'] / done:.2f} ms a case: tools {1000 * tool / done:.2f} ms, "
          f"harness {1000 * harness / done:.2f} ms = {100 * harness / max(pooled['wall'], 1e-9):.1f} %", file=out)
    for kind in ("steps", "functions"):
        for name, seconds in sorted(pooled[kind].items(), key=lambda item: -item[1]):
            tag = "tool" if kind == "steps" and name in TOOL_STEPS else "harness" if kind == "steps" else "function"
            print(f"  {tag:8s} {name:32s} {1000 * seconds / done:7.3f} ms", file=out)
    out.flush()
    os._exit(0)  # the frameworks' teardown can crash at exit; the figures are out


if __name__ == "__main__":
    main()
