"""Recurrent layers: LSTM, GRU and the plain (Elman) RNN, stacked and bidirectional.

torch's modules return (output, state); the model keeps the sequence output only. Keras's
layers return the whole sequence or (return_sequences=False) the last step; `num_layers`
stacks two layers as torch does, the lower one always returning the sequence.
"""

from __future__ import annotations

from collections.abc import Callable

from fuzzconv.case import TensorType
from fuzzconv.ops import register
from fuzzconv.ops.spec import Arg, Attr, Choice, Ctx, Flag, Impl, IntRange, KnownIssue, OneOf, Op, ShapeError

RECURRENT_TOLERANCE = {"float32": 1e-3}
MERGE_MODES = ("concat", "sum", "mul", "ave")


def merge_options(ctx: Ctx) -> tuple[str, ...]:
    return MERGE_MODES if ctx.a("bidirectional") else ("concat",)


def go_backwards_options(ctx: Ctx) -> tuple[bool, ...]:
    """Keras's Bidirectional rejects a forward layer that goes backwards: it builds the backward
    layer from the forward one's config and then finds both with go_backwards=True."""
    return (False,) if ctx.a("bidirectional") else (False, True)


def proj_options(ctx: Ctx) -> tuple[int, ...]:
    """torch's LSTM projects the hidden state to proj_size < hidden_size (0: no projection).
    0 is listed three times as often as the other sizes together: the ONNX exporters reject
    projections outright, and a projection in most LSTMs would hide everything else."""
    sizes = tuple(range(1, int(ctx.a("hidden_size"))))
    return (0,) * max(1, 3 * len(sizes)) + sizes


def recurrent_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    hidden = int(ctx.a("hidden_size"))
    directions = 2 if ctx.a("bidirectional") else 1
    if ctx.frontend == "torch":
        # (N, L, H) batch-first, (L, N, H) otherwise, (L, H) unbatched: only the features change
        out = int(ctx.a("proj_size")) if ctx.attrs.get("proj_size") else hidden
        return (TensorType((*ctx.x.shape[:-1], directions * out), ctx.x.dtype),)
    if ctx.x.rank != 3:
        raise ShapeError("Keras's recurrent layers take (batch, steps, features)")
    width = directions * hidden if ctx.a("merge_mode") == "concat" else hidden
    steps = ctx.x.shape[:2] if ctx.a("return_sequences") else ctx.x.shape[:1]
    return (TensorType((*steps, width), ctx.x.dtype),)


def keras_recurrent(layer: str, extra: Callable[[Ctx], str]) -> Callable[[Ctx], str]:
    """The Keras call: one or two layers, each maybe wrapped in Bidirectional."""

    def call(ctx: Ctx) -> str:
        def one(return_sequences: object, named: bool) -> str:
            inner = (f"keras.layers.{layer}({{hidden_size}}, use_bias={{bias}}, {extra(ctx)}"
                     f"return_sequences={return_sequences!r}, go_backwards={{go_backwards}}, unroll={{unroll}})")
            name = ", name={name}" if named else ""
            if ctx.a("bidirectional"):
                return f"keras.layers.Bidirectional({inner}, merge_mode={{merge_mode}}{name})"
            return inner[:-1] + name + ")"

        code = "{0}"
        if int(ctx.a("num_layers")) == 2:
            code = f"{one(True, False)}({code})"
        return f"{one(ctx.a('return_sequences'), True)}({code})"

    return call


def torch_module(cls: str, extra: str = "") -> Callable[[Ctx], str]:
    def module(ctx: Ctx) -> str:
        return (f"torch.nn.{cls}({ctx.x.shape[-1]}, {{hidden_size}}, num_layers={{num_layers}}, bias={{bias}}, "
                f"batch_first={{batch_first}}, bidirectional={{bidirectional}}{extra})")

    return module


COMMON = (
    Attr("hidden_size", IntRange(1, 8), 4),
    Attr("num_layers", IntRange(1, 2), 1),
    Attr("bias", Flag(), True),
    Attr("bidirectional", Flag(), False),
    Attr("batch_first", Flag(), True),
    Attr("merge_mode", Choice(merge_options), "concat"),
    Attr("return_sequences", Flag(), True),
    Attr("go_backwards", Choice(go_backwards_options), False),
    Attr("unroll", Flag(), False),
)
TORCH_COMMON = ("hidden_size", "num_layers", "bias", "bidirectional", "batch_first")
KERAS_COMMON = ("hidden_size", "num_layers", "bias", "bidirectional", "merge_mode", "return_sequences",
                "go_backwards", "unroll")
GATED_ACTIVATIONS = (
    Attr("activation", OneOf(("tanh", "relu", "sigmoid")), "tanh"),
    Attr("recurrent_activation", OneOf(("sigmoid", "hard_sigmoid", "tanh")), "sigmoid"),
)


def gated_extra(ctx: Ctx) -> str:
    reset_after = f"reset_after={ctx.a('reset_after')!r}, " if "reset_after" in ctx.attrs else ""
    return f"activation={{activation}}, recurrent_activation={{recurrent_activation}}, {reset_after}"


register(
    Op(
        name="lstm",
        family="recurrent",
        args=(Arg(ranks=(2, 3)),),
        attrs=(*COMMON, Attr("proj_size", Choice(proj_options), 0), *GATED_ACTIVATIONS),
        shape=recurrent_shape,
        torch=Impl(module=torch_module("LSTM", ", proj_size={proj_size}"),
                   call="getattr(self, {name})({0})[0]"),
        keras=Impl(call=keras_recurrent("LSTM", gated_extra)),
        tolerance=RECURRENT_TOLERANCE,
        torch_attrs=(*TORCH_COMMON, "proj_size"),
        known_issues=(KnownIssue("torch-script", "the TorchScript exporter rejects LSTMs with projections "
                                 "(proj_size > 0)"),),
        keras_attrs=(*KERAS_COMMON, "activation", "recurrent_activation"),
    ),
    Op(
        name="gru",
        family="recurrent",
        args=(Arg(ranks=(2, 3)),),
        attrs=(*COMMON, *GATED_ACTIVATIONS, Attr("reset_after", Flag(), True)),
        shape=recurrent_shape,
        torch=Impl(module=torch_module("GRU"), call="getattr(self, {name})({0})[0]"),
        keras=Impl(call=keras_recurrent("GRU", gated_extra)),
        tolerance=RECURRENT_TOLERANCE,
        torch_attrs=TORCH_COMMON,
        keras_attrs=(*KERAS_COMMON, "activation", "recurrent_activation", "reset_after"),
    ),
    Op(
        name="rnn",
        family="recurrent",
        args=(Arg(ranks=(2, 3)),),
        attrs=(*COMMON, Attr("activation", OneOf(("tanh", "relu")), "tanh")),
        shape=recurrent_shape,
        torch=Impl(module=torch_module("RNN", ", nonlinearity={activation}"), call="getattr(self, {name})({0})[0]"),
        keras=Impl(call=keras_recurrent("SimpleRNN", lambda ctx: "activation={activation}, ")),
        tolerance=RECURRENT_TOLERANCE,
        torch_attrs=(*TORCH_COMMON, "activation"),
        keras_attrs=(*KERAS_COMMON, "activation"),
    ),
)
