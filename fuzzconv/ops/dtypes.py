"""Which operators take float64 and float16 beside float32, per frontend: the exceptions.

Every operator's float32 arguments also take float64 and float16 in both frontends unless it is
listed here. Each entry was found by the registry walk (tests/test_registry.py runs every
operator at every dtype it claims) and says why.
"""

from __future__ import annotations

import dataclasses

from fuzzconv.ops.spec import Op

# PyTorch modules hold float32 parameters and refuse another float input ("expected scalar type
# Double but found Float"); the functional forms take any float. Some CPU kernels lack float16.
TORCH_FLOAT32_ONLY = {
    "batch_norm": "module with float32 parameters (float64 input: mixed dtype)",
    "conv1d": "module with float32 weights",
    "conv2d": "module with float32 weights",
    "conv_transpose1d": "module with float32 weights",
    "conv_transpose2d": "module with float32 weights",
    "depthwise_conv2d": "module with float32 weights",
    "group_norm": "module with float32 parameters",
    "gru": "RNN input dtype must match its float32 weights",
    "instance_norm": "module with float32 parameters",
    "layer_norm": "module with float32 parameters",
    "linear": "module with float32 weights",
    "local_response_norm": "avg_pool3d has no float16 CPU kernel",
    "lstm": "RNN input dtype must match its float32 weights",
    "multihead_attention": "module with float32 weights",
    "prelu": "module with a float32 weight; no type promotion",
    "resize": "bilinear/bicubic interpolation has no float16 CPU kernel",
    "rnn": "RNN input dtype must match its float32 weights",
    "transformer_encoder_layer": "module with float32 weights",
}

# Keras layers autocast float inputs to their float32 compute dtype: they take any float and
# give float32, so the converted graph must hold the cast.
KERAS_AUTOCAST = (
    "activation_layer", "adaptive_avg_pool", "adaptive_max_pool", "additive_attention_layer",
    "attention_layer", "avg_pool1d", "avg_pool2d", "batch_norm", "conv1d", "conv2d", "conv_transpose1d",
    "conv_transpose2d", "cropping", "depthwise_conv2d", "global_avg_pool", "global_max_pool",
    "group_norm", "gru", "instance_norm", "layer_norm", "leaky_relu", "linear", "lstm", "max_pool1d",
    "max_pool2d", "mish", "multihead_attention", "normalize", "prelu", "relu", "resize", "rms_norm",
    "rnn", "softmax", "upsample", "zero_padding",
)


def apply(registry: dict[str, Op]) -> None:
    """Narrow `wide` and set `keras_autocast` on the registered operators, in place."""
    for name in (*TORCH_FLOAT32_ONLY, *KERAS_AUTOCAST):
        if name not in registry:
            raise ValueError(f"ops/dtypes.py names {name!r}, which is not a registered operator")
    for name, op in registry.items():
        wide = tuple(f for f in op.wide if not (f == "torch" and name in TORCH_FLOAT32_ONLY))
        registry[name] = dataclasses.replace(op, wide=wide, keras_autocast=name in KERAS_AUTOCAST)
