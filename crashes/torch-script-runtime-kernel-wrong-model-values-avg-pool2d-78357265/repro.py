#!/usr/bin/env python3
"""Reproduces: torch/script: runtime-kernel: wrong-model: values: avg_pool2d

stage runtime-kernel (the ONNX reference evaluator agrees with the source; onnxruntime does not); symptom wrong-model.
Found by fuzzconv (case ef48984326b0f989). Exits 1 while the bug is present, 0 once it is fixed.
"""

import io
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch

SEED = 1953917026
OPSET = 17
OPTIMIZE = True
TOLERANCE = 0.0001
INPUT_NAMES = ['x2']
OUTPUT_NAMES = ['n2']
DYNAMIC_BATCH = [False]  # inputs whose batch axis is exported as dynamic

def draw_array(rng, shape, dtype, domain, mode="random"):
    """Values for one input: the consumer's value domain decides the range.

    Modes other than "random" are the minimizer's simpler data; each stays in the domain.
    """
    if mode == "zeros" and domain in ("any", "nonneg", "index"):
        return np.zeros(shape, dtype=dtype)
    if mode in ("ones", "zeros"):
        return np.ones(shape, dtype=dtype)
    if mode == "small-int" and dtype != "bool":
        low = 1 if domain in ("positive", "unit") else 0 if domain in ("nonneg", "index") else -2
        values = rng.integers(low, 3, size=shape).astype(dtype)
        return values * 0.5 if domain == "unit" else values
    if mode == "edge":
        return with_edge_values(rng, draw_array(rng, shape, dtype, domain), dtype, domain)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in ("int32", "int64"):
        low = 0 if domain in ("nonneg", "positive", "index") else -4
        return rng.integers(low + (domain == "positive"), 5, size=shape).astype(dtype)
    if domain == "positive":
        values = rng.uniform(0.1, 2.0, size=shape)
    elif domain == "nonneg":
        values = rng.uniform(0.0, 2.0, size=shape)
    elif domain == "unit":
        values = rng.uniform(0.01, 0.99, size=shape)
    else:
        values = rng.standard_normal(size=shape)
    return values.astype(dtype)


def with_edge_values(rng, values, dtype, domain):
    """About a fifth of the elements replaced by values real data hits, inside the domain."""
    if dtype == "bool" or values.size == 0:
        return values
    if dtype in ("int32", "int64"):
        edges = [0, 4] if domain in ("nonneg", "index") else [1, 4] if domain == "positive" else [-4, 0, 4]
    elif domain == "unit":
        edges = [1e-7, 1 - 1e-7, 0.5]
    elif domain == "positive":
        edges = [1e-30, 1e-7, 1e30, np.inf]
    elif domain == "nonneg":
        edges = [0.0, 1e-30, 1e30, np.inf]
    else:
        edges = [0.0, -0.0, 1e-30, -1e-30, 1e30, -1e30, np.inf, -np.inf, 1.0, -1.0]
    out = values.copy()
    mask = rng.random(out.shape) < 0.2
    out[mask] = rng.choice(np.array(edges, dtype=dtype), size=int(mask.sum()))
    if out.size > 1 and rng.random() < 0.5:  # ties
        out.flat[1] = out.flat[0]
    return out


def weight_values(rng, name, shape, fan_in):
    """Values for one weight tensor; variances stay positive, the rest scaled by fan-in."""
    if "var" in name.split(".")[-1].split("/")[-1]:
        return rng.uniform(0.5, 1.5, size=shape).astype("float32")
    scale = 1.0 / np.sqrt(max(1, fan_in))
    return rng.uniform(-1.0, 1.0, size=shape).astype("float32") * np.float32(scale * 1.7)

# --- the model ---

class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.n2 = torch.nn.AvgPool2d((3, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False, count_include_pad=True)

    def forward(self, x2):
        n2 = self.n2(x2)
        return (n2,)


def make_model(seed):
    model = Model().eval()
    rng = np.random.default_rng([seed, 1])
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                fan_in = tensor.numel() // max(1, tensor.shape[0]) if tensor.dim() > 1 else 1
                values = weight_values(rng, name, tuple(tensor.shape), fan_in)
                tensor.copy_(torch.from_numpy(values))
    return model


DATA_MODE = 'edge'
# (name, shape, dtype, value domain) of each model input
INPUTS = [
    ('x2', (3, 3, 7, 6), 'float32', 'any'),
]


def make_inputs(seed):
    rng = np.random.default_rng(seed)
    return [draw_array(rng, shape, dtype, domain, DATA_MODE) for _, shape, dtype, domain in INPUTS]


def run_source(model, inputs):
    with torch.no_grad():
        return [o.numpy() for o in model(*(torch.from_numpy(x) for x in inputs))]

def convert(model, inputs):
    args = tuple(torch.from_numpy(x) for x in inputs)
    buffer = io.BytesIO()
    dynamic = {n: {0: "batch"} for n, d in zip(INPUT_NAMES, DYNAMIC_BATCH) if d}
    torch.onnx.export(model, args, buffer, dynamo=False, opset_version=OPSET, input_names=INPUT_NAMES,
                      output_names=OUTPUT_NAMES, do_constant_folding=OPTIMIZE, dynamic_axes=dynamic or None)
    return buffer.getvalue(), ""

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
        print("BUG: the converter logged a failure:\n" + log)
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
    if any(DYNAMIC_BATCH):  # exported with a dynamic batch axis: it must hold at another batch size too
        rng = np.random.default_rng([SEED, 2])
        second = [draw_array(rng, ((s[0] + 1,) + s[1:]) if d else s, t, m, DATA_MODE)
                  for (_, s, t, m), d in zip(INPUTS, DYNAMIC_BATCH)]
        try:
            problems = compare(run_source(model, second), run_onnx(model_bytes, second, False))
        except Exception as exc:
            problems = [f"{type(exc).__name__}: {exc}"]
        if problems:
            print("BUG: wrong model at a second batch size:\n  " + "\n  ".join(problems))
            return 1
        print("second batch size: all outputs agree")
    print("FIXED: every step passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
