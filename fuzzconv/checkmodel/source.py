"""The user's model in its own framework: eager runs, loss gradients for attacks, native size.

Imported only in a worker; each class imports its framework and never the other one.
"""

from __future__ import annotations

import io
import os
import tempfile
from typing import Any

import numpy as np


class TorchSource:
    frontend = "torch"

    def __init__(self, model: Any) -> None:
        import torch

        torch.set_num_threads(1)
        self.model = model.eval()

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        with torch.no_grad():
            return outputs_as_arrays(self.model(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs)))

    def loss_gradient(self, inputs: list[np.ndarray], labels: np.ndarray) -> np.ndarray:
        """d(cross-entropy of the first output)/d(first input), the other inputs held fixed."""
        import torch

        first = torch.from_numpy(np.ascontiguousarray(inputs[0])).requires_grad_(True)
        rest = [torch.from_numpy(np.ascontiguousarray(x)) for x in inputs[1:]]
        logits = first_output(self.model(first, *rest))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels.astype(np.int64)))
        (gradient,) = torch.autograd.grad(loss, first)
        return gradient.numpy()

    def native_size_bytes(self) -> int:
        """torch.save of the state_dict: the weights and buffers."""
        import torch

        buffer = io.BytesIO()
        torch.save(self.model.state_dict(), buffer)
        return buffer.tell()

    def parameter_count(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))


class KerasSource:
    frontend = "keras"

    def __init__(self, model: Any) -> None:
        self.model = model

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return outputs_as_arrays(self.model(_keras_args(inputs), training=False))

    def loss_gradient(self, inputs: list[np.ndarray], labels: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        first = tf.convert_to_tensor(inputs[0])
        with tf.GradientTape() as tape:
            tape.watch(first)
            logits = first_output(self.model(_keras_args([first, *inputs[1:]]), training=False))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels.astype(np.int64), logits))
        return np.asarray(tape.gradient(loss, first))

    def native_size_bytes(self) -> int:
        """The weights file (`.weights.h5`), like torch's state_dict: no optimizer state, no config.

        Keras writes a compiled model's optimizer state into its weights file too (and clone_model
        keeps the compilation), so a compiled model is rebuilt from its config first.
        """
        model = self.model
        if getattr(model, "optimizer", None) is not None:
            model = type(self.model).from_config(self.model.get_config())
            model.set_weights(self.model.get_weights())
        with tempfile.TemporaryDirectory(prefix="fuzzconv-size-") as folder:
            path = os.path.join(folder, "model.weights.h5")
            model.save_weights(path)
            return os.path.getsize(path)

    def parameter_count(self) -> int:
        return int(self.model.count_params())


def _keras_args(inputs: list[Any]) -> Any:
    return inputs[0] if len(inputs) == 1 else list(inputs)


def first_output(outputs: Any) -> Any:
    if isinstance(outputs, dict):
        return next(iter(outputs.values()))
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def outputs_as_arrays(outputs: Any) -> list[np.ndarray]:
    """A tensor, a tuple/list of them or a dict of them, as a flat list of numpy arrays."""
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    flat: list[np.ndarray] = []
    for output in outputs:
        if isinstance(output, (list, tuple, dict)):
            flat.extend(outputs_as_arrays(output))
        else:
            flat.append(np.asarray(output.detach().numpy() if hasattr(output, "detach") else output))
    return flat


def source_for(frontend: str, model: Any) -> TorchSource | KerasSource:
    return TorchSource(model) if frontend == "torch" else KerasSource(model)
