"""The minimizer against fake predicates: known minima, valid candidates, determinism, budgets.

No framework is imported and nothing is converted: the predicates look at the case itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzconv.case import DATA_MODES, IDENTIFIER, Case, CaseError, Graph, GraphInput, Node, Target, TensorType
from fuzzconv.generate import HypothesisChooser, generate_case, generate_graph
from fuzzconv.graphcheck import infer_types, load_case_text, producers
from fuzzconv.minimize import (
    PASSES,
    candidates_near,
    canonical_inputs,
    domains_respected,
    minimize,
    pass_candidates,
    size_key,
)

CONVERTERS = ("torch-script", "tf2onnx")


def has_op(op: str, ranks: tuple[int, ...]) -> Callable[[Case], bool]:
    """The graph still has an `op` node whose arguments have these ranks."""

    def predicate(case: Case) -> bool:
        types = infer_types(case.graph)
        return any(n.op == op and tuple(types[a].rank for a in n.args) == ranks for n in case.graph.nodes)

    return predicate


def feeds(first: str, second: str) -> Callable[[Case], bool]:
    """The graph still has a `first` node whose output a `second` node reads."""

    def predicate(case: Case) -> bool:
        producer = producers(case.graph)
        return any(
            node.op == second and any(a in producer and producer[a].op == first for a in node.args)
            for node in case.graph.nodes
        )

    return predicate


def coin(case: Case) -> bool:
    """A deterministic predicate that keeps about 60% of the cases, whatever they are."""
    return hashlib.sha256(case.id.encode()).digest()[0] < 154


def checked_predicate(inner: Callable[[Case], bool], seen: list[str]) -> Callable[[Case], bool]:
    """`inner`, asserting first that the candidate is a valid case, and recording its id."""

    def predicate(case: Case) -> bool:
        assert_valid_case(case)
        seen.append(case.id)
        return inner(case)

    return predicate


def assert_valid_case(case: Case) -> None:
    assert load_case_text(case.dumps()) == case  # the full registry check, and a JSON round trip
    assert domains_respected(case.graph)
    names = [i.name for i in case.graph.inputs]
    assert all(IDENTIFIER.match(name) for name in names)
    assert case.graph.inputs == canonical_inputs(case.graph.inputs, case.graph.nodes)


def softmax_rank3(case: Case) -> bool:
    return has_op("softmax", (3,))(case)


def cases_where(predicate: Callable[[Case], bool], converter: str, wanted: int, seeds: int = 600) -> list[Case]:
    found = []
    for seed in range(seeds):
        case = generate_case(seed, converter, max_nodes=8)
        if predicate(case):
            found.append(case)
            if len(found) == wanted:
                break
    return found


def graph_of(frontend: str, inputs: dict[str, tuple[int, ...]], nodes: list[Node], outputs: tuple[str, ...]) -> Case:
    graph = Graph(frontend, tuple(GraphInput(n, TensorType(s)) for n, s in inputs.items()), tuple(nodes), outputs)
    infer_types(graph)
    converter = "torch-script" if frontend == "torch" else "tf2onnx"
    return Case(graph, Target(converter, 17), data_seed=7)


# --- known minima -----------------------------------------------------------------------


@pytest.mark.parametrize("converter", CONVERTERS)
def test_softmax_of_rank3_shrinks_to_that_node(converter):
    cases = cases_where(softmax_rank3, converter, wanted=3)
    assert cases, "no generated graph has a softmax of a rank-3 tensor; widen the seed range"
    for case in cases:
        minimized = minimize(case, softmax_rank3).minimized
        assert [n.op for n in minimized.graph.nodes] == ["softmax"]
        assert softmax_rank3(minimized)
        assert_valid_case(minimized)


@pytest.mark.parametrize("converter", CONVERTERS)
def test_any_single_op_shrinks_to_one_node(converter):
    for seed in range(12):
        case = generate_case(seed, converter, max_nodes=8)
        types = infer_types(case.graph)
        for node in case.graph.nodes:
            predicate = has_op(node.op, tuple(types[a].rank for a in node.args))
            minimized = minimize(case, predicate).minimized
            assert [n.op for n in minimized.graph.nodes] == [node.op], (seed, node)


@pytest.mark.parametrize("converter", CONVERTERS)
def test_op_feeding_op_shrinks_to_those_two_nodes(converter):
    edges = 0
    for seed in range(20):
        case = generate_case(seed, converter, max_nodes=8)
        producer = producers(case.graph)
        for node in case.graph.nodes:
            for arg in node.args:
                if arg not in producer:
                    continue
                edges += 1
                predicate = feeds(producer[arg].op, node.op)
                minimized = minimize(case, predicate).minimized
                assert [n.op for n in minimized.graph.nodes] == [producer[arg].op, node.op], (seed, node)
                assert predicate(minimized)
    assert edges > 10


def test_data_predicate_ends_at_the_simplest_data():
    case = generate_case(3, "torch-script", max_nodes=6)
    assert case.data_mode == "random" and case.data_seed != 0
    result = minimize(case, lambda c: c.data_mode != "random")
    assert result.minimized.data_mode == DATA_MODES[-1] == "zeros"
    assert result.minimized.data_seed == 0
    assert len(result.minimized.graph.nodes) == 1  # nothing else matters to this predicate


def test_graph_output_falls_back_to_a_predecessor_of_another_type():
    case = graph_of("torch", {"x0": (2, 3, 4)}, [
        Node("n0", "relu", ("x0",)),
        Node("n1", "sum", ("n0",), (("axis", -1), ("keepdim", False))),
    ], ("n1",))
    minimized = minimize(case, has_op("relu", (3,))).minimized
    assert [n.op for n in minimized.graph.nodes] == ["relu"]
    assert minimized.graph.outputs == ("n0",)


def test_dimensions_shrink_to_the_smallest_valid_size():
    case = graph_of("torch", {"x0": (2, 3, 8, 8)}, [
        Node("n0", "conv2d", ("x0",), (("bias", True), ("dilation", (1, 1)), ("groups", 1), ("kernel_size", (3, 3)),
                                       ("out_channels", 4), ("padding", "valid"), ("padding_mode", "zeros"),
                                       ("stride", (1, 1)))),
    ], ("n0",))
    minimized = minimize(case, lambda c: True).minimized
    assert minimized.graph.inputs[0].type.shape == (1, 1, 3, 3)  # a 3x3 kernel needs 3x3


def test_broadcast_operands_shrink_together():
    case = graph_of("torch", {"x0": (2, 6), "x1": (2, 6)}, [Node("n0", "add", ("x0", "x1"))], ("n0",))
    shapes = [tuple(i.type.shape for i in c.graph.inputs) for c in pass_candidates("shrink-dims", case)]
    assert ((1, 6), (2, 6)) in shapes  # one operand alone: broadcasting allows 1
    assert ((2, 3), (2, 3)) in shapes  # half: only valid when both shrink
    minimized = minimize(case, lambda c: all(i.type.shape[-1] > 1 for i in c.graph.inputs)).minimized
    assert [i.type.shape for i in minimized.graph.inputs] == [(1, 2), (1, 2)]


def test_reset_attrs_sets_one_attribute_to_its_default():
    for seed in range(50):
        case = generate_case(seed, "torch-script", max_nodes=8)
        if list(pass_candidates("reset-attrs", case)):
            break
    candidates = list(pass_candidates("reset-attrs", case))
    assert candidates
    for candidate in candidates:
        changed = [
            (a, b) for a, b in zip(case.graph.nodes, candidate.graph.nodes, strict=False) if a.attrs != b.attrs
        ]
        assert len(changed) == 1
        before, after = changed[0]
        assert len(set(before.attrs) ^ set(after.attrs)) == 2  # one (name, value) pair replaced


def test_cut_inputs_are_fresh_identifiers_and_cuts_removing_most_come_first():
    for seed in range(30):
        case = generate_case(seed, "tf2onnx", max_nodes=8)
        old_names = {i.name for i in case.graph.inputs} | set(infer_types(case.graph))
        sizes = []
        for candidate in pass_candidates("cut", case):
            new = [i for i in candidate.graph.inputs if i.name not in old_names]
            assert len(new) == 1 and IDENTIFIER.match(new[0].name) and new[0].name.startswith("x")
            assert {n.name for n in candidate.graph.nodes} <= {n.name for n in case.graph.nodes}
            sizes.append(len(candidate.graph.nodes))
        assert sizes == sorted(sizes) and all(size < len(case.graph.nodes) for size in sizes)


# --- every candidate is valid ------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(data=st.data(), frontend=st.sampled_from(["torch", "keras"]))
def test_every_pass_yields_only_valid_smaller_candidates(data, frontend):
    graph = generate_graph(HypothesisChooser(data), frontend, max_nodes=8)
    case = Case(graph, Target("torch-script" if frontend == "torch" else "tf2onnx", 17), data_seed=5)
    for minimizer_pass in PASSES:
        ids = []
        for candidate in minimizer_pass.candidates(case):
            assert_valid_case(candidate)
            assert size_key(candidate) < size_key(case)
            ids.append(candidate.id)
        assert case.id not in ids and len(ids) == len(set(ids))
    for candidate in candidates_near(case):
        infer_types(candidate.graph)
        assert domains_respected(candidate.graph)


@pytest.mark.parametrize("converter", CONVERTERS)
def test_every_candidate_along_a_search_is_valid(converter):
    for seed in range(25):
        seen: list[str] = []
        minimize(generate_case(seed, converter, max_nodes=10), checked_predicate(coin, seen))
        assert seen


def test_candidates_near_change_one_thing_and_keep_names():
    case = generate_case(9, "torch-script", max_nodes=6)
    near = list(candidates_near(case))
    assert near and case.id not in {c.id for c in near}
    for candidate in near:
        assert [n.name for n in candidate.graph.nodes] == [n.name for n in case.graph.nodes]
        assert [i.name for i in candidate.graph.inputs] == [i.name for i in case.graph.inputs]
        assert candidate.graph.outputs == case.graph.outputs



def test_one_change_mutants_are_valid_near_variants_spread_over_the_first_choices():
    """A mutation that does not grow the graph builds only the variant it takes, yet takes one
    of the parent's valid near variants, spread over them, and the same one for the same seed."""
    from fuzzconv.generate import MUTANT_CHOICES, mutate_case

    parent = generate_case(9, "torch-script", max_nodes=6)
    near = {(c.graph, c.data_mode, c.data_seed) for c in islice(candidates_near(parent), MUTANT_CHOICES)}
    children = []
    for seed in range(400):
        child = mutate_case(parent, seed, max_nodes=len(parent.graph.nodes))  # full: never grows
        infer_types(child.graph)  # valid
        assert child == mutate_case(parent, seed, max_nodes=len(parent.graph.nodes))
        children.append(child)
    # every child is one of the near variants (a data-seed variant keeps the parent's graph and
    # mode; every child takes its own seed for its data)
    choices = {(graph, mode) for graph, mode, _ in near}
    taken = {(c.graph, c.data_mode) for c in children}
    assert taken <= choices
    assert len(choices) > 10 and len(taken) >= 0.9 * len(choices)

# --- search behaviour --------------------------------------------------------------------


def test_two_runs_give_the_same_result_and_calls():
    case = generate_case(17, "tf2onnx", max_nodes=10)
    first_calls: list[str] = []
    second_calls: list[str] = []
    first = minimize(case, checked_predicate(coin, first_calls))
    second = minimize(case, checked_predicate(coin, second_calls))
    assert first.minimized == second.minimized
    assert first.calls == second.calls == len(first_calls)
    assert first_calls == second_calls
    assert [(p.name, p.calls, p.accepted) for p in first.passes] == [(p.name, p.calls, p.accepted) for p in second.passes]


@pytest.mark.parametrize("seed", range(8))
def test_never_calls_twice_on_one_case_nor_on_the_original(seed):
    case = generate_case(seed, "torch-script", max_nodes=10)
    seen: list[str] = []
    result = minimize(case, checked_predicate(coin, seen))
    assert len(seen) == len(set(seen)) == result.calls
    assert case.id not in seen
    assert sum(p.calls for p in result.passes) == result.calls


def test_call_budget_is_respected():
    case = generate_case(4, "torch-script", max_nodes=10)
    seen: list[str] = []
    result = minimize(case, checked_predicate(lambda c: False, seen), max_calls=5)
    assert result.calls == len(seen) == 5
    assert result.budget_exhausted
    assert result.minimized == case


def test_time_budget_is_respected():
    case = generate_case(4, "torch-script", max_nodes=10)
    seen: list[str] = []
    result = minimize(case, checked_predicate(coin, seen), budget_s=0.0)
    assert result.calls == 0 and not seen
    assert result.budget_exhausted and result.minimized == case


def test_original_is_returned_when_nothing_smaller_keeps_the_bug():
    case = generate_case(21, "tf2onnx", max_nodes=8)
    progress: list[str] = []
    result = minimize(case, lambda c: False, max_calls=10_000, on_progress=progress.append)
    assert result.minimized is case and result.original is case
    assert not result.budget_exhausted
    assert result.calls > 0
    assert [p.name for p in result.passes] == [p.name for p in PASSES]  # one round, nothing accepted
    assert all(p.accepted == 0 and p.nodes_before == p.nodes_after for p in result.passes)
    assert progress and progress[-1].startswith("done")


def test_reports_follow_the_passes_round_after_round():
    case = generate_case(2, "torch-script", max_nodes=8)
    result = minimize(case, coin)
    names = [p.name for p in result.passes]
    order = [p.name for p in PASSES]
    assert names == (order * len(names))[: len(names)]
    assert result.passes[0].nodes_before == len(case.graph.nodes)
    assert result.passes[-1].nodes_after == len(result.minimized.graph.nodes)
    assert not result.budget_exhausted and len(names) % len(order) == 0
    assert all(p.accepted == 0 for p in result.passes[-len(order):])  # the last round changed nothing


def test_an_invalid_case_is_refused():
    case = generate_case(1, "torch-script", max_nodes=4)
    broken = replace(case, graph=replace(case.graph, outputs=("nowhere",)))
    with pytest.raises(CaseError):
        minimize(broken, lambda c: True)
