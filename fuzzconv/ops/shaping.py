"""Shape manipulation: reshape, flatten, transposes, (un)squeeze, concat, split, slicing, tiling."""

from __future__ import annotations

import math
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
    Impl,
    IntRange,
    IntTuple,
    Op,
    Permutation,
    ShapeError,
    broadcast,
    norm_axis,
    same,
)

ANY_DTYPES = FLOATS + INTS + ("bool",)
ANY_RANK = (1, 2, 3, 4)


def prime_factors(n: int) -> list[int]:
    factors, p = [], 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors + ([n] if n > 1 else [])


@dataclass(frozen=True)
class ReshapeTarget(Domain):
    """A shape holding as many elements as argument 0, one entry possibly -1 (inferred);
    with `keep_batch` the shape of everything after the batch axis (Keras's Reshape)."""

    keep_batch: bool = False
    max_rank: int = 4

    def _count(self, ctx: Ctx) -> int:
        count = math.prod(ctx.x.shape)
        return count // ctx.x.shape[0] if self.keep_batch else count

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        dims = [1] * chooser.integer(1, self.max_rank)
        for factor in prime_factors(self._count(ctx)):
            dims[chooser.integer(0, len(dims) - 1)] *= factor
        if chooser.boolean(0.3):
            dims[chooser.integer(0, len(dims) - 1)] = -1
        return tuple(dims)

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        count = self._count(ctx)
        wanted = f"1..{self.max_rank} sizes holding {count} elements, at most one of them -1"
        if not isinstance(value, tuple) or not 1 <= len(value) <= self.max_rank:
            return wanted
        known = [v for v in value if v != -1]
        if any(v < 1 for v in known) or len(value) - len(known) > 1:
            return wanted
        product = math.prod(known)
        if count % product or (len(known) == len(value) and product != count):
            return wanted
        return None


def resolved(target: tuple[int, ...], count: int) -> tuple[int, ...]:
    known = math.prod(v for v in target if v != -1)
    return tuple(count // known if v == -1 else v for v in target)


def reshape_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    target = ctx.a("shape")
    assert isinstance(target, tuple)
    return (TensorType(resolved(target, math.prod(ctx.x.shape)), ctx.x.dtype),)


def reshape_batch_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    target = ctx.a("shape")
    assert isinstance(target, tuple)
    batch = ctx.x.shape[0]
    return (TensorType((batch, *resolved(target, math.prod(ctx.x.shape) // batch)), ctx.x.dtype),)


def flatten_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    """torch.flatten joins start_dim..end_dim; Keras's Flatten joins everything after the batch."""
    shape = ctx.x.shape
    if ctx.frontend == "keras":
        return (TensorType((shape[0], math.prod(shape[1:])), ctx.x.dtype),)
    start = norm_axis(int(ctx.a("start_dim")), ctx.x.rank)
    end = norm_axis(int(ctx.a("end_dim")), ctx.x.rank)
    if end < start:
        raise ShapeError(f"end_dim {end} comes before start_dim {start}")
    return (TensorType((*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:]), ctx.x.dtype),)


def transpose_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    shape = list(ctx.x.shape)
    a, b = (norm_axis(int(ctx.a(n)), ctx.x.rank) for n in ("dim0", "dim1"))
    shape[a], shape[b] = shape[b], shape[a]
    return (TensorType(tuple(shape), ctx.x.dtype),)


def permute_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    perm = ctx.a("perm")
    assert isinstance(perm, tuple)
    return (TensorType(tuple(ctx.x.shape[p] for p in perm), ctx.x.dtype),)


def unsqueeze_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank + 1)
    shape = ctx.x.shape
    return (TensorType((*shape[:axis], 1, *shape[axis:]), ctx.x.dtype),)


@dataclass(frozen=True)
class SqueezeAxis(Domain):
    """Any axis for torch (squeezing one whose size is not 1 is a no-op), a size-1 axis for Keras."""

    def _axes(self, ctx: Ctx) -> list[int]:
        rank = ctx.x.rank
        return [a for a in range(-rank, rank) if ctx.frontend == "torch" or ctx.x.shape[a] == 1]

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        axes = self._axes(ctx)
        if not axes:
            raise ShapeError(f"{ctx.x.shape} has no axis of size 1 to squeeze")
        return chooser.choice(axes)

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        axes = self._axes(ctx)
        ok = isinstance(value, int) and not isinstance(value, bool) and value in axes
        return None if ok else f"one of the axes {axes}"


def squeeze_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    """torch.squeeze leaves an axis that is not 1 alone; Keras rejects it."""
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
    shape = list(ctx.x.shape)
    if shape[axis] != 1:
        if ctx.frontend == "keras":
            raise ShapeError(f"cannot squeeze axis {axis} of size {shape[axis]}")
        return (ctx.x,)
    del shape[axis]
    return (TensorType(tuple(shape), ctx.x.dtype),)


def concat_operand(ins: tuple[TensorType, ...], chooser: Chooser) -> TensorType:
    """The first operand's type, or with one axis resized (the axis to concatenate on)."""
    first = ins[0]
    if chooser.boolean(0.4):
        return first
    shape = list(first.shape)
    shape[chooser.integer(0, first.rank - 1)] = chooser.integer(1, 8)
    return TensorType(tuple(shape), first.dtype)


def concat_axis_bounds(ctx: Ctx) -> tuple[int, int]:
    """Any axis for equal shapes, the one axis where they differ, or none (an empty range)."""
    a, b = ctx.ins
    if a.rank != b.rank or a.dtype != b.dtype:
        return 0, -1
    differ = [i for i, (m, n) in enumerate(zip(a.shape, b.shape, strict=True)) if m != n]
    if len(differ) > 1:
        return 0, -1
    return (differ[0], differ[0]) if differ else (-a.rank, a.rank - 1)


def concat_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    lo, hi = concat_axis_bounds(ctx)
    axis = int(ctx.a("axis"))
    if not lo <= axis <= hi:
        raise ShapeError(f"{ctx.ins[0]} and {ctx.ins[1]} cannot be joined on axis {axis}")
    axis = norm_axis(axis, ctx.x.rank)
    shape = list(ctx.x.shape)
    shape[axis] += ctx.ins[1].shape[axis]
    return (TensorType(tuple(shape), ctx.x.dtype),)


def axis_size(ctx: Ctx) -> int:
    return ctx.x.shape[int(ctx.a("axis"))]


def split_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
    first = int(ctx.a("first"))
    parts = []
    for size in (first, ctx.x.shape[axis] - first):
        shape = list(ctx.x.shape)
        shape[axis] = size
        parts.append(TensorType(tuple(shape), ctx.x.dtype))
    return tuple(parts)


def start_index(ctx: Ctx) -> int:
    return norm_axis(int(ctx.a("start")), axis_size(ctx))


def slice_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
    shape = list(ctx.x.shape)
    window = slice(int(ctx.a("start")), int(ctx.a("stop")), int(ctx.a("step")))
    shape[axis] = len(range(*window.indices(shape[axis])))
    if shape[axis] < 1:
        raise ShapeError(f"slice {window} of size {ctx.x.shape[axis]} is empty")
    return (TensorType(tuple(shape), ctx.x.dtype),)


def subscript(ctx: Ctx) -> dict[str, str]:
    """`x[:, :, start:stop:step]`: Python slicing works on torch tensors and KerasTensors, but a
    KerasTensor rejects a bare slice (`x[0:2:1]`), so the index is always a tuple (`x[0:2:1,]`)."""
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
    window = f"{ctx.a('start')}:{ctx.a('stop')}:{ctx.a('step')}"
    return {"index": ", ".join([":"] * axis + [window]) + ("," if axis == 0 else "")}


def tile_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    reps = ctx.a("reps")
    assert isinstance(reps, tuple)
    return (TensorType(tuple(n * r for n, r in zip(ctx.x.shape, reps, strict=True)), ctx.x.dtype),)


def repeat_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
    shape = list(ctx.x.shape)
    shape[axis] *= int(ctx.a("repeats"))
    return (TensorType(tuple(shape), ctx.x.dtype),)


@dataclass(frozen=True)
class BroadcastTarget(Domain):
    """A shape argument 0 broadcasts to: its size-1 axes grown, maybe a leading axis added."""

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        grown = tuple(chooser.integer(1, 4) if n == 1 else n for n in ctx.x.shape)
        return (chooser.integer(1, 3), *grown) if chooser.boolean(0.2) else grown

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        wanted = f"a shape that {ctx.x.shape} broadcasts to, with at most one more axis"
        if not isinstance(value, tuple) or not ctx.x.rank <= len(value) <= ctx.x.rank + 1:
            return wanted
        if any(v < 1 for v in value):
            return wanted
        try:
            return None if broadcast(ctx.x.shape, value) == value else wanted
        except ShapeError:
            return wanted


def broadcast_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    target = ctx.a("shape")
    assert isinstance(target, tuple)
    return (TensorType(target, ctx.x.dtype),)


def split_rest(ctx: Ctx) -> dict[str, str]:
    return {"rest": repr(axis_size(ctx) - int(ctx.a("first")))}


def keras_permute_dims(ctx: Ctx) -> dict[str, str]:
    """Keras's Permute takes the permutation of the axes after the batch (numbered from 1)."""
    perm = ctx.a("perm")
    assert isinstance(perm, tuple)
    return {"dims": repr(perm[1:])}


def shaping(name: str, shape: Callable[[Ctx], tuple[TensorType, ...]], torch: str, keras: str,
            attrs: tuple[Attr, ...] = (), ranks: tuple[int, ...] = ANY_RANK,
            derive: Callable[[Ctx], dict[str, str]] | None = None) -> Op:
    return Op(
        name=name,
        family="shaping",
        args=(Arg(ranks=ranks, dtypes=ANY_DTYPES),),
        attrs=attrs,
        shape=shape,
        torch=Impl(call=torch, derive=derive),
        keras=Impl(call=keras, derive=derive),
    )


register(
    shaping("reshape", reshape_shape, "torch.reshape({0}, {shape})", "keras.ops.reshape({0}, {shape})",
            (Attr("shape", ReshapeTarget(), (-1,)),)),
    shaping("reshape_batch", reshape_batch_shape, "{0}.reshape({0}.size(0), *{shape})",
            "keras.layers.Reshape({shape}, name={name})({0})",
            (Attr("shape", ReshapeTarget(keep_batch=True, max_rank=3), (-1,)),)),
    Op(
        name="flatten",
        family="shaping",
        args=(Arg(ranks=(2, 3, 4), dtypes=ANY_DTYPES),),
        attrs=(
            Attr("start_dim", Axis(), 1),
            Attr("end_dim", IntRange(lambda ctx: norm_axis(int(ctx.a("start_dim")), ctx.x.rank),
                                     lambda ctx: ctx.x.rank - 1), -1),
        ),
        shape=flatten_shape,
        torch=Impl(call="torch.flatten({0}, start_dim={start_dim}, end_dim={end_dim})"),
        keras=Impl(call="keras.layers.Flatten(name={name})({0})"),
        keras_attrs=(),
    ),
    shaping("transpose", transpose_shape, "torch.transpose({0}, {dim0}, {dim1})",
            "keras.ops.swapaxes({0}, {dim0}, {dim1})",
            (Attr("dim0", Axis(), 0), Attr("dim1", Axis(), 1)), ranks=(2, 3, 4)),
    shaping("permute", permute_shape, "torch.permute({0}, {perm})", "keras.ops.transpose({0}, axes={perm})",
            (Attr("perm", Permutation(), (1, 0)),), ranks=(2, 3, 4)),
    Op(
        name="permute_layer",
        family="shaping",
        args=(Arg(ranks=(3, 4), dtypes=ANY_DTYPES),),
        attrs=(Attr("perm", Permutation(keep_batch=True), (0, 2, 1)),),
        shape=permute_shape,
        keras=Impl(call="keras.layers.Permute({dims}, name={name})({0})", derive=keras_permute_dims),
    ),
    shaping("unsqueeze", unsqueeze_shape, "torch.unsqueeze({0}, {axis})", "keras.ops.expand_dims({0}, {axis})",
            (Attr("axis", Axis(extra=1), 0),)),
    shaping("squeeze", squeeze_shape, "torch.squeeze({0}, {axis})", "keras.ops.squeeze({0}, axis={axis})",
            (Attr("axis", SqueezeAxis(), 0),), ranks=(2, 3, 4)),
    Op(
        name="concat",
        family="shaping",
        args=(Arg(ranks=ANY_RANK, dtypes=ANY_DTYPES), Arg(ranks=ANY_RANK, dtypes=ANY_DTYPES, like=concat_operand)),
        attrs=(Attr("axis", IntRange(lambda ctx: concat_axis_bounds(ctx)[0],
                                     lambda ctx: concat_axis_bounds(ctx)[1]), 0),),
        shape=concat_shape,
        torch=Impl(call="torch.cat(({0}, {1}), dim={axis})"),
        keras=Impl(call="keras.ops.concatenate([{0}, {1}], axis={axis})"),
    ),
    shaping("split", split_shape, "torch.split({0}, [{first}, {rest}], dim={axis})",
            "keras.ops.split({0}, [{first}], axis={axis})",
            (Attr("axis", Axis(), 0), Attr("first", IntRange(1, lambda ctx: axis_size(ctx) - 1), 1)),
            derive=split_rest),
    shaping("slice", slice_shape, "{0}[{index}]", "{0}[{index}]",
            (
                Attr("axis", Axis(), 0),
                Attr("start", IntRange(lambda ctx: -axis_size(ctx), lambda ctx: axis_size(ctx) - 1), 0),
                Attr("stop", IntRange(lambda ctx: start_index(ctx) + 1 - axis_size(ctx),
                                      lambda ctx: axis_size(ctx) + 1), 1),
                Attr("step", IntRange(1, 3), 1),
            ),
            derive=subscript),
    shaping("tile", tile_shape, "torch.tile({0}, {reps})", "keras.ops.tile({0}, {reps})",
            (Attr("reps", IntTuple(lambda ctx: ctx.x.rank, 1, 3), (1, 2)),)),
    shaping("repeat_interleave", repeat_shape, "torch.repeat_interleave({0}, {repeats}, dim={axis})",
            "keras.ops.repeat({0}, {repeats}, axis={axis})",
            (Attr("axis", Axis(), 0), Attr("repeats", IntRange(1, 3), 2))),
    shaping("flip", same, "torch.flip({0}, dims=({axis},))",
            "keras.ops.flip({0}, axis={axis})", (Attr("axis", Axis(), 0),)),
    shaping("roll", same, "torch.roll({0}, shifts={shift}, dims={axis})",
            "keras.ops.roll({0}, shift={shift}, axis={axis})",
            (Attr("axis", Axis(), 0), Attr("shift", IntRange(-8, 8), 1))),
    shaping("broadcast_to", broadcast_shape, "{0}.expand({shape})", "keras.ops.broadcast_to({0}, {shape})",
            (Attr("shape", BroadcastTarget(), (1,)),)),
)
