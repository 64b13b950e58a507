"""torch.onnx.export(dynamo=True): torch.export capture, torchlib translation, onnxscript passes."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def onnx_from_dynamo(model: Any, inputs: list[np.ndarray], input_names: list[str], output_names: list[str],
                     opset: int, optimize: bool) -> bytes:
    import torch

    args = tuple(torch.from_numpy(np.array(x)) for x in inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            args,
            dynamo=True,
            optimize=optimize,
            opset_version=opset,
            input_names=input_names,
            output_names=output_names,
            verbose=False,
            verify=False,
        )
    # Serialization is a stage of its own: ONNXProgram builds the proto from onnx_ir here.
    return program.model_proto.SerializeToString()
