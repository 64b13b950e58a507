"""Check a graph against the operator registry and infer every tensor's type.

This is what makes a case file data: every operator name, argument, attribute value and
shape is checked here before any source is generated from it.
"""

from __future__ import annotations

from fuzzconv import ops
from fuzzconv.case import Case, CaseError, Graph, Node, TensorType
from fuzzconv.ops.spec import Ctx, Op, ShapeError

Types = dict[str, TensorType]


def node_ctx(node: Node, types: Types, frontend: str) -> Ctx:
    return Ctx(node.attr, tuple(types[a] for a in node.args), frontend)


def infer_types(graph: Graph) -> Types:
    """Every tensor's type, or CaseError naming the first node that is not valid."""
    return _walk(graph)[0]


def producers(graph: Graph) -> dict[str, Node]:
    """The node that produces each node output."""
    return typed_producers(graph)[1]


def typed_producers(graph: Graph) -> tuple[Types, dict[str, Node]]:
    """Every tensor's type and every node output's producer, from one walk of the graph."""
    types, outputs_of = _walk(graph)
    return types, {name: node for node in graph.nodes for name in outputs_of[node.name]}


# The last few graphs walked, by identity (graphs are immutable): one case is walked by the
# generator's check, the pipeline, the source renderer and the coverage keys in turn.
_WALKED: list[tuple[Graph, Types, dict[str, tuple[str, ...]]]] = []
WALK_MEMO = 8


def _walk(graph: Graph) -> tuple[Types, dict[str, tuple[str, ...]]]:
    """Copies of the memoized walk, so that callers may change what they get."""
    for seen, types, outputs_of in _WALKED:
        if seen is graph:
            return dict(types), dict(outputs_of)
    types, outputs_of = _checked_walk(graph)
    _remember(graph, types, outputs_of)
    return dict(types), dict(outputs_of)


def _remember(graph: Graph, types: Types, outputs_of: dict[str, tuple[str, ...]]) -> None:
    _WALKED.insert(0, (graph, types, outputs_of))
    del _WALKED[WALK_MEMO:]


def built_checked(graph: Graph, types: Types, made_by: dict[str, Node]) -> None:
    """Take the walk of a graph built node by node with `check_node` (the generator's): `types`
    holds every tensor's type as those checks gave it, `made_by` each node output's node, in
    order. Only the graph-wide checks run here, so that the pipeline, the source renderer and
    the coverage keys need no second walk of a case just made."""
    outputs_of: dict[str, tuple[str, ...]] = {node.name: () for node in graph.nodes}
    for name, node in made_by.items():
        outputs_of[node.name] += (name,)
    defined = [*(i.name for i in graph.inputs), *made_by]
    if len(outputs_of) != len(graph.nodes) or len(set(defined)) != len(defined) or set(defined) != set(types):
        raise CaseError("the built graph's tensors do not match its nodes")  # the generator's bug
    _check_outputs(graph, types)
    _remember(graph, {name: types[name] for name in defined}, outputs_of)


def _checked_walk(graph: Graph) -> tuple[Types, dict[str, tuple[str, ...]]]:
    types: Types = {}
    outputs_of: dict[str, tuple[str, ...]] = {}
    for graph_input in graph.inputs:
        _define(types, graph_input.name, graph_input.type, "graph input")
    for index, node in enumerate(graph.nodes):
        where = f"graph.nodes[{index}] ({node.name}: {node.op})"
        outs = check_node(node, types, graph.frontend, where)
        outputs_of[node.name] = node.output_names(len(outs))
        for name, out_type in zip(node.output_names(len(outs)), outs, strict=True):
            _define(types, name, out_type, where)
    _check_outputs(graph, types)
    return types, outputs_of


def _check_outputs(graph: Graph, types: Types) -> None:
    for name in graph.outputs:
        if name not in types or name in {i.name for i in graph.inputs}:
            raise CaseError(f"graph.outputs names {name!r}, which is no node's output")
    if not graph.outputs:
        raise CaseError("graph has no outputs")
    if len(set(graph.outputs)) != len(graph.outputs):
        raise CaseError("graph.outputs lists a tensor twice")


def check_node(node: Node, types: Types, frontend: str, where: str) -> tuple[TensorType, ...]:
    try:
        op = ops.get(node.op)
    except KeyError as exc:
        raise CaseError(f"{where}: {exc.args[0]}") from None
    if op.impl(frontend) is None:
        raise CaseError(f"{where}: operator {op.name!r} has no {frontend} implementation")
    _check_args(node, op, types, frontend, where)
    ctx = node_ctx(node, types, frontend)
    _check_attrs(node, op, ctx, where)
    try:
        return op.out_types(ctx)
    except ShapeError as exc:
        raise CaseError(f"{where}: {exc}") from None


def _check_args(node: Node, op: Op, types: Types, frontend: str, where: str) -> None:
    if len(node.args) != len(op.args):
        raise CaseError(f"{where}: takes {len(op.args)} arguments, got {len(node.args)}")
    for arg_name, arg in zip(node.args, op.args, strict=True):
        if arg_name not in types:
            raise CaseError(f"{where}: argument {arg_name!r} is not defined before this node")
        arg_type = types[arg_name]
        dtypes = op.arg_dtypes(arg, frontend)
        if arg_type.rank not in arg.ranks or arg_type.dtype not in dtypes:
            raise CaseError(
                f"{where}: argument {arg_name!r} is {arg_type.dtype} of rank {arg_type.rank}; "
                f"expected rank in {arg.ranks} and dtype in {dtypes}"
            )


def _check_attrs(node: Node, op: Op, ctx: Ctx, where: str) -> None:
    declared = {a.name: a for a in op.attrs_for(ctx.frontend)}
    given = set(node.attr)
    if given != set(declared):
        raise CaseError(
            f"{where}: attributes {sorted(given)} do not match the declared {sorted(declared)}"
        )
    for name, attr in declared.items():
        problem = attr.domain.problem(node.attr[name], ctx)
        if problem:
            raise CaseError(f"{where}: attribute {name}={node.attr[name]!r} is invalid; expected {problem}")


def _define(types: Types, name: str, tensor_type: TensorType, where: str) -> None:
    if name in types:
        raise CaseError(f"{where}: tensor name {name!r} is defined twice")
    types[name] = tensor_type


def check_case(case: Case) -> Types:
    return infer_types(case.graph)


def load_case_text(text: str) -> Case:
    """Parse and fully check a case; raises CaseError with the first problem found."""
    case = Case.loads(text)
    check_case(case)
    return case
