"""Convert a user's model with one converter, through the campaign's own converter functions.

The campaign's `fuzzconv.converters.convert` takes a Case; here the model and its example
inputs come from the user, so the same per-converter functions are called with an
ExportRequest built from the model's inputs and outputs, inside the same log capture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fuzzconv.case import CONVERTER_FRONTEND, CONVERTER_OPSETS
from fuzzconv.converters import Converted, ExportRequest, captured_logs
from fuzzconv.generate import DEFAULT_OPSET


def converters_for(frontend: str) -> tuple[str, ...]:
    return tuple(name for name, owner in CONVERTER_FRONTEND.items() if owner == frontend)


def opset_for(converter: str, requested: int | None) -> int:
    """The requested opset cut to what the converter accepts, or the campaign's default."""
    if requested is None:
        return DEFAULT_OPSET[converter]
    low, high = CONVERTER_OPSETS[converter]
    return min(max(requested, low), high)


def export_request(inputs: list[np.ndarray], output_count: int, opset: int, optimize: bool = True) -> ExportRequest:
    return ExportRequest(
        tuple(f"input_{i}" for i in range(len(inputs))),
        tuple(f"output_{i}" for i in range(output_count)),
        opset,
        optimize,
    )


def _exporter(converter: str) -> Callable[[Any, list[np.ndarray], ExportRequest], bytes]:
    if converter == "torch-dynamo":
        from fuzzconv.converters.dynamo import onnx_from_dynamo

        return onnx_from_dynamo
    if converter == "torch-script":
        from fuzzconv.converters.torchscript import onnx_from_torchscript

        return onnx_from_torchscript
    if converter == "tf2onnx":
        from fuzzconv.converters.keras_tf2onnx import onnx_from_keras_tf2onnx

        return onnx_from_keras_tf2onnx
    from fuzzconv.converters.keras_export import onnx_from_keras_export

    return onnx_from_keras_export


def onnx_from_user_model(converter: str, model: Any, inputs: list[np.ndarray], request: ExportRequest) -> Converted:
    """Serialized ONNX and what the converter logged; raises whatever the converter raises."""
    export = _exporter(converter)
    with captured_logs() as log:
        data = export(model, inputs, request)
    return Converted(data, log.getvalue())
