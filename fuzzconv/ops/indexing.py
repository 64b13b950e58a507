"""Indexing and rearranging: embedding lookups, gathers with constant indices, top-k and sort,
triangular masks, narrow, chunk, stack and einsum.

Index tensors are built inside the model from attributes (a literal list, or a seeded numpy
draw for a whole index tensor), so every index is valid and the case file stays small.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from fuzzconv.case import AttrValue, TensorType
from fuzzconv.ops import register
from fuzzconv.ops.spec import (
    FLOATS,
    INTS,
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
    KnownIssue,
    OneOf,
    Op,
    PerFrontend,
    ShapeError,
    broadcast,
    norm_axis,
    same_as_first,
    tup,
)

ANY_DTYPES = FLOATS + INTS + ("bool",)
NUMERIC = FLOATS + INTS
ACCUMULATE_TOLERANCE = {"float32": 1e-3}


def axis_size(ctx: Ctx) -> int:
    return ctx.x.shape[int(ctx.a("axis"))]


def with_axis(shape: tuple[int, ...], axis: int, size: int) -> tuple[int, ...]:
    out = list(shape)
    out[axis] = size
    return tuple(out)




# --- embedding -----------------------------------------------------------------------------


def embedding_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    return (TensorType((*ctx.x.shape, int(ctx.a("embedding_dim"))), "float32"),)


def padding_idx_options(ctx: Ctx) -> tuple[AttrValue, ...]:
    rows = int(ctx.a("num_embeddings"))
    return ("none", 0, rows - 1, -1)


# --- gathers with constant indices ---------------------------------------------------------


@dataclass(frozen=True)
class IndexShape(Domain):
    """The shape of a gather's index tensor: `count` entries along the axis; elsewhere the
    input's size, or (torch.gather) anything up to it, or (broadcasting) 1."""

    smaller: bool = False  # torch.gather: index.size(d) <= input.size(d) off the axis
    ones: bool = False  # take_along_axis: off-axis sizes broadcast, so 1 is allowed

    def _ok(self, value: int, size: int) -> bool:
        return value == size or (self.smaller and 1 <= value <= size) or (self.ones and value == 1)

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
        dims = []
        for i, size in enumerate(ctx.x.shape):
            if i == axis:
                dims.append(chooser.integer(1, 6))
            elif self.smaller and chooser.boolean(0.3):
                dims.append(chooser.integer(1, size))
            elif self.ones and chooser.boolean(0.3):
                dims.append(1)
            else:
                dims.append(size)
        return tuple(dims)

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
        wanted = f"an index shape for {ctx.x.shape} with 1..6 entries on axis {axis}"
        if not isinstance(value, tuple) or len(value) != ctx.x.rank:
            return wanted
        for i, (v, size) in enumerate(zip(value, ctx.x.shape, strict=True)):
            if not isinstance(v, int) or (i == axis and not 1 <= v <= 6) or (i != axis and not self._ok(v, size)):
                return wanted
        return None


def gather_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    """torch.gather's output has the index's shape."""
    index = tup(ctx, "index_shape")
    if len(index) != ctx.x.rank:
        raise ShapeError(f"index shape {index} has not the rank of {ctx.x.shape}")
    return (TensorType(index, ctx.x.dtype),)


def take_along_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    """take_along_axis/take_along_dim broadcast the index and the input off the axis."""
    index = tup(ctx, "index_shape")
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
    if len(index) != ctx.x.rank:
        raise ShapeError(f"index shape {index} has not the rank of {ctx.x.shape}")
    off_axis = broadcast(with_axis(ctx.x.shape, axis, 1), with_axis(index, axis, 1))
    return (TensorType(with_axis(off_axis, axis, index[axis]), ctx.x.dtype),)


def seeded_index(ctx: Ctx) -> dict[str, str]:
    """Index values 0..size-1 along the axis, drawn from a seed in the model's own source."""
    return {"index": f"np.random.default_rng({ctx.a('index_seed')}).integers(0, {axis_size(ctx)}, "
                     f"{tup(ctx, 'index_shape')!r})"}


def index_list_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
    return (TensorType(with_axis(ctx.x.shape, axis, len(tup(ctx, "indices"))), ctx.x.dtype),)


def index_lower_bound(ctx: Ctx) -> int:
    """torch.index_select takes indices 0..size-1; Keras's take also counts from the end."""
    return 0 if ctx.frontend == "torch" else -axis_size(ctx)


# --- top-k, sort ---------------------------------------------------------------------------


def topk_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
    k = int(ctx.a("k"))
    if not 1 <= k <= ctx.x.shape[axis]:
        raise ShapeError(f"k={k} is not in 1..{ctx.x.shape[axis]}")
    return (TensorType(with_axis(ctx.x.shape, axis, k), ctx.x.dtype),)


# Keras's top_k works on the last axis only
LAST_AXIS = PerFrontend(torch=Axis(), keras=OneOf((-1,)))


# --- triangles -----------------------------------------------------------------------------


def band_limit(ctx: Ctx, axis: int) -> int:
    """How far a diagonal may lie off the main one: TensorFlow's MatrixBandPart (Keras's tril
    and triu) rejects a band wider than the matrix (tril: columns, triu: rows); torch does not."""
    return 3 if ctx.frontend == "torch" else min(3, ctx.x.shape[axis])


# --- narrow, chunk, stack ------------------------------------------------------------------


def narrow_start(ctx: Ctx) -> int:
    return norm_axis(int(ctx.a("start")), axis_size(ctx))


def narrow_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
    start, length = narrow_start(ctx), int(ctx.a("length"))
    if not 1 <= length <= ctx.x.shape[axis] - start:
        raise ShapeError(f"length {length} from {start} does not fit in {ctx.x.shape[axis]}")
    return (TensorType(with_axis(ctx.x.shape, axis, length), ctx.x.dtype),)


def keras_slice(ctx: Ctx) -> dict[str, str]:
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
    starts = with_axis((0,) * ctx.x.rank, axis, narrow_start(ctx))
    return {"starts": repr(list(starts)), "sizes": repr(list(with_axis(ctx.x.shape, axis, int(ctx.a("length")))))}


def chunk_sizes(ctx: Ctx) -> list[int]:
    """torch.chunk: pieces of ceil(n / chunks), the last one smaller; maybe fewer than asked."""
    n, chunks = axis_size(ctx), int(ctx.a("chunks"))
    size = math.ceil(n / chunks)
    return [min(size, n - start) for start in range(0, n, size)]


def chunk_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    axis = norm_axis(int(ctx.a("axis")), ctx.x.rank)
    sizes = chunk_sizes(ctx)
    if len(sizes) < 2:
        raise ShapeError(f"{ctx.a('chunks')} chunks of size {ctx.x.shape[axis]} leave one piece")
    return tuple(TensorType(with_axis(ctx.x.shape, axis, s), ctx.x.dtype) for s in sizes)


def split_points(ctx: Ctx) -> dict[str, str]:
    sizes = chunk_sizes(ctx)
    return {"points": repr([sum(sizes[:i]) for i in range(1, len(sizes))])}


def splittable_axes(ctx: Ctx) -> tuple[int, ...]:
    return tuple(a for a in range(-ctx.x.rank, ctx.x.rank) if ctx.x.shape[a] >= 2)


def stack_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    a, b = ctx.ins
    if a != b:
        raise ShapeError(f"stack needs equal operands, got {a} and {b}")
    axis = norm_axis(int(ctx.a("axis")), a.rank + 1)
    return (TensorType((*a.shape[:axis], 2, *a.shape[axis:]), a.dtype),)


# --- einsum --------------------------------------------------------------------------------

EQUATIONS = (
    "i,j->ij",
    "i,i->",
    "ij,j->i",
    "ij,jk->ik",
    "ij,kj->ik",
    "ij,ij->i",
    "ij,jk->ki",
    "bi,bi->b",
    "bij,bjk->bik",
    "bij,bkj->bik",
    "bid,bjd->bij",
    "bij,bij->bj",
    "bik,kj->bij",
    "bhid,bhjd->bhij",
    "bhij,bhjd->bhid",
    "bchw,bchw->bc",
    "...ij,...jk->...ik",
    "...i,...i->...",
)


def einsum_rhs(ins: tuple[TensorType, ...], chooser: Chooser) -> TensorType:
    """A second operand in one of the layouts the equations above pair with the first."""
    a = ins[0]
    k = chooser.integer(1, 6)
    options = [
        a.shape,  # elementwise products, attention scores
        (*a.shape[:-2], a.shape[-1], k) if a.rank >= 2 else (k,),  # matmul
        (*a.shape[:-2], k, a.shape[-1]) if a.rank >= 2 else (a.shape[-1],),  # x @ y.T
        (a.shape[-1],),  # vector
        (a.shape[-1], k),  # shared right operand
        (k,),  # outer product
    ]
    if a.rank >= 3 and chooser.boolean(0.3):  # broadcast batch axes for the ellipsis forms
        options.append((1, *a.shape[1:-1], k) if chooser.boolean(0.5) else a.shape[1:])
    return TensorType(tuple(chooser.choice(options)), a.dtype)


def einsum_output(equation: str, shapes: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    """numpy/torch einsum: letters bind sizes; `...` covers the leading axes and broadcasts."""
    match = re.fullmatch(r"([a-z.,]+)->([a-z.]*)", equation)
    if not match:
        raise ShapeError(f"cannot parse einsum equation {equation!r}")
    terms = match.group(1).split(",")
    if len(terms) != len(shapes):
        raise ShapeError(f"{equation!r} takes {len(terms)} operands")
    sizes: dict[str, int] = {}
    ellipsis: tuple[int, ...] = ()
    for term, shape in zip(terms, shapes, strict=True):
        letters = term.replace("...", "")
        if "..." in term:
            if len(shape) < len(letters):
                raise ShapeError(f"{term!r} needs rank {len(letters)} or more, got {shape}")
            lead = len(shape) - len(letters)
            ellipsis = broadcast(ellipsis, shape[:lead])
            shape = shape[lead:]
        elif len(shape) != len(letters):
            raise ShapeError(f"{term!r} needs rank {len(letters)}, got {shape}")
        for letter, size in zip(letters, shape, strict=True):
            if sizes.setdefault(letter, size) != size:
                raise ShapeError(f"{letter!r} is {sizes[letter]} and {size} in {equation!r}")
    out = match.group(2)
    return (*(ellipsis if "..." in out else ()), *(sizes[c] for c in out.replace("...", "")))


def fitting_equations(ctx: Ctx) -> tuple[str, ...]:
    fits = []
    for equation in EQUATIONS:
        try:
            einsum_output(equation, tuple(t.shape for t in ctx.ins))
        except ShapeError:
            continue
        fits.append(equation)
    return tuple(fits)


def einsum_shape(ctx: Ctx) -> tuple[TensorType, ...]:
    equation = str(ctx.a("equation"))
    if equation not in EQUATIONS:
        raise ShapeError(f"unknown equation {equation!r}")
    return (TensorType(einsum_output(equation, tuple(t.shape for t in ctx.ins)), ctx.x.dtype),)


register(
    Op(
        name="embedding",
        family="indexing",
        args=(Arg(ranks=(1, 2, 3), dtypes=INTS, domain="index"),),
        attrs=(
            Attr("num_embeddings", IntRange(5, 12), 8),
            Attr("embedding_dim", IntRange(1, 8), 4),
            Attr("padding_idx", Choice(padding_idx_options), "none"),
            Attr("mask_zero", Flag(), False),
        ),
        shape=embedding_shape,
        torch=Impl(module="torch.nn.Embedding({num_embeddings}, {embedding_dim}, padding_idx={pad})",
                   derive=lambda ctx: {"pad": "None" if ctx.a("padding_idx") == "none" else repr(ctx.a("padding_idx"))}),
        keras=Impl(call="keras.layers.Embedding({num_embeddings}, {embedding_dim}, mask_zero={mask_zero}, "
                   "name={name})({0})"),
        torch_attrs=("num_embeddings", "embedding_dim", "padding_idx"),
        keras_attrs=("num_embeddings", "embedding_dim", "mask_zero"),
    ),
    Op(
        name="gather",
        family="indexing",
        args=(Arg(ranks=(1, 2, 3, 4), dtypes=ANY_DTYPES),),
        attrs=(
            Attr("axis", Axis(), 0),
            Attr("index_shape", IndexShape(smaller=True), (1,)),
            Attr("index_seed", IntRange(0, 9999), 0),
        ),
        shape=gather_shape,
        torch=Impl(call="torch.gather({0}, {axis}, torch.from_numpy({index}))", derive=seeded_index),
    ),
    Op(
        name="take_along_dim",
        family="indexing",
        args=(Arg(ranks=(1, 2, 3, 4), dtypes=ANY_DTYPES),),
        attrs=(
            Attr("axis", Axis(), 0),
            Attr("index_shape", IndexShape(ones=True), (1,)),
            Attr("index_seed", IntRange(0, 9999), 0),
        ),
        shape=take_along_shape,
        torch=Impl(call="torch.take_along_dim({0}, torch.from_numpy({index}), dim={axis})", derive=seeded_index),
        keras=Impl(call="keras.ops.take_along_axis({0}, {index}, axis={axis})", derive=seeded_index),
        known_issues=(KnownIssue("torch-script", "the TorchScript exporter has no symbolic for aten::take_along_dim"),),
    ),
    Op(
        name="index_select",
        family="indexing",
        args=(Arg(ranks=(1, 2, 3, 4), dtypes=ANY_DTYPES),),
        attrs=(
            Attr("axis", Axis(), 0),
            Attr("count", IntRange(1, 6), 2),
            Attr("indices", IntTuple(lambda ctx: int(ctx.a("count")), index_lower_bound,
                                     lambda ctx: axis_size(ctx) - 1), (0, 0)),
        ),
        shape=index_list_shape,
        torch=Impl(call="torch.index_select({0}, {axis}, torch.tensor({list}))",
                   derive=lambda ctx: {"list": repr(list(tup(ctx, "indices")))}),
        keras=Impl(call="keras.ops.take({0}, np.array({list}), axis={axis})",
                   derive=lambda ctx: {"list": repr(list(tup(ctx, "indices")))}),
    ),
    Op(
        name="topk",
        family="indexing",
        args=(Arg(ranks=(1, 2, 3, 4), dtypes=NUMERIC),),
        attrs=(
            Attr("axis", LAST_AXIS, -1),
            Attr("k", IntRange(1, axis_size), 1),
            Attr("largest", Flag(), True),
        ),
        shape=topk_shape,
        # the values only: with ties, which index is reported is up to the implementation
        torch=Impl(call="torch.topk({0}, {k}, dim={axis}, largest={largest}, sorted=True)[0]"),
        keras=Impl(call="keras.ops.top_k({0}, {k}, sorted=True)[0]"),
        torch_attrs=("axis", "k", "largest"),
        keras_attrs=("axis", "k"),
    ),
    Op(
        name="sort",
        family="indexing",
        args=(Arg(ranks=(1, 2, 3, 4), dtypes=NUMERIC),),
        attrs=(Attr("axis", Axis(), -1), Attr("descending", Flag(), False), Attr("stable", Flag(), False)),
        shape=lambda ctx: (ctx.x,),
        # stable=False is spelled by leaving it out, as most models do: passing `stable` at all
        # selects the aten::sort.stable overload, which the TorchScript exporter rejects
        torch=Impl(call=lambda ctx: "torch.sort({0}, dim={axis}, descending={descending}"
                   + (", stable=True" if ctx.a("stable") else "") + ")[0]"),
        keras=Impl(call="keras.ops.sort({0}, axis={axis})"),
        keras_attrs=("axis",),
        known_issues=(KnownIssue("torch-script", "with stable=True the exporter fails: 'Out parameter is not "
                                 "supported' for Sort"),
                      KnownIssue("torch-dynamo", "with stable=True onnxscript has no ONNX function for "
                                 "aten.sort.stable (DispatchError)")),
    ),
    Op(
        name="tril",
        family="indexing",
        args=(Arg(ranks=(2, 3, 4), dtypes=NUMERIC),),
        attrs=(Attr("diagonal", IntRange(-3, lambda ctx: band_limit(ctx, -1)), 0),),
        shape=lambda ctx: (ctx.x,),
        torch=Impl(call="torch.tril({0}, diagonal={diagonal})"),
        keras=Impl(call="keras.ops.tril({0}, k={diagonal})"),
    ),
    Op(
        name="triu",
        family="indexing",
        args=(Arg(ranks=(2, 3, 4), dtypes=NUMERIC),),
        attrs=(Attr("diagonal", IntRange(lambda ctx: -band_limit(ctx, -2), 3), 0),),
        shape=lambda ctx: (ctx.x,),
        torch=Impl(call="torch.triu({0}, diagonal={diagonal})"),
        keras=Impl(call="keras.ops.triu({0}, k={diagonal})"),
    ),
    Op(
        name="narrow",
        family="indexing",
        args=(Arg(ranks=(1, 2, 3, 4), dtypes=ANY_DTYPES),),
        attrs=(
            Attr("axis", Axis(), 0),
            # torch counts a negative start from the end; Keras's slice takes offsets only
            Attr("start", IntRange(lambda ctx: -axis_size(ctx) if ctx.frontend == "torch" else 0,
                                   lambda ctx: axis_size(ctx) - 1), 0),
            Attr("length", IntRange(1, lambda ctx: axis_size(ctx) - narrow_start(ctx)), 1),
        ),
        shape=narrow_shape,
        torch=Impl(call="torch.narrow({0}, {axis}, {start}, {length})"),
        keras=Impl(call="keras.ops.slice({0}, {starts}, {sizes})", derive=keras_slice),
    ),
    Op(
        name="chunk",
        family="indexing",
        args=(Arg(ranks=(1, 2, 3, 4), dtypes=ANY_DTYPES),),
        attrs=(Attr("axis", Choice(splittable_axes), 0), Attr("chunks", IntRange(2, 3), 2)),
        shape=chunk_shape,
        torch=Impl(call="torch.chunk({0}, {chunks}, dim={axis})"),
        keras=Impl(call="keras.ops.split({0}, {points}, axis={axis})", derive=split_points),
    ),
    Op(
        name="stack",
        family="indexing",
        args=(Arg(ranks=(1, 2, 3), dtypes=ANY_DTYPES), Arg(ranks=(1, 2, 3), dtypes=ANY_DTYPES, like=same_as_first)),
        attrs=(Attr("axis", Axis(extra=1), 0),),
        shape=stack_shape,
        torch=Impl(call="torch.stack(({0}, {1}), dim={axis})"),
        keras=Impl(call="keras.ops.stack([{0}, {1}], axis={axis})"),
    ),
    Op(
        name="einsum",
        family="indexing",
        args=(Arg(ranks=(1, 2, 3, 4)), Arg(ranks=(1, 2, 3, 4), like=einsum_rhs)),
        attrs=(Attr("equation", Choice(fitting_equations), "ij,jk->ik"),),
        shape=einsum_shape,
        torch=Impl(call="torch.einsum({equation}, {0}, {1})"),
        keras=Impl(call="keras.ops.einsum({equation}, {0}, {1})"),
        tolerance=ACCUMULATE_TOLERANCE,
    ),
)
