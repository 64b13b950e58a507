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


@dataclass(frozen=True)
class ExportRequest:
    """Everything a converter is told besides the model and its example inputs."""

    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    opset: int
    optimize: bool = True
    only_optimizers: tuple[str, ...] | None = None  # tf2onnx paths: run just these optimizers
    dynamic_batch: tuple[bool, ...] = ()  # per input: export its first axis as dynamic

    def is_dynamic(self, index: int) -> bool:
        return bool(self.dynamic_batch) and self.dynamic_batch[index]


def batch_inputs(case: Case) -> tuple[bool, ...]:
    """Inputs that carry the batch (their first axis has the first input's size); none when static."""
    if not case.target.option.get("dynamic", False):
        return ()
    graph_inputs = case.graph.inputs
    batch = graph_inputs[0].type.shape[0] if graph_inputs and graph_inputs[0].type.rank else None
    return tuple(i.type.rank > 0 and i.type.shape[0] == batch for i in graph_inputs)


def convert(case: Case, model: Any, inputs: list[np.ndarray], optimize: bool = True,
            only_optimizers: tuple[str, ...] | None = None, dynamic: bool = True) -> Converted:
    """Convert with the case's converter; `optimize=False` turns the converter's own passes off.

    `only_optimizers` (tf2onnx paths) runs just the named tf2onnx optimizers, to narrow an
    optimization bug down to one of them. A case with the option `dynamic` exports the batch
    axis of its batch-carrying inputs as dynamic, unless `dynamic=False` (the source model
    itself cannot change its batch size).
    """
    request = ExportRequest(
        tuple(i.name for i in case.graph.inputs), tuple(case.graph.outputs), case.target.opset, optimize,
        only_optimizers, batch_inputs(case) if dynamic else (),
    )
    with captured_logs() as log:
        if case.target.converter == "torch-dynamo":
            from fuzzconv.converters.dynamo import onnx_from_dynamo

            data = onnx_from_dynamo(model, inputs, request)
        elif case.target.converter == "torch-script":
            from fuzzconv.converters.torchscript import onnx_from_torchscript

            data = onnx_from_torchscript(model, inputs, request)
        elif case.target.converter == "tf2onnx":
            from fuzzconv.converters.keras_tf2onnx import onnx_from_keras_tf2onnx

            data = onnx_from_keras_tf2onnx(model, inputs, request)
        else:
            from fuzzconv.converters.keras_export import onnx_from_keras_export

            data = onnx_from_keras_export(model, inputs, request)
    return Converted(data, log.getvalue())
