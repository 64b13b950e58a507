"""torch.onnx.export(dynamo=False): the TorchScript tracer and symbolic functions."""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fuzzconv.converters import ExportRequest


def onnx_from_torchscript(model: Any, inputs: list[np.ndarray], request: ExportRequest) -> bytes:
    import torch

    args = tuple(torch.from_numpy(np.array(x)) for x in inputs)
    dynamic_axes = {name: {axis: f"d{axis}" for axis in request.axes(i)}
                    for i, name in enumerate(request.input_names) if request.axes(i)}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            args,
            buffer,  # type: ignore[arg-type]
            dynamo=False,
            opset_version=request.opset,
            input_names=list(request.input_names),
            output_names=list(request.output_names),
            do_constant_folding=request.optimize,
            dynamic_axes=dynamic_axes or None,
        )
    return buffer.getvalue()
