"""Layers: matmul and linear, convolution, pooling, normalization, resizing and padding.

Shapes follow each frontend's native layout (torch NCHW, Keras NHWC): `Ctx.channel_axis`
and `Ctx.spatial_axes` say where channels and spatial axes are, and `native` builds an
output in the same layout. Attributes that are spelled differently by the two APIs share
one name when they mean the same thing, with a `PerFrontend` domain where the values differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from fuzzconv.case import AttrValue, TensorType
from fuzzconv.ops import register
from fuzzconv.ops.spec import (
    AnyOf,
    Arg,
    Attr,
    Axis,
    Choice,
    Chooser,
    Ctx,
    Domain,
    Flag,
    Impl,
    IntRange,
    IntTuple,
    OneOf,
    Op,
    PerFrontend,
    ShapeError,
    broadcast,
    channels,
    native,
    same,
    spatial,
    tup,
)

NORM_TOLERANCE = {"float32": 1e-3}
ACCUMULATE_TOLERANCE = {"float32": 1e-3}
EPSILONS = (1e-5, 1e-3, 0.1)
KERAS_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "gelu")


# --- layout helpers ------------------------------------------------------------------------










def divisors(n: int) -> tuple[int, ...]:
    return tuple(d for d in range(1, n + 1) if n % d == 0)


def smallest_spatial(ctx: Ctx) -> int:
    return min(spatial(ctx))


def extent(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) + 1


def windows(padded: int, kernel_extent: int, stride: int) -> int:
    if padded < kernel_extent:
        raise ShapeError(f"a kernel spanning {kernel_extent} does not fit in {padded} (padded) elements")
    return (padded - kernel_extent) // stride + 1


# --- matmul and linear ---------------------------------------------------------------------


def matmul_rhs(ins: tuple[TensorType, ...], chooser: Chooser) -> TensorType:
    """A right-hand side whose rows match the left side's columns; batch dims may broadcast."""
    lhs = ins[0]
    inner, cols = lhs.shape[-1], chooser.integer(1, 8)
    if lhs.rank == 1:
        return TensorType((inner, cols), lhs.dtype)
    if chooser.boolean(0.15):
        return TensorType((inner,), lhs.dtype)
    batch = lhs.shape[:-2]
    if chooser.boolean(0.3):
        batch = batch[chooser.integer(0, len(batch)):]
    batch = tuple(1 if chooser.boolean(0.2) else d for d in batch)
    return TensorType((*batch, inner, cols), lhs.dtype)


def matmul_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    """numpy semantics: a 1-D operand gains an axis for the product and loses it after."""
    a, b = ctx.ins
    a_shape = a.shape if a.rank > 1 else (1, *a.shape)
    b_shape = b.shape if b.rank > 1 else (*b.shape, 1)
    if a_shape[-1] != b_shape[-2]:
        raise ShapeError(f"matmul of {a.shape} and {b.shape}: inner sizes differ")
    batch = broadcast(a_shape[:-2], b_shape[:-2])
    rows = (a_shape[-2],) if a.rank > 1 else ()
    cols = (b_shape[-1],) if b.rank > 1 else ()
    return (TensorType((*batch, *rows, *cols), a.dtype),)


def linear_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    return (TensorType((*ctx.x.shape[:-1], int(ctx.a("out_features"))), ctx.x.dtype),)


# --- convolution ---------------------------------------------------------------------------


def conv_pads(ctx: Ctx) -> list[tuple[int, int]]:
    """(before, after) padding per spatial axis, as the frontend computes it."""
    padding = ctx.a("padding")
    kernel, dilation = tup(ctx, "kernel_size"), tup(ctx, "dilation")
    if isinstance(padding, tuple):
        return [(p, p) for p in padding]
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    if padding == "causal":
        return [(extent(k, d) - 1, 0) for k, d in zip(kernel, dilation, strict=True)]
    if ctx.frontend == "torch":  # 'same', stride 1: the extra element goes after
        totals = [extent(k, d) - 1 for k, d in zip(kernel, dilation, strict=True)]
        return [(t // 2, t - t // 2) for t in totals]
    pads = []  # Keras/TF 'same': ceil(L / stride) outputs, the extra element goes after
    for size, k, d, s in zip(spatial(ctx), kernel, dilation, tup(ctx, "stride"), strict=True):
        total = max((math.ceil(size / s) - 1) * s + extent(k, d) - size, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def padding_modes(ctx: Ctx) -> tuple[str, ...]:
    """torch padding modes that accept the conv's padding: reflect < size, circular <= size."""
    widest = [max(p) for p in conv_pads(ctx)]
    sizes = spatial(ctx)
    modes = ["zeros", "replicate"]
    if all(w < n for w, n in zip(widest, sizes, strict=True)):
        modes.append("reflect")
    if all(w <= n for w, n in zip(widest, sizes, strict=True)):
        modes.append("circular")
    return tuple(modes)


def max_dilation(ctx: Ctx) -> int:
    """The largest dilation (at most 3) with which every kernel still fits its unpadded axis."""
    fits = [(n - 1) // (k - 1) if k > 1 else 3 for n, k in zip(spatial(ctx), tup(ctx, "kernel_size"), strict=True)]
    return max(1, min(3, *fits))


def max_stride(ctx: Ctx) -> int:
    if ctx.frontend == "torch" and ctx.a("padding") == "same":
        return 1  # torch: padding='same' is not supported for strided convolutions
    if ctx.frontend == "keras" and max(tup(ctx, "dilation")) > 1:
        return 1  # Keras: strides > 1 not supported in conjunction with dilation_rate > 1
    return 3


def kernel_bound(ctx: Ctx) -> int:
    return min(4, smallest_spatial(ctx))


def conv_geometry(ctx: Ctx, groups: int, out_channels: int) -> TensorType:
    if channels(ctx) % groups or out_channels % groups:
        raise ShapeError(f"groups={groups} must divide {channels(ctx)} input and {out_channels} output channels")
    pads, kernel = conv_pads(ctx), tup(ctx, "kernel_size")
    out = tuple(
        windows(n + lo + hi, extent(k, d), s)
        for n, (lo, hi), k, d, s in zip(spatial(ctx), pads, kernel, tup(ctx, "dilation"), tup(ctx, "stride"),
                                        strict=True)
    )
    return native(ctx, out, out_channels)


def conv_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    return (conv_geometry(ctx, int(ctx.a("groups")), int(ctx.a("out_channels"))),)


def depthwise_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    return (conv_geometry(ctx, channels(ctx), channels(ctx) * int(ctx.a("depth_multiplier"))),)


def out_channel_options(ctx: Ctx) -> tuple[int, ...]:
    groups = int(ctx.a("groups")) if "groups" in ctx.attrs else 1  # Keras transposed convs have none
    return tuple(groups * m for m in range(1, max(2, 8 // groups) + 1))


def conv_padding(nd: int) -> PerFrontend:
    keras = ("valid", "same", "causal") if nd == 1 else ("valid", "same")
    return PerFrontend(torch=AnyOf((OneOf(("same", "valid")), IntTuple(nd, 0, 2))), keras=OneOf(keras))


def equal_strides(ctx: Ctx) -> tuple[tuple[int, ...], ...]:
    """TF's CPU DepthwiseConv2dNative only supports equal strides in the row and column dimensions."""
    return tuple((s, s) for s in range(1, max_stride(ctx) + 1))


def conv_window_attrs(nd: int, stride: Domain | None = None) -> tuple[Attr, ...]:
    """Kernel, dilation, padding, padding mode and stride, in the order their bounds need."""
    return (
        Attr("kernel_size", IntTuple(nd, 1, kernel_bound), (3,) * nd),
        Attr("dilation", IntTuple(nd, 1, max_dilation), (1,) * nd),
        Attr("padding", conv_padding(nd), "valid"),
        Attr("padding_mode", Choice(padding_modes), "zeros"),
        Attr("stride", stride or IntTuple(nd, 1, max_stride), (1,) * nd),
        Attr("bias", Flag(), True),
        Attr("activation", OneOf(KERAS_ACTIVATIONS), "linear"),
    )


def conv(nd: int) -> Op:
    return Op(
        name=f"conv{nd}d",
        family="layer",
        args=(Arg(ranks=(nd + 2,)),),
        attrs=(
            Attr("groups", Choice(lambda ctx: divisors(channels(ctx))), 1),
            Attr("out_channels", Choice(out_channel_options), 4),
            *conv_window_attrs(nd),
        ),
        shape=conv_shape,
        torch=Impl(
            module=f"torch.nn.Conv{nd}d({{in_channels}}, {{out_channels}}, {{kernel_size}}, stride={{stride}}, "
            "padding={padding}, dilation={dilation}, groups={groups}, bias={bias}, padding_mode={padding_mode})",
            derive=lambda ctx: {"in_channels": repr(channels(ctx))},
        ),
        keras=Impl(
            call=f"keras.layers.Conv{nd}D({{out_channels}}, {{kernel_size}}, strides={{stride}}, padding={{padding}}, "
            "dilation_rate={dilation}, groups={groups}, use_bias={bias}, activation={activation}, "
            "name={name})({0})",
        ),
        tolerance=ACCUMULATE_TOLERANCE,
        torch_attrs=("groups", "out_channels", "kernel_size", "dilation", "padding", "padding_mode", "stride", "bias"),
        keras_attrs=("groups", "out_channels", "kernel_size", "dilation", "padding", "stride", "bias", "activation"),
    )


def depthwise_conv2d() -> Op:
    """Keras DepthwiseConv2D; torch spells it as a Conv2d with groups equal to the channels."""
    return Op(
        name="depthwise_conv2d",
        family="layer",
        args=(Arg(ranks=(4,)),),
        attrs=(
            Attr("depth_multiplier", IntRange(1, 2), 1),
            *conv_window_attrs(2, stride=PerFrontend(torch=IntTuple(2, 1, max_stride), keras=Choice(equal_strides))),
        ),
        shape=depthwise_shape,
        torch=Impl(
            module="torch.nn.Conv2d({in_channels}, {out_channels}, {kernel_size}, stride={stride}, "
            "padding={padding}, dilation={dilation}, groups={in_channels}, bias={bias}, "
            "padding_mode={padding_mode})",
            derive=lambda ctx: {
                "in_channels": repr(channels(ctx)),
                "out_channels": repr(channels(ctx) * int(ctx.a("depth_multiplier"))),
            },
        ),
        keras=Impl(
            call="keras.layers.DepthwiseConv2D({kernel_size}, strides={stride}, padding={padding}, "
            "depth_multiplier={depth_multiplier}, dilation_rate={dilation}, use_bias={bias}, "
            "activation={activation}, name={name})({0})",
        ),
        tolerance=ACCUMULATE_TOLERANCE,
        torch_attrs=("depth_multiplier", "kernel_size", "dilation", "padding", "padding_mode", "stride", "bias"),
        keras_attrs=("depth_multiplier", "kernel_size", "dilation", "padding", "stride", "bias", "activation"),
    )


# --- transposed convolution ----------------------------------------------------------------


def max_output_padding(ctx: Ctx) -> int:
    """torch: output_padding < max(stride, dilation) per axis; Keras: < stride."""
    stride, dilation = tup(ctx, "stride"), tup(ctx, "dilation")
    if ctx.frontend == "torch":
        return min(max(s, d) for s, d in zip(stride, dilation, strict=True)) - 1
    return min(stride) - 1


def transpose_length(ctx: Ctx, axis: int, size: int) -> int:
    k = tup(ctx, "kernel_size")[axis]
    d, s = tup(ctx, "dilation")[axis], tup(ctx, "stride")[axis]
    padding, output_padding = ctx.a("padding"), ctx.a("output_padding")
    span = extent(k, d)
    if ctx.frontend == "torch":
        assert isinstance(padding, tuple) and isinstance(output_padding, tuple)
        return (size - 1) * s - 2 * padding[axis] + span + output_padding[axis]
    if output_padding == "default":  # Keras sizes the output from the padding alone
        return size * s if padding == "same" else (size - 1) * s + max(span, s)
    assert isinstance(output_padding, tuple)
    if padding == "same" and span % 2 == 0 and output_padding[axis] == 0:
        # Keras sizes this output (size - 1) * stride, which a 'same' convolution maps back to
        # size - 1, not size: TF's Conv2DBackpropInput rejects the shapes.
        raise ShapeError("Keras 'same' transposed conv with an even kernel needs output_padding >= 1")
    return (size - 1) * s + (span % 2 if padding == "same" else span) + output_padding[axis]


def conv_transpose_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    groups = int(ctx.a("groups")) if ctx.frontend == "torch" else 1
    out_channels = int(ctx.a("out_channels"))
    if channels(ctx) % groups or out_channels % groups:
        raise ShapeError(f"groups={groups} must divide {channels(ctx)} input and {out_channels} output channels")
    stride, dilation = tup(ctx, "stride"), tup(ctx, "dilation")
    output_padding = ctx.a("output_padding")
    if isinstance(output_padding, tuple) and max(output_padding) > max_output_padding(ctx):
        raise ShapeError(f"output_padding {output_padding} too large for stride {stride}, dilation {dilation}")
    out = tuple(transpose_length(ctx, axis, n) for axis, n in enumerate(spatial(ctx)))
    if min(out) < 1:
        raise ShapeError(f"transposed convolution output {out} is empty")
    return (native(ctx, out, out_channels),)


def conv_transpose(nd: int) -> Op:
    explicit_output_padding = IntTuple(nd, 0, max_output_padding)
    return Op(
        name=f"conv_transpose{nd}d",
        family="layer",
        args=(Arg(ranks=(nd + 2,)),),
        attrs=(
            Attr("groups", Choice(lambda ctx: divisors(channels(ctx))), 1),
            Attr("out_channels", Choice(out_channel_options), 4),
            Attr("kernel_size", IntTuple(nd, 1, 4), (3,) * nd),
            # TF's CPU Conv2DBackpropInput (without oneDNN) rejects dilation rates larger than 1.
            Attr("dilation", PerFrontend(torch=IntTuple(nd, 1, 2), keras=IntTuple(nd, 1, 1)), (1,) * nd),
            Attr("stride", IntTuple(nd, 1, 3), (1,) * nd),
            Attr("padding", PerFrontend(torch=IntTuple(nd, 0, 1), keras=OneOf(("valid", "same"))), (0,) * nd),
            Attr(
                "output_padding",
                PerFrontend(torch=explicit_output_padding,
                            keras=AnyOf((OneOf(("default",)), explicit_output_padding))),
                (0,) * nd,
            ),
            Attr("bias", Flag(), True),
        ),
        shape=conv_transpose_shape,
        torch=Impl(
            module=f"torch.nn.ConvTranspose{nd}d({{in_channels}}, {{out_channels}}, {{kernel_size}}, "
            "stride={stride}, padding={padding}, output_padding={output_padding}, groups={groups}, "
            "bias={bias}, dilation={dilation})",
            derive=lambda ctx: {"in_channels": repr(channels(ctx))},
        ),
        keras=Impl(
            call=f"keras.layers.Conv{nd}DTranspose({{out_channels}}, {{kernel_size}}, strides={{stride}}, "
            "padding={padding}, output_padding={keras_output_padding}, dilation_rate={dilation}, "
            "use_bias={bias}, name={name})({0})",
            derive=lambda ctx: {
                "keras_output_padding": "None" if ctx.a("output_padding") == "default" else repr(ctx.a("output_padding"))
            },
        ),
        tolerance=ACCUMULATE_TOLERANCE,
        keras_attrs=("out_channels", "kernel_size", "dilation", "stride", "padding", "output_padding", "bias"),
    )


# --- pooling -------------------------------------------------------------------------------


def torch_pool_length(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape, including the ceil-mode rule for the last window."""
    if p > k // 2:
        raise ShapeError(f"pad {p} should be at most half of kernel size {k}")
    out = (size + 2 * p - extent(k, d) + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    if out < 1:
        raise ShapeError(f"pooling window {k} (dilation {d}, pad {p}) leaves no output of {size}")
    return out


def keras_pool_length(size: int, k: int, s: int, padding: str) -> int:
    return math.ceil(size / s) if padding == "same" else windows(size, k, s)


def pool_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    kernel, stride = tup(ctx, "kernel_size"), tup(ctx, "stride")
    nd = len(kernel)
    if ctx.frontend == "keras":
        padding = str(ctx.a("padding"))
        out = tuple(keras_pool_length(n, k, s, padding) for n, k, s in zip(spatial(ctx), kernel, stride, strict=True))
    else:
        pads = tup(ctx, "padding")
        dilation = tup(ctx, "dilation") if "dilation" in ctx.attrs else (1,) * nd
        out = tuple(
            torch_pool_length(n, k, s, p, d, bool(ctx.a("ceil_mode")))
            for n, k, s, p, d in zip(spatial(ctx), kernel, stride, pads, dilation, strict=True)
        )
    return (native(ctx, out, channels(ctx)),)


def pool(kind: str, nd: int) -> Op:
    torch_name, keras_name = {"max": ("MaxPool", "MaxPooling"), "avg": ("AvgPool", "AveragePooling")}[kind]
    torch_only = (
        Attr("dilation", IntTuple(nd, 1, 2), (1,) * nd)
        if kind == "max"
        else Attr("count_include_pad", Flag(), True)
    )
    return Op(
        name=f"{kind}_pool{nd}d",
        family="layer",
        args=(Arg(ranks=(nd + 2,)),),
        attrs=(
            Attr("kernel_size", IntTuple(nd, 1, kernel_bound), (2,) * nd),
            Attr("stride", IntTuple(nd, 1, 3), (2,) * nd),
            Attr(
                "padding",
                PerFrontend(torch=IntTuple(nd, 0, lambda ctx: min(tup(ctx, "kernel_size")) // 2),
                            keras=OneOf(("valid", "same"))),
                (0,) * nd,
            ),
            Attr("ceil_mode", Flag(), False),
            torch_only,
        ),
        shape=pool_shape,
        torch=Impl(
            module=f"torch.nn.{torch_name}{nd}d({{kernel_size}}, stride={{stride}}, padding={{padding}}, "
            f"ceil_mode={{ceil_mode}}, {torch_only.name}={{{torch_only.name}}})",
        ),
        keras=Impl(call=f"keras.layers.{keras_name}{nd}D({{kernel_size}}, strides={{stride}}, "
                   "padding={padding}, name={name})({0})"),
        keras_attrs=("kernel_size", "stride", "padding"),
    )


def global_pool_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    if ctx.a("keepdims"):
        return (native(ctx, (1,) * len(ctx.spatial_axes), channels(ctx)),)
    return (TensorType((ctx.x.shape[0], channels(ctx)), ctx.x.dtype),)


def global_pool(kind: str) -> Op:
    torch_fn = {"avg": "adaptive_avg_pool", "max": "adaptive_max_pool"}[kind]
    keras_layer = {"avg": "GlobalAveragePooling", "max": "GlobalMaxPooling"}[kind]

    def torch_call(ctx: Ctx) -> str:
        call = f"torch.nn.functional.{torch_fn}{ctx.x.rank - 2}d({{0}}, 1)"
        return call if ctx.a("keepdims") else f"torch.flatten({call}, 1)"

    return Op(
        name=f"global_{kind}_pool",
        family="layer",
        args=(Arg(ranks=(3, 4)),),
        attrs=(Attr("keepdims", Flag(), False),),
        shape=global_pool_shape,
        torch=Impl(call=torch_call),
        keras=Impl(call=lambda ctx: f"keras.layers.{keras_layer}{ctx.x.rank - 2}D(keepdims={{keepdims}}, "
                   "name={name})({0})"),
    )


# --- normalization -------------------------------------------------------------------------


def batch_norm_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    if ctx.frontend == "torch" and not ctx.a("track_running_stats"):
        values_per_channel = ctx.x.shape[0] * math.prod(ctx.x.shape[2:])
        if values_per_channel < 2:
            raise ShapeError("batch statistics need more than 1 value per channel")
    return (ctx.x,)


def batch_norm_module(ctx: Ctx) -> str:
    kind = "BatchNorm1d" if ctx.x.rank < 4 else "BatchNorm2d"
    return (f"torch.nn.{kind}({{num_features}}, eps={{eps}}, affine={{affine}}, "
            "track_running_stats={track_running_stats})")


def trailing_axes(ctx: Ctx) -> str:
    return repr(list(range(ctx.x.rank - int(ctx.a("dims")), ctx.x.rank)))


def normalized_shape(ctx: Ctx) -> str:
    return repr(ctx.x.shape[ctx.x.rank - int(ctx.a("dims")):])


# --- resizing ------------------------------------------------------------------------------

LINEAR_MODES = ("linear", "bilinear", "bicubic")
ANTIALIAS_MODES = ("bilinear", "bicubic", "lanczos3", "lanczos5")


def upsample_modes(ctx: Ctx) -> tuple[str, ...]:
    if ctx.frontend == "torch":
        return ("nearest", "nearest-exact", "linear", "area") if ctx.x.rank == 3 else (
            "nearest", "nearest-exact", "bilinear", "bicubic", "area")
    return ("nearest",) if ctx.x.rank == 3 else ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area")


def align_corners_options(ctx: Ctx) -> tuple[bool, ...]:
    return (False, True) if ctx.a("mode") in LINEAR_MODES else (False,)


def antialias_options(ctx: Ctx) -> tuple[bool, ...]:
    return (False, True) if ctx.a("mode") in ANTIALIAS_MODES else (False,)


def align_corners_arg(ctx: Ctx) -> dict[str, str]:
    """torch rejects align_corners for the nearest and area modes; None is its default there."""
    return {"align": repr(ctx.a("align_corners")) if ctx.a("mode") in LINEAR_MODES else "None"}


def upsample_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    out = tuple(n * s for n, s in zip(spatial(ctx), tup(ctx, "scale"), strict=True))
    return (native(ctx, out, channels(ctx)),)


def upsample_keras(ctx: Ctx) -> str:
    if ctx.x.rank == 3:
        return "keras.layers.UpSampling1D({factor}, name={name})({0})"
    return "keras.layers.UpSampling2D({scale}, interpolation={mode}, name={name})({0})"


def resize_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    return (native(ctx, tup(ctx, "size"), channels(ctx)),)


# --- padding -------------------------------------------------------------------------------


def pad_dims_bounds(ctx: Ctx) -> tuple[int, int]:
    """How many trailing axes may be padded: torch's non-constant modes pad 1..3 axes of an
    input with one or two more axes; the constant modes pad any."""
    rank = ctx.x.rank
    if ctx.frontend == "torch" and ctx.a("mode") != "constant":
        return max(1, rank - 2), min(3, rank - 1)
    return 1, rank


def padded_sizes(ctx: Ctx) -> tuple[int, ...]:
    """The padded axes' sizes, last axis first (the order of torch's pad tuple)."""
    return tuple(reversed(ctx.x.shape[ctx.x.rank - int(ctx.a("dims")):]))


def pad_limit(mode: AttrValue, size: int) -> int | None:
    """The widest pad a mode allows on an axis of `size` (reflect excludes the edge), if any."""
    return {"reflect": size - 1, "symmetric": size, "circular": size}.get(str(mode))


def max_pad(ctx: Ctx) -> int:
    limits = [pad_limit(ctx.a("mode"), n) for n in padded_sizes(ctx)]
    return min([2, *(limit for limit in limits if limit is not None)])


def min_pad(ctx: Ctx) -> int:
    return -1 if ctx.frontend == "torch" and ctx.a("mode") == "constant" else 0


def pad_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    lo, hi = pad_dims_bounds(ctx)
    if not lo <= int(ctx.a("dims")) <= hi:
        raise ShapeError(f"mode {ctx.a('mode')!r} pads {lo}..{hi} trailing axes of a rank-{ctx.x.rank} input")
    pads = tup(ctx, "pads")
    shape = list(ctx.x.shape)
    for i, size in enumerate(padded_sizes(ctx)):
        before, after = pads[2 * i], pads[2 * i + 1]
        limit = pad_limit(ctx.a("mode"), size)
        if limit is not None and max(before, after) > limit:
            raise ShapeError(f"pads {before}, {after} too wide for mode {ctx.a('mode')!r} on size {size}")
        if size + before + after < 1:
            raise ShapeError(f"padding {before}, {after} removes all of size {size}")
        shape[-1 - i] = size + before + after
    return (TensorType(tuple(shape), ctx.x.dtype),)


def keras_pad_width(ctx: Ctx) -> str:
    pads = tup(ctx, "pads")
    dims = int(ctx.a("dims"))
    pairs = [(0, 0)] * (ctx.x.rank - dims) + [(pads[2 * i], pads[2 * i + 1]) for i in reversed(range(dims))]
    return repr(pairs)


def constant_value(keyword: str) -> Callable[[Ctx], dict[str, str]]:
    """The fill value argument, which both APIs reject in their non-constant modes."""
    return lambda ctx: {"value_arg": f", {keyword}={ctx.a('value')!r}" if ctx.a("mode") == "constant" else ""}


def spatial_pad_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    """ZeroPadding adds and Cropping removes (before, after) elements on each spatial axis."""
    name, sign = ("padding", 1) if "padding" in ctx.attrs else ("cropping", -1)
    amounts = tup(ctx, name)
    out = tuple(n + sign * (amounts[2 * i] + amounts[2 * i + 1]) for i, n in enumerate(spatial(ctx)))
    if min(out) < 1:
        raise ShapeError(f"cropping {amounts} leaves nothing of {spatial(ctx)}")
    return (native(ctx, out, channels(ctx)),)


def keras_pairs(name: str) -> Callable[[Ctx], dict[str, str]]:
    """Keras's ((before, after), ...) form; a bare pair for the 1D layers."""

    def derive(ctx: Ctx) -> dict[str, str]:
        amounts = tup(ctx, name)
        pairs = tuple((amounts[2 * i], amounts[2 * i + 1]) for i in range(len(amounts) // 2))
        return {"pairs": repr(pairs[0] if len(pairs) == 1 else pairs)}

    return derive


def torch_zero_pad(ctx: Ctx) -> dict[str, str]:
    """ZeroPad1d/2d take (left, right, top, bottom): last axis first."""
    amounts = tup(ctx, "padding")
    pairs = [amounts[2 * i:2 * i + 2] for i in range(len(amounts) // 2)]
    return {"torch_pads": repr(tuple(v for pair in reversed(pairs) for v in pair))}


def max_crop(ctx: Ctx) -> int:
    return min(2, (smallest_spatial(ctx) - 1) // 2)


register(
    Op(
        name="matmul",
        family="layer",
        args=(Arg(ranks=(1, 2, 3, 4)), Arg(like=matmul_rhs)),
        shape=matmul_shape,
        torch=Impl(call="torch.matmul({0}, {1})"),
        keras=Impl(call="keras.ops.matmul({0}, {1})"),
        tolerance=ACCUMULATE_TOLERANCE,
    ),
    Op(
        name="linear",
        family="layer",
        args=(Arg(ranks=(2, 3, 4)),),
        attrs=(
            Attr("out_features", IntRange(1, 8), 4),
            Attr("bias", Flag(), True),
            Attr("activation", OneOf(KERAS_ACTIVATIONS), "linear"),
        ),
        shape=linear_shape,
        torch=Impl(
            module="torch.nn.Linear({in_features}, {out_features}, bias={bias})",
            derive=lambda ctx: {"in_features": repr(ctx.x.shape[-1])},
        ),
        keras=Impl(call="keras.layers.Dense({out_features}, use_bias={bias}, activation={activation}, "
                   "name={name})({0})"),
        tolerance=ACCUMULATE_TOLERANCE,
        torch_attrs=("out_features", "bias"),
    ),
    conv(1),
    conv(2),
    depthwise_conv2d(),
    conv_transpose(1),
    conv_transpose(2),
    pool("max", 1),
    pool("max", 2),
    pool("avg", 1),
    pool("avg", 2),
    global_pool("avg"),
    global_pool("max"),
    Op(
        name="batch_norm",
        family="layer",
        args=(Arg(ranks=(2, 3, 4)),),
        attrs=(
            Attr("eps", OneOf(EPSILONS), 1e-5),
            Attr("affine", Flag(), True),
            Attr("track_running_stats", Flag(), True),
            Attr("axis", Axis(skip_batch=True), 1),
            Attr("center", Flag(), True),
            Attr("scale", Flag(), True),
        ),
        shape=batch_norm_shape,
        torch=Impl(module=batch_norm_module, derive=lambda ctx: {"num_features": repr(channels(ctx))}),
        keras=Impl(call="keras.layers.BatchNormalization(axis={axis}, epsilon={eps}, center={center}, "
                   "scale={scale}, name={name})({0})"),
        tolerance=NORM_TOLERANCE,
        torch_attrs=("eps", "affine", "track_running_stats"),
        keras_attrs=("axis", "eps", "center", "scale"),
    ),
    Op(
        name="layer_norm",
        family="layer",
        args=(Arg(ranks=(2, 3, 4)),),
        attrs=(
            Attr("dims", IntRange(1, lambda ctx: ctx.x.rank), 1),
            Attr("eps", OneOf(EPSILONS), 1e-5),
            Attr("affine", Flag(), True),
            Attr("bias", Flag(), True),
            Attr("center", Flag(), True),
            Attr("scale", Flag(), True),
        ),
        shape=same,
        torch=Impl(
            module="torch.nn.LayerNorm({normalized_shape}, eps={eps}, elementwise_affine={affine}, bias={bias})",
            derive=lambda ctx: {"normalized_shape": normalized_shape(ctx)},
        ),
        keras=Impl(
            call="keras.layers.LayerNormalization(axis={axes}, epsilon={eps}, center={center}, scale={scale}, "
            "name={name})({0})",
            derive=lambda ctx: {"axes": trailing_axes(ctx)},
        ),
        tolerance=NORM_TOLERANCE,
        torch_attrs=("dims", "eps", "affine", "bias"),
        keras_attrs=("dims", "eps", "center", "scale"),
    ),
    Op(
        name="rms_norm",
        family="layer",
        args=(Arg(ranks=(2, 3, 4)),),
        attrs=(
            Attr("dims", IntRange(1, lambda ctx: ctx.x.rank - 1), 1),
            Attr("eps", OneOf(EPSILONS), 1e-5),
            Attr("affine", Flag(), True),
        ),
        shape=same,
        torch=Impl(
            module="torch.nn.RMSNorm({normalized_shape}, eps={eps}, elementwise_affine={affine})",
            derive=lambda ctx: {"normalized_shape": normalized_shape(ctx)},
        ),
        keras=Impl(
            call="keras.layers.RMSNormalization(axis={axes}, epsilon={eps}, name={name})({0})",
            derive=lambda ctx: {"axes": trailing_axes(ctx)},
        ),
        tolerance=NORM_TOLERANCE,
        keras_attrs=("dims", "eps"),
    ),
    Op(
        name="upsample",
        family="layer",
        args=(Arg(ranks=(3, 4)),),
        attrs=(
            Attr("scale", IntTuple(lambda ctx: ctx.x.rank - 2, 1, 3), (2, 2)),
            Attr("mode", Choice(upsample_modes), "nearest"),
            Attr("align_corners", Choice(align_corners_options), False),
        ),
        shape=upsample_shape,
        torch=Impl(
            call="torch.nn.functional.interpolate({0}, scale_factor={scale_factor}, mode={mode}, "
            "align_corners={align})",
            derive=lambda ctx: {"scale_factor": repr(tuple(float(s) for s in tup(ctx, "scale"))),
                                **align_corners_arg(ctx)},
        ),
        keras=Impl(call=upsample_keras, derive=lambda ctx: {"factor": repr(tup(ctx, "scale")[0])}),
        keras_attrs=("scale", "mode"),
    ),
    Op(
        name="resize",
        family="layer",
        args=(Arg(ranks=(4,)),),
        attrs=(
            Attr("size", IntTuple(2, 1, 12), (4, 4)),
            Attr(
                "mode",
                PerFrontend(torch=OneOf(("nearest", "nearest-exact", "bilinear", "bicubic", "area")),
                            keras=OneOf(("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area"))),
                "bilinear",
            ),
            Attr("align_corners", Choice(align_corners_options), False),
            Attr("antialias", Choice(antialias_options), False),
            Attr("crop_to_aspect_ratio", Flag(), False),
        ),
        shape=resize_shape,
        torch=Impl(
            call="torch.nn.functional.interpolate({0}, size={size}, mode={mode}, align_corners={align}, "
            "antialias={antialias})",
            derive=align_corners_arg,
        ),
        keras=Impl(
            call="keras.layers.Resizing({height}, {width}, interpolation={mode}, "
            "crop_to_aspect_ratio={crop_to_aspect_ratio}, antialias={antialias}, name={name})({0})",
            derive=lambda ctx: {"height": repr(tup(ctx, "size")[0]), "width": repr(tup(ctx, "size")[1])},
        ),
        torch_attrs=("size", "mode", "align_corners", "antialias"),
        keras_attrs=("size", "mode", "antialias", "crop_to_aspect_ratio"),
    ),
    Op(
        name="pad",
        family="layer",
        args=(Arg(ranks=(1, 2, 3, 4)),),
        attrs=(
            Attr(
                "mode",
                PerFrontend(torch=OneOf(("constant", "reflect", "replicate", "circular")),
                            keras=OneOf(("constant", "reflect", "symmetric"))),
                "constant",
            ),
            Attr("dims", IntRange(lambda ctx: pad_dims_bounds(ctx)[0], lambda ctx: pad_dims_bounds(ctx)[1]), 1),
            Attr("pads", IntTuple(lambda ctx: 2 * int(ctx.a("dims")), min_pad, max_pad), (1, 1)),
            Attr("value", Choice(lambda ctx: (0.0, 0.5, -1.0) if ctx.a("mode") == "constant" else (0.0,)), 0.0),
        ),
        shape=pad_shape,
        torch=Impl(call="torch.nn.functional.pad({0}, {pads}, mode={mode}{value_arg})",
                   derive=constant_value("value")),
        keras=Impl(call="keras.ops.pad({0}, {pad_width}, mode={mode}{value_arg})",
                   derive=lambda ctx: {"pad_width": keras_pad_width(ctx), **constant_value("constant_values")(ctx)}),
    ),
    Op(
        name="zero_padding",
        family="layer",
        args=(Arg(ranks=(3, 4)),),
        attrs=(Attr("padding", IntTuple(lambda ctx: 2 * (ctx.x.rank - 2), 0, 2), (1, 1)),),
        shape=spatial_pad_shape,
        torch=Impl(module=lambda ctx: f"torch.nn.ZeroPad{ctx.x.rank - 2}d({{torch_pads}})", derive=torch_zero_pad),
        keras=Impl(call=lambda ctx: f"keras.layers.ZeroPadding{ctx.x.rank - 2}D({{pairs}}, name={{name}})({{0}})",
                   derive=keras_pairs("padding")),
    ),
    Op(
        name="cropping",
        family="layer",
        args=(Arg(ranks=(3, 4)),),
        attrs=(Attr("cropping", IntTuple(lambda ctx: 2 * (ctx.x.rank - 2), 0, max_crop), (1, 1)),),
        shape=spatial_pad_shape,
        keras=Impl(call=lambda ctx: f"keras.layers.Cropping{ctx.x.rank - 2}D({{pairs}}, name={{name}})({{0}})",
                   derive=keras_pairs("cropping")),
    ),
)
