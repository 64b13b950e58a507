"""Architectural coverage keys of a run, on the source graph and on the converted ONNX graph.

Kinds (the prefix of each key):
- `op`, `edge`, `ngram3`, `ngram4`: operators, producer>consumer pairs, and operator n-grams
  along input-to-output paths of the source graph, per frontend;
- `attr`: an operator's attribute value, binned; `dtype-rank`: an operator's first argument;
- `onnx`, `onnx-edge`, `onnx-ngram3`, `onnx-ngram4`: the same for the converted ONNX graph, per converter
  (computed in the worker from the model, carried in `Outcome.onnx_keys`).
The universes of `op` and `edge` come from the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fuzzconv import ops
from fuzzconv.case import AttrValue, Case, Graph, Outcome
from fuzzconv.graphcheck import typed_producers

NGRAM_LENGTHS = (3, 4)
# What a run's coverage keys mean, stored with each run's config. 2: n-grams follow node paths.
# 1 (runs that stored no version): they were made from operator pairs, so they also held
# sequences no path of the graph holds; fuzzconv.analyze rebuilds those runs' source n-grams.
KEYS_VERSION = 2
KINDS = ("op", "edge", "ngram3", "ngram4", "attr", "dtype-rank", "onnx", "onnx-edge", "onnx-ngram3", "onnx-ngram4")
# The kinds whose new keys earn a passing case a corpus file. Almost every case still reaches
# some new 3- or 4-gram after hours (in a 4-minute two-worker torch-script campaign, 3 of 4
# cases of the last minute did), which would make corpus/ millions of files a day; new
# operators, pairs, attribute bins, dtype/ranks and ONNX ops and pairs grow ever rarer.
CORPUS_KINDS = frozenset({"op", "edge", "attr", "dtype-rank", "onnx", "onnx-edge"})


def earns_corpus_file(new_keys: Iterable[str]) -> bool:
    return any(key.partition(":")[0] in CORPUS_KINDS for key in new_keys)


def coverage_keys(case: Case, outcome: Outcome | None) -> set[str]:
    graph = case.graph
    keys = source_keys(graph)
    if outcome is not None:
        converter = case.target.converter
        keys.update(f"onnx:{converter}:{op}" for op in outcome.onnx_ops)
        keys.update(scoped_onnx_keys(converter, outcome.onnx_keys))
    return keys


ONNX_GRAPH_KINDS = ("onnx-edge", "onnx-ngram3", "onnx-ngram4")  # the kinds of Outcome.onnx_keys


def scoped_onnx_keys(converter: str, onnx_keys: Iterable[str]) -> set[str]:
    """`Outcome.onnx_keys` as coverage keys of `converter` (kind:ops -> kind:converter:ops)."""
    return {f"{kind}:{converter}:{rest}" for kind, _, rest in (key.partition(":") for key in onnx_keys)}


def onnx_keys_from(keys: Iterable[str]) -> tuple[str, ...]:
    """`Outcome.onnx_keys` back from the case's coverage keys (kind:converter:ops -> kind:ops)."""
    return tuple(sorted({f"{kind}:{key.split(':', 2)[2]}" for key in keys
                         if (kind := key.partition(":")[0]) in ONNX_GRAPH_KINDS}))


def source_keys(graph: Graph) -> set[str]:
    frontend = graph.frontend
    keys = {f"op:{frontend}:{node.op}" for node in graph.nodes}
    types, producer = typed_producers(graph)  # one walk serves edges, n-grams and dtype/rank
    position = {node.name: i for i, node in enumerate(graph.nodes)}
    ops = [node.op for node in graph.nodes]
    successors = successors_of([node.args for node in graph.nodes],
                               {name: position[node.name] for name, node in producer.items()})
    keys.update(f"edge:{frontend}:{ops[a]}>{ops[b]}" for a, following in successors.items() for b in following)
    for length, paths in path_ngrams(ops, successors, NGRAM_LENGTHS).items():
        keys.update(f"ngram{length}:{frontend}:{'>'.join(path)}" for path in paths)
    for node in graph.nodes:
        keys.update(f"attr:{frontend}:{node.op}:{name}={attr_bin(value)}" for name, value in node.attrs)
        if node.args:
            first = types[node.args[0]]
            keys.add(f"dtype-rank:{frontend}:{node.op}:{first.dtype}/{first.rank}")
    return keys


def successors_of(inputs: Iterable[Iterable[str]], made_by: dict[str, int]) -> dict[int, set[int]]:
    """For node i (in order, `inputs[i]` the tensors it reads), the nodes that read one of its
    outputs; `made_by` maps each node output to the node that makes it."""
    successors: dict[int, set[int]] = {}
    for i, names in enumerate(inputs):
        for name in names:
            if name in made_by:
                successors.setdefault(made_by[name], set()).add(i)
    return successors


def path_ngrams(ops: Sequence[str], successors: dict[int, set[int]],
                lengths: Iterable[int]) -> dict[int, set[tuple[str, ...]]]:
    """The operator sequences of each length along paths of the graph: `ops[i]` is node i's
    operator, `successors[i]` the nodes that take one of its outputs. Paths are followed node
    by node, not operator by operator: with Add -> Mul -> Add and another Mul -> Relu, the
    operator pairs would also make Mul>Add>Mul and Add>Mul>Relu, sequences no path holds (on
    converted ONNX graphs, where operators repeat, that was a third of the 3-grams and more
    than half of the 4-grams). Each level is a set of (last node, sequence), so a sequence that
    reaches a node along several paths is extended from it once."""
    wanted = sorted(set(lengths))
    level: set[tuple[int, tuple[str, ...]]] = {(i, (op,)) for i, op in enumerate(ops)}
    found: dict[int, set[tuple[str, ...]]] = {}
    for length in range(1, (wanted[-1] if wanted else 0) + 1):
        if length > 1:
            level = {(nxt, (*path, ops[nxt])) for node, path in level for nxt in successors.get(node, ())}
        if length in wanted:
            found[length] = {path for _, path in level}
    return found


def attr_bin(value: AttrValue) -> str:
    """A coarse bin: exact for flags, words and small integers, a class for the rest."""
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, int):
        return str(value) if -2 <= value <= 4 else ("neg" if value < 0 else "big")
    if isinstance(value, float):
        return "0" if value == 0 else "neg" if value < 0 else "lt1" if value < 1 else "ge1"
    return "(" + ",".join(attr_bin(v) for v in value) + ")"


def onnx_graph_keys(model_bytes: bytes | Any) -> tuple[str, ...]:
    """Edge, 3-gram and 4-gram keys of a converted ONNX graph (kind:ops, the converter added later);
    serialized bytes or a parsed onnx.ModelProto."""
    from fuzzconv.execute import onnx_model

    nodes = onnx_model(model_bytes).graph.node
    ops = [node.op_type for node in nodes]
    made_by = {out: i for i, node in enumerate(nodes) for out in node.output if out}  # "": an optional output left out
    successors = successors_of([node.input for node in nodes], made_by)
    keys = {f"onnx-edge:{ops[a]}>{ops[b]}" for a, following in successors.items() for b in following}
    for length, paths in path_ngrams(ops, successors, NGRAM_LENGTHS).items():
        keys.update(f"onnx-ngram{length}:{'>'.join(path)}" for path in paths)
    return tuple(sorted(keys))


def universe(frontend: str) -> dict[str, int]:
    """How many `op` and `edge` keys a frontend could reach, from the registry."""
    count = len(ops.for_frontend(frontend))
    return {"op": count, "edge": count * count}
