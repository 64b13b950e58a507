"""tf2onnx.convert.from_keras on a Keras 3 model, with an explicit input signature."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fuzzconv.converters import ExportRequest


def tf2onnx_optimizers(optimize: bool, only: tuple[str, ...] | None) -> dict[str, Any] | None:
    """The `optimizers` argument of tf2onnx: None for all, {} for none, or just the named ones."""
    if only is not None:
        from tf2onnx import optimizer

        return {name: cls for name, cls in optimizer._get_optimizers().items() if name in only}
    return None if optimize else {}


def tf2onnx_optimizer_names() -> tuple[str, ...]:
    from tf2onnx import optimizer

    return tuple(optimizer._get_optimizers())


def signature(inputs: list[np.ndarray], request: ExportRequest) -> list[Any]:
    """One TensorSpec per input, named as the graph input, its dynamic axes None."""
    import tensorflow as tf

    return [
        tf.TensorSpec(tuple(None if axis in request.axes(i) else size for axis, size in enumerate(x.shape)),
                      tf.as_dtype(x.dtype), name=name)
        for i, (x, name) in enumerate(zip(inputs, request.input_names))
    ]


def onnx_from_keras_tf2onnx(model: Any, inputs: list[np.ndarray], request: ExportRequest) -> bytes:
    import tf2onnx

    model_proto, _ = tf2onnx.convert.from_keras(
        model,
        input_signature=signature(inputs, request),
        opset=request.opset,
        optimizers=tf2onnx_optimizers(request.optimize, request.only_optimizers),
    )
    return model_proto.SerializeToString()
