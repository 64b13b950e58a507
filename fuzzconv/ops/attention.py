"""Attention: scaled dot-product attention, multi-head self-attention, Keras's (additive)
attention layers and torch's transformer encoder layer.

torch lays attention operands out as (batch, heads, steps, features) and Keras's
dot_product_attention as (batch, steps, heads, features): the second and third operands are
drawn to fit one or the other, and the shape rule rejects what the frontend cannot take.
"""

from __future__ import annotations

from fuzzconv.case import TensorType
from fuzzconv.ops import register
from fuzzconv.ops.spec import (
    Arg,
    Attr,
    Choice,
    Chooser,
    Ctx,
    Flag,
    Impl,
    IntRange,
    OneOf,
    Op,
    PerFrontend,
    ShapeError,
)

ATTENTION_TOLERANCE = {"float32": 1e-3}


def divisors(n: int) -> tuple[int, ...]:
    return tuple(d for d in range(1, n + 1) if n % d == 0)


def with_axis(shape: tuple[int, ...], axis: int, size: int) -> tuple[int, ...]:
    out = list(shape)
    out[axis] = size
    return tuple(out)


# --- scaled dot-product attention ----------------------------------------------------------


def key_like(ins: tuple[TensorType, ...], chooser: Chooser) -> TensorType:
    """Keys: the query's type (self-attention), or another number of steps on the torch axis
    (-2) or, for rank 4, on the Keras axis (1)."""
    q = ins[0]
    roll = chooser.integer(0, 2)
    if roll == 0:
        return q
    axis = -2 if roll == 1 or q.rank < 4 else 1
    return TensorType(with_axis(q.shape, axis, chooser.integer(1, 6)), q.dtype)


def value_like(ins: tuple[TensorType, ...], chooser: Chooser) -> TensorType:
    """Values: the keys' type, or with another feature size."""
    k = ins[1]
    if chooser.boolean(0.6):
        return k
    return TensorType(with_axis(k.shape, -1, chooser.integer(1, 6)), k.dtype)


def sdpa_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    q, k, v = ctx.ins
    if ctx.frontend == "torch":  # (..., L, E), (..., S, E), (..., S, Ev) -> (..., L, Ev)
        if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
            raise ShapeError(f"batch axes of {q.shape}, {k.shape}, {v.shape} differ")
        if k.shape[-1] != q.shape[-1] or v.shape[-2] != k.shape[-2]:
            raise ShapeError(f"keys {k.shape} and values {v.shape} do not fit queries {q.shape}")
        return (TensorType((*q.shape[:-1], v.shape[-1]), q.dtype),)
    if q.rank != 4:  # (B, T, N, H), (B, S, N, H), (B, S, N, Hv) -> (B, T, N, Hv)
        raise ShapeError("Keras's dot_product_attention takes (batch, steps, heads, features)")
    if (k.shape[0], k.shape[2], k.shape[3]) != (q.shape[0], q.shape[2], q.shape[3]):
        raise ShapeError(f"keys {k.shape} do not fit queries {q.shape}")
    if v.shape[:3] != k.shape[:3]:
        raise ShapeError(f"values {v.shape} do not fit keys {k.shape}")
    return (TensorType((*q.shape[:3], v.shape[3]), q.dtype),)


def scale_arg(ctx: Ctx) -> dict[str, str]:
    scale = ctx.a("scale")
    return {"scale_arg": "None" if scale == "default" else repr(scale)}


# --- multi-head self-attention -------------------------------------------------------------


def seq_len(ctx: Ctx) -> int:
    """The steps axis of torch's MultiheadAttention input: (N, L, E), (L, N, E) or (L, E)."""
    return ctx.x.shape[1] if ctx.x.rank == 3 and ctx.a("batch_first") else ctx.x.shape[0]


def mha_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    if ctx.frontend == "torch":
        if ctx.x.rank not in (2, 3):
            raise ShapeError("torch's MultiheadAttention takes (L, E) or batched 3-D inputs")
        if ctx.x.shape[-1] % int(ctx.a("num_heads")):
            raise ShapeError(f"{ctx.a('num_heads')} heads do not divide {ctx.x.shape[-1]} features")
        return (ctx.x,)
    if ctx.x.rank not in (3, 4):
        raise ShapeError("Keras's MultiHeadAttention is used here on 3-D and 4-D inputs")
    axes = ctx.a("attention_axes")
    if axes not in attention_axes_options(ctx):
        raise ShapeError(f"attention_axes {axes} do not fit rank {ctx.x.rank}")
    if ctx.a("causal") and ctx.x.rank != 3:
        raise ShapeError("Keras's causal mask fits 3-D inputs only")
    features = int(ctx.a("output_shape")) or ctx.x.shape[-1]
    return (TensorType((*ctx.x.shape[:-1], features), ctx.x.dtype),)


def attention_axes_options(ctx: Ctx) -> tuple[object, ...]:
    """Keras attends over every axis between batch and features by default, or over some."""
    return ("default",) if ctx.x.rank != 4 else ("default", (1,), (2,), (1, 2))


def causal_options(ctx: Ctx) -> tuple[bool, ...]:
    """Keras builds its causal mask for 3-D inputs only (on 4-D ones it fails on axis -5)."""
    return (False, True) if ctx.frontend == "torch" or ctx.x.rank == 3 else (False,)


def torch_mha_call(ctx: Ctx) -> str:
    mask = ""
    if ctx.a("causal"):
        n = seq_len(ctx)
        mask = f", attn_mask=torch.triu(torch.full(({n}, {n}), float('-inf')), diagonal=1), is_causal=True"
    return "getattr(self, {name})({0}, {0}, {0}, need_weights={need_weights}" + mask + ")[0]"


def keras_mha_fields(ctx: Ctx) -> dict[str, str]:
    axes = ctx.a("attention_axes")
    return {
        "axes": "None" if axes == "default" else repr(axes),
        "value_dim_arg": repr(int(ctx.a("value_dim")) or None),
        "output_shape_arg": repr(int(ctx.a("output_shape")) or None),
    }


# --- Keras's attention layers --------------------------------------------------------------


def steps_like(ins: tuple[TensorType, ...], chooser: Chooser) -> TensorType:
    """Values for a query (B, Tq, D): (B, Tv, D), often Tv = Tq."""
    q = ins[0]
    return q if chooser.boolean(0.4) else TensorType(with_axis(q.shape, 1, chooser.integer(1, 6)), q.dtype)


def keras_attention_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    q, v = ctx.ins
    if (q.shape[0], q.shape[2]) != (v.shape[0], v.shape[2]):
        raise ShapeError(f"values {v.shape} do not fit queries {q.shape}")
    return (q,)


# --- transformer encoder layer -------------------------------------------------------------


def encoder_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    if ctx.x.shape[-1] % int(ctx.a("nhead")):
        raise ShapeError(f"{ctx.a('nhead')} heads do not divide {ctx.x.shape[-1]} features")
    return (ctx.x,)


register(
    Op(
        name="scaled_dot_product_attention",
        family="attention",
        args=(Arg(ranks=(3, 4)), Arg(ranks=(3, 4), like=key_like), Arg(ranks=(3, 4), like=value_like)),
        attrs=(Attr("is_causal", Flag(), False), Attr("scale", OneOf(("default", 0.5, 0.125, 2.0)), "default")),
        shape=sdpa_shape,
        torch=Impl(call="torch.nn.functional.scaled_dot_product_attention({0}, {1}, {2}, is_causal={is_causal}, "
                   "scale={scale_arg})", derive=scale_arg),
        keras=Impl(call="keras.ops.dot_product_attention({0}, {1}, {2}, scale={scale_arg}, is_causal={is_causal})",
                   derive=scale_arg),
        tolerance=ATTENTION_TOLERANCE,
    ),
    Op(
        name="multihead_attention",
        family="attention",
        args=(Arg(ranks=(2, 3, 4)),),
        attrs=(
            Attr("num_heads", PerFrontend(torch=Choice(lambda ctx: divisors(ctx.x.shape[-1])), keras=IntRange(1, 3)),
                 1),
            Attr("key_dim", IntRange(1, 8), 4),
            Attr("value_dim", IntRange(0, 4), 0),  # 0: key_dim
            Attr("output_shape", IntRange(0, 4), 0),  # 0: the query's features
            Attr("attention_axes", Choice(attention_axes_options), "default"),  # type: ignore[arg-type]
            Attr("use_gate", Flag(), False),
            Attr("bias", Flag(), True),
            Attr("add_bias_kv", Flag(), False),
            Attr("add_zero_attn", Flag(), False),
            Attr("batch_first", Flag(), True),
            Attr("need_weights", Flag(), False),
            Attr("causal", Choice(causal_options), False),
        ),
        shape=mha_shape,
        torch=Impl(
            module=lambda ctx: f"torch.nn.MultiheadAttention({ctx.x.shape[-1]}, {{num_heads}}, bias={{bias}}, "
            "add_bias_kv={add_bias_kv}, add_zero_attn={add_zero_attn}, batch_first={batch_first})",
            call=torch_mha_call,
        ),
        keras=Impl(
            call="keras.layers.MultiHeadAttention({num_heads}, {key_dim}, value_dim={value_dim_arg}, "
            "use_bias={bias}, output_shape={output_shape_arg}, attention_axes={axes}, use_gate={use_gate}, "
            "name={name})({0}, {0}, use_causal_mask={causal})",
            derive=keras_mha_fields,
        ),
        tolerance=ATTENTION_TOLERANCE,
        torch_attrs=("num_heads", "bias", "add_bias_kv", "add_zero_attn", "batch_first", "need_weights", "causal"),
        keras_attrs=("num_heads", "key_dim", "value_dim", "output_shape", "attention_axes", "use_gate", "bias",
                     "causal"),
    ),
    Op(
        name="attention_layer",
        family="attention",
        args=(Arg(ranks=(3,)), Arg(ranks=(3,), like=steps_like)),
        attrs=(
            Attr("use_scale", Flag(), False),
            Attr("score_mode", OneOf(("dot", "concat")), "dot"),
            Attr("causal", Flag(), False),
        ),
        shape=keras_attention_shape,
        keras=Impl(call="keras.layers.Attention(use_scale={use_scale}, score_mode={score_mode}, "
                   "name={name})([{0}, {1}], use_causal_mask={causal})"),
        tolerance=ATTENTION_TOLERANCE,
    ),
    Op(
        name="additive_attention_layer",
        family="attention",
        args=(Arg(ranks=(3,)), Arg(ranks=(3,), like=steps_like)),
        attrs=(Attr("use_scale", Flag(), True), Attr("causal", Flag(), False)),
        shape=keras_attention_shape,
        keras=Impl(call="keras.layers.AdditiveAttention(use_scale={use_scale}, name={name})([{0}, {1}], "
                   "use_causal_mask={causal})"),
        tolerance=ATTENTION_TOLERANCE,
    ),
    Op(
        name="transformer_encoder_layer",
        family="attention",
        args=(Arg(ranks=(2, 3)),),
        attrs=(
            Attr("nhead", Choice(lambda ctx: divisors(ctx.x.shape[-1])), 1),
            Attr("dim_feedforward", IntRange(1, 16), 8),
            Attr("activation", OneOf(("relu", "gelu")), "relu"),
            Attr("layer_norm_eps", OneOf((1e-5, 1e-3)), 1e-5),
            Attr("batch_first", Flag(), True),
            Attr("norm_first", Flag(), False),
            Attr("bias", Flag(), True),
        ),
        shape=encoder_shape,
        torch=Impl(module=lambda ctx: f"torch.nn.TransformerEncoderLayer({ctx.x.shape[-1]}, {{nhead}}, "
                   "dim_feedforward={dim_feedforward}, dropout=0.0, activation={activation}, "
                   "layer_norm_eps={layer_norm_eps}, batch_first={batch_first}, norm_first={norm_first}, "
                   "bias={bias})"),
        tolerance=ATTENTION_TOLERANCE,
    ),
)
