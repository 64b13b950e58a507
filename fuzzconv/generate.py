"""Random operator graphs from the registry: valid by construction, deterministic from a seed.

All choices go through a `Chooser`, so the same code runs from a seeded `random.Random`
(campaigns) or from Hypothesis (tests, where Hypothesis can also shrink the choices).
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fuzzconv import ops
from fuzzconv.case import (
    CONVERTER_FRONTEND,
    MAX_DIM,
    AttrValue,
    Case,
    CaseError,
    Graph,
    GraphInput,
    Node,
    Target,
    TensorType,
)
from fuzzconv.frontends.source import domain_satisfied
from fuzzconv.graphcheck import built_checked, check_node, typed_producers
from fuzzconv.ops.spec import Arg, Chooser, Ctx, Op, ShapeError
from fuzzconv.seen import SeenSequences

T = TypeVar("T")

DEFAULT_OPSET = {"torch-dynamo": 18, "torch-script": 17, "tf2onnx": 17, "keras-export": 17}
MAX_ELEMENTS = 200_000
MAX_INPUTS = 4


class RandomChooser:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def boolean(self, p_true: float = 0.5) -> bool:
        return self.rng.random() < p_true


class HypothesisChooser:
    """Draws through a Hypothesis `data` object so that Hypothesis can drive and shrink."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def integer(self, lo: int, hi: int) -> int:
        from hypothesis import strategies as st

        return int(self.data.draw(st.integers(lo, hi)))

    def choice(self, options: Sequence[T]) -> T:
        from hypothesis import strategies as st

        return self.data.draw(st.sampled_from(list(options)))

    def boolean(self, p_true: float = 0.5) -> bool:
        from hypothesis import strategies as st

        return bool(self.data.draw(st.booleans()))


@dataclass
class _Tensor:
    name: str
    type: TensorType
    domain: str


@dataclass
class _Builder:
    chooser: Chooser
    frontend: str
    tensors: list[_Tensor] = field(default_factory=list)
    inputs: list[GraphInput] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    made_by: dict[str, Node] = field(default_factory=dict)  # node output -> its node

    @staticmethod
    def _free_name(prefix: str, taken: set[str]) -> str:
        index = len(taken)
        while f"{prefix}{index}" in taken:
            index += 1
        return f"{prefix}{index}"

    def random_type(self, arg: Arg, dtypes: tuple[str, ...]) -> TensorType:
        rank = self.chooser.choice(arg.ranks)
        low = 2 if rank >= 3 else 1
        shape = [self.chooser.integer(1, 3)] + [self.chooser.integer(low, 8) for _ in range(rank - 1)]
        for axis, minimum in enumerate(arg.min_dims):
            if axis < rank:
                shape[axis] = max(shape[axis], minimum)
        if "float32" in dtypes and self.chooser.boolean(FLOAT32_SHARE):
            dtype = "float32"
        else:
            dtype = self.chooser.choice(dtypes)
        return TensorType(tuple(shape[:rank]) if rank else (), dtype)

    def pick_arg(self, op: Op, arg: Arg, earlier: tuple[TensorType, ...], pending: list[GraphInput]) -> _Tensor:
        wanted = arg.like(earlier, self.chooser) if arg.like else None
        dtypes = op.arg_dtypes(arg, self.frontend)
        candidates = [t for t in self.tensors if self._fits(t, arg, dtypes, wanted)]
        reuse = 0.85 if wanted is None else 0.5
        if candidates and self.chooser.boolean(reuse):
            recent = candidates[-4:]
            return self.chooser.choice(recent)
        tensor_type = wanted or self.random_type(arg, dtypes)
        taken = {i.name for i in [*self.inputs, *pending]}
        graph_input = GraphInput(self._free_name("x", taken), tensor_type)
        pending.append(graph_input)
        return _Tensor(graph_input.name, tensor_type, arg.domain)

    @staticmethod
    def _fits(tensor: _Tensor, arg: Arg, dtypes: tuple[str, ...], wanted: TensorType | None) -> bool:
        if not domain_satisfied(tensor.domain, arg.domain):
            return False
        if wanted is not None:
            return tensor.type == wanted
        if tensor.type.rank not in arg.ranks or tensor.type.dtype not in dtypes:
            return False
        return all(tensor.type.shape[a] >= m for a, m in enumerate(arg.min_dims) if a < tensor.type.rank)

    def try_add(self, op: Op, first: _Tensor | None = None) -> bool:
        """Place `op` (fed `first` as its first argument when given); False if it does not fit."""
        pending: list[GraphInput] = []
        args: list[_Tensor] = [first] if first is not None else []
        for arg in op.args[len(args):]:
            args.append(self.pick_arg(op, arg, tuple(a.type for a in args), pending))
        if len(self.inputs) + len(pending) > MAX_INPUTS:
            return False
        if any(size > MAX_DIM for graph_input in pending for size in graph_input.type.shape):
            return False  # an input shaped like a large intermediate: a case file could not hold it
        attrs: dict[str, AttrValue] = {}
        ctx = Ctx(attrs, tuple(a.type for a in args), self.frontend)
        try:
            for attr in op.attrs_for(self.frontend):
                attrs[attr.name] = attr.domain.draw(self.chooser, ctx)
            outs = op.out_types(ctx)
        except ShapeError:
            return False
        if any(0 in o.shape or _elements(o) > MAX_ELEMENTS for o in outs):
            return False
        node = Node(self._free_name("n", {n.name for n in self.nodes}), op.name, tuple(a.name for a in args),
                    tuple(sorted(attrs.items())))
        if not self._passes_check(node, args):
            return False
        self.inputs.extend(pending)
        self.tensors.extend(t for t in args if t.name in {p.name for p in pending})
        self.nodes.append(node)
        for name, out in zip(node.output_names(len(outs)), outs, strict=True):
            self.tensors.append(_Tensor(name, out, op.out_range))
            self.made_by[name] = node
        return True

    def _passes_check(self, node: Node, args: list[_Tensor]) -> bool:
        """The same check a loaded case gets: the generator never emits what a case file may not hold."""
        types = {t.name: t.type for t in [*self.tensors, *args]}
        try:
            check_node(node, types, self.frontend, node.name)
        except CaseError:
            return False
        return True

    def graph(self) -> Graph:
        """The graph built, its walk handed to graphcheck (every node was checked as it was added)."""
        graph = Graph(self.frontend, tuple(self.inputs), tuple(self.nodes), self.outputs())
        built_checked(graph, {t.name: t.type for t in self.tensors}, self.made_by)
        return graph

    def outputs(self) -> tuple[str, ...]:
        consumed = {a for n in self.nodes for a in n.args}
        input_names = {i.name for i in self.inputs}
        return tuple(t.name for t in self.tensors if t.name not in consumed and t.name not in input_names)


def _elements(tensor_type: TensorType) -> int:
    count = 1
    for dim in tensor_type.shape:
        count *= dim
    return count


CHAIN_BIAS = 0.6  # how often the next operator consumes the newest tensor (deep graphs, long sequences)
GUIDED_CHAIN_BIAS = 0.85  # guided graphs extend paths more: a new sequence needs a path to grow on
GUIDE_BIAS = 0.5  # how often a guided choice is taken from what coverage still lacks
EDGE_DATA = 0.2  # how often inputs carry edge values (signed zeros, extremes, infinities)
KNOWN_ISSUE_SHARE = 0.1  # how often an operator with a known issue for the converter may be drawn
FLOAT32_SHARE = 0.7  # how often a fresh float input is float32 where float64/float16 are allowed too
DYNAMIC_SHAPES = 0.15  # how often inputs are exported with dynamic axes and checked at a second shape
DYNAMIC_SPATIAL = 0.4  # of those, how often a spatial axis is dynamic too, not only the batch
MUTANT_CHOICES = 64  # a one-change mutant is drawn from this many of a corpus case's nearest variants


@dataclass(frozen=True)
class Guide:
    """What coverage still lacks: operators to favour, and the pairs and 3-grams already seen.

    `seen` is the campaign's own, growing as it runs (read here, never changed)."""

    rare_ops: frozenset[str] = frozenset()
    seen: SeenSequences | None = None


def guide_from(frontend: str, op_counts: Mapping[str, int], seen: SeenSequences | None) -> Guide:
    """A frontend's guide: the least used quarter of its operators, and the sequences seen so far."""
    names = [op.name for op in _all_ops(frontend)]
    counts = sorted(op_counts.get(name, 0) for name in names)
    cutoff = counts[len(counts) // 4]
    rare = frozenset(n for n in names if op_counts.get(n, 0) <= cutoff)
    return Guide(rare, seen)


def _chain_tail(builder: _Builder, tensor: _Tensor) -> tuple[str, ...]:
    """The operators that made `tensor` and its first argument: the last two steps of its path."""
    tail: list[str] = []
    name = tensor.name
    while len(tail) < 2 and name in builder.made_by:
        node = builder.made_by[name]
        tail.insert(0, node.op)
        name = node.args[0] if node.args else ""
    return tuple(tail)


def _new_ngrams(fitting: Iterable[Op], tail: tuple[str, ...], guide: Guide) -> list[Op]:
    """The operators that extend a path ending in the two operators `tail` into an uncovered 3-gram."""
    return guide.seen.unseen_after(tail, fitting) if guide.seen is not None else list(fitting)


def _unseen_first(fitting: list[Op], tail: tuple[str, ...], guide: Guide) -> list[Op]:
    """The fitting operators that extend the path into a 3-gram, else a pair, not yet covered."""
    if len(tail) == 2:
        fresh = _new_ngrams(fitting, tail, guide)
        if fresh:
            return fresh
    if tail:
        fresh = guide.seen.unseen_after(tail[-1:], fitting) if guide.seen is not None else fitting
        if fresh:
            return fresh
    return fitting


_FITTING: dict[tuple[int, int, str, tuple[int, ...], str], tuple[Op, ...]] = {}


@functools.lru_cache(maxsize=1)
def _largest_min_dim() -> int:
    """The largest minimum size any operator asks of an argument's axis: beyond it, sizes do not
    change which operators fit."""
    return max((d for op in ops.all_ops() for arg in op.args for d in arg.min_dims), default=0)


def _fitting(candidates: tuple[Op, ...], frontend: str, tensor_type: TensorType, domain: str) -> tuple[Op, ...]:
    """The candidates that can take a tensor of this type and domain as their first argument.

    `candidates` is one of the cached tuples of `_all_ops`/`_quiet_ops`, which live as long as
    the process, so its id is a stable key. What fits depends on rank, dtype, domain and sizes
    only up to `_largest_min_dim`, so the key clips sizes there and shapes share entries."""
    clipped = tuple(min(size, _largest_min_dim()) for size in tensor_type.shape)
    key = (id(candidates), tensor_type.rank, tensor_type.dtype, clipped, domain)
    found = _FITTING.get(key)
    if found is None:
        if len(_FITTING) > 20_000:
            _FITTING.clear()
        tensor = _Tensor("", tensor_type, domain)
        found = _FITTING[key] = tuple(op for op in candidates if bool(op.args) and op.args[0].like is None
                                      and _Builder._fits(tensor, op.args[0], op.arg_dtypes(op.args[0], frontend), None))
    return found


def _pick_op(builder: _Builder, candidates: tuple[Op, ...], guide: Guide | None) -> tuple[Op, _Tensor | None]:
    chooser = builder.chooser
    newest = builder.tensors[-1] if builder.nodes else None
    if newest is not None and chooser.boolean(CHAIN_BIAS if guide is None else GUIDED_CHAIN_BIAS):
        fitting = list(_fitting(candidates, builder.frontend, newest.type, newest.domain))
        if guide is not None and fitting and chooser.boolean(GUIDE_BIAS):
            fitting = _unseen_first(fitting, _chain_tail(builder, newest), guide)
        if fitting:
            return chooser.choice(fitting), newest
    if guide is not None and guide.rare_ops and chooser.boolean(GUIDE_BIAS):
        rare = [op for op in candidates if op.name in guide.rare_ops]
        if rare:
            return chooser.choice(rare), None
    return chooser.choice(candidates), None


@functools.lru_cache(maxsize=32)
def _all_ops(frontend: str) -> tuple[Op, ...]:
    return tuple(ops.for_frontend(frontend))


@functools.lru_cache(maxsize=32)
def _quiet_ops(frontend: str, converter: str | None) -> tuple[Op, ...]:
    """Operators the converter has no known issue with (or all, if none is left)."""
    everything = _all_ops(frontend)
    return tuple(op for op in everything if not any(k.converter == converter for k in op.known_issues)) or everything


def _grow(builder: _Builder, target_nodes: int, guide: Guide | None, converter: str | None = None) -> None:
    everything = _all_ops(builder.frontend)
    # Operators the target converter is known to reject would crash most graphs holding them
    # and hide everything else there; they are drawn only now and then.
    quiet = _quiet_ops(builder.frontend, converter)
    attempts = 0
    start = len(builder.nodes)
    while len(builder.nodes) - start < target_nodes and attempts < target_nodes * 25:
        attempts += 1
        candidates = everything if builder.chooser.boolean(KNOWN_ISSUE_SHARE) else quiet
        op, first = _pick_op(builder, candidates, guide)
        builder.try_add(op, first=first)


def _extend_while_new(builder: _Builder, max_nodes: int, guide: Guide, converter: str | None) -> None:
    """Grow the newest path for as long as each step makes a 3-gram that coverage lacks."""
    quiet = _quiet_ops(builder.frontend, converter)
    misses = 0
    while builder.nodes and len(builder.nodes) < max_nodes and misses < 5:
        newest = builder.tensors[-1]
        tail = _chain_tail(builder, newest)
        if len(tail) < 2:
            return
        fresh = _new_ngrams(_fitting(quiet, builder.frontend, newest.type, newest.domain), tail, guide)
        if not fresh:
            return
        if not builder.try_add(builder.chooser.choice(fresh), first=newest):
            misses += 1


def generate_graph(chooser: Chooser, frontend: str, max_nodes: int = 8, guide: Guide | None = None,
                   converter: str | None = None) -> Graph:
    """A random graph of 1..max_nodes operators for one frontend; `guide` favours what is uncovered."""
    builder = _Builder(chooser, frontend)
    _grow(builder, chooser.integer(1, max(1, max_nodes)), guide, converter)
    if guide is not None:
        _extend_while_new(builder, max_nodes, guide, converter)
    if not builder.nodes:
        raise RuntimeError(f"could not place any operator for {frontend}; the registry may be broken")
    return builder.graph()


def generate_case(seed: int, converter: str, max_nodes: int = 8, opset: int | None = None,
                  options: tuple[tuple[str, AttrValue], ...] = (), guide: Guide | None = None) -> Case:
    chooser = RandomChooser(seed)
    graph = generate_graph(chooser, CONVERTER_FRONTEND[converter], max_nodes, guide, converter)
    data_mode = "edge" if chooser.boolean(EDGE_DATA) else "random"
    if chooser.boolean(DYNAMIC_SHAPES) and not options:
        spatial = graph.frontend == "torch" and chooser.boolean(DYNAMIC_SPATIAL)
        options = (("dynamic", "spatial" if spatial else True),)
    target = Target(converter, opset or DEFAULT_OPSET[converter], options)
    return Case(graph, target, data_seed=seed % (2**31), data_mode=data_mode)


def mutate_case(parent: Case, seed: int, max_nodes: int = 8, guide: Guide | None = None) -> Case:
    """A child of a corpus case: one to three more operators grown from it, or one attribute,
    shape or data change; always valid, with its own seed."""
    chooser = RandomChooser(seed)
    if chooser.boolean(0.6) and len(parent.graph.nodes) < max_nodes:
        builder = _builder_from(parent.graph, chooser)
        _grow(builder, chooser.integer(1, 3), guide, parent.target.converter)
        if guide is not None:
            _extend_while_new(builder, max_nodes, guide, parent.target.converter)
        return Case(builder.graph(), parent.target, seed % (2**31), parent.data_mode)
    from fuzzconv.minimize import proposals_near

    # One of the first MUTANT_CHOICES single-change variants, uniformly among the valid ones:
    # proposals are tried in a random order and only the one taken (and any invalid ones drawn
    # before it) is built and checked, not every variant up to it.
    proposals = list(itertools.islice(proposals_near(parent), MUTANT_CHOICES))
    chooser.rng.shuffle(proposals)
    for propose in proposals:
        child = propose()
        if child is not None and child.id != parent.id:
            return Case(child.graph, child.target, seed % (2**31), child.data_mode)
    return generate_case(seed, parent.target.converter, max_nodes, parent.target.opset, guide=guide)


def _builder_from(graph: Graph, chooser: Chooser) -> _Builder:
    """A builder holding an existing graph, ready to grow it."""
    from fuzzconv.frontends.source import tensor_domains

    types, made_by = typed_producers(graph)
    domains = tensor_domains(graph, types)
    builder = _Builder(chooser, graph.frontend, inputs=list(graph.inputs), nodes=list(graph.nodes),
                       made_by=made_by)
    builder.tensors = [_Tensor(name, types[name], domains[name]) for name in types]
    return builder
