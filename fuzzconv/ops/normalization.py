"""More normalization layers: group, instance and local response normalization, and
normalization to unit length.

Channels follow each frontend's native layout (torch NCHW, Keras NHWC), as in `layers`.
"""

from __future__ import annotations

import math

from fuzzconv.case import TensorType
from fuzzconv.ops import register
from fuzzconv.ops.spec import (
    Arg,
    Attr,
    Axis,
    Choice,
    Ctx,
    Flag,
    Impl,
    IntRange,
    OneOf,
    Op,
    ShapeError,
    channels,
    norm_axis,
)

NORM_TOLERANCE = {"float32": 1e-3}
EPSILONS = (1e-5, 1e-3, 0.1)




def divisors(n: int) -> tuple[int, ...]:
    return tuple(d for d in range(1, n + 1) if n % d == 0)


def group_norm_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    if channels(ctx) % int(ctx.a("groups")):
        raise ShapeError(f"{ctx.a('groups')} groups do not divide {channels(ctx)} channels")
    if ctx.frontend == "torch":  # torch checks this in eval mode too
        per_group = ctx.x.shape[0] * channels(ctx) // int(ctx.a("groups")) * math.prod(ctx.x.shape[2:])
        if per_group == 1:
            raise ShapeError("group statistics need more than 1 value per channel")
    return (ctx.x,)


def instance_norm_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    """torch checks for more than one spatial element whenever it uses the input's statistics,
    which in eval mode is when it tracks no running statistics."""
    if ctx.frontend == "torch" and not ctx.a("track_running_stats"):
        if math.prod(ctx.x.shape[2:]) < 2:
            raise ShapeError("instance statistics need more than 1 spatial element")
    return (ctx.x,)


def normalize_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    norm_axis(int(ctx.a("axis")), ctx.x.rank)
    return (ctx.x,)


register(
    Op(
        name="group_norm",
        family="layer",
        args=(Arg(ranks=(2, 3, 4)),),
        attrs=(
            Attr("groups", Choice(lambda ctx: divisors(channels(ctx))), 1),
            Attr("eps", OneOf(EPSILONS), 1e-5),
            Attr("affine", Flag(), True),
            Attr("center", Flag(), True),
            Attr("scale", Flag(), True),
        ),
        shape=group_norm_shape,
        torch=Impl(module="torch.nn.GroupNorm({groups}, {num_channels}, eps={eps}, affine={affine})",
                   derive=lambda ctx: {"num_channels": repr(channels(ctx))}),
        keras=Impl(call="keras.layers.GroupNormalization({groups}, axis=-1, epsilon={eps}, center={center}, "
                   "scale={scale}, name={name})({0})"),
        tolerance=NORM_TOLERANCE,
        torch_attrs=("groups", "eps", "affine"),
        keras_attrs=("groups", "eps", "center", "scale"),
    ),
    Op(
        name="instance_norm",
        family="layer",
        args=(Arg(ranks=(3, 4)),),
        attrs=(
            Attr("eps", OneOf(EPSILONS), 1e-5),
            Attr("affine", Flag(), False),
            Attr("track_running_stats", Flag(), False),
            Attr("center", Flag(), True),
            Attr("scale", Flag(), True),
        ),
        shape=instance_norm_shape,
        torch=Impl(
            module=lambda ctx: f"torch.nn.InstanceNorm{ctx.x.rank - 2}d({channels(ctx)}, eps={{eps}}, "
            "affine={affine}, track_running_stats={track_running_stats})",
        ),
        # Keras has no instance normalization layer; a group per channel is the same thing
        keras=Impl(call="keras.layers.GroupNormalization(-1, axis=-1, epsilon={eps}, center={center}, "
                   "scale={scale}, name={name})({0})"),
        tolerance=NORM_TOLERANCE,
        torch_attrs=("eps", "affine", "track_running_stats"),
        keras_attrs=("eps", "center", "scale"),
    ),
    Op(
        name="local_response_norm",
        family="layer",
        args=(Arg(ranks=(3, 4)),),
        attrs=(
            Attr("size", IntRange(1, 5), 2),
            Attr("alpha", OneOf((1e-4, 1e-2, 0.5)), 1e-4),
            Attr("beta", OneOf((0.75, 0.5, 1.0)), 0.75),
            Attr("k", OneOf((1.0, 2.0)), 1.0),
        ),
        shape=lambda ctx: (ctx.x,),
        torch=Impl(module="torch.nn.LocalResponseNorm({size}, alpha={alpha}, beta={beta}, k={k})"),
        tolerance=NORM_TOLERANCE,
    ),
    Op(
        name="normalize",
        family="layer",
        args=(Arg(ranks=(1, 2, 3, 4)),),
        attrs=(Attr("axis", Axis(), -1), Attr("p", OneOf((1.0, 2.0)), 2.0), Attr("eps", OneOf((1e-12, 1e-3)), 1e-12)),
        shape=normalize_shape,
        torch=Impl(call="torch.nn.functional.normalize({0}, p={p}, dim={axis}, eps={eps})"),
        # Keras's UnitNormalization is the L2 norm with its own epsilon
        keras=Impl(call="keras.layers.UnitNormalization(axis={axis}, name={name})({0})"),
        tolerance=NORM_TOLERANCE,
        keras_attrs=("axis",),
    ),
)
