"""Standalone `repro.py` scripts: numpy, the source framework, the converter and onnxruntime only.

The script holds the same generated model source a campaign executed, converts with the exact
options of the case, runs every step fuzzconv runs (convert, check, load, run with onnxruntime
optimizations off and on, compare), prints what it saw and exits 1 while the bug is present,
0 once every step passes.
"""

from __future__ import annotations

from fuzzconv.case import Case, Outcome
from fuzzconv.converters import dynamic_axes
from fuzzconv.frontends.source import model_source

DYN_AXES = '''
def dyn_axes(d):
    """An input's dynamic axes: DYNAMIC_BATCH holds lists of axes (True: the batch axis)."""
    return [0] if d is True else list(d or [])

'''

CONVERT_TORCH_DYNAMO = DYN_AXES + '''
def convert(model, inputs):
    args = tuple(torch.from_numpy(x) for x in inputs)
    dynamic = tuple({a: torch.export.Dim.AUTO for a in dyn_axes(d)} for d in DYNAMIC_BATCH)
    dynamic = dynamic if any(dynamic) else None
    program = torch.onnx.export(model, args, dynamo=True, optimize=OPTIMIZE, opset_version=OPSET,
                                input_names=INPUT_NAMES, output_names=OUTPUT_NAMES, dynamic_shapes=dynamic,
                                verify=False)
    return program.model_proto.SerializeToString(), ""
'''

CONVERT_TORCH_SCRIPT = DYN_AXES + '''
def convert(model, inputs):
    args = tuple(torch.from_numpy(x) for x in inputs)
    buffer = io.BytesIO()
    dynamic = {n: {a: f"d{a}" for a in dyn_axes(d)} for n, d in zip(INPUT_NAMES, DYNAMIC_BATCH) if dyn_axes(d)}
    torch.onnx.export(model, args, buffer, dynamo=False, opset_version=OPSET, input_names=INPUT_NAMES,
                      output_names=OUTPUT_NAMES, do_constant_folding=OPTIMIZE, dynamic_axes=dynamic or None)
    return buffer.getvalue(), ""
'''

CONVERT_TF2ONNX = DYN_AXES + '''
def convert(model, inputs):
    """tf2onnx logs unsupported ops instead of raising, so its log is returned too."""
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger("tf2onnx").addHandler(handler)
    try:
        signature = [tf.TensorSpec([None if a in dyn_axes(d) else s for a, s in enumerate(x.shape)],
                                   tf.as_dtype(x.dtype), name=n) for x, n, d in zip(inputs, INPUT_NAMES, DYNAMIC_BATCH)]
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=OPSET,
                                              optimizers=None if OPTIMIZE else {})
    finally:
        logging.getLogger("tf2onnx").removeHandler(handler)
    return proto.SerializeToString(), log.getvalue()
'''

CONVERT_KERAS_EXPORT = DYN_AXES + '''
def convert(model, inputs):
    """Keras's own exporter (it runs tf2onnx inside); its tf2onnx log is returned too."""
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger("tf2onnx").addHandler(handler)
    model(inputs)  # Keras exports only models that have been called
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.onnx")
        try:
            signature = [[tf.TensorSpec([None if a in dyn_axes(d) else s for a, s in enumerate(x.shape)],
                                        tf.as_dtype(x.dtype), name=n) for x, n, d in zip(inputs, INPUT_NAMES, DYNAMIC_BATCH)]]
            signature = signature if any(dyn_axes(d) for d in DYNAMIC_BATCH) else None
            model.export(path, format="onnx", opset_version=OPSET, verbose=False, input_signature=signature)
        finally:
            logging.getLogger("tf2onnx").removeHandler(handler)
        with open(path, "rb") as handle:
            return handle.read(), log.getvalue()
'''

RUN_TORCH = '''
def run_source(model, inputs):
    with torch.no_grad():
        return [o.numpy() for o in model(*(torch.from_numpy(x) for x in inputs))]
'''

RUN_KERAS = '''
def run_source(model, inputs):
    outputs = model(inputs, training=False)
    return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
'''

MAIN = '''
def run_onnx(model_bytes, inputs, optimized):
    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, inputs)))


def compare(expected, actual):
    """Shape, dtype, NaN/Inf positions, then values: |a - e| <= TOLERANCE * (1 + |e|)."""
    problems = []
    for name, e, a in zip(OUTPUT_NAMES, expected, actual):
        a = np.asarray(a)
        if a.shape != e.shape or a.dtype != e.dtype:
            problems.append(f"{name}: expected {e.dtype}{list(e.shape)}, got {a.dtype}{list(a.shape)}")
            continue
        e64, a64 = e.astype(np.float64), a.astype(np.float64)
        if not np.array_equal(np.isnan(e64), np.isnan(a64)) or not np.array_equal(np.isinf(e64), np.isinf(a64)):
            problems.append(f"{name}: NaN/Inf positions differ")
            continue
        finite = np.isfinite(e64)
        err = np.abs(a64 - e64)[finite] / (1 + np.abs(e64[finite])) if finite.any() else np.zeros(1)
        if err.size and err.max() > TOLERANCE:
            worst = int(np.argmax(np.where(finite, np.abs(a64 - e64), -1)))
            problems.append(f"{name}: max error {err.max():.3g} > {TOLERANCE:g}; at flat index {worst}: "
                            f"expected {e64.ravel()[worst]:.6g}, got {a64.ravel()[worst]:.6g}")
    if len(actual) != len(expected):
        problems.append(f"expected {len(expected)} outputs, got {len(actual)}")
    return problems


def main():
    model = make_model(SEED)
    inputs = make_inputs(SEED)
    expected = run_source(model, inputs)
    print(f"source model: {len(expected)} output(s) " + ", ".join(f"{e.dtype}{list(e.shape)}" for e in expected))
    try:
        model_bytes, log = convert(model, inputs)
    except Exception as exc:
        print(f"BUG: conversion raised {type(exc).__name__}: {exc}")
        return 1
    if "is not supported" in log or "Failed to convert node" in log or "Failed to apply" in log:
        print("BUG: the converter logged a failure:\\n" + log)
        return 1
    try:
        onnx.checker.check_model(onnx.load_from_string(model_bytes), full_check=True)
    except Exception as exc:
        print(f"BUG: the ONNX checker rejects the converted model: {type(exc).__name__}: {exc}")
        return 1
    for optimized in (False, True):
        label = "onnxruntime optimizations " + ("on" if optimized else "off")
        try:
            actual = run_onnx(model_bytes, inputs, optimized)
        except Exception as exc:
            print(f"BUG: {label}: {type(exc).__name__}: {exc}")
            return 1
        problems = compare(expected, actual)
        if problems:
            print(f"BUG: wrong model with {label}:")
            for problem in problems:
                print("  " + problem)
            return 1
        print(f"{label}: all outputs agree")
    if any(dyn_axes(d) for d in DYNAMIC_BATCH):  # exported with dynamic axes: it must hold at another shape too
        rng = np.random.default_rng([SEED, 2])
        second = [draw_array(rng, tuple(n + 1 if a in dyn_axes(d) else n for a, n in enumerate(s)), t, m, DATA_MODE)
                  for (_, s, t, m), d in zip(INPUTS, DYNAMIC_BATCH)]
        try:
            problems = compare(run_source(model, second), run_onnx(model_bytes, second, False))
        except Exception as exc:
            problems = [f"{type(exc).__name__}: {exc}"]
        if problems:
            print("BUG: wrong model at a second input shape:\\n  " + "\\n  ".join(problems))
            return 1
        print("second input shape: all outputs agree")
    print("FIXED: every step passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

CONVERT = {
    "torch-dynamo": CONVERT_TORCH_DYNAMO,
    "torch-script": CONVERT_TORCH_SCRIPT,
    "tf2onnx": CONVERT_TF2ONNX,
    "keras-export": CONVERT_KERAS_EXPORT,
}

IMPORTS = {
    "torch-dynamo": ["import sys", "", "import numpy as np", "import onnx", "import onnxruntime as ort", "import torch"],
    "torch-script": ["import io", "import sys", "", "import numpy as np", "import onnx", "import onnxruntime as ort",
                     "import torch"],
    "tf2onnx": ["import io", "import logging", "import os", "import sys", "", "os.environ.setdefault(\"TF_CPP_MIN_LOG_LEVEL\", \"3\")", "",
                "import keras", "import numpy as np", "import onnx", "import onnxruntime as ort", "import tensorflow as tf",
                "import tf2onnx"],
    "keras-export": ["import io", "import logging", "import os", "import sys", "import tempfile", "",
                     "os.environ.setdefault(\"TF_CPP_MIN_LOG_LEVEL\", \"3\")", "", "import keras", "import numpy as np",
                     "import onnx", "import onnxruntime as ort", "import tensorflow as tf"],
}


def repro_script(case: Case, outcome: Outcome, tolerance: float) -> str:
    """The whole standalone script for one case and the outcome it had."""
    converter = case.target.converter
    body = _strip_imports(model_source(case.graph, case.data_mode))
    header = [
        "#!/usr/bin/env python3",
        f'"""Reproduces: {outcome.title}',
        "",
        f"stage {outcome.stage} ({outcome.decided_by}); symptom {outcome.symptom}.",
        f"Found by fuzzconv (case {case.id}). Exits 1 while the bug is present, 0 once it is fixed.",
        '"""',
        "",
        *IMPORTS[converter],
        "",
        f"SEED = {case.data_seed}",
        f"OPSET = {case.target.opset}",
        f"OPTIMIZE = {bool(case.target.option.get('optimize', True))}",
        f"TOLERANCE = {tolerance!r}",
        f"INPUT_NAMES = {[i.name for i in case.graph.inputs]!r}",
        f"OUTPUT_NAMES = {list(case.graph.outputs)!r}",
        f"DYNAMIC_BATCH = {[list(a) for a in dynamic_axes(case)] or [[]] * len(case.graph.inputs)!r}"
        "  # per input, the axes exported as dynamic (the batch axis, and for a spatial case one more)",
        "",
    ]
    run_source = RUN_TORCH if case.graph.frontend == "torch" else RUN_KERAS
    return "\n".join(header) + "\n" + body.strip() + "\n\n" + run_source + CONVERT[converter] + MAIN


def _strip_imports(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not line.startswith("import "))
