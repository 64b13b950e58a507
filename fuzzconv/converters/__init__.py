"""The four converter paths. Each turns a materialized model into serialized ONNX bytes.

A converter raises whatever its framework raises; the one boundary that turns exceptions
into outcomes is `fuzzconv.pipeline`. What a converter logs instead of raising (tf2onnx) is
captured and returned, because the log is part of the oracle.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from fuzzconv.case import Case

LOGGERS = ("tf2onnx", "torch.onnx", "onnxscript", "onnx_ir")


@dataclass
class Converted:
    model_bytes: bytes
    log: str


@contextmanager
def captured_logs(level: int = logging.WARNING) -> Iterator[io.StringIO]:
    """Collect what the converters log at `level` and above while the block runs."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield buffer
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def convert(case: Case, model: Any, inputs: list[np.ndarray], optimize: bool = True,
            only_optimizers: tuple[str, ...] | None = None) -> Converted:
    """Convert with the case's converter; `optimize=False` turns the converter's own passes off.

    `only_optimizers` (tf2onnx paths) runs just the named tf2onnx optimizers, to narrow an
    optimization bug down to one of them.
    """
    input_names = [i.name for i in case.graph.inputs]
    output_names = list(case.graph.outputs)
    opset = case.target.opset
    with captured_logs() as log:
        if case.target.converter == "torch-dynamo":
            from fuzzconv.converters.dynamo import onnx_from_dynamo

            data = onnx_from_dynamo(model, inputs, input_names, output_names, opset, optimize)
        elif case.target.converter == "torch-script":
            from fuzzconv.converters.torchscript import onnx_from_torchscript

            data = onnx_from_torchscript(model, inputs, input_names, output_names, opset, optimize)
        elif case.target.converter == "tf2onnx":
            from fuzzconv.converters.keras_tf2onnx import onnx_from_keras_tf2onnx

            data = onnx_from_keras_tf2onnx(model, inputs, input_names, opset, optimize, only_optimizers)
        else:
            from fuzzconv.converters.keras_export import onnx_from_keras_export

            data = onnx_from_keras_export(model, opset, optimize, only_optimizers)
    return Converted(data, log.getvalue())
