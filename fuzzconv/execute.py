"""Validate converted ONNX and run it: onnxruntime (optimizations off and on) and the reference evaluator."""

from __future__ import annotations

from typing import Any

import numpy as np

ORT_LEVELS = ("off", "on")


def onnx_model(model: bytes | Any) -> Any:
    """An onnx.ModelProto from serialized bytes (parsed) or as given, so one parse can serve several reads."""
    import onnx

    return onnx.load_from_string(model) if isinstance(model, bytes) else model


def validate(model: bytes | Any) -> None:
    """Raise when the ONNX checker (full check) or strict shape inference rejects the model."""
    import onnx

    proto = onnx_model(model)
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)


def onnx_op_types(model: bytes | Any) -> tuple[str, ...]:
    return tuple(node.op_type for node in onnx_model(model).graph.node)


def ort_session(model_bytes: bytes, level: str, disabled_optimizers: tuple[str, ...] = ()) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL if level == "off" else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    kwargs: dict[str, Any] = {"providers": ["CPUExecutionProvider"]}
    if disabled_optimizers:
        kwargs["disabled_optimizers"] = list(disabled_optimizers)
    return ort.InferenceSession(model_bytes, options, **kwargs)


def modified_transformers(model_bytes: bytes) -> tuple[str, ...]:
    """The onnxruntime graph transformers that changed this model, read from its verbose log.

    onnxruntime logs from C++ to the process's stderr, so fd 2 is pointed at a temporary
    file while the session is created.
    """
    import os
    import re
    import tempfile

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 0
    options.log_verbosity_level = 0
    with tempfile.TemporaryFile(mode="w+b") as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    names = re.findall(r"GraphTransformer (\w+) modified: 1", text)
    return tuple(dict.fromkeys(names))


def feeds_for(input_names: list[str], graph_input_names: list[str], inputs: list[np.ndarray]) -> dict[str, Any]:
    """Map our inputs to the model's, by name where the names survived, else by position."""
    by_name = dict(zip(graph_input_names, inputs))
    if set(input_names) <= set(by_name):
        return {name: by_name[name] for name in input_names}
    return dict(zip(input_names, inputs))


def run_ort(session: Any, graph_input_names: list[str], inputs: list[np.ndarray]) -> list[np.ndarray]:
    names = [i.name for i in session.get_inputs()]
    return [np.asarray(o) for o in session.run(None, feeds_for(names, graph_input_names, inputs))]


def run_reference(model_bytes: bytes, graph_input_names: list[str], inputs: list[np.ndarray]) -> list[np.ndarray]:
    import onnx
    from onnx.reference import ReferenceEvaluator

    model = onnx.load_from_string(model_bytes)
    evaluator = ReferenceEvaluator(model)
    names = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    return [np.asarray(o) for o in evaluator.run(None, feeds_for(names, graph_input_names, inputs))]
