"""The study's five models in Keras (channels-last), the same architectures as `zoo_torch`.

Each model's FUNC file (written by the study) calls `trained(name, __file__)`, which loads the
`.keras` file saved beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

EXAMPLE_BATCH = 32


def lenet5() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(6, 3, padding="same", activation="tanh")(inputs)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Conv2D(16, 3, padding="same", activation="tanh")(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(120, activation="tanh")(x)
    x = layers.Dense(84, activation="tanh")(x)
    return keras.Model(inputs, layers.Dense(10)(x), name="lenet5")


def _batch_norm() -> Any:
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5)  # torch's defaults, as in the torch twin


def _basic_block(x: Any, channels: int, stride: int) -> Any:
    y = layers.Conv2D(channels, 3, stride, padding="same", use_bias=False)(x)
    y = layers.ReLU()(_batch_norm()(y))
    y = _batch_norm()(layers.Conv2D(channels, 3, padding="same", use_bias=False)(y))
    shortcut = x
    if stride != 1 or x.shape[-1] != channels:
        shortcut = _batch_norm()(layers.Conv2D(channels, 1, stride, use_bias=False)(x))
    return layers.ReLU()(layers.Add()([y, shortcut]))


def resnet() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = layers.ReLU()(_batch_norm()(layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)))
    x = _basic_block(x, 16, 1)
    x = _basic_block(x, 32, 2)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10)(x), name="resnet")


def vgg() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = inputs
    for channels in (16, 32):
        x = layers.Conv2D(channels, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(channels, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Dense(64, activation="relu")(layers.Flatten()(x))
    x = layers.Dropout(0.3)(x)
    return keras.Model(inputs, layers.Dense(10)(x), name="vgg")


def _recurrent(cell: str) -> keras.Model:
    inputs = keras.Input((8, 8))
    layer = layers.LSTM(32) if cell == "lstm" else layers.GRU(32)
    return keras.Model(inputs, layers.Dense(10)(layer(inputs)), name=cell)


BUILDERS = {
    "lenet5": lenet5,
    "resnet": resnet,
    "vgg": vgg,
    "lstm": lambda: _recurrent("lstm"),
    "gru": lambda: _recurrent("gru"),
}


def layout_of(name: str) -> str:
    return "sequence" if name in ("lstm", "gru") else "nhwc"


def train(name: str, x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> keras.Model:
    """Adam, cross-entropy from logits, mini-batches of 32, a fixed seed (as the torch twin)."""
    keras.utils.set_random_seed(seed)
    model = BUILDERS[name]()
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    return model


def save(model: keras.Model, path: Path) -> None:
    model.save(path.with_suffix(".keras"))


def trained(name: str, func_file: str) -> tuple[keras.Model, list[np.ndarray]]:
    """The trained model saved beside `func_file`, and a batch of test digits as its example input."""
    here = Path(func_file)
    model = keras.models.load_model(here.with_suffix(".keras"), compile=False)  # the inference model, as deployed
    with np.load(here.parent.parent / "data" / f"digits_test_{layout_of(name)}.npz") as data:
        example = data["x"][:EXAMPLE_BATCH]
    return model, [example]
