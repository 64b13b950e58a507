"""Elementwise math: unary functions, broadcasting binary operators, integer division,
comparisons, where (also with a scalar), masked fill, one-sided clamps, cast."""

from __future__ import annotations

from dataclasses import replace

from fuzzconv.case import TensorType
from fuzzconv.ops import register
from fuzzconv.ops.spec import (
    FLOATS,
    INTS,
    Arg,
    Attr,
    Choice,
    Ctx,
    Flag,
    FloatRange,
    Impl,
    KnownIssue,
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


CAST_DTYPES = ("float32", "float64", "float16", "int64", "int32", "bool")

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
        args=(Arg(dtypes=CAST_DTYPES),),
        attrs=(Attr("dtype", OneOf(CAST_DTYPES), "float32"),),
        shape=lambda ctx: as_dtype(str(ctx.a("dtype")))(ctx),
        torch=Impl(call="{0}.to(torch.{raw_dtype})", derive=lambda ctx: {"raw_dtype": str(ctx.a("dtype"))}),
        keras=Impl(call="keras.ops.cast({0}, {dtype})"),
    ),
)


# --- more unary math, integer division, scalar forms ------------------------------------


def same_shape_float(ins: tuple[TensorType, ...], chooser: object) -> TensorType:
    """A float operand shaped like the (boolean) condition before it."""
    return TensorType(ins[0].shape, "float32")


def by_dtype(floats: tuple[float, ...], ints: tuple[int, ...]) -> Choice:
    """Scalars of the input's kind: a float scalar would promote an integer tensor to float."""
    return Choice(lambda ctx: ints if ctx.x.dtype in INTS else floats)


def int_division(name: str, torch: str, keras: str) -> Op:
    """Division-like ops over floats and ints. The divisor is positive, or negated in the model
    (`divisor_sign`), so integer division never divides by zero but still sees both signs."""

    def divisor(ctx: Ctx, negate: str) -> str:
        return "{1}" if ctx.a("divisor_sign") == 1 else f"{negate}({{1}})"

    return Op(
        name=name,
        family="elementwise",
        args=(Arg(dtypes=FLOATS + INTS), Arg(dtypes=FLOATS + INTS, domain="positive", like=broadcastable_like)),
        attrs=(Attr("divisor_sign", OneOf((1, -1)), 1),),
        shape=binary_shape,
        torch=Impl(call=lambda ctx: torch.replace("{d}", divisor(ctx, "torch.neg"))),
        keras=Impl(call=lambda ctx: keras.replace("{d}", divisor(ctx, "keras.ops.negative"))),
    )


def known(op: Op, *issues: KnownIssue) -> Op:
    return replace(op, known_issues=op.known_issues + issues)


def no_torchscript_symbolic(op: Op) -> Op:
    return known(op, KnownIssue("torch-script", f"the TorchScript exporter has no symbolic for aten::{op.name}"))


def no_tf2onnx_handler(op: Op, tf_op: str) -> Op:
    return known(op, KnownIssue("tf2onnx", f"tf2onnx has no handler for TF {tf_op}"))


INF_CHOICES = ("default", 100.0, -1.0, 0.0)


def inf_value(ctx: Ctx, name: str) -> str:
    value = ctx.a(name)
    return "None" if value == "default" else repr(value)


register(
    no_tf2onnx_handler(unary("log1p", "torch.log1p({0})", "keras.ops.log1p({0})", domain="nonneg",
                             out_range="nonneg"), "Log1p"),
    known(unary("expm1", "torch.expm1({0})", "keras.ops.expm1({0})"),
          KnownIssue("torch-script", "the TorchScript exporter has no symbolic for aten::expm1"),
          KnownIssue("tf2onnx", "tf2onnx has no handler for TF Expm1")),
    unary("log2", "torch.log2({0})", "keras.ops.log2({0})", domain="positive"),
    no_torchscript_symbolic(unary("exp2", "torch.exp2({0})", "keras.ops.exp2({0})", out_range="positive")),
    no_torchscript_symbolic(unary("sinh", "torch.sinh({0})", "keras.ops.sinh({0})")),
    no_torchscript_symbolic(unary("cosh", "torch.cosh({0})", "keras.ops.cosh({0})", out_range="positive")),
    no_torchscript_symbolic(unary("asinh", "torch.asinh({0})", "keras.ops.arcsinh({0})")),
    known(unary("erfinv", "torch.erfinv({0})", "keras.ops.erfinv({0})", domain="unit", out_range="nonneg",
                tolerance={"float32": 1e-3}),
          KnownIssue("torch-script", "the TorchScript exporter has no symbolic for aten::erfinv"),
          KnownIssue("torch-dynamo", "onnxscript has no ONNX function for aten.erfinv (DispatchError)"),
          KnownIssue("tf2onnx", "tf2onnx has no handler for TF Erfinv")),
    binary("atan2", "torch.atan2({0}, {1})", "keras.ops.arctan2({0}, {1})"),
    known(no_torchscript_symbolic(binary("hypot", "torch.hypot({0}, {1})", "keras.ops.hypot({0}, {1})")),
          KnownIssue("torch-dynamo", "onnxscript has no ONNX function for aten.hypot (DispatchError)")),
    int_division("floor_divide", "torch.floor_divide({0}, {d})", "keras.ops.floor_divide({0}, {d})"),
    int_division("remainder", "torch.remainder({0}, {d})", "keras.ops.mod({0}, {d})"),
    int_division("fmod", "torch.fmod({0}, {d})", "keras.ops.fmod({0}, {d})"),
    Op(
        name="nan_to_num",
        family="elementwise",
        args=(Arg(),),
        attrs=(
            Attr("nan", OneOf((0.0, 1.0, -2.5)), 0.0),
            Attr("posinf", OneOf(INF_CHOICES), "default"),
            Attr("neginf", OneOf(INF_CHOICES), "default"),
        ),
        shape=same,
        torch=Impl(call="torch.nan_to_num({0}, nan={nan}, posinf={pos}, neginf={neg})",
                   derive=lambda ctx: {"pos": inf_value(ctx, "posinf"), "neg": inf_value(ctx, "neginf")}),
        keras=Impl(call="keras.ops.nan_to_num({0}, nan={nan}, posinf={pos}, neginf={neg})",
                   derive=lambda ctx: {"pos": inf_value(ctx, "posinf"), "neg": inf_value(ctx, "neginf")}),
    ),
    Op(
        name="where_scalar",
        family="elementwise",
        args=(Arg(dtypes=("bool",)), Arg(like=same_shape_float)),
        attrs=(Attr("scalar", FloatRange(-2.0, 2.0), 0.0), Attr("scalar_first", Flag(), False)),
        shape=lambda ctx: (TensorType(broadcast(ctx.ins[0].shape, ctx.ins[1].shape), ctx.ins[1].dtype),),
        torch=Impl(call=lambda ctx: "torch.where({0}, {scalar}, {1})" if ctx.a("scalar_first")
                   else "torch.where({0}, {1}, {scalar})"),
        keras=Impl(call=lambda ctx: "keras.ops.where({0}, {scalar}, {1})" if ctx.a("scalar_first")
                   else "keras.ops.where({0}, {1}, {scalar})"),
    ),
    Op(
        name="clamp_min",
        family="elementwise",
        args=(Arg(dtypes=FLOATS + INTS),),
        attrs=(Attr("value", by_dtype((-1.0, 0.0, 0.5), (-2, 0, 1)), 0.0),),
        shape=same,
        torch=Impl(call="torch.clamp_min({0}, {value})"),
        keras=Impl(call="keras.ops.maximum({0}, {value})"),
    ),
    Op(
        name="clamp_max",
        family="elementwise",
        args=(Arg(dtypes=FLOATS + INTS),),
        attrs=(Attr("value", by_dtype((-0.5, 0.0, 1.0), (-1, 0, 2)), 0.0),),
        shape=same,
        torch=Impl(call="torch.clamp_max({0}, {value})"),
        keras=Impl(call="keras.ops.minimum({0}, {value})"),
    ),
    Op(
        name="masked_fill",
        family="elementwise",
        args=(Arg(dtypes=FLOATS + INTS),),
        attrs=(
            Attr("compare", OneOf(("gt", "lt")), "gt"),
            Attr("threshold", by_dtype((-0.5, 0.0, 0.5), (-1, 0, 1)), 0.0),
            Attr("value", by_dtype((0.0, -1.0, 2.5, -10000.0), (0, -1, 7)), 0.0),
        ),
        shape=same,
        torch=Impl(call="{0}.masked_fill(torch.{compare}({0}, {threshold}), {value})",
                   derive=lambda ctx: {"compare": str(ctx.a("compare"))}),
        keras=Impl(call="keras.ops.where(keras.ops.{compare}({0}, {threshold}), {value}, {0})",
                   derive=lambda ctx: {"compare": "greater" if ctx.a("compare") == "gt" else "less"}),
    ),
)
