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
    dynamic_axes: tuple[tuple[int, ...], ...] = ()  # per input: the axes exported as dynamic

    def axes(self, index: int) -> tuple[int, ...]:
        return self.dynamic_axes[index] if self.dynamic_axes else ()

    @property
    def dynamic(self) -> bool:
        return any(self.dynamic_axes)


def dynamic_axes(case: Case) -> tuple[tuple[int, ...], ...]:
    """Per graph input, the axes a dynamic case exports as dynamic; () for a static case.

    Option `dynamic` True: the batch axis of the inputs that carry the batch (their first axis
    has the first input's size). `dynamic` "spatial" (PyTorch models): also the last axis (W in
    NCHW) of the inputs of the first input's rank that share its size there. Keras models are
    built on `keras.Input` shapes with fixed spatial sizes, so for them it means the batch only."""
    mode = case.target.option.get("dynamic", False)
    graph_inputs = case.graph.inputs
    if not mode or not graph_inputs:
        return ()
    first = graph_inputs[0].type
    batch = first.shape[0] if first.rank else None
    axes = [[0] if i.type.rank > 0 and i.type.shape[0] == batch else [] for i in graph_inputs]
    if mode == "spatial" and first.rank >= 3 and case.graph.frontend == "torch":
        axis = first.rank - 1
        for found, graph_input in zip(axes, graph_inputs):
            if graph_input.type.rank == first.rank and graph_input.type.shape[axis] == first.shape[axis]:
                found.append(axis)
    return tuple(tuple(a) for a in axes)


def convert(case: Case, model: Any, inputs: list[np.ndarray], optimize: bool = True,
            only_optimizers: tuple[str, ...] | None = None, dynamic: bool = True) -> Converted:
    """Convert with the case's converter; `optimize=False` turns the converter's own passes off.

    `only_optimizers` (tf2onnx paths) runs just the named tf2onnx optimizers, to narrow an
    optimization bug down to one of them. A case with the option `dynamic` exports the batch
    axis of its batch-carrying inputs (and with "spatial" one spatial axis) as dynamic, unless
    `dynamic=False` (the source model itself cannot run at another shape).
    """
    request = ExportRequest(
        tuple(i.name for i in case.graph.inputs), tuple(case.graph.outputs), case.target.opset, optimize,
        only_optimizers, dynamic_axes(case) if dynamic else (),
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
