"""Turn generated source into a live model and run it eagerly.

The source comes from `fuzzconv.frontends.source`, which renders only checked graphs, so
executing it runs code fuzzconv wrote, never text taken from a case file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from fuzzconv.case import Case
from fuzzconv.frontends.source import MODEL_MARKER, model_source


@dataclass
class Materialized:
    source: str
    model: Any
    inputs: list[np.ndarray]
    namespace: dict[str, Any]


def load_source(source: str, filename: str = "<fuzzconv-model>") -> dict[str, Any]:
    """Execute rendered source. The shared prelude (imports, data helpers) is compiled once;
    the model part is compiled with its own line numbers, so tracebacks point into `source`."""
    namespace: dict[str, Any] = {"__name__": "fuzzconv_model"}
    prelude, marker, model = source.partition(MODEL_MARKER)
    if not marker:
        prelude, model = "", source
    exec(_compiled(prelude + marker, filename), namespace)  # noqa: S102 - our own rendered source
    padding = "\n" * prelude.count("\n")
    exec(compile(padding + model, filename, "exec"), namespace)  # noqa: S102
    return namespace


@lru_cache(maxsize=8)
def _compiled(text: str, filename: str) -> Any:
    return compile(text, filename, "exec")


def materialize(case: Case) -> Materialized:
    source = model_source(case.graph, case.data_mode)
    namespace = load_source(source)
    if case.graph.frontend == "keras":
        _tidy_keras()
    model = namespace["make_model"](case.data_seed)
    inputs = namespace["make_inputs"](case.data_seed)
    return Materialized(source, model, inputs, namespace)


def run_float64(case: Case, built: Materialized) -> list[np.ndarray] | None:
    """The source model evaluated in float64, or None where the frontend cannot do that."""
    wide = [x.astype(np.float64) if x.dtype in (np.float32, np.float16) else x for x in built.inputs]
    if case.graph.frontend == "torch":
        import copy

        model = copy.deepcopy(built.model).double()
    else:
        model = built.namespace["make_model"](case.data_seed, "float64")
    return run_eager(case.graph.frontend, model, wide)


_keras_models_built = 0
KERAS_CLEAR_EVERY = 100


def _tidy_keras() -> None:
    """Clear Keras's global state now and then: every time costs 0.17 s, never leaks memory."""
    global _keras_models_built
    _keras_models_built += 1
    if _keras_models_built % KERAS_CLEAR_EVERY == 0:
        import keras

        keras.backend.clear_session()


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


def second_inputs(case: Case, axes: tuple[tuple[int, ...], ...]) -> list[np.ndarray]:
    """Inputs at a second shape (each dynamic axis one longer), to try a dynamic export."""
    from fuzzconv.frontends.datagen import draw_array
    from fuzzconv.frontends.source import input_domains

    domains = input_domains(case.graph)
    rng = np.random.default_rng([case.data_seed, 2])
    arrays = []
    for graph_input, dynamic in zip(case.graph.inputs, axes):
        shape = tuple(size + 1 if axis in dynamic else size for axis, size in enumerate(graph_input.type.shape))
        arrays.append(draw_array(rng, shape, graph_input.type.dtype, domains[graph_input.name], case.data_mode))
    return arrays
