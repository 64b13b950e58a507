"""Elementwise math: unary functions, broadcasting binary operators, comparisons, where, cast."""

from __future__ import annotations

from fuzzconv.case import TensorType
from fuzzconv.ops import register
from fuzzconv.ops.spec import (
    Arg,
    Attr,
    Ctx,
    FloatRange,
    Impl,
    OneOf,
    Op,
    as_dtype,
    broadcast,
    broadcastable_like,
    same,
)


def unary(name: str, torch: str | None, keras: str | None, domain: str = "any", out_range: str = "any",
          tolerance: dict[str, float] | None = None) -> Op:
    return Op(
        name=name,
        family="elementwise",
        args=(Arg(domain=domain),),
        shape=same,
        torch=Impl(call=torch) if torch else None,
        keras=Impl(call=keras) if keras else None,
        out_range=out_range,
        tolerance=tolerance or {},
    )


def binary_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    return (TensorType(broadcast(ctx.ins[0].shape, ctx.ins[1].shape), ctx.ins[0].dtype),)


def binary(name: str, torch: str, keras: str, domain1: str = "any", domain2: str = "any") -> Op:
    return Op(
        name=name,
        family="elementwise",
        args=(Arg(domain=domain1), Arg(domain=domain2, like=broadcastable_like)),
        shape=binary_shape,
        torch=Impl(call=torch),
        keras=Impl(call=keras),
    )


def compare(name: str, torch: str, keras: str) -> Op:
    return Op(
        name=name,
        family="elementwise",
        args=(Arg(), Arg(like=broadcastable_like)),
        shape=lambda ctx: (TensorType(binary_shape(ctx)[0].shape, "bool"),),
        torch=Impl(call=torch),
        keras=Impl(call=keras),
    )


def where_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    shape = broadcast(broadcast(ctx.ins[0].shape, ctx.ins[1].shape), ctx.ins[2].shape)
    return (TensorType(shape, ctx.ins[1].dtype),)


def _bool_like(ins: tuple[TensorType, ...], chooser: object) -> TensorType:
    return TensorType(ins[0].shape, "float32")


CAST_DTYPES = ("float32", "int64", "int32", "bool")

register(
    unary("abs", "torch.abs({0})", "keras.ops.abs({0})", out_range="nonneg"),
    unary("neg", "torch.neg({0})", "keras.ops.negative({0})"),
    unary("exp", "torch.exp({0})", "keras.ops.exp({0})", out_range="positive"),
    unary("log", "torch.log({0})", "keras.ops.log({0})", domain="positive"),
    unary("sqrt", "torch.sqrt({0})", "keras.ops.sqrt({0})", domain="nonneg", out_range="nonneg"),
    unary("rsqrt", "torch.rsqrt({0})", "keras.ops.rsqrt({0})", domain="positive", out_range="positive"),
    unary("reciprocal", "torch.reciprocal({0})", "keras.ops.reciprocal({0})", domain="positive",
          out_range="positive"),
    unary("square", "torch.square({0})", "keras.ops.square({0})", out_range="nonneg"),
    unary("sin", "torch.sin({0})", "keras.ops.sin({0})"),
    unary("cos", "torch.cos({0})", "keras.ops.cos({0})"),
    unary("floor", "torch.floor({0})", "keras.ops.floor({0})"),
    unary("ceil", "torch.ceil({0})", "keras.ops.ceil({0})"),
    unary("round", "torch.round({0})", "keras.ops.round({0})"),
    unary("sign", "torch.sign({0})", "keras.ops.sign({0})"),
    unary("erf", "torch.erf({0})", "keras.ops.erf({0})"),
    unary("atan", "torch.atan({0})", "keras.ops.arctan({0})"),
    binary("add", "torch.add({0}, {1})", "keras.ops.add({0}, {1})"),
    binary("sub", "torch.sub({0}, {1})", "keras.ops.subtract({0}, {1})"),
    binary("mul", "torch.mul({0}, {1})", "keras.ops.multiply({0}, {1})"),
    binary("div", "torch.div({0}, {1})", "keras.ops.divide({0}, {1})", domain2="positive"),
    binary("maximum", "torch.maximum({0}, {1})", "keras.ops.maximum({0}, {1})"),
    binary("minimum", "torch.minimum({0}, {1})", "keras.ops.minimum({0}, {1})"),
    binary("pow", "torch.pow({0}, {1})", "keras.ops.power({0}, {1})", domain1="positive"),
    compare("greater", "torch.gt({0}, {1})", "keras.ops.greater({0}, {1})"),
    compare("less_equal", "torch.le({0}, {1})", "keras.ops.less_equal({0}, {1})"),
    compare("equal", "torch.eq({0}, {1})", "keras.ops.equal({0}, {1})"),
    Op(
        name="where",
        family="elementwise",
        args=(Arg(dtypes=("bool",)), Arg(like=_bool_like), Arg(like=broadcastable_like)),
        shape=where_shape,
        torch=Impl(call="torch.where({0}, {1}, {2})"),
        keras=Impl(call="keras.ops.where({0}, {1}, {2})"),
    ),
    Op(
        name="clamp",
        family="elementwise",
        args=(Arg(),),
        attrs=(Attr("low", FloatRange(-2.0, 0.0), -1.0), Attr("high", FloatRange(0.0, 2.0), 1.0)),
        shape=same,
        torch=Impl(call="torch.clamp({0}, min={low}, max={high})"),
        keras=Impl(call="keras.ops.clip({0}, {low}, {high})"),
    ),
    Op(
        name="cast",
        family="elementwise",
        args=(Arg(dtypes=("float32", "int64", "int32", "bool")),),
        attrs=(Attr("dtype", OneOf(CAST_DTYPES), "float32"),),
        shape=lambda ctx: as_dtype(str(ctx.a("dtype")))(ctx),
        torch=Impl(call="{0}.to(torch.{raw_dtype})", derive=lambda ctx: {"raw_dtype": str(ctx.a("dtype"))}),
        keras=Impl(call="keras.ops.cast({0}, {dtype})"),
    ),
)
