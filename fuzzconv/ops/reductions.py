"""Reductions over one axis (sum, mean, max, arg-max, std, ...) or several, and the cumulative
sum, product and maximum."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fuzzconv.case import AttrValue, TensorType
from fuzzconv.ops import register
from fuzzconv.ops.spec import (
    FLOATS,
    INTS,
    Arg,
    Attr,
    Axis,
    Chooser,
    Ctx,
    Domain,
    Flag,
    Impl,
    IntRange,
    KnownIssue,
    OneOf,
    Op,
    ShapeError,
    norm_axis,
)

AXIS_ATTRS = (Attr("axis", Axis(), -1), Attr("keepdim", Flag(), False))


def reduced(ctx: Ctx, dtype: str) -> TensorType:
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
    shape = list(ctx.x.shape)
    if ctx.a("keepdim"):
        shape[axis] = 1
    else:
        del shape[axis]
    return TensorType(tuple(shape), dtype)


def keep_dtype(ctx: Ctx) -> str:
    return ctx.x.dtype


def torch_widens_ints(ctx: Ctx) -> str:
    """torch.sum, prod and cumsum return int64 for integer inputs; Keras keeps the dtype."""
    return "int64" if ctx.frontend == "torch" and ctx.x.dtype in INTS else ctx.x.dtype


def boolean(ctx: Ctx) -> str:
    return "bool"


def index_dtype(ctx: Ctx) -> str:
    """torch's argmax is int64, Keras's (TensorFlow's) int32."""
    return "int64" if ctx.frontend == "torch" else "int32"


def reduction(name: str, torch: str, keras: str, dtypes: tuple[str, ...] = FLOATS,
              out_dtype: Callable[[Ctx], str] = keep_dtype, extra: tuple[Attr, ...] = (),
              out_range: str = "any") -> Op:
    return Op(
        name=name,
        family="reduction",
        args=(Arg(ranks=(1, 2, 3, 4), dtypes=dtypes),),
        attrs=AXIS_ATTRS + extra,
        shape=lambda ctx: (reduced(ctx, out_dtype(ctx)),),
        torch=Impl(call=torch + "({0}, dim={axis}, keepdim={keepdim}" + "".join(
            f", {a.name}={{{a.name}}}" for a in extra) + ")"),
        keras=Impl(call=keras + "({0}, axis={axis}, keepdims={keepdim})"),
        out_range=out_range,
        keras_attrs=tuple(a.name for a in AXIS_ATTRS),  # Keras's std and var take no correction
    )


def max_correction(ctx: Ctx) -> int:
    """Bessel's correction needs two or more values, else the result is inf or nan."""
    return min(1, ctx.x.shape[int(ctx.a("axis"))] - 1)


CORRECTION = (Attr("correction", IntRange(0, max_correction), 1),)

register(
    reduction("sum", "torch.sum", "keras.ops.sum", FLOATS + INTS, torch_widens_ints),
    reduction("mean", "torch.mean", "keras.ops.mean"),
    reduction("max", "torch.amax", "keras.ops.max", FLOATS + INTS),
    reduction("min", "torch.amin", "keras.ops.min", FLOATS + INTS),
    reduction("prod", "torch.prod", "keras.ops.prod", FLOATS + INTS, torch_widens_ints),
    reduction("argmax", "torch.argmax", "keras.ops.argmax", out_dtype=index_dtype, out_range="nonneg"),
    reduction("argmin", "torch.argmin", "keras.ops.argmin", out_dtype=index_dtype, out_range="nonneg"),
    reduction("std", "torch.std", "keras.ops.std", extra=CORRECTION, out_range="nonneg"),
    reduction("var", "torch.var", "keras.ops.var", extra=CORRECTION, out_range="nonneg"),
    reduction("logsumexp", "torch.logsumexp", "keras.ops.logsumexp"),
    reduction("any", "torch.any", "keras.ops.any", ("bool",), boolean),
    reduction("all", "torch.all", "keras.ops.all", ("bool",), boolean),
    Op(
        name="norm",
        family="reduction",
        args=(Arg(ranks=(1, 2, 3, 4)),),
        attrs=(*AXIS_ATTRS, Attr("ord", OneOf((1, 2)), 2)),
        shape=lambda ctx: (reduced(ctx, ctx.x.dtype),),
        torch=Impl(call="torch.linalg.vector_norm({0}, ord={ord}, dim={axis}, keepdim={keepdim})"),
        keras=Impl(call="keras.ops.norm({0}, ord={ord}, axis={axis}, keepdims={keepdim})"),
        out_range="nonneg",
    ),
    Op(
        name="cumsum",
        family="reduction",
        args=(Arg(ranks=(1, 2, 3, 4), dtypes=FLOATS + INTS),),
        attrs=(Attr("axis", Axis(), -1),),
        shape=lambda ctx: (TensorType(ctx.x.shape, torch_widens_ints(ctx)),),
        torch=Impl(call="torch.cumsum({0}, dim={axis})"),
        keras=Impl(call="keras.ops.cumsum({0}, axis={axis})"),
    ),
)


# --- several axes at once, cumulative product and maximum -----------------------------------


@dataclass(frozen=True)
class AxisSet(Domain):
    """Two or more distinct axes of argument 0, each spelled negative or not, in any order."""

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        rank = ctx.x.rank
        if rank < 2:
            raise ShapeError("reducing several axes needs rank 2 or more")
        axes = [a for a in range(rank) if chooser.boolean(0.5)]
        while len(axes) < 2:
            axes = sorted({*axes, chooser.integer(0, rank - 1)})
        spelled = [a - rank if chooser.boolean(0.3) else a for a in axes]
        if chooser.boolean(0.2):
            spelled.reverse()
        return tuple(spelled)

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        rank = ctx.x.rank
        wanted = f"two or more distinct axes in {-rank}..{rank - 1}"
        if not isinstance(value, tuple) or len(value) < 2:
            return wanted
        if not all(isinstance(a, int) and -rank <= a < rank for a in value):
            return wanted
        return None if len({a % rank for a in value}) == len(value) else wanted


def reduced_axes(ctx: Ctx, dtype: str) -> TensorType:
    axes = ctx.a("axes")
    assert isinstance(axes, tuple)
    gone = {norm_axis(a, ctx.x.rank) for a in axes}
    if len(gone) != len(axes):
        raise ShapeError(f"axes {axes} name an axis twice")
    keep = bool(ctx.a("keepdim"))
    shape = tuple(1 if i in gone else n for i, n in enumerate(ctx.x.shape) if keep or i not in gone)
    return TensorType(shape, dtype)


def multi_reduction(name: str, torch: str, keras: str, dtypes: tuple[str, ...] = FLOATS,
                    out_dtype: Callable[[Ctx], str] = keep_dtype) -> Op:
    return Op(
        name=name,
        family="reduction",
        args=(Arg(ranks=(2, 3, 4), dtypes=dtypes),),
        attrs=(Attr("axes", AxisSet(), (0, 1)), Attr("keepdim", Flag(), False)),
        shape=lambda ctx: (reduced_axes(ctx, out_dtype(ctx)),),
        torch=Impl(call=torch + "({0}, dim={axes}, keepdim={keepdim})"),
        keras=Impl(call=keras + "({0}, axis={axes}, keepdims={keepdim})"),
    )


register(
    multi_reduction("mean_axes", "torch.mean", "keras.ops.mean"),
    multi_reduction("sum_axes", "torch.sum", "keras.ops.sum", FLOATS + INTS, torch_widens_ints),
    multi_reduction("amax_axes", "torch.amax", "keras.ops.max", FLOATS + INTS),
    multi_reduction("amin_axes", "torch.amin", "keras.ops.min", FLOATS + INTS),
    Op(
        name="cumprod",
        family="reduction",
        args=(Arg(ranks=(1, 2, 3, 4), dtypes=FLOATS + INTS),),
        attrs=(Attr("axis", Axis(), -1),),
        shape=lambda ctx: (TensorType(ctx.x.shape, torch_widens_ints(ctx)),),
        torch=Impl(call="torch.cumprod({0}, dim={axis})"),
        keras=Impl(call="keras.ops.cumprod({0}, axis={axis})"),
        tolerance={"float32": 1e-3},
        known_issues=(KnownIssue("torch-script", "the TorchScript exporter has no symbolic for aten::cumprod"),
                      KnownIssue("torch-dynamo", "onnxscript has no ONNX function for aten.cumprod (DispatchError)"),
                      KnownIssue("tf2onnx", "tf2onnx fails to convert TF Cumprod (no ONNX CumProd)")),
    ),
    Op(
        name="cummax",
        family="reduction",
        args=(Arg(ranks=(1, 2, 3, 4), dtypes=FLOATS + INTS),),
        attrs=(Attr("axis", Axis(), -1),),
        shape=lambda ctx: (ctx.x,),
        torch=Impl(call="torch.cummax({0}, dim={axis})[0]"),  # the values; indices tie-break by position
        known_issues=(KnownIssue("torch-script", "the TorchScript exporter has no symbolic for aten::cummax"),
                      KnownIssue("torch-dynamo", "onnxscript has no ONNX function for aten.cummax (DispatchError)")),
    ),
)
