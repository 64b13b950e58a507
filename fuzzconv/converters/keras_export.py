"""Keras 3's own Model.export(format="onnx"): a SavedModel-style trace, then tf2onnx.

Keras offers no switch for tf2onnx's optimizers; `optimize=False` wraps tf2onnx's
`from_function` for the duration of the call so that it runs with `optimizers={}`.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fuzzconv.converters import ExportRequest


@contextmanager
def _tf2onnx_optimizers(optimizers: dict[str, Any]) -> Iterator[None]:
    import tf2onnx.convert

    original = tf2onnx.convert.from_function
    tf2onnx.convert.from_function = functools.partial(original, optimizers=optimizers)
    try:
        yield
    finally:
        tf2onnx.convert.from_function = original


def onnx_from_keras_export(model: Any, inputs: list[np.ndarray], request: ExportRequest) -> bytes:
    from fuzzconv.converters.keras_tf2onnx import signature, tf2onnx_optimizers

    optimizers = tf2onnx_optimizers(request.optimize, request.only_optimizers)
    # Without a signature Keras derives one from the model's inputs (fixed batch); a dynamic
    # case passes one with the batch axis left open, in Keras's multi-input form.
    kwargs = {"input_signature": [signature(inputs, request)]} if request.dynamic else {}
    with tempfile.TemporaryDirectory(prefix="fuzzconv-export-") as folder:
        path = os.path.join(folder, "model.onnx")
        if optimizers is None:
            model.export(path, format="onnx", opset_version=request.opset, verbose=False, **kwargs)
        else:
            with _tf2onnx_optimizers(optimizers):
                model.export(path, format="onnx", opset_version=request.opset, verbose=False, **kwargs)
        with open(path, "rb") as handle:
            return handle.read()
