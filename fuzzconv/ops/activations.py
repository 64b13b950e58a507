"""Activations (also shrinking, thresholding, GLU and PReLU), softmax and log-softmax."""

from __future__ import annotations

from collections.abc import Callable

from fuzzconv.case import TensorType
from fuzzconv.ops import register
from fuzzconv.ops.spec import (
    AnyOf,
    Arg,
    Attr,
    Axis,
    Choice,
    Ctx,
    FloatRange,
    Impl,
    KnownIssue,
    OneOf,
    Op,
    ShapeError,
    norm_axis,
    same,
)


def activation(name: str, torch: str | None, keras: str, out_range: str = "any",
               attrs: tuple[Attr, ...] = (), derive: Callable[[Ctx], dict[str, str]] | None = None,
               known_issues: tuple[KnownIssue, ...] = ()) -> Op:
    return Op(
        name=name,
        family="activation",
        args=(Arg(),),
        attrs=attrs,
        shape=same,
        torch=Impl(call=torch, derive=derive) if torch else None,
        keras=Impl(call=keras, derive=derive),
        out_range=out_range,
        known_issues=known_issues,
    )


register(
    activation("relu", "torch.relu({0})", "keras.layers.ReLU(name={name})({0})", out_range="nonneg"),
    activation("relu6", "torch.nn.functional.relu6({0})", "keras.ops.relu6({0})", out_range="nonneg"),
    activation(
        "gelu",
        "torch.nn.functional.gelu({0}, approximate={approximate})",
        "keras.ops.gelu({0}, approximate={keras_approx})",
        attrs=(Attr("approximate", OneOf(("none", "tanh")), "none"),),
        derive=lambda ctx: {"keras_approx": repr(ctx.a("approximate") == "tanh")},
    ),
    activation("silu", "torch.nn.functional.silu({0})", "keras.ops.silu({0})"),
    activation(
        "elu",
        "torch.nn.functional.elu({0}, alpha={alpha})",
        "keras.ops.elu({0}, alpha={alpha})",
        attrs=(Attr("alpha", FloatRange(0.1, 2.0), 1.0),),
    ),
    activation("selu", "torch.nn.functional.selu({0})", "keras.ops.selu({0})"),
    activation("softplus", "torch.nn.functional.softplus({0})", "keras.ops.softplus({0})", out_range="positive"),
    activation("softsign", "torch.nn.functional.softsign({0})", "keras.ops.softsign({0})"),
    activation("hardswish", "torch.nn.functional.hardswish({0})", "keras.ops.hard_swish({0})"),
    activation("hardsigmoid", "torch.nn.functional.hardsigmoid({0})", "keras.ops.hard_sigmoid({0})",
               out_range="nonneg"),
    activation("sigmoid", "torch.sigmoid({0})", "keras.ops.sigmoid({0})", out_range="unit"),
    activation("tanh", "torch.tanh({0})", "keras.ops.tanh({0})"),
    activation("mish", "torch.nn.functional.mish({0})", "keras.layers.Activation('mish', name={name})({0})"),
    activation(
        "leaky_relu",
        "torch.nn.functional.leaky_relu({0}, negative_slope={negative_slope})",
        "keras.layers.LeakyReLU(negative_slope={negative_slope}, name={name})({0})",
        attrs=(Attr("negative_slope", FloatRange(0.0, 0.5), 0.01),),
    ),
    activation(
        "activation_layer",
        None,
        "keras.layers.Activation({function}, name={name})({0})",
        attrs=(Attr("function", OneOf(("relu", "gelu", "swish", "elu", "selu", "tanh", "sigmoid",
                                        "softplus", "hard_sigmoid", "exponential", "linear")), "relu"),),
    ),
    Op(
        name="softmax",
        family="activation",
        args=(Arg(),),
        attrs=(Attr("axis", Axis(), -1),),
        shape=same,
        torch=Impl(call="torch.softmax({0}, dim={axis})"),
        keras=Impl(call="keras.layers.Softmax(axis={axis}, name={name})({0})"),
        out_range="unit",
    ),
    Op(
        name="log_softmax",
        family="activation",
        args=(Arg(),),
        attrs=(Attr("axis", Axis(), -1),),
        shape=same,
        torch=Impl(call="torch.log_softmax({0}, dim={axis})"),
        keras=Impl(call="keras.ops.log_softmax({0}, axis={axis})"),
    ),
)


# --- shrinking, thresholding and parametric activations -----------------------------------


def even_axes(ctx: Ctx) -> tuple[int, ...]:
    """GLU halves its axis, so the axis must have an even size."""
    rank = ctx.x.rank
    return tuple(a for a in range(-rank, rank) if ctx.x.shape[a] % 2 == 0)


def glu_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
    if ctx.x.shape[axis] % 2:
        raise ShapeError(f"GLU needs an even size on axis {axis}, got {ctx.x.shape[axis]}")
    shape = list(ctx.x.shape)
    shape[axis] //= 2
    return (TensorType(tuple(shape), ctx.x.dtype),)


def prelu_parameters(ctx: Ctx) -> tuple[int, ...]:
    """torch's PReLU has one slope or one per channel (axis 1; none below rank 2)."""
    return (1, ctx.x.shape[1]) if ctx.x.rank >= 2 and ctx.x.shape[1] > 1 else (1,)


def shared_axes_options(ctx: Ctx) -> tuple[tuple[int, ...], ...]:
    """Keras's PReLU has one slope per element after the batch, except along `shared_axes`."""
    axes = range(1, ctx.x.rank)
    return tuple(tuple(a for a in axes if mask >> (a - 1) & 1) for mask in range(2 ** len(axes)))


def prelu_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    if ctx.frontend == "torch" and int(ctx.a("num_parameters")) not in prelu_parameters(ctx):
        raise ShapeError(f"PReLU num_parameters must be 1 or the channels of {ctx.x.shape}")
    return (ctx.x,)


register(
    activation(
        "hardtanh",
        "torch.nn.functional.hardtanh({0}, min_val={min_val}, max_val={max_val})",
        "keras.ops.hard_tanh({0})",
        attrs=(Attr("min_val", FloatRange(-2.0, -0.1), -1.0), Attr("max_val", FloatRange(0.1, 2.0), 1.0)),
    ),
    activation(
        "threshold",
        "torch.nn.functional.threshold({0}, {threshold}, {value})",
        "keras.ops.threshold({0}, {threshold}, {value})",
        # half the thresholds and values are 0: the TorchScript exporter takes only 0 and 0 (relu)
        attrs=(Attr("threshold", AnyOf((OneOf((0.0,)), FloatRange(-1.0, 1.0))), 0.0),
               Attr("value", AnyOf((OneOf((0.0,)), FloatRange(-2.0, 2.0))), 0.0)),
        known_issues=(KnownIssue("torch-script", "the TorchScript exporter rejects a non-zero threshold or value"),),
    ),
    activation("logsigmoid", "torch.nn.functional.logsigmoid({0})", "keras.ops.log_sigmoid({0})"),
    activation("tanhshrink", "torch.nn.functional.tanhshrink({0})", "keras.ops.tanh_shrink({0})"),
    activation(
        "softshrink",
        "torch.nn.functional.softshrink({0}, lambd={lambd})",
        "keras.ops.soft_shrink({0}, threshold={lambd})",
        attrs=(Attr("lambd", FloatRange(0.0, 1.5), 0.5),),
    ),
    activation(
        "hardshrink",
        "torch.nn.functional.hardshrink({0}, lambd={lambd})",
        "keras.ops.hard_shrink({0}, threshold={lambd})",
        attrs=(Attr("lambd", FloatRange(0.0, 1.5), 0.5),),
    ),
    activation(
        "celu",
        "torch.nn.functional.celu({0}, alpha={alpha})",
        "keras.ops.celu({0}, alpha={alpha})",
        attrs=(Attr("alpha", FloatRange(0.1, 2.0), 1.0),),
        known_issues=(KnownIssue("tf2onnx", "Keras's celu lowers to TF Expm1, which tf2onnx has no handler for"),),
    ),
    Op(
        name="glu",
        family="activation",
        args=(Arg(),),
        attrs=(Attr("axis", Choice(even_axes), -1),),
        shape=glu_shape,
        torch=Impl(call="torch.nn.functional.glu({0}, dim={axis})"),
        keras=Impl(call="keras.ops.glu({0}, axis={axis})"),
    ),
    Op(
        name="prelu",
        family="activation",
        args=(Arg(ranks=(1, 2, 3, 4)),),
        attrs=(
            Attr("num_parameters", Choice(prelu_parameters), 1),
            Attr("shared_axes", Choice(shared_axes_options), ()),
        ),
        shape=prelu_shape,
        torch=Impl(module="torch.nn.PReLU({num_parameters})"),
        keras=Impl(call="keras.layers.PReLU(shared_axes={keras_shared}, name={name})({0})",
                   derive=lambda ctx: {"keras_shared": repr(list(ctx.a("shared_axes")) or None)}),
        torch_attrs=("num_parameters",),
        keras_attrs=("shared_axes",),
    ),
)
