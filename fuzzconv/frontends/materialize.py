"""Turn generated source into a live model and run it eagerly.

The source comes from `fuzzconv.frontends.source`, which renders only checked graphs, so
executing it runs code fuzzconv wrote, never text taken from a case file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fuzzconv.case import Case
from fuzzconv.frontends.source import model_source


@dataclass
class Materialized:
    source: str
    model: Any
    inputs: list[np.ndarray]


def load_source(source: str, filename: str = "<fuzzconv-model>") -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "fuzzconv_model"}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own rendered source
    return namespace


def materialize(case: Case) -> Materialized:
    source = model_source(case.graph)
    namespace = load_source(source)
    if case.graph.frontend == "keras":
        import keras

        keras.backend.clear_session()
    model = namespace["make_model"](case.data_seed)
    inputs = namespace["make_inputs"](case.data_seed)
    return Materialized(source, model, inputs)


def run_eager(frontend: str, model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    if frontend == "torch":
        return _run_torch(model, inputs)
    return _run_keras(model, inputs)


def _run_torch(model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        outputs = model(*(torch.from_numpy(np.array(x)) for x in inputs))
    return [o.detach().cpu().numpy() for o in outputs]


def _run_keras(model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    outputs = model(inputs, training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [np.asarray(o) for o in outputs]
