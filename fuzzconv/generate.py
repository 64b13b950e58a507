"""Random operator graphs from the registry: valid by construction, deterministic from a seed.

All choices go through a `Chooser`, so the same code runs from a seeded `random.Random`
(campaigns) or from Hypothesis (tests, where Hypothesis can also shrink the choices).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fuzzconv import ops
from fuzzconv.case import (
    CONVERTER_FRONTEND,
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
from fuzzconv.graphcheck import check_node
from fuzzconv.ops.spec import Arg, Chooser, Ctx, Op, ShapeError

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

    def new_input(self, tensor_type: TensorType, domain: str) -> _Tensor:
        graph_input = GraphInput(f"x{len(self.inputs)}", tensor_type)
        self.inputs.append(graph_input)
        return _Tensor(graph_input.name, tensor_type, domain)

    def random_type(self, arg: Arg) -> TensorType:
        rank = self.chooser.choice(arg.ranks)
        low = 2 if rank >= 3 else 1
        shape = [self.chooser.integer(1, 3)] + [self.chooser.integer(low, 8) for _ in range(rank - 1)]
        for axis, minimum in enumerate(arg.min_dims):
            if axis < rank:
                shape[axis] = max(shape[axis], minimum)
        return TensorType(tuple(shape[:rank]) if rank else (), self.chooser.choice(arg.dtypes))

    def pick_arg(self, arg: Arg, earlier: tuple[TensorType, ...], pending: list[GraphInput]) -> _Tensor:
        wanted = arg.like(earlier, self.chooser) if arg.like else None
        candidates = [t for t in self.tensors if self._fits(t, arg, wanted)]
        reuse = 0.85 if wanted is None else 0.5
        if candidates and self.chooser.boolean(reuse):
            recent = candidates[-4:]
            return self.chooser.choice(recent)
        tensor_type = wanted or self.random_type(arg)
        graph_input = GraphInput(f"x{len(self.inputs) + len(pending)}", tensor_type)
        pending.append(graph_input)
        return _Tensor(graph_input.name, tensor_type, arg.domain)

    def fits_first(self, op: Op, tensor: _Tensor) -> bool:
        return bool(op.args) and op.args[0].like is None and self._fits(tensor, op.args[0], None)

    @staticmethod
    def _fits(tensor: _Tensor, arg: Arg, wanted: TensorType | None) -> bool:
        if not domain_satisfied(tensor.domain, arg.domain):
            return False
        if wanted is not None:
            return tensor.type == wanted
        if tensor.type.rank not in arg.ranks or tensor.type.dtype not in arg.dtypes:
            return False
        return all(tensor.type.shape[a] >= m for a, m in enumerate(arg.min_dims) if a < tensor.type.rank)

    def try_add(self, op: Op, first: _Tensor | None = None) -> bool:
        """Place `op` (fed `first` as its first argument when given); False if it does not fit."""
        pending: list[GraphInput] = []
        args: list[_Tensor] = [first] if first is not None else []
        for arg in op.args[len(args):]:
            args.append(self.pick_arg(arg, tuple(a.type for a in args), pending))
        if len(self.inputs) + len(pending) > MAX_INPUTS:
            return False
        attrs: dict[str, AttrValue] = {}
        ctx = Ctx(attrs, tuple(a.type for a in args), self.frontend)
        try:
            for attr in op.attrs_for(self.frontend):
                attrs[attr.name] = attr.domain.draw(self.chooser, ctx)
            outs = op.shape(ctx)
        except ShapeError:
            return False
        if any(0 in o.shape or _elements(o) > MAX_ELEMENTS for o in outs):
            return False
        node = Node(f"n{len(self.nodes)}", op.name, tuple(a.name for a in args), tuple(sorted(attrs.items())))
        if not self._passes_check(node, args):
            return False
        self.inputs.extend(pending)
        self.tensors.extend(t for t in args if t.name in {p.name for p in pending})
        self.nodes.append(node)
        for name, out in zip(node.output_names(len(outs)), outs, strict=True):
            self.tensors.append(_Tensor(name, out, op.out_range))
        return True

    def _passes_check(self, node: Node, args: list[_Tensor]) -> bool:
        """The same check a loaded case gets: the generator never emits what a case file may not hold."""
        types = {t.name: t.type for t in [*self.tensors, *args]}
        try:
            check_node(node, types, self.frontend, node.name)
        except CaseError:
            return False
        return True

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


def generate_graph(chooser: Chooser, frontend: str, max_nodes: int = 8) -> Graph:
    """A random graph of 1..max_nodes operators for one frontend."""
    candidates = ops.for_frontend(frontend)
    builder = _Builder(chooser, frontend)
    target_nodes = chooser.integer(1, max(1, max_nodes))
    attempts = 0
    while len(builder.nodes) < target_nodes and attempts < target_nodes * 25:
        attempts += 1
        newest = builder.tensors[-1] if builder.nodes else None
        fitting = [op for op in candidates if newest and builder.fits_first(op, newest)]
        if fitting and chooser.boolean(CHAIN_BIAS):
            builder.try_add(chooser.choice(fitting), first=newest)
        else:
            builder.try_add(chooser.choice(candidates))
    if not builder.nodes:
        raise RuntimeError(f"could not place any operator for {frontend}; the registry may be broken")
    return Graph(frontend, tuple(builder.inputs), tuple(builder.nodes), builder.outputs())


def generate_case(seed: int, converter: str, max_nodes: int = 8, opset: int | None = None,
                  options: tuple[tuple[str, AttrValue], ...] = ()) -> Case:
    chooser = RandomChooser(seed)
    graph = generate_graph(chooser, CONVERTER_FRONTEND[converter], max_nodes)
    target = Target(converter, opset or DEFAULT_OPSET[converter], options)
    return Case(graph, target, data_seed=seed % (2**31))
