"""FILE.py:FUNC specs and --data files: checked cheaply in the parent, loaded for real in a worker.

The parent reads the file's syntax tree (no import, so no framework) to say early that FUNC is
missing; the worker imports the file by absolute path, calls FUNC and checks what came back.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

EXPECTED_RETURN = ("(torch.nn.Module, tuple of example tensors) or (keras.Model, list of example arrays)")


class UserModelError(Exception):
    """The user's file, FUNC, or data cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    path: Path  # absolute
    func: str

    @property
    def text(self) -> str:
        return f"{self.path}:{self.func}"


def parse_spec(text: str) -> ModelSpec:
    """FILE.py:FUNC, with FILE readable Python that defines FUNC at its top level."""
    file_part, sep, func = text.rpartition(":")
    if not sep or not file_part or not func:
        raise UserModelError(f"model {text!r} is not FILE.py:FUNC; name a Python file and the function in it "
                             "that returns the model and its example inputs, e.g. mymodel.py:build")
    if not re.fullmatch(r"[A-Za-z_]\w*", func):
        raise UserModelError(f"{func!r} in {text!r} is not a Python function name")
    path = Path(file_part).expanduser().resolve()
    if not path.is_file():
        raise UserModelError(f"model file {file_part} does not exist; pass the path of a .py file")
    defined = top_level_names(path)
    if func not in defined:
        choices = ", ".join(sorted(defined)) or "none"
        raise UserModelError(f"{file_part} defines no {func!r} at its top level; functions defined there: {choices}")
    return ModelSpec(path, func)


def top_level_names(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserModelError(f"cannot read model file {path}: {exc}") from None
    except SyntaxError as exc:
        raise UserModelError(f"model file {path} has a syntax error at line {exc.lineno}: {exc.msg}") from None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


# --- data files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    inputs: list[np.ndarray]  # one array per model input, first axis = sample
    labels: np.ndarray | None

    @property
    def size(self) -> int:
        return len(self.inputs[0])


def read_data(path: str) -> Dataset:
    """x (or x0, x1, ...) and an optional y, all with the same number of rows."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise UserModelError(f"cannot read --data {path}: {exc}; pass an .npz written by numpy.savez") from None
    inputs = _input_arrays(path, arrays)
    labels = arrays.get("y")
    rows = {len(x) for x in inputs}
    if len(rows) != 1:
        raise UserModelError(f"--data {path}: the input arrays have different numbers of rows {sorted(rows)}")
    if labels is not None:
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or len(labels) != len(inputs[0]):
            raise UserModelError(f"--data {path}: y must be one integer class label per row of x "
                                 f"({len(inputs[0])} rows); it is {labels.dtype}{list(labels.shape)}")
    return Dataset(inputs, labels)


def _input_arrays(path: str, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    if "x" in arrays:
        return [arrays["x"]]
    numbered = sorted((int(k[1:]), v) for k, v in arrays.items() if re.fullmatch(r"x\d+", k))
    if not numbered or [i for i, _ in numbered] != list(range(len(numbered))):
        raise UserModelError(f"--data {path} holds {sorted(arrays) or 'nothing'}; expected the key x "
                             "(one input) or x0, x1, ... (one per model input), and optionally y (labels)")
    return [v for _, v in numbered]


def check_data_fits(data: Dataset, examples: list[np.ndarray], path: str) -> Dataset:
    """The data's arrays must match the model's inputs in count, per-sample shape and kind of dtype."""
    if len(data.inputs) != len(examples):
        raise UserModelError(f"--data {path} has {len(data.inputs)} input array(s); the model takes {len(examples)}")
    fitted = []
    for i, (x, example) in enumerate(zip(data.inputs, examples)):
        if x.shape[1:] != example.shape[1:]:
            raise UserModelError(f"--data {path}: input {i} has samples of shape {list(x.shape[1:])}; the model's "
                                 f"example input {i} has {list(example.shape[1:])} (after the batch axis)")
        if np.issubdtype(x.dtype, np.floating) != np.issubdtype(example.dtype, np.floating):
            raise UserModelError(f"--data {path}: input {i} is {x.dtype}; the model's example input is {example.dtype}")
        fitted.append(x.astype(example.dtype))
    return Dataset(fitted, data.labels)


# --- loading in the worker -------------------------------------------------------------------


@dataclass
class UserModel:
    frontend: str  # "torch" or "keras"
    model: Any
    inputs: list[np.ndarray]


def import_file(path: Path) -> Any:
    name = f"fuzzconv_user_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))  # the user's file may import its neighbours
    spec.loader.exec_module(module)
    return module


def load_user_model(spec: ModelSpec) -> UserModel:
    """Import FILE, call FUNC, and check that it returned a model and example inputs."""
    try:
        module = import_file(spec.path)
        returned = getattr(module, spec.func)()
    except Exception as exc:
        raise UserModelError(f"{spec.text} raised {type(exc).__name__}: {exc}") from exc
    if not (isinstance(returned, tuple) and len(returned) == 2):
        raise UserModelError(f"{spec.text} returned {_describe(returned)}; expected {EXPECTED_RETURN}")
    model, examples = returned
    if "torch" in sys.modules and _is_torch_model(model):
        return UserModel("torch", model.eval(), _torch_inputs(spec, examples))
    if "keras" in sys.modules and _is_keras_model(model):
        return UserModel("keras", model, _keras_inputs(spec, examples))
    raise UserModelError(f"{spec.text} returned ({_describe(model)}, ...); expected {EXPECTED_RETURN}")


def _describe(value: Any) -> str:
    kind = type(value).__name__
    return f"a {kind} of {len(value)}" if isinstance(value, (tuple, list)) else f"a {kind}"


def _is_torch_model(model: Any) -> bool:
    import torch

    return isinstance(model, torch.nn.Module)


def _is_keras_model(model: Any) -> bool:
    import keras

    return isinstance(model, keras.Model)


def _torch_inputs(spec: ModelSpec, examples: Any) -> list[np.ndarray]:
    import torch

    if isinstance(examples, torch.Tensor):
        examples = (examples,)
    if not isinstance(examples, (tuple, list)) or not examples or not all(isinstance(t, torch.Tensor) for t in examples):
        raise UserModelError(f"{spec.text} returned a torch model with {_describe(examples)} as inputs; "
                             "expected a tuple of torch tensors (one per forward argument)")
    return [t.detach().cpu().numpy() for t in examples]


def _keras_inputs(spec: ModelSpec, examples: Any) -> list[np.ndarray]:
    if isinstance(examples, np.ndarray):
        examples = [examples]
    if not isinstance(examples, (tuple, list)) or not examples or not all(hasattr(a, "shape") for a in examples):
        raise UserModelError(f"{spec.text} returned a Keras model with {_describe(examples)} as inputs; "
                             "expected a list of numpy arrays (one per model input)")
    return [np.asarray(a) for a in examples]
