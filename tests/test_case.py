"""The core records: JSON round trip, content ids, and case files as pure data."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzconv.case import Case, CaseError, Target
from fuzzconv.generate import HypothesisChooser, generate_case, generate_graph
from fuzzconv.graphcheck import load_case_text


@settings(max_examples=60, deadline=None)
@given(data=st.data(), frontend=st.sampled_from(["torch", "keras"]), seed=st.integers(0, 2**31 - 1))
def test_case_json_round_trip(data, frontend, seed):
    graph = generate_graph(HypothesisChooser(data), frontend, max_nodes=6)
    converter = "torch-script" if frontend == "torch" else "tf2onnx"
    case = Case(graph, Target(converter, 17), seed)
    again = Case.loads(case.dumps())
    assert again == case
    assert again.id == case.id
    # the canonical text a worker sends is what the parent would have made of the case
    received = Case.from_canonical(case.canonical_text)
    assert received == case and received.id == case.id
    assert Case.loads(case.canonical_text).canonical_text == case.canonical_text
    load_case_text(case.dumps())  # a generated case passes the full registry check


@pytest.mark.parametrize("converter", ["torch-script", "tf2onnx"])
def test_generated_cases_load_as_case_files(converter):
    """Every generated case is one a case file may hold. Seed 27815 once gave torch-script an
    input shaped like a flattened intermediate (4284 > MAX_DIM), which a campaign's parent could
    not load back from its worker."""
    for seed in [27815, *range(2000)]:
        case = generate_case(seed, converter, 8)
        assert Case.from_json(json.loads(case.dumps())) == case, seed


def test_id_is_content_hash():
    case = generate_case(5, "torch-script")
    other_seed = Case(case.graph, case.target, case.data_seed + 1)
    assert case.id == generate_case(5, "torch-script").id
    assert case.id != other_seed.id
    assert len(case.id) == 16


def _crafted(mutate):
    data = generate_case(11, "torch-script").to_json()
    mutate(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["graph"]["nodes"][0].__setitem__("op", "__import__('os').system"), "graph.nodes[0].op"),
        (lambda d: d["graph"]["nodes"][0].__setitem__("name", "n0=1;import os"), "graph.nodes[0].name"),
        (lambda d: d["graph"]["inputs"][0].__setitem__("name", "x0):\n    import os#"), "graph.inputs[0].name"),
        (lambda d: d["graph"]["nodes"][0]["attrs"].__setitem__("evil", "__import__('os').system('id')"),
         "string attributes are short plain words"),
        (lambda d: d["graph"]["nodes"][0]["attrs"].__setitem__("extra", 1), "do not match the declared"),
        (lambda d: d["graph"]["nodes"][0].__setitem__("op", "no_such_op"), "unknown operator"),
        (lambda d: d.__setitem__("schema", 99), "schema"),
        (lambda d: d["target"].__setitem__("converter", "tf2onx"), "choose from"),
        (lambda d: d["graph"]["inputs"][0].__setitem__("shape", [10**9]), "sizes are integers"),
    ],
)
def test_crafted_case_is_refused(mutate, message):
    with pytest.raises(CaseError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        load_case_text(_crafted(mutate))


def test_attribute_outside_its_domain_is_refused():
    case = generate_case(0, "torch-script")
    data = case.to_json()
    data["graph"]["nodes"] = [{"name": "n0", "op": "softmax", "args": [data["graph"]["inputs"][0]["name"]],
                               "attrs": {"axis": 40}}]
    data["graph"]["inputs"] = [{"name": data["graph"]["inputs"][0]["name"], "shape": [2, 3], "dtype": "float32"}]
    data["graph"]["outputs"] = ["n0"]
    with pytest.raises(CaseError, match="attribute axis=40 is invalid"):
        load_case_text(json.dumps(data))


def test_not_json_is_refused():
    with pytest.raises(CaseError, match="not JSON"):
        load_case_text("{not json")


@pytest.mark.parametrize("converter", ["torch-script", "tf2onnx"])
def test_the_walk_the_generator_hands_over_is_the_one_a_case_file_gets(converter):
    """The generator checks each node as it adds it and hands that walk to graphcheck, so the
    pipeline does not walk a new case again: it must be the walk a loaded case gets, in order
    (a mutant's builder lists tensors in the walk's order)."""
    from fuzzconv.generate import mutate_case
    from fuzzconv.graphcheck import _checked_walk, _walk

    def ordered(walk):
        types, outputs_of = walk
        return list(types.items()), list(outputs_of.items())

    for seed in range(150):
        case = generate_case(seed, converter, 8)
        for made in (case, mutate_case(case, seed + 1)):
            assert ordered(_walk(made.graph)) == ordered(_checked_walk(made.graph)), seed


def test_a_walk_handed_over_that_does_not_match_its_graph_is_refused():
    from fuzzconv.graphcheck import _checked_walk, built_checked

    graph = generate_case(4, "torch-script", 6).graph
    types, outputs_of = _checked_walk(graph)
    made_by = {name: node for node in graph.nodes for name in outputs_of[node.name]}
    built_checked(graph, types, made_by)  # the true walk is taken
    missing = dict(types)
    missing.pop(next(iter(made_by)))
    with pytest.raises(CaseError):
        built_checked(graph, missing, made_by)
    with pytest.raises(CaseError):
        built_checked(graph, {**types, "stray": next(iter(types.values()))}, made_by)


def test_a_choice_attribute_tells_true_from_1_and_1_0_from_1():
    from fuzzconv.ops.spec import Choice

    def choice(*options):
        return Choice(lambda ctx: options)

    assert choice(1, 2, 3).problem(2, None) is None
    assert choice(1, 2, 3).problem(True, None) is not None
    assert choice(True, False).problem(1, None) is not None
    assert choice(1.0, 2).problem(1, None) is not None
    assert choice(1.0, 1).problem(1, None) is None  # an equal option of the value's own type, further on
    assert choice((1, 2), (2, 2)).problem((2, 2), None) is None
    assert choice((1, 2)).problem((2, 1), None) is not None
