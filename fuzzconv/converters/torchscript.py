"""torch.onnx.export(dynamo=False): the TorchScript tracer and symbolic functions."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np


def onnx_from_torchscript(model: Any, inputs: list[np.ndarray], input_names: list[str],
                          output_names: list[str], opset: int, optimize: bool) -> bytes:
    import torch

    args = tuple(torch.from_numpy(np.array(x)) for x in inputs)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            args,
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=input_names,
            output_names=output_names,
            do_constant_folding=optimize,
        )
    return buffer.getvalue()
