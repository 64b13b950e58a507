"""Coverage keys: operator sequences are those of real paths through the graph."""

import json

import pytest

from fuzzconv.case import Case
from fuzzconv.coverage import onnx_graph_keys, source_keys
from fuzzconv.generate import generate_case
from fuzzconv.graphcheck import typed_producers


def _node(name, op, *args):
    return {"args": list(args), "attrs": {}, "name": name, "op": op}


def _source_case(nodes, outputs):
    """A torch case of elementwise float32 operators on one input."""
    return Case.loads(json.dumps({
        "data_mode": "random", "data_seed": 1, "schema": 1,
        "graph": {"frontend": "torch", "inputs": [{"dtype": "float32", "name": "x0", "shape": [2, 3]}],
                  "nodes": nodes, "outputs": outputs},
        "target": {"converter": "torch-script", "opset": 17, "options": {}},
    }))


def _sequences(keys, kind):
    return {key.rsplit(":", 1)[1] for key in keys if key.startswith(kind + ":")}


def test_source_sequences_follow_nodes_not_operator_pairs():
    # add -> mul -> add on one path, mul -> relu on another: the pairs alone would also make
    # mul>add>mul and add>mul>relu, which no path holds.
    case = _source_case([_node("n0", "add", "x0", "x0"), _node("n1", "mul", "n0", "x0"),
                         _node("n2", "add", "n1", "x0"), _node("n3", "mul", "x0", "x0"),
                         _node("n4", "relu", "n3")], ["n2", "n4"])
    keys = source_keys(case.graph)
    assert _sequences(keys, "edge") == {"add>mul", "mul>add", "mul>relu"}
    assert _sequences(keys, "ngram3") == {"add>mul>add"}
    assert _sequences(keys, "ngram4") == set()


def test_onnx_sequences_follow_nodes_and_skip_left_out_optional_outputs():
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Add", ["x", "x"], ["a"]), helper.make_node("Mul", ["a", "x"], ["m"]),
             helper.make_node("Add", ["m", "x"], ["y"]), helper.make_node("Mul", ["x", "x"], ["m2"]),
             helper.make_node("Relu", ["m2"], ["z"]),
             helper.make_node("Dropout", ["z"], ["d", ""]),  # its mask output left out
             helper.make_node("Clip", ["d", "", ""], ["c"])]  # its optional inputs left out
    value = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "g", [value("x", TensorProto.FLOAT, [2])],
                              [value(name, TensorProto.FLOAT, [2]) for name in ("y", "c")])
    keys = onnx_graph_keys(helper.make_model(graph).SerializeToString())
    assert _sequences(keys, "onnx-edge") == {"Add>Mul", "Mul>Add", "Mul>Relu", "Relu>Dropout", "Dropout>Clip"}
    assert _sequences(keys, "onnx-ngram3") == {"Add>Mul>Add", "Mul>Relu>Dropout", "Relu>Dropout>Clip"}
    assert _sequences(keys, "onnx-ngram4") == {"Mul>Relu>Dropout>Clip"}


def _paths(graph, length):
    """Every operator sequence of `length` along node paths, by brute force."""
    _, producer = typed_producers(graph)
    following = {node.name: [] for node in graph.nodes}
    for node in graph.nodes:
        for arg in dict.fromkeys(node.args):
            if arg in producer:
                following[producer[arg].name].append(node)

    def walk(node, left):
        if left == 1:
            yield (node.op,)
            return
        for nxt in following[node.name]:
            for rest in walk(nxt, left - 1):
                yield (node.op, *rest)

    return {">".join(path) for node in graph.nodes for path in walk(node, length)}


@pytest.mark.parametrize("converter", ["torch-script", "tf2onnx"])
def test_generated_graphs_get_exactly_the_sequences_of_their_paths(converter):
    for seed in range(150):
        graph = generate_case(seed, converter, 10).graph
        keys = source_keys(graph)
        for length in (3, 4):
            assert _sequences(keys, f"ngram{length}") == _paths(graph, length), (seed, length)
