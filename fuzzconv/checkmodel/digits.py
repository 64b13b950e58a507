"""The study's data: scikit-learn's 8x8 digits (shipped inside the package, no download).

Images are scaled to [0, 1]; the recurrent models read each image's 8 rows as a sequence of 8
steps of 8 features. One fixed, stratified 80/20 split; the test rows are written as --data
files in each frontend's layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LAYOUTS = ("nchw", "nhwc", "sequence")
SPLIT_SEED = 2022
TEST_FRACTION = 0.2


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) with x as float32 images of shape (N, 8, 8) in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED,
                                                        stratify=y)
    return x_train, y_train, x_test, y_test


def in_layout(images: np.ndarray, layout: str) -> np.ndarray:
    if layout == "nchw":
        return images[:, None, :, :]
    if layout == "nhwc":
        return images[:, :, :, None]
    return images  # sequence: 8 steps (rows) of 8 features


def data_path(folder: Path, layout: str) -> Path:
    return folder / f"digits_test_{layout}.npz"


def write_test_sets(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    _, _, x_test, y_test = digits_split()
    paths = {}
    for layout in LAYOUTS:
        paths[layout] = data_path(folder, layout)
        np.savez(paths[layout], x=in_layout(x_test, layout), y=y_test)
    return paths
