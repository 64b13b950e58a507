"""Spatial rearrangements: adaptive pooling to a fixed size, pixel (un)shuffle and unfold (im2col).

Shapes follow each frontend's native layout (torch NCHW, Keras NHWC).
"""

from __future__ import annotations

import functools
import itertools
import math

from fuzzconv.case import TensorType
from fuzzconv.ops import register
from fuzzconv.ops.spec import (
    Arg,
    Attr,
    Choice,
    Ctx,
    Impl,
    IntTuple,
    KnownIssue,
    Op,
    ShapeError,
    channels,
    native,
    spatial,
    tup,
)

# --- adaptive pooling ----------------------------------------------------------------------


def adaptive_sizes(ctx: Ctx) -> tuple[tuple[int, ...], ...]:
    """Output sizes up to twice the input's (adaptive pooling also repeats elements). For torch,
    sizes that divide the input, as in most models, are repeated to be drawn 4 times in 5 per
    axis: the TorchScript exporter rejects the others, and would reject most graphs holding an
    adaptive pool. (Keras's own bug with size 1, see known_issues, argues against favouring
    the divisors there: 1 always is one.)"""
    return _adaptive_sizes(spatial(ctx), ctx.frontend)


@functools.lru_cache(maxsize=256)
def _adaptive_sizes(dims: tuple[int, ...], frontend: str) -> tuple[tuple[int, ...], ...]:
    """The sizes of `adaptive_sizes`, built once per input shape: 60 for an axis of 8, their
    product for two axes (3,600 for 8 x 8), which took about 2 ms to build each time a pool
    was drawn or checked."""
    per_axis = []
    for n in dims:
        dividing = [m for m in range(1, n + 1) if n % m == 0]
        other = [m for m in range(1, 2 * n + 1) if n % m]
        repeats = math.ceil(4 * len(other) / len(dividing)) if frontend == "torch" else 1
        per_axis.append(dividing * repeats + other)
    return tuple(itertools.product(*per_axis))


def adaptive_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    size = tup(ctx, "output_size")
    if len(size) != len(ctx.spatial_axes):
        raise ShapeError(f"output_size {size} does not fit {len(ctx.spatial_axes)} spatial axes")
    return (native(ctx, size, channels(ctx)),)


def adaptive_pool(kind: str) -> Op:
    torch_fn = {"avg": "adaptive_avg_pool", "max": "adaptive_max_pool"}[kind]
    keras_layer = {"avg": "AdaptiveAveragePooling", "max": "AdaptiveMaxPooling"}[kind]
    return Op(
        name=f"adaptive_{kind}_pool",
        family="layer",
        args=(Arg(ranks=(3, 4)),),
        attrs=(Attr("output_size", Choice(adaptive_sizes), (1, 1)),),
        shape=adaptive_shape,
        torch=Impl(call=lambda ctx: f"torch.nn.functional.{torch_fn}{ctx.x.rank - 2}d({{0}}, {{output_size}})"),
        keras=Impl(call=lambda ctx: f"keras.layers.{keras_layer}{ctx.x.rank - 2}D({{output_size}}, "
                   "name={name})({0})"),
        known_issues=(
            KnownIssue("torch-script", "the TorchScript exporter rejects output sizes that do not divide the input"),
            KnownIssue("tf2onnx", "Keras's adaptive pooling to size 1 on an axis fails when traced by "
                       "tf.function (AvgPool/MaxPool window longer than the axis), though it runs eagerly"),
        ),
    )


# --- pixel shuffle -------------------------------------------------------------------------


def shuffle_factors(ctx: Ctx) -> tuple[int, ...]:
    return tuple(r for r in (1, 2, 3) if channels(ctx) % (r * r) == 0)


def unshuffle_factors(ctx: Ctx) -> tuple[int, ...]:
    return tuple(r for r in (1, 2, 3) if all(n % r == 0 for n in spatial(ctx)))


def pixel_shuffle_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    r = int(ctx.a("factor"))
    if channels(ctx) % (r * r):
        raise ShapeError(f"{channels(ctx)} channels are not a multiple of {r * r}")
    return (native(ctx, tuple(n * r for n in spatial(ctx)), channels(ctx) // (r * r)),)


def pixel_unshuffle_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    r = int(ctx.a("factor"))
    if any(n % r for n in spatial(ctx)):
        raise ShapeError(f"spatial sizes {spatial(ctx)} are not multiples of {r}")
    return (native(ctx, tuple(n // r for n in spatial(ctx)), channels(ctx) * r * r),)


# --- unfold (im2col) -----------------------------------------------------------------------


def unfold_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    kernel, dilation, padding, stride = (tup(ctx, n) for n in ("kernel_size", "dilation", "padding", "stride"))
    blocks = []
    for n, k, d, p, s in zip(spatial(ctx), kernel, dilation, padding, stride, strict=True):
        span = d * (k - 1) + 1
        if n + 2 * p < span:
            raise ShapeError(f"a kernel spanning {span} does not fit in {n + 2 * p} (padded) elements")
        blocks.append((n + 2 * p - span) // s + 1)
    return (TensorType((ctx.x.shape[0], channels(ctx) * math.prod(kernel), math.prod(blocks)), ctx.x.dtype),)


def max_unfold_kernel(ctx: Ctx) -> int:
    return min(3, *spatial(ctx))


register(
    adaptive_pool("avg"),
    adaptive_pool("max"),
    Op(
        name="pixel_shuffle",
        family="layer",
        args=(Arg(ranks=(4,)),),
        attrs=(Attr("factor", Choice(shuffle_factors), 1),),
        shape=pixel_shuffle_shape,
        torch=Impl(call="torch.nn.functional.pixel_shuffle({0}, {factor})"),
    ),
    Op(
        name="pixel_unshuffle",
        family="layer",
        args=(Arg(ranks=(4,)),),
        attrs=(Attr("factor", Choice(unshuffle_factors), 1),),
        shape=pixel_unshuffle_shape,
        torch=Impl(call="torch.nn.functional.pixel_unshuffle({0}, {factor})"),
    ),
    Op(
        name="unfold",
        family="layer",
        args=(Arg(ranks=(4,)),),
        attrs=(
            Attr("kernel_size", IntTuple(2, 1, max_unfold_kernel), (2, 2)),
            Attr("dilation", IntTuple(2, 1, 2), (1, 1)),
            Attr("padding", IntTuple(2, 0, 1), (0, 0)),
            Attr("stride", IntTuple(2, 1, 3), (1, 1)),
        ),
        shape=unfold_shape,
        torch=Impl(call="torch.nn.functional.unfold({0}, {kernel_size}, dilation={dilation}, padding={padding}, "
                   "stride={stride})"),
    ),
)
