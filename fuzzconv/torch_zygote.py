"""Imported once by the fork server that PyTorch workers are forked from (see fuzzconv.workers).

Importing torch, onnx, onnxscript and onnxruntime costs a new process two to three seconds of
CPU. TorchScript cases kill their worker every few hundred cases (real SIGSEGV, SIGFPE and
SIGABRT findings), so paying that for every replacement would spend a large share of a
campaign re-importing. Forked from a process that has already imported them, a replacement is
ready in milliseconds and shares the imported pages. Nothing here starts a thread: the fork
server only imports and sets thread counts, so forking it is safe.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported, for its thread pools
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy  # noqa: E402,F401
import onnx  # noqa: E402,F401
import onnx.reference  # noqa: E402,F401
import onnxruntime  # noqa: E402,F401
import torch  # noqa: E402

torch.set_num_threads(1)

import fuzzconv.converters.torchscript  # noqa: E402,F401
import fuzzconv.fuzz_job  # noqa: E402,F401
import fuzzconv.pipeline  # noqa: E402,F401
from fuzzconv.ops import all_ops  # noqa: E402
from fuzzconv.workers import tune_gc  # noqa: E402

all_ops()  # the operator registry

tune_gc()  # before any fork: the children share the frozen imports
