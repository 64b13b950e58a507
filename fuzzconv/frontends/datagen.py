"""Seeded input and weight values. Copied verbatim into every generated source and repro.py.

Everything here must stay standalone: numpy only, no fuzzconv imports, since
`inspect.getsource` puts these functions into scripts that never import fuzzconv.
"""

import numpy as np


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
    elif domain == "unit" and dtype == "float16":
        edges = [6e-8, 0.9995, 0.5]  # 1 - 1e-7 would round to 1, outside the domain
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
    with np.errstate(over="ignore"):  # float16 holds 1e30 as inf
        pool = np.array(edges).astype(dtype)
    out[mask] = rng.choice(pool, size=int(mask.sum()))
    if out.size > 1 and rng.random() < 0.5:  # ties
        out.flat[1] = out.flat[0]
    return out


def weight_values(rng, name, shape, fan_in):
    """Values for one weight tensor; variances stay positive, the rest scaled by fan-in."""
    if "var" in name.split(".")[-1].split("/")[-1]:
        return rng.uniform(0.5, 1.5, size=shape).astype("float32")
    scale = 1.0 / np.sqrt(max(1, fan_in))
    return rng.uniform(-1.0, 1.0, size=shape).astype("float32") * np.float32(scale * 1.7)
