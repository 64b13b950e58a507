"""How an operator is declared: inputs, attribute domains, shape rule, implementations, tolerances.

Each operator is declared once, as one `Op`, in the module of its family. Generator tables,
`fuzzconv ops`, case validation and the registry tests all derive from these declarations.

Implementations are source templates, because a model is materialized through generated
Python source (the same source that ends up in `repro.py`). A template is formatted with
`{0}`, `{1}`, ... for the argument variables, `{name}` for the node's name (quoted), and one
field per attribute holding the attribute's Python literal; `derive` may add more fields
(already rendered as code). Attributes are validated against their domains before any
template is formatted, so nothing from a case file reaches the source unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from fuzzconv.case import AttrValue, TensorType

T = TypeVar("T")

FLOATS = ("float32",)
WIDE_FLOATS = ("float32", "float64", "float16")  # what a float32 argument may also be, see Op.wide
INTS = ("int64", "int32")
FRONTENDS = ("torch", "keras")

# Value domains of tensors. A graph input is drawn from the domain its consumer asks for; an
# op declares the range of what it produces so that chains stay inside domains.
VALUE_DOMAINS = ("any", "nonneg", "positive", "unit", "index")
DOMAIN_IMPLIES = {
    "any": {"any"},
    "nonneg": {"any", "nonneg"},
    "positive": {"any", "nonneg", "positive"},
    "unit": {"any", "nonneg", "positive", "unit"},
    "index": {"index"},
}

DEFAULT_TOLERANCE = {
    "float16": 1e-2,
    "float32": 1e-4,
    "float64": 1e-7,
    "int32": 0.0,
    "int64": 0.0,
    "bool": 0.0,
}


class ShapeError(ValueError):
    """An operator cannot take these inputs and attributes (the shape rule says why)."""


class Chooser(Protocol):
    """The choices a generator makes. Random and Hypothesis-driven implementations exist."""

    def integer(self, lo: int, hi: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...

    def boolean(self, p_true: float = 0.5) -> bool: ...


@dataclass(frozen=True)
class Ctx:
    """What an op's shape rule, domains and templates see."""

    attrs: dict[str, AttrValue]
    ins: tuple[TensorType, ...]
    frontend: str

    @property
    def x(self) -> TensorType:
        return self.ins[0]

    def a(self, name: str) -> Any:
        return self.attrs[name]

    @property
    def channel_axis(self) -> int:
        """Channels in the frontend's native layout: torch NCHW, Keras NHWC."""
        return 1 if self.frontend == "torch" else self.x.rank - 1

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        rank = self.x.rank
        return tuple(range(2, rank)) if self.frontend == "torch" else tuple(range(1, rank - 1))


Bound = int | Callable[[Ctx], int]


def _resolve(bound: Bound, ctx: Ctx) -> int:
    return bound(ctx) if callable(bound) else bound


class Domain:
    """The values one attribute may take, possibly depending on the inputs."""

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        raise NotImplementedError

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        """None when `value` is in the domain, else a sentence saying what is allowed."""
        raise NotImplementedError


@dataclass(frozen=True)
class IntRange(Domain):
    lo: Bound
    hi: Bound

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        lo, hi = _resolve(self.lo, ctx), _resolve(self.hi, ctx)
        if hi < lo:
            raise ShapeError(f"empty integer range {lo}..{hi}")
        return chooser.integer(lo, hi)

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        lo, hi = _resolve(self.lo, ctx), _resolve(self.hi, ctx)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            return f"an integer in {lo}..{hi}"
        return None


@dataclass(frozen=True)
class FloatRange(Domain):
    lo: float
    hi: float

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        steps = 100
        return round(self.lo + (self.hi - self.lo) * chooser.integer(0, steps) / steps, 4)

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"a number in {self.lo}..{self.hi}"
        return None if self.lo <= value <= self.hi else f"a number in {self.lo}..{self.hi}"


@dataclass(frozen=True)
class OneOf(Domain):
    values: tuple[AttrValue, ...]

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        return chooser.choice(self.values)

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        same_type = [v for v in self.values if type(v) is type(value) and v == value]
        return None if same_type else f"one of {list(self.values)}"


def Flag() -> OneOf:  # noqa: N802 - reads as a domain constructor
    return OneOf((False, True))


@dataclass(frozen=True)
class Axis(Domain):
    """An axis of argument `arg`, negative or not; `extra` admits rank+extra axes (unsqueeze)."""

    arg: int = 0
    extra: int = 0
    skip_batch: bool = False

    def _range(self, ctx: Ctx) -> tuple[int, int]:
        rank = ctx.ins[self.arg].rank + self.extra
        return (1 if self.skip_batch else -rank), rank - 1

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        lo, hi = self._range(ctx)
        if hi < lo:
            raise ShapeError("no axis to choose")
        return chooser.integer(lo, hi)

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        lo, hi = self._range(ctx)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            return f"an axis in {lo}..{hi}"
        return None


@dataclass(frozen=True)
class Permutation(Domain):
    """A permutation of argument `arg`'s axes; `keep_batch` fixes axis 0 (Keras Permute)."""

    arg: int = 0
    keep_batch: bool = False

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        axes = list(range(1 if self.keep_batch else 0, ctx.ins[self.arg].rank))
        perm: list[int] = []
        while axes:
            perm.append(axes.pop(chooser.integer(0, len(axes) - 1)))
        return tuple(([0] if self.keep_batch else []) + perm)

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        rank = ctx.ins[self.arg].rank
        if not isinstance(value, tuple) or sorted(value) != list(range(rank)):
            return f"a permutation of 0..{rank - 1}"
        if self.keep_batch and value[0] != 0:
            return "a permutation that keeps axis 0 first"
        return None


@dataclass(frozen=True)
class IntTuple(Domain):
    """A tuple of `length` integers, each in lo..hi (length and bounds may depend on inputs)."""

    length: Bound
    lo: Bound
    hi: Bound

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        lo, hi = _resolve(self.lo, ctx), _resolve(self.hi, ctx)
        return tuple(chooser.integer(lo, hi) for _ in range(_resolve(self.length, ctx)))

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        length, lo, hi = (_resolve(b, ctx) for b in (self.length, self.lo, self.hi))
        if not isinstance(value, tuple) or len(value) != length or not all(lo <= v <= hi for v in value):
            return f"{length} integers in {lo}..{hi}"
        return None


@dataclass(frozen=True)
class Choice(Domain):
    """One of the values `options(ctx)` lists, e.g. the divisors of the input channels."""

    options: Callable[[Ctx], tuple[AttrValue, ...]]

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        options = self.options(ctx)
        if not options:
            raise ShapeError("no admissible value for this attribute")
        return chooser.choice(options)

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        options = self.options(ctx)
        try:  # the first equal option, found at C speed (adaptive pools list thousands)
            first = options.index(value)
        except ValueError:
            return f"one of {list(options)}"
        if type(options[first]) is type(value):
            return None
        matches = [v for v in options if type(v) is type(value) and v == value]  # True == 1, 1.0 == 1
        return None if matches else f"one of {list(options)}"


@dataclass(frozen=True)
class AnyOf(Domain):
    """A value of any of several domains (torch's conv padding: a string or a tuple)."""

    options: tuple[Domain, ...]

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        return chooser.choice(self.options).draw(chooser, ctx)

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        problems = [d.problem(value, ctx) for d in self.options]
        return None if None in problems else " or ".join(str(p) for p in problems)


@dataclass(frozen=True)
class PerFrontend(Domain):
    """An attribute whose values are spelled differently by the torch and Keras APIs."""

    torch: Domain
    keras: Domain

    def _for(self, ctx: Ctx) -> Domain:
        return self.torch if ctx.frontend == "torch" else self.keras

    def draw(self, chooser: Chooser, ctx: Ctx) -> AttrValue:
        return self._for(ctx).draw(chooser, ctx)

    def problem(self, value: AttrValue, ctx: Ctx) -> str | None:
        return self._for(ctx).problem(value, ctx)


@dataclass(frozen=True)
class Attr:
    name: str
    domain: Domain
    default: AttrValue


@dataclass(frozen=True)
class Arg:
    """One tensor argument.

    `like`, when given, computes the exact type this argument must have from the earlier
    arguments (a broadcastable operand, a matmul right-hand side); otherwise the generator
    may pass any tensor of an allowed rank and dtype.
    """

    ranks: tuple[int, ...] = (1, 2, 3, 4)
    dtypes: tuple[str, ...] = FLOATS
    domain: str = "any"
    like: Callable[[tuple[TensorType, ...], Chooser], TensorType] | None = None
    min_dims: tuple[int, ...] = ()


@dataclass(frozen=True)
class Impl:
    """One frontend's implementation as source templates.

    `call` is an expression; `module` (torch only) constructs an nn.Module in `__init__`,
    which `forward` then calls with the arguments.
    """

    call: str | Callable[[Ctx], str] = ""
    module: str | Callable[[Ctx], str] = ""
    derive: Callable[[Ctx], dict[str, str]] | None = None


@dataclass(frozen=True)
class KnownIssue:
    converter: str
    reason: str
    link: str = ""


@dataclass(frozen=True)
class Op:
    name: str
    family: str
    args: tuple[Arg, ...]
    shape: Callable[[Ctx], tuple[TensorType, ...]]
    torch: Impl | None = None
    keras: Impl | None = None
    attrs: tuple[Attr, ...] = ()
    tolerance: dict[str, float] = field(default_factory=dict)
    out_range: str = "any"
    nondeterministic: bool = False
    known_issues: tuple[KnownIssue, ...] = ()
    torch_attrs: tuple[str, ...] | None = None  # attrs used by torch, None = all
    keras_attrs: tuple[str, ...] | None = None  # attrs used by keras, None = all
    # Frontends in which the float32 arguments may also be float64 or float16 (ops/dtypes.py
    # narrows this per operator), and whether the Keras implementation is a layer that computes
    # in float32 whatever float it is given (the converter then has to insert the cast).
    wide: tuple[str, ...] = FRONTENDS
    keras_autocast: bool = False
    unsupported: tuple[tuple[str, str], ...] = ()  # (frontend, dtype) an argument may not be there
    _dtype_memo: dict[tuple[int, str], tuple[str, ...]] = field(default_factory=dict, init=False, repr=False,
                                                                compare=False)

    @property
    def frontends(self) -> tuple[str, ...]:
        return tuple(f for f in FRONTENDS if self.impl(f) is not None)

    def impl(self, frontend: str) -> Impl | None:
        return self.torch if frontend == "torch" else self.keras

    def attrs_for(self, frontend: str) -> tuple[Attr, ...]:
        names = self.torch_attrs if frontend == "torch" else self.keras_attrs
        return self.attrs if names is None else tuple(a for a in self.attrs if a.name in names)

    def arg_dtypes(self, arg: Arg, frontend: str) -> tuple[str, ...]:
        """The dtypes `arg` accepts in `frontend`."""
        key = (id(arg), frontend)  # the generator asks this for every tensor it considers
        found = self._dtype_memo.get(key)
        if found is None:
            dtypes = WIDE_FLOATS if arg.dtypes == FLOATS and frontend in self.wide else arg.dtypes
            found = self._dtype_memo[key] = tuple(d for d in dtypes if (frontend, d) not in self.unsupported)
        return found

    def out_types(self, ctx: Ctx) -> tuple[TensorType, ...]:
        """The shape rule, with a Keras layer's float32 compute dtype applied."""
        outs = self.shape(ctx)
        if ctx.frontend == "keras" and self.keras_autocast:
            return tuple(TensorType(o.shape, "float32") if o.dtype in WIDE_FLOATS else o for o in outs)
        return outs

    def dtypes(self, frontend: str | None = None) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for end in (frontend,) if frontend else self.frontends:
            for arg in self.args:
                seen.update(dict.fromkeys(self.arg_dtypes(arg, end)))
        return tuple(seen)

    def tol(self, dtype: str) -> float:
        return self.tolerance.get(dtype, DEFAULT_TOLERANCE[dtype])


# --- small helpers shared by shape rules ----------------------------------------------


def same(ctx: Ctx) -> tuple[TensorType, ...]:
    return (ctx.x,)


def as_dtype(dtype: str) -> Callable[[Ctx], tuple[TensorType, ...]]:
    return lambda ctx: (TensorType(ctx.x.shape, dtype),)


def norm_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} out of range for rank {rank}")
    return axis % rank


def broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da != db and 1 not in (da, db):
            raise ShapeError(f"shapes {a} and {b} do not broadcast")
        out.append(db if da == 1 else da)
    return tuple(reversed(out))


def broadcastable_like(ins: tuple[TensorType, ...], chooser: Chooser) -> TensorType:
    """A type that broadcasts against the previous argument: same shape, or some dims set to 1."""
    prev = ins[-1]
    if chooser.boolean(0.6):
        return prev
    return TensorType(tuple(1 if chooser.boolean(0.4) else d for d in prev.shape), prev.dtype)


def same_as_first(ins: tuple[TensorType, ...], chooser: Chooser) -> TensorType:
    return ins[0]


# --- layout helpers shared by the layer families ---------------------------------------


def channels(ctx: Ctx) -> int:
    return ctx.x.shape[ctx.channel_axis]


def spatial(ctx: Ctx) -> tuple[int, ...]:
    return tuple(ctx.x.shape[a] for a in ctx.spatial_axes)


def native(ctx: Ctx, spatial_dims: tuple[int, ...], out_channels: int) -> TensorType:
    """An output with the input's batch, in the frontend's layout."""
    batch = ctx.x.shape[0]
    if ctx.frontend == "torch":
        return TensorType((batch, out_channels, *spatial_dims), ctx.x.dtype)
    return TensorType((batch, *spatial_dims, out_channels), ctx.x.dtype)


def tup(ctx: Ctx, name: str) -> tuple[int, ...]:
    value = ctx.a(name)
    assert isinstance(value, tuple)
    return value
