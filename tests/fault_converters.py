"""A test-only converter that really crashes or hangs its worker process.

Loaded into workers through FUZZCONV_WORKER_PLUGIN: any case whose graph uses `sin` makes
the converter segfault (a null pointer read through ctypes), `cos` makes it hang.
"""

import ctypes
import time

import fuzzconv.converters as converters

_real_convert = converters.convert


def faulty_convert(case, model, inputs, optimize=True, only_optimizers=None, dynamic=True):
    ops = set(case.graph.op_sequence)
    if "sin" in ops:
        ctypes.string_at(0)  # segfault
    if "cos" in ops:
        time.sleep(3600)
    return _real_convert(case, model, inputs, optimize, only_optimizers, dynamic)


converters.convert = faulty_convert
