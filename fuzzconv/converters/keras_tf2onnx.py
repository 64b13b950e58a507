"""tf2onnx.convert.from_keras on a Keras 3 model, with an explicit input signature."""

from __future__ import annotations

from typing import Any

import numpy as np


def onnx_from_keras_tf2onnx(model: Any, inputs: list[np.ndarray], input_names: list[str], opset: int,
                            optimize: bool) -> bytes:
    import tensorflow as tf
    import tf2onnx

    signature = [tf.TensorSpec(x.shape, tf.as_dtype(x.dtype), name=name) for x, name in zip(inputs, input_names)]
    model_proto, _ = tf2onnx.convert.from_keras(
        model,
        input_signature=signature,
        opset=opset,
        optimizers=None if optimize else {},
    )
    return model_proto.SerializeToString()
