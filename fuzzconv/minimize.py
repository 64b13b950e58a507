"""Shrink a failing case to a small one that still fails the same way (Hypothesis-shrinker style).

`minimize(case, keeps_bug)` searches for a smaller case for which `keeps_bug` (in production:
"running it gives the same bucket title") still holds. The predicate is expensive, so every
verdict is memoized by case id, the original is never re-run, and every real call counts
against `max_calls`; the search also stops at `budget_s`.

Passes, coarse to fine; they run in this order, round after round, until a whole round
accepts nothing or the budget is out:

1. drop-outputs   keep a subset of the graph outputs: each output alone, then all but one;
                  then drop dead nodes (whose outputs reach no graph output) and unused inputs.
2. bypass-node    remove one node and let its consumers read one of its arguments instead
                  (only where the argument has the output's type). A graph output of the node
                  becomes that argument if it is a node output, else it is dropped.
3. cut            make an intermediate tensor a fresh graph input (`x<k>`, same type) and drop
                  everything upstream that becomes dead; cuts that remove most nodes first.
4. reset-attrs    set one attribute to its declared default (`Attr.default`).
5. shrink-dims    shrink one graph input dimension: to 1, to the smallest size that still
                  validates, to half. If that alone is invalid (broadcasting operands), the
                  same dimension of every input with that size at that position shrinks along.
6. simplify-data  data_mode to the simplest mode first (zeros, ones, small-int), data_seed to 0.

Every candidate is built with `dataclasses.replace`, pruned (dead nodes and unused inputs
removed, inputs in first-use order, node names untouched) and checked before the predicate
sees it: `infer_types` must pass, no tensor may be empty unless an input already is, and each
node-output argument must lie in its consumer's value domain (what the generator ensures; a
`log` fed negative values would test something else). Invalid candidates cost nothing.
Each candidate is strictly smaller than its parent under `size_key`, so the search ends.

Within a pass, candidates are tried in their deterministic order; the first that keeps the bug
becomes the current case and the sweep goes on at the same position of the new case's
candidates, wrapping around once to the start. A pass ends after a sweep from the start that
accepts nothing.

`candidates_near(case)` lists single-change variants (data, one attribute, one dimension) of a
case, not necessarily smaller: a report uses them to find the nearest passing variant.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from itertools import chain, islice

from fuzzconv import ops
from fuzzconv.case import DATA_MODES, MAX_DIM, AttrValue, Case, CaseError, Graph, GraphInput, Node, TensorType
from fuzzconv.frontends.source import domain_satisfied
from fuzzconv.graphcheck import Types, infer_types, node_ctx, producers
from fuzzconv.ops.spec import AnyOf, Axis, Choice, Ctx, Domain, IntRange, OneOf, PerFrontend

Predicate = Callable[[Case], bool]
Candidates = Callable[[Case], Iterator[Case]]

# How many sizes above 1 the "smallest size that still validates" search tries per dimension.
SMALLEST_DIM_SCAN = 32


@dataclass(frozen=True)
class PassReport:
    """One run of one pass (a pass runs once per round)."""

    name: str
    calls: int
    accepted: int
    nodes_before: int
    nodes_after: int
    seconds: float


@dataclass(frozen=True)
class MinimizeResult:
    original: Case
    minimized: Case
    calls: int
    seconds: float
    passes: tuple[PassReport, ...]
    budget_exhausted: bool


@dataclass(frozen=True)
class Pass:
    name: str
    candidates: Candidates


# --- graph surgery ----------------------------------------------------------------------


def producer_names(tensor: str) -> tuple[str, ...]:
    """The node names that may produce `tensor` (by name): `n3` for `n3`, `n3_0` or `n3` for `n3_0`."""
    base, _, suffix = tensor.rpartition("_")
    return (tensor, base) if base and suffix.isdigit() else (tensor,)


def canonical_inputs(inputs: Iterable[GraphInput], nodes: Iterable[Node]) -> tuple[GraphInput, ...]:
    """The inputs some node reads, in order of first use (node order, then argument order)."""
    by_name = {graph_input.name: graph_input for graph_input in inputs}
    used = dict.fromkeys(arg for node in nodes for arg in node.args if arg in by_name)
    return tuple(by_name[name] for name in used)


def prune(graph: Graph) -> Graph:
    """The graph without dead nodes and unused inputs, its inputs in canonical order."""
    wanted = {name for tensor in graph.outputs for name in producer_names(tensor)}
    kept: list[Node] = []
    for node in reversed(graph.nodes):
        if node.name in wanted:
            kept.append(node)
            wanted.update(name for arg in node.args for name in producer_names(arg))
    nodes = tuple(reversed(kept))
    return replace(graph, inputs=canonical_inputs(graph.inputs, nodes), nodes=nodes)


def rename_args(nodes: Iterable[Node], mapping: dict[str, str]) -> tuple[Node, ...]:
    """The nodes with every argument in `mapping` read from its replacement instead."""
    return tuple(
        replace(node, args=tuple(mapping.get(arg, arg) for arg in node.args))
        if any(arg in mapping for arg in node.args) else node
        for node in nodes
    )


def distinct(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def node_outputs(graph: Graph) -> dict[str, tuple[str, ...]]:
    """Each node's output tensor names, for a valid graph."""
    outputs: dict[str, list[str]] = {node.name: [] for node in graph.nodes}
    for tensor, node in producers(graph).items():
        outputs[node.name].append(tensor)
    return {name: tuple(tensors) for name, tensors in outputs.items()}


def fresh_input_name(graph: Graph) -> str:
    """The first `x<k>` that names no input, node or tensor of the graph."""
    taken = {i.name for i in graph.inputs} | {n.name for n in graph.nodes} | set(infer_types(graph))
    index = 0
    while f"x{index}" in taken:
        index += 1
    return f"x{index}"


def with_node(graph: Graph, index: int, node: Node) -> Graph:
    return replace(graph, nodes=graph.nodes[:index] + (node,) + graph.nodes[index + 1:])


def with_input_shape(graph: Graph, index: int, shape: tuple[int, ...]) -> Graph:
    old = graph.inputs[index]
    new = replace(old, type=replace(old.type, shape=shape))
    return replace(graph, inputs=graph.inputs[:index] + (new,) + graph.inputs[index + 1:])


# --- validity and size ------------------------------------------------------------------


def is_valid(graph: Graph) -> bool:
    """Whether a candidate graph may be run: registry check, no new empty tensors, value domains."""
    try:
        types = infer_types(graph)
    except CaseError:
        return False
    return no_new_empty_tensors(graph, types) and domains_respected(graph)


def no_new_empty_tensors(graph: Graph, types: Types) -> bool:
    """No tensor has a 0 dimension, unless a graph input already has one (then it was meant)."""
    if any(0 in graph_input.type.shape for graph_input in graph.inputs):
        return True
    return all(0 not in tensor_type.shape for tensor_type in types.values())


def domains_respected(graph: Graph) -> bool:
    """Every argument produced by a node lies in the value domain its consumer asks for."""
    out_range = {tensor: ops.get(node.op).out_range for tensor, node in producers(graph).items()}
    for node in graph.nodes:
        for arg_name, arg in zip(node.args, ops.get(node.op).args, strict=True):
            if arg_name in out_range and not domain_satisfied(out_range[arg_name], arg.domain):
                return False
    return True


def same_value(a: AttrValue, b: AttrValue) -> bool:
    """Equality that tells True from 1 and 1 from 1.0, as attribute domains do."""
    return type(a) is type(b) and a == b


def non_default_attrs(graph: Graph) -> int:
    count = 0
    for node in graph.nodes:
        for attr in ops.get(node.op).attrs_for(graph.frontend):
            if attr.name in node.attr and not same_value(node.attr[attr.name], attr.default):
                count += 1
    return count


def elements(tensor_type: TensorType) -> int:
    count = 1
    for dim in tensor_type.shape:
        count *= dim
    return count


def size_key(case: Case) -> tuple[int, ...]:
    """What the passes make smaller, most important first; every accepted step lowers it."""
    graph = case.graph
    return (
        len(graph.nodes),
        len(graph.outputs),
        non_default_attrs(graph),
        sum(elements(i.type) for i in graph.inputs),
        sum(sum(i.type.shape) for i in graph.inputs),
        len(DATA_MODES) - DATA_MODES.index(case.data_mode),
        int(case.data_seed != 0),
    )


def finish(case: Case, graph: Graph) -> Case | None:
    """The candidate with this graph (pruned), or None when it is invalid or not smaller."""
    graph = prune(graph)
    if graph == case.graph or not is_valid(graph):
        return None
    candidate = replace(case, graph=graph)
    return candidate if size_key(candidate) < size_key(case) else None


def unique(candidates: Iterable[Case | None]) -> Iterator[Case]:
    """The candidates that exist, each case once."""
    seen: set[str] = set()
    for candidate in candidates:
        if candidate is not None and candidate.id not in seen:
            seen.add(candidate.id)
            yield candidate


# --- pass 1: drop outputs ---------------------------------------------------------------


def drop_outputs(case: Case) -> Iterator[Case]:
    outputs = case.graph.outputs
    choices: list[tuple[str, ...]] = []
    if len(outputs) > 1:
        choices += [(output,) for output in outputs]
        choices += [outputs[:i] + outputs[i + 1:] for i in range(len(outputs))]
    choices.append(outputs)  # the same outputs: only dead nodes and unused inputs go
    return unique(finish(case, replace(case.graph, outputs=chosen)) for chosen in choices)


# --- pass 2: bypass a node --------------------------------------------------------------


def bypass_nodes(case: Case) -> Iterator[Case]:
    graph = case.graph
    types = infer_types(graph)
    outputs_of = node_outputs(graph)
    produced = set(producers(graph))
    return unique(
        finish(case, bypassed)
        for node in graph.nodes
        for arg in distinct(node.args)
        if (bypassed := bypass(graph, node, outputs_of[node.name], arg, types, produced)) is not None
    )


def bypass(graph: Graph, node: Node, outputs: tuple[str, ...], arg: str, types: Types,
           produced: set[str]) -> Graph | None:
    """The graph without `node`, its consumers reading `arg`; None when some consumer cannot."""
    others = tuple(n for n in graph.nodes if n is not node)
    consumed = {a for n in others for a in n.args}
    mapping = {out: arg for out in outputs if types[out] == types[arg]}
    if any(out in consumed and out not in mapping for out in outputs):
        return None
    graph_outputs = []
    for name in graph.outputs:
        if name not in outputs:
            graph_outputs.append(name)
        elif arg in produced:  # a graph output may take any predecessor that is a node output
            graph_outputs.append(arg)
    return replace(graph, nodes=rename_args(others, mapping), outputs=distinct(graph_outputs))


# --- pass 3: cut ------------------------------------------------------------------------


def cut_tensors(case: Case) -> Iterator[Case]:
    graph = case.graph
    types = infer_types(graph)
    name = fresh_input_name(graph)
    consumed = {arg for node in graph.nodes for arg in node.args}
    options = []
    for index, tensor in enumerate(t for t in producers(graph) if t in consumed):
        candidate = finish(case, cut(graph, tensor, GraphInput(name, types[tensor])))
        if candidate is not None and len(candidate.graph.nodes) < len(graph.nodes):
            options.append((len(candidate.graph.nodes), index, candidate))
    options.sort(key=lambda option: option[:2])
    return unique(candidate for _, _, candidate in options)


def cut(graph: Graph, tensor: str, new_input: GraphInput) -> Graph:
    """Every node that read `tensor` reads the new graph input instead."""
    nodes = rename_args(graph.nodes, {tensor: new_input.name})
    return replace(graph, inputs=graph.inputs + (new_input,), nodes=nodes)


# --- pass 4: reset attributes -----------------------------------------------------------


def reset_attrs(case: Case) -> Iterator[Case]:
    graph = case.graph
    return unique(
        finish(case, with_node(graph, index, with_attr(node, attr.name, attr.default)))
        for index, node in enumerate(graph.nodes)
        for attr in ops.get(node.op).attrs_for(graph.frontend)
        if attr.name in node.attr and not same_value(node.attr[attr.name], attr.default)
    )


def with_attr(node: Node, name: str, value: AttrValue) -> Node:
    return replace(node, attrs=tuple(sorted({**node.attr, name: value}.items())))


# --- pass 5: shrink dimensions ----------------------------------------------------------


def shrink_dims(case: Case) -> Iterator[Case]:
    return unique(
        resize(case, index, axis, size, finish)
        for index, graph_input in enumerate(case.graph.inputs)
        for axis, dim in enumerate(graph_input.type.shape)
        for size in smaller_sizes(case, index, axis, dim)
    )


def smaller_sizes(case: Case, index: int, axis: int, dim: int) -> tuple[int, ...]:
    """1, the smallest size above 1 that validates, half: the sizes below `dim` worth a try."""
    if dim <= 1:
        return ()
    sizes = [1]
    for size in range(2, min(dim, 2 + SMALLEST_DIM_SCAN)):
        if resize(case, index, axis, size, finish) is not None:
            sizes.append(size)
            break
    sizes.append(dim // 2)
    return tuple(dict.fromkeys(s for s in sizes if 1 <= s < dim))


def resize(case: Case, index: int, axis: int, size: int,
           build: Callable[[Case, Graph], Case | None]) -> Case | None:
    """One input dimension set to `size`; if that is invalid, every input's dimension of the
    same size at the same position from the end (broadcast operands) changes along."""
    graph = case.graph
    shape = graph.inputs[index].type.shape
    alone = build(case, with_input_shape(graph, index, shape[:axis] + (size,) + shape[axis + 1:]))
    if alone is not None:
        return alone
    dim, from_end = shape[axis], axis - len(shape)
    joint = graph
    for other, graph_input in enumerate(graph.inputs):
        dims = graph_input.type.shape
        if len(dims) >= -from_end and dims[from_end] == dim:
            position = len(dims) + from_end
            joint = with_input_shape(joint, other, dims[:position] + (size,) + dims[position + 1:])
    return build(case, joint) if joint != graph else None


# --- pass 6: simplify data --------------------------------------------------------------


def simplify_data(case: Case) -> Iterator[Case]:
    current = DATA_MODES.index(case.data_mode)
    for mode in reversed(DATA_MODES[current + 1:]):  # the simplest first
        yield replace(case, data_mode=mode)
    if case.data_seed != 0:
        yield replace(case, data_seed=0)


PASSES: tuple[Pass, ...] = (
    Pass("drop-outputs", drop_outputs),
    Pass("bypass-node", bypass_nodes),
    Pass("cut", cut_tensors),
    Pass("reset-attrs", reset_attrs),
    Pass("shrink-dims", shrink_dims),
    Pass("simplify-data", simplify_data),
)


def pass_candidates(name: str, case: Case) -> Iterator[Case]:
    """The candidates one pass proposes for a case, in the order the minimizer tries them."""
    for minimizer_pass in PASSES:
        if minimizer_pass.name == name:
            return minimizer_pass.candidates(case)
    raise KeyError(f"unknown pass {name!r}; passes: {', '.join(p.name for p in PASSES)}")


# --- the search -------------------------------------------------------------------------


class Search:
    """The memoized, budgeted predicate."""

    def __init__(self, original: Case, keeps_bug: Predicate, max_calls: int, budget_s: float) -> None:
        self.keeps_bug = keeps_bug
        self.max_calls = max_calls
        self.started = time.monotonic()
        self.deadline = self.started + budget_s
        self.verdicts: dict[str, bool] = {original.id: True}
        self.calls = 0
        self.exhausted = False

    def verdict(self, candidate: Case) -> bool | None:
        """Whether the candidate keeps the bug; None once the budget is out."""
        known = self.verdicts.get(candidate.id)
        if known is not None:
            return known
        if self.calls >= self.max_calls or time.monotonic() >= self.deadline:
            self.exhausted = True
            return None
        self.calls += 1
        self.verdicts[candidate.id] = bool(self.keeps_bug(candidate))
        return self.verdicts[candidate.id]

    def out_of_time(self) -> bool:
        if time.monotonic() >= self.deadline:
            self.exhausted = True
        return self.exhausted

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


def first_accepted(search: Search, candidates: Iterator[Case], start: int) -> tuple[int, Case] | None:
    """The position and case of the first candidate from `start` on that keeps the bug."""
    for position, candidate in enumerate(islice(candidates, start, None), start):
        if search.out_of_time():
            return None
        verdict = search.verdict(candidate)
        if verdict is None:
            return None
        if verdict:
            return position, candidate
    return None


def run_pass(search: Search, minimizer_pass: Pass, case: Case,
             on_progress: Callable[[str], None] | None) -> tuple[Case, PassReport]:
    started, calls_before = time.monotonic(), search.calls
    current, position, accepted = case, 0, 0
    while not search.exhausted:
        hit = first_accepted(search, minimizer_pass.candidates(current), position)
        if hit is None:
            if position == 0:
                break
            position = 0  # wrap around: the start of the new case's candidates is untried
            continue
        position, current = hit
        accepted += 1
        if on_progress:
            on_progress(f"{minimizer_pass.name}: {len(current.graph.nodes)} nodes after {search.calls} calls")
    report = PassReport(minimizer_pass.name, search.calls - calls_before, accepted, len(case.graph.nodes),
                        len(current.graph.nodes), time.monotonic() - started)
    return current, report


def minimize(case: Case, keeps_bug: Predicate, max_calls: int = 300, budget_s: float = 120.0,
             on_progress: Callable[[str], None] | None = None) -> MinimizeResult:
    """The smallest case the passes reach that still keeps the bug (the original if none does).

    `keeps_bug` is never called on `case` itself (it is known to keep the bug) nor twice on
    one case id; an exception it raises propagates. Raises CaseError if `case` is not valid.
    """
    infer_types(case.graph)
    search = Search(case, keeps_bug, max_calls, budget_s)
    current, reports = case, []
    while not search.exhausted:
        accepted = 0
        for minimizer_pass in PASSES:
            current, report = run_pass(search, minimizer_pass, current, on_progress)
            reports.append(report)
            accepted += report.accepted
            if search.exhausted:
                break
        if not accepted:
            break
    if on_progress:
        on_progress(f"done: {len(case.graph.nodes)} -> {len(current.graph.nodes)} nodes in {search.calls} calls"
                    + (" (budget exhausted)" if search.exhausted else ""))
    return MinimizeResult(case, current, search.calls, search.seconds, tuple(reports), search.exhausted)


# --- single-change variants -------------------------------------------------------------


def candidates_near(case: Case) -> Iterator[Case]:
    """Valid variants of a case that differ in one thing, most telling first: one attribute
    (its default, then neighbouring values), one input dimension (one less, one more), then the
    input data (constant data hides most bugs, so it says least). Not necessarily smaller;
    names of nodes and inputs are kept."""
    variants = (propose() for propose in proposals_near(case))  # lazily: each is checked when built
    return unique(v for v in variants if v is not None and v.id != case.id)


Proposal = Callable[[], "Case | None"]


def proposals_near(case: Case) -> Iterator[Proposal]:
    """The single-change variants of `candidates_near`, in its order, each not yet built: a
    call builds and checks it (None when invalid). A mutation picks one and builds only that."""
    return chain(attr_variants(case), dim_variants(case), data_variants(case))


def data_variants(case: Case) -> Iterator[Proposal]:
    for mode in DATA_MODES:
        if mode != case.data_mode:
            yield partial(replace, case, data_mode=mode)
    yield partial(replace, case, data_seed=(case.data_seed + 1) % 2**63)


def attr_variants(case: Case) -> Iterator[Proposal]:
    graph = case.graph
    types = infer_types(graph)
    for index, node in enumerate(graph.nodes):
        ctx = node_ctx(node, types, graph.frontend)
        for attr in ops.get(node.op).attrs_for(graph.frontend):
            if attr.name not in node.attr:
                continue
            for value in neighbour_values(node.attr[attr.name], attr.default, attr.domain, ctx):
                yield partial(_with_attr_checked, case, index, attr.name, value)


def _with_attr_checked(case: Case, index: int, name: str, value: AttrValue) -> Case | None:
    graph = case.graph
    return checked(case, with_node(graph, index, with_attr(graph.nodes[index], name, value)))


def neighbour_values(value: AttrValue, default: AttrValue, domain: Domain, ctx: Ctx) -> list[AttrValue]:
    """The default, then the values a small domain lists, or the integers either side."""
    domain = frontend_domain(domain, ctx)
    values: list[AttrValue] = [default, *listed_values(domain, ctx)]
    if isinstance(domain, (IntRange, Axis)) and isinstance(value, int) and not isinstance(value, bool):
        values += [value - 1, value + 1]
    return [v for v in distinct_values(values) if not same_value(v, value)]


def frontend_domain(domain: Domain, ctx: Ctx) -> Domain:
    if isinstance(domain, PerFrontend):
        return frontend_domain(domain.torch if ctx.frontend == "torch" else domain.keras, ctx)
    return domain


def listed_values(domain: Domain, ctx: Ctx) -> tuple[AttrValue, ...]:
    """The values of a domain that lists them (one of, a choice, any of those); else none."""
    domain = frontend_domain(domain, ctx)
    if isinstance(domain, OneOf):
        return domain.values
    if isinstance(domain, Choice):
        return domain.options(ctx)
    if isinstance(domain, AnyOf):
        return tuple(v for option in domain.options for v in listed_values(option, ctx))
    return ()


def distinct_values(values: Iterable[AttrValue]) -> list[AttrValue]:
    found: list[AttrValue] = []
    for value in values:
        if not any(same_value(value, seen) for seen in found):
            found.append(value)
    return found


def dim_variants(case: Case) -> Iterator[Proposal]:
    for index, graph_input in enumerate(case.graph.inputs):
        for axis, dim in enumerate(graph_input.type.shape):
            for size in (dim - 1, dim + 1):
                if 1 <= size <= MAX_DIM:
                    yield partial(resize, case, index, axis, size, checked)


def checked(case: Case, graph: Graph) -> Case | None:
    """The case with this graph as it is (no pruning, any size), or None when it is invalid."""
    return replace(case, graph=graph) if is_valid(graph) else None
