"""torch.onnx.export(dynamo=True): torch.export capture, torchlib translation, onnxscript passes."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fuzzconv.converters import ExportRequest


def onnx_from_dynamo(model: Any, inputs: list[np.ndarray], request: ExportRequest) -> bytes:
    import torch

    args = tuple(torch.from_numpy(np.array(x)) for x in inputs)
    dynamic_shapes = None
    if request.dynamic:
        dynamic_shapes = tuple({axis: torch.export.Dim.AUTO for axis in request.axes(i)} for i in range(len(inputs)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            args,
            dynamo=True,
            optimize=request.optimize,
            opset_version=request.opset,
            input_names=list(request.input_names),
            output_names=list(request.output_names),
            dynamic_shapes=dynamic_shapes,
            verbose=False,
            verify=False,
        )
    assert program is not None
    # Serialization is a stage of its own: ONNXProgram builds the proto from onnx_ir here.
    return program.model_proto.SerializeToString()
