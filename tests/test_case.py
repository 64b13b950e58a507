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
