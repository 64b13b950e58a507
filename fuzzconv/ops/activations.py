"""Activations, softmax and log-softmax."""

from __future__ import annotations

from collections.abc import Callable

from fuzzconv.ops import register
from fuzzconv.ops.spec import Arg, Attr, Axis, Ctx, FloatRange, Impl, OneOf, Op, same


def activation(name: str, torch: str | None, keras: str, out_range: str = "any",
               attrs: tuple[Attr, ...] = (), derive: Callable[[Ctx], dict[str, str]] | None = None) -> Op:
    return Op(
        name=name,
        family="activation",
        args=(Arg(),),
        attrs=attrs,
        shape=same,
        torch=Impl(call=torch, derive=derive) if torch else None,
        keras=Impl(call=keras, derive=derive),
        out_range=out_range,
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
