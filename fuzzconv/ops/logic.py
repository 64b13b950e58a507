"""Logical operators on booleans and bitwise operators (and shifts) on integers.

ONNX has no bitwise operators before opset 18 and shifts only for unsigned integers, so
converters have to lower these for the signed integers and booleans that models use.
"""

from __future__ import annotations

from fuzzconv.case import TensorType
from fuzzconv.ops import register
from fuzzconv.ops.spec import (
    INTS,
    Arg,
    Ctx,
    Impl,
    KnownIssue,
    Op,
    broadcast,
    broadcastable_like,
    same,
)

BOOL = ("bool",)


def binary_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    return (TensorType(broadcast(ctx.ins[0].shape, ctx.ins[1].shape), ctx.ins[0].dtype),)


# TensorFlow's bitwise kernels take integers only; torch's take booleans as well.
NO_KERAS_BOOL = (("keras", "bool"),)


def logical(name: str, torch: str, keras: str) -> Op:
    return Op(
        name=name,
        family="logic",
        args=(Arg(dtypes=BOOL), Arg(dtypes=BOOL, like=broadcastable_like)),
        shape=binary_shape,
        torch=Impl(call=torch),
        keras=Impl(call=keras),
    )


def bitwise(name: str, torch: str, keras: str, known_issues: tuple[KnownIssue, ...] = ()) -> Op:
    return Op(
        name=name,
        family="logic",
        args=(Arg(dtypes=INTS + BOOL), Arg(dtypes=INTS + BOOL, like=broadcastable_like)),
        shape=binary_shape,
        torch=Impl(call=torch),
        keras=Impl(call=keras),
        known_issues=known_issues,
        unsupported=NO_KERAS_BOOL,
    )


def shift(name: str, torch: str, keras: str, known_issues: tuple[KnownIssue, ...] = ()) -> Op:
    """Shift amounts are drawn non-negative (0..4): negative or too-wide shifts are undefined."""
    return Op(
        name=name,
        family="logic",
        args=(Arg(dtypes=INTS), Arg(dtypes=INTS, domain="nonneg", like=broadcastable_like)),
        shape=binary_shape,
        torch=Impl(call=torch),
        keras=Impl(call=keras),
        known_issues=(*known_issues, SIGNED_SHIFT),
    )


def no_handler(tf_op: str) -> KnownIssue:
    return KnownIssue("tf2onnx", f"tf2onnx has no handler for TF {tf_op}")


NO_SYMBOLIC = KnownIssue("torch-script", "the TorchScript exporter has no symbolic for this bitwise op")
BOOL_ONLY = KnownIssue("torch-script", "the TorchScript exporter takes booleans only for this op")
SIGNED_SHIFT = KnownIssue("tf2onnx", "tf2onnx's BitShift handler fails on int64 LeftShift/RightShift (int32 converts)")


register(
    logical("logical_and", "torch.logical_and({0}, {1})", "keras.ops.logical_and({0}, {1})"),
    logical("logical_or", "torch.logical_or({0}, {1})", "keras.ops.logical_or({0}, {1})"),
    logical("logical_xor", "torch.logical_xor({0}, {1})", "keras.ops.logical_xor({0}, {1})"),
    Op(
        name="logical_not",
        family="logic",
        args=(Arg(dtypes=BOOL),),
        shape=same,
        torch=Impl(call="torch.logical_not({0})"),
        keras=Impl(call="keras.ops.logical_not({0})"),
    ),
    bitwise("bitwise_and", "torch.bitwise_and({0}, {1})", "keras.ops.bitwise_and({0}, {1})",
            (NO_SYMBOLIC, no_handler("BitwiseAnd"))),
    bitwise("bitwise_or", "torch.bitwise_or({0}, {1})", "keras.ops.bitwise_or({0}, {1})",
            (BOOL_ONLY, no_handler("BitwiseOr"))),
    bitwise("bitwise_xor", "torch.bitwise_xor({0}, {1})", "keras.ops.bitwise_xor({0}, {1})",
            (NO_SYMBOLIC, no_handler("BitwiseXor"))),
    Op(
        name="bitwise_not",
        family="logic",
        args=(Arg(dtypes=INTS + BOOL),),
        shape=same,
        unsupported=NO_KERAS_BOOL,
        torch=Impl(call="torch.bitwise_not({0})"),
        keras=Impl(call="keras.ops.bitwise_invert({0})"),
        known_issues=(BOOL_ONLY, no_handler("Invert")),
    ),
    shift("bitwise_left_shift", "torch.bitwise_left_shift({0}, {1})", "keras.ops.left_shift({0}, {1})"),
    shift("bitwise_right_shift", "torch.bitwise_right_shift({0}, {1})", "keras.ops.right_shift({0}, {1})",
          (KnownIssue("torch-script", "negative values shift wrong: the exporter divides by 2**n, which "
                      "rounds toward zero instead of down"),)),
)
