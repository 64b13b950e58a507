"""Imported once by the fork server that PyTorch workers are forked from (see fuzzconv.workers).

Importing torch, onnx, onnxscript and onnxruntime costs a new process two to three seconds of
CPU. TorchScript cases kill their worker every few hundred cases (real SIGSEGV, SIGFPE and
SIGABRT findings), so paying that for every replacement would spend a large share of a
campaign re-importing. Forked from a process that has already imported them, a replacement is
ready in milliseconds and shares the imported pages. Nothing here starts a thread: the fork
server only imports, sets thread counts and runs a few cases on one thread, so forking it is safe.

The fork server also imports what the dynamo exporter loads on first use, and runs a few
TorchScript cases once (`warm_up`): a fresh process pays for much more than imports on its
first cases (the exporter's symbolic functions, onnxruntime's kernel registries, the
operators' first dispatch), about a tenth of a second on its first TorchScript case and two
seconds on its first dynamo case. Done here, every process forked afterwards starts with it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported, for its thread pools
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib  # noqa: E402
import signal  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402

import numpy  # noqa: E402,F401
import onnx  # noqa: E402,F401
import onnx.reference  # noqa: E402,F401
import onnxruntime  # noqa: E402,F401
import torch  # noqa: E402

torch.set_num_threads(1)

import fuzzconv.converters.torchscript  # noqa: E402,F401
import fuzzconv.fuzz_job  # noqa: E402,F401
import fuzzconv.pipeline  # noqa: E402,F401
from fuzzconv.case import Case  # noqa: E402
from fuzzconv.ops import all_ops  # noqa: E402
from fuzzconv.workers import tune_gc  # noqa: E402

all_ops()  # the operator registry

# What the dynamo exporter imports on its first export (torch.export, FX and its symbolic
# shapes with sympy, onnxscript's ATen library, networkx for its passes): about 1,400 modules
# and two seconds that every new process paid on its first torch-dynamo case. Imported here
# they are shared; importing them starts no thread. Exporting a case here would (dynamo does).
DYNAMO_MODULES = (
    "torch._dynamo", "torch.export", "torch.export._trace", "torch.fx.experimental.symbolic_shapes",
    "torch._functorch.aot_autograd", "torch._export.passes", "torch._inductor.decomposition",
    "torch.onnx._internal.exporter._core", "torch.onnx._internal.exporter._registration",
    "onnxscript", "onnxscript.function_libs.torch_lib.ops", "onnxscript.rewriter", "sympy", "networkx",
)


def import_dynamo_modules() -> int:
    """Import DYNAMO_MODULES, skipping any this torch or onnxscript does not have; how many loaded."""
    import importlib

    loaded = 0
    for name in DYNAMO_MODULES:
        try:
            importlib.import_module(name)
            loaded += 1
        except Exception:  # noqa: BLE001 - another version's layout: the first export imports it instead
            continue
    return loaded


import_dynamo_modules()

# How many cases the fork server runs before its first fork; 0 runs none (for comparison).
WARM_VARIABLE = "FUZZCONV_WARM_CASES"
WARM_CASES = 24
WARM_SEED = 0  # fixed: the same cases every time, so a campaign's start costs the same
MAX_WARM_CRASHES = 3  # cases that kill the trial process are left out; after this many, stop trying
WARM_CASE_LIMIT_S = 30  # a trial case that takes longer is killed and left out, like a crash


def warm_up_cases(count: int) -> list[Case]:
    """`count` guided TorchScript cases: each steers to operators the ones before did not use."""
    from fuzzconv.engine import case_seed
    from fuzzconv.fuzz_job import Knowledge, fuzz_job, make_case

    knowledge = Knowledge()
    return [make_case(fuzz_job("torch-script", index, case_seed(WARM_SEED, "torch-script", index), None, 8, True),
                      knowledge) for index in range(count)]


def warm_up(cases: list[Case]) -> int:
    """Run the cases here, except those that kill a process: a case crashes the process that
    runs it (that is what the fuzzer finds), and this process is the fork server. So a forked
    trial process runs them first, and only those it survived run here. Returns how many ran."""
    from fuzzconv.pipeline import run_case

    safe = survived(cases, run_case)
    with _silenced():  # the exporter prints graphs to stdout, onnxruntime logs to stderr
        for case in safe:
            run_case(case)
    return len(safe)


def survived(cases: list[Case], run: Callable[[Case], object], limit_s: float = WARM_CASE_LIMIT_S) -> list[Case]:
    """The cases a forked trial process runs with `run` without dying or taking over `limit_s`
    seconds, in order; a case that kills it is left out and a new trial goes on after it."""
    safe: list[Case] = []
    start, crashes = 0, 0
    while start < len(cases) and crashes <= MAX_WARM_CRASHES:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the trial process: report each case it finished, never return
            os.close(read_end)
            code = 0
            try:
                with _silenced():
                    for index in range(start, len(cases)):
                        signal.setitimer(signal.ITIMER_REAL, limit_s)  # SIGALRM's default action ends it
                        run(cases[index])
                        os.write(write_end, b"%d\n" % index)
            except BaseException:  # run_case raising is fuzzconv's own bug: stop trying
                code = 1
            os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as reports:
            finished = [int(line) for line in reports.read().split()]
        _, status = os.waitpid(pid, 0)
        safe += [cases[index] for index in finished]
        if os.WIFEXITED(status):  # all ran (0), or fuzzconv's own bug (1): warm up with what ran
            break
        crashes += 1
        start = (finished[-1] if finished else start - 1) + 2  # past the case that killed it
    return safe


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """File descriptors 1 and 2 pointed at /dev/null: C++ code writes to them directly."""
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (null, *saved):
            os.close(fd)


def _warm_count() -> int:
    try:
        return max(0, int(os.environ.get(WARM_VARIABLE, WARM_CASES)))
    except ValueError:
        return WARM_CASES


try:
    warm_up(warm_up_cases(_warm_count()))
except Exception:  # noqa: BLE001 - a warm-up is an optimization: the fork server must start regardless
    pass

tune_gc()  # before any fork: the children share the frozen imports and what the warm-up built
