"""The core records: Case (what to run) and Outcome (what happened), with their JSON form.

A Case is data and only data. Models, ONNX bytes and arrays are derived from it, never stored
in it. Its id is a hash of its canonical JSON, so the same case always has the same id.
Loading a case checks every field's type and every identifier here; checking operator names,
attributes and shapes against the registry is `fuzzconv.graphcheck`'s job.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

SCHEMA_VERSION = 1

FRONTENDS = ("torch", "keras")
CONVERTER_FRONTEND = {
    "torch-dynamo": "torch",
    "torch-script": "torch",
    "tf2onnx": "keras",
    "keras-export": "keras",
}
CONVERTERS = tuple(CONVERTER_FRONTEND)
# ONNX opsets each converter accepts here (tf2onnx refuses above 18; torch's TorchScript
# exporter above 23). `--opset` sweeps are cut to these ranges.
CONVERTER_OPSETS = {
    "torch-dynamo": (7, 23),
    "torch-script": (7, 23),
    "tf2onnx": (7, 18),
    "keras-export": (7, 18),
}
DTYPES = ("float32", "float64", "float16", "int32", "int64", "bool")

STATUSES = ("pass", "finding", "invalid", "environment")
STAGES = (
    "source",
    "capture",
    "conversion",
    "optimization",
    "serialization",
    "validation",
    "runtime-load",
    "runtime-optimization",
    "runtime-kernel",
    "environment",
)
SYMPTOMS = ("crash", "invalid-model", "wrong-model", "hang", "abort")
# How input values are drawn, from the richest to the simplest: "edge" adds the values real
# data hits (signed zeros, extremes, infinities, ties) to "random"; the minimizer walks down
# the list. Each mode keeps every input inside its consumer's value domain.
DATA_MODES = ("edge", "random", "small-int", "ones", "zeros")

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
MAX_NODES = 256
MAX_DIM = 4096
MAX_RANK = 6

AttrValue = int | float | bool | str | tuple[int, ...]


class CaseError(ValueError):
    """A case file or case JSON that is not a valid case; the message says what and where."""


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def readable_json(value: Any, depth: int = 0) -> str:
    """JSON with sorted keys, an object's members on lines of their own down to lists, and each
    element of a list of objects on one line: nested no deeper than a case needs."""
    pad = " " * (depth + 1)
    if isinstance(value, dict) and value:
        members = ",\n".join(f"{pad}{json.dumps(key)}: {readable_json(value[key], depth + 1)}" for key in sorted(value))
        return "{\n" + members + "\n" + " " * depth + "}"
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        items = ",\n".join(pad + json.dumps(item, sort_keys=True, allow_nan=False) for item in value)
        return "[\n" + items + "\n" + " " * depth + "]"
    return json.dumps(value, sort_keys=True, allow_nan=False)


def content_id(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.shape)

    def to_json(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype}

    @staticmethod
    def from_json(data: Any, where: str) -> TensorType:
        obj = _expect_dict(data, where, {"shape", "dtype"})
        shape = obj["shape"]
        if not isinstance(shape, list) or len(shape) > MAX_RANK:
            raise CaseError(f"{where}.shape must be a list of at most {MAX_RANK} sizes")
        for dim in shape:
            if not _is_int(dim) or not 0 <= dim <= MAX_DIM:
                raise CaseError(f"{where}.shape has {dim!r}; sizes are integers in 0..{MAX_DIM}")
        dtype = _expect_choice(obj["dtype"], DTYPES, f"{where}.dtype")
        return TensorType(tuple(shape), dtype)


@dataclass(frozen=True)
class GraphInput:
    name: str
    type: TensorType


@dataclass(frozen=True)
class Node:
    """One operator application. `args` name graph inputs or earlier nodes' outputs."""

    name: str
    op: str
    args: tuple[str, ...]
    attrs: tuple[tuple[str, AttrValue], ...] = ()

    @property
    def attr(self) -> dict[str, AttrValue]:
        return dict(self.attrs)

    def output_names(self, count: int) -> tuple[str, ...]:
        if count == 1:
            return (self.name,)
        return tuple(f"{self.name}_{i}" for i in range(count))


@dataclass(frozen=True)
class Graph:
    frontend: str
    inputs: tuple[GraphInput, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def op_sequence(self) -> tuple[str, ...]:
        return tuple(node.op for node in self.nodes)


@dataclass(frozen=True)
class Target:
    """Where a graph is sent: frontend, converter, ONNX opset and converter options."""

    converter: str
    opset: int = 17
    options: tuple[tuple[str, AttrValue], ...] = ()

    @property
    def frontend(self) -> str:
        return CONVERTER_FRONTEND[self.converter]

    @property
    def option(self) -> dict[str, AttrValue]:
        return dict(self.options)


@dataclass(frozen=True)
class Case:
    graph: Graph
    target: Target
    data_seed: int
    data_mode: str = "random"

    @cached_property
    def canonical_text(self) -> str:
        """The canonical JSON text (sorted keys, no spaces), computed once per (immutable) case;
        what the campaign database and corpus files hold, and what the id hashes."""
        return canonical_json(self.to_json())

    @cached_property
    def id(self) -> str:
        """The hash of the canonical JSON, computed once per (immutable) case."""
        return hashlib.sha256(self.canonical_text.encode()).hexdigest()[:16]

    @staticmethod
    def from_canonical(text: str) -> Case:
        """The case of a canonical JSON text (checked like any case file), keeping the text."""
        case = Case.loads(text)
        case.__dict__["canonical_text"] = text  # what cached_property would store, without re-encoding
        return case

    def with_target(self, target: Target) -> Case:
        return Case(self.graph, target, self.data_seed, self.data_mode)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "graph": _graph_to_json(self.graph),
            "target": {
                "converter": self.target.converter,
                "opset": self.target.opset,
                "options": _attrs_to_json(self.target.options),
            },
            "data_seed": self.data_seed,
            "data_mode": self.data_mode,
        }

    def dumps(self) -> str:
        """The case as people read it (crashes/, reports): one input or node per line, keys
        sorted. Built from compact pieces, since `json.dumps(indent=...)` takes Python's slow
        encoder and the campaign writes this for every hit's log."""
        return readable_json(self.to_json())

    @staticmethod
    def from_json(data: Any) -> Case:
        if isinstance(data, dict):
            data = {"data_mode": "random", **data}
        obj = _expect_dict(data, "case", {"schema", "graph", "target", "data_seed", "data_mode"})
        if obj["schema"] != SCHEMA_VERSION:
            raise CaseError(
                f"case schema {obj['schema']!r} is not supported; this fuzzconv reads schema {SCHEMA_VERSION}"
            )
        target = _target_from_json(obj["target"])
        graph = _graph_from_json(obj["graph"])
        if graph.frontend != target.frontend:
            raise CaseError(
                f"case.graph.frontend is {graph.frontend!r} but converter {target.converter!r} "
                f"takes {target.frontend!r} graphs"
            )
        seed = obj["data_seed"]
        if not _is_int(seed) or not 0 <= seed < 2**63:
            raise CaseError("case.data_seed must be a non-negative integer below 2**63")
        return Case(graph, target, seed, _expect_choice(obj["data_mode"], DATA_MODES, "case.data_mode"))

    @staticmethod
    def loads(text: str) -> Case:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CaseError(f"not JSON: {exc}") from None
        return Case.from_json(data)


@dataclass(frozen=True)
class OutputDiff:
    """How one converted output compared with the source's. A result, never an exception."""

    name: str
    shape_ok: bool
    dtype_ok: bool
    nonfinite_ok: bool
    max_abs_err: float
    required_tol: float
    tolerance: float
    ok: bool
    expected_shape: tuple[int, ...] = ()
    actual_shape: tuple[int, ...] = ()
    expected_dtype: str = ""
    actual_dtype: str = ""
    # Distance from the float64 reference of the source (-1 when it was not consulted).
    source_ref_err: float = -1.0
    converted_ref_err: float = -1.0


@dataclass(frozen=True)
class Outcome:
    case_id: str
    status: str
    stage: str = ""
    symptom: str = ""
    title: str = ""
    message: str = ""
    decided_by: str = ""
    diffs: tuple[OutputDiff, ...] = ()
    versions: tuple[tuple[str, str], ...] = ()
    timings: tuple[tuple[str, float], ...] = ()
    onnx_ops: tuple[str, ...] = ()
    log_tail: str = ""
    onnx_keys: tuple[str, ...] = ()  # coverage of the converted graph (see fuzzconv.coverage)

    @property
    def is_finding(self) -> bool:
        return self.status == "finding"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "case_id": self.case_id,
            "status": self.status,
            "stage": self.stage,
            "symptom": self.symptom,
            "title": self.title,
            "message": self.message,
            "decided_by": self.decided_by,
            "diffs": [_diff_to_json(d) for d in self.diffs],
            "versions": dict(self.versions),
            "timings": {k: round(v, 6) for k, v in self.timings},
            "onnx_ops": list(self.onnx_ops),
            "onnx_keys": list(self.onnx_keys),
            "log_tail": self.log_tail,
        }

    @staticmethod
    def from_json(data: Any) -> Outcome:
        obj = _expect_dict(data, "outcome", None)
        return Outcome(
            case_id=str(obj["case_id"]),
            status=_expect_choice(obj["status"], STATUSES, "outcome.status"),
            stage=str(obj.get("stage", "")),
            symptom=str(obj.get("symptom", "")),
            title=str(obj.get("title", "")),
            message=str(obj.get("message", "")),
            decided_by=str(obj.get("decided_by", "")),
            diffs=tuple(_diff_from_json(d) for d in obj.get("diffs", [])),
            versions=tuple(sorted((str(k), str(v)) for k, v in obj.get("versions", {}).items())),
            timings=tuple((str(k), float(v)) for k, v in obj.get("timings", {}).items()),
            onnx_ops=tuple(str(op) for op in obj.get("onnx_ops", [])),
            onnx_keys=tuple(str(key) for key in obj.get("onnx_keys", [])),
            log_tail=str(obj.get("log_tail", "")),
        )


# --- JSON helpers -----------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _expect_dict(data: Any, where: str, keys: set[str] | None) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise CaseError(f"{where} must be a JSON object, got {type(data).__name__}")
    if keys is not None:
        missing = keys - data.keys()
        extra = data.keys() - keys
        if missing:
            raise CaseError(f"{where} is missing {sorted(missing)}")
        if extra:
            raise CaseError(f"{where} has unknown fields {sorted(extra)}; expected {sorted(keys)}")
    return data


def _expect_choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise CaseError(f"{where} is {value!r}; choose from: {', '.join(choices)}")
    return str(value)


def _expect_identifier(value: Any, where: str) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise CaseError(
            f"{where} is {value!r}; names are lower-case identifiers matching {IDENTIFIER.pattern}"
        )
    return value


def _attr_from_json(value: Any, where: str) -> AttrValue:
    if isinstance(value, bool) or _is_int(value):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CaseError(f"{where} must be finite")
        return value
    if isinstance(value, str):
        if not re.match(r"^[A-Za-z0-9_.,\->]{0,40}$", value):
            raise CaseError(f"{where} is {value!r}; string attributes are short plain words (letters, digits, _ . , - >)")
        return value
    if isinstance(value, list) and all(_is_int(v) for v in value) and len(value) <= 16:
        return tuple(value)
    raise CaseError(f"{where} has unsupported value {value!r}; use a number, bool, word or list of ints")


def _attrs_from_json(data: Any, where: str) -> tuple[tuple[str, AttrValue], ...]:
    obj = _expect_dict(data, where, None)
    return tuple(
        (_expect_identifier(k, f"{where} key"), _attr_from_json(v, f"{where}.{k}"))
        for k, v in sorted(obj.items())
    )


def _attrs_to_json(attrs: tuple[tuple[str, AttrValue], ...]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs}


def _graph_to_json(graph: Graph) -> dict[str, Any]:
    return {
        "frontend": graph.frontend,
        "inputs": [{"name": i.name, **i.type.to_json()} for i in graph.inputs],
        "nodes": [
            {"name": n.name, "op": n.op, "args": list(n.args), "attrs": _attrs_to_json(n.attrs)}
            for n in graph.nodes
        ],
        "outputs": list(graph.outputs),
    }


def _graph_from_json(data: Any) -> Graph:
    obj = _expect_dict(data, "graph", {"frontend", "inputs", "nodes", "outputs"})
    frontend = _expect_choice(obj["frontend"], FRONTENDS, "graph.frontend")
    for key in ("inputs", "nodes", "outputs"):
        if not isinstance(obj[key], list):
            raise CaseError(f"graph.{key} must be a list")
    if len(obj["nodes"]) > MAX_NODES:
        raise CaseError(f"graph has {len(obj['nodes'])} nodes; at most {MAX_NODES} are allowed")
    inputs = tuple(_input_from_json(v, f"graph.inputs[{i}]") for i, v in enumerate(obj["inputs"]))
    nodes = tuple(_node_from_json(v, f"graph.nodes[{i}]") for i, v in enumerate(obj["nodes"]))
    outputs = tuple(_expect_identifier(v, f"graph.outputs[{i}]") for i, v in enumerate(obj["outputs"]))
    return Graph(frontend, inputs, nodes, outputs)


def _input_from_json(data: Any, where: str) -> GraphInput:
    obj = _expect_dict(data, where, {"name", "shape", "dtype"})
    name = _expect_identifier(obj["name"], f"{where}.name")
    return GraphInput(name, TensorType.from_json({"shape": obj["shape"], "dtype": obj["dtype"]}, where))


def _node_from_json(data: Any, where: str) -> Node:
    obj = _expect_dict(data, where, {"name", "op", "args", "attrs"})
    if not isinstance(obj["args"], list):
        raise CaseError(f"{where}.args must be a list of tensor names")
    return Node(
        name=_expect_identifier(obj["name"], f"{where}.name"),
        op=_expect_identifier(obj["op"], f"{where}.op"),
        args=tuple(_expect_identifier(a, f"{where}.args") for a in obj["args"]),
        attrs=_attrs_from_json(obj["attrs"], f"{where}.attrs"),
    )


def _target_from_json(data: Any) -> Target:
    obj = _expect_dict(data, "target", {"converter", "opset", "options"})
    converter = _expect_choice(obj["converter"], CONVERTERS, "target.converter")
    opset = obj["opset"]
    if not _is_int(opset) or not 7 <= opset <= 25:
        raise CaseError(f"target.opset is {opset!r}; use an integer ONNX opset in 7..25")
    return Target(converter, opset, _attrs_from_json(obj["options"], "target.options"))


def _diff_to_json(diff: OutputDiff) -> dict[str, Any]:
    out = dict(diff.__dict__)
    out["expected_shape"] = list(diff.expected_shape)
    out["actual_shape"] = list(diff.actual_shape)
    for key in ("max_abs_err", "required_tol", "tolerance", "source_ref_err", "converted_ref_err"):
        value = out[key]
        out[key] = value if value == value and abs(value) != float("inf") else repr(value)
    return out


def _diff_from_json(data: Any) -> OutputDiff:
    obj = dict(_expect_dict(data, "outcome.diffs[]", None))
    for key in ("max_abs_err", "required_tol", "tolerance", "source_ref_err", "converted_ref_err"):
        if key in obj:
            obj[key] = float(obj[key])
    obj["expected_shape"] = tuple(obj.get("expected_shape", ()))
    obj["actual_shape"] = tuple(obj.get("actual_shape", ()))
    return OutputDiff(**obj)


__all__ = [
    "AttrValue",
    "Case",
    "CaseError",
    "Graph",
    "GraphInput",
    "Node",
    "Outcome",
    "OutputDiff",
    "Target",
    "TensorType",
    "canonical_json",
    "content_id",
]
