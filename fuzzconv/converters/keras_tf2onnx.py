"""tf2onnx.convert.from_keras on a Keras 3 model, with an explicit input signature."""

from __future__ import annotations

from typing import Any

import numpy as np


def tf2onnx_optimizers(optimize: bool, only: tuple[str, ...] | None) -> dict[str, Any] | None:
    """The `optimizers` argument of tf2onnx: None for all, {} for none, or just the named ones."""
    if only is not None:
        from tf2onnx import optimizer

        return {name: cls for name, cls in optimizer._get_optimizers().items() if name in only}
    return None if optimize else {}


def tf2onnx_optimizer_names() -> tuple[str, ...]:
    from tf2onnx import optimizer

    return tuple(optimizer._get_optimizers())


def onnx_from_keras_tf2onnx(model: Any, inputs: list[np.ndarray], input_names: list[str], opset: int,
                            optimize: bool, only_optimizers: tuple[str, ...] | None = None) -> bytes:
    import tensorflow as tf
    import tf2onnx

    signature = [tf.TensorSpec(x.shape, tf.as_dtype(x.dtype), name=name) for x, name in zip(inputs, input_names)]
    model_proto, _ = tf2onnx.convert.from_keras(
        model,
        input_signature=signature,
        opset=opset,
        optimizers=tf2onnx_optimizers(optimize, only_optimizers),
    )
    return model_proto.SerializeToString()
