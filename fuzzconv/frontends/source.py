"""Render a checked graph as the Python source of a PyTorch or Keras model.

The source is what a campaign executes and what `repro.py` contains, so a report reproduces
exactly what was tested. It defines `make_model(seed)`, `make_inputs(seed)` and `INPUTS`.
"""

from __future__ import annotations

import inspect
from functools import lru_cache

from fuzzconv import ops
from fuzzconv.case import AttrValue, Graph, Node
from fuzzconv.frontends import datagen
from fuzzconv.graphcheck import Types, infer_types, node_ctx
from fuzzconv.ops.spec import DOMAIN_IMPLIES

INDENT = "    "


def literal(value: AttrValue) -> str:
    return repr(value)


def input_domains(graph: Graph) -> dict[str, str]:
    """The value domain of each graph input: the strictest any of its consumers asks for."""
    strictness = ["any", "nonneg", "positive", "unit", "index"]
    domains = {i.name: "any" for i in graph.inputs}
    for node in graph.nodes:
        for arg_name, arg in zip(node.args, ops.get(node.op).args, strict=True):
            if arg_name in domains and strictness.index(arg.domain) > strictness.index(domains[arg_name]):
                domains[arg_name] = arg.domain
    return domains


def tensor_domains(graph: Graph, types: Types) -> dict[str, str]:
    """The value range each tensor is known to lie in (inputs by domain, nodes by out_range)."""
    ranges = dict(input_domains(graph))
    for node in graph.nodes:
        op = ops.get(node.op)
        outs = op.out_types(node_ctx(node, types, graph.frontend))
        for name in node.output_names(len(outs)):
            ranges[name] = op.out_range
    return ranges


def domain_satisfied(have: str, want: str) -> bool:
    return want in DOMAIN_IMPLIES[have]


def render_node(node: Node, types: Types, frontend: str) -> tuple[str, str]:
    """(module constructor or "", expression) for one node."""
    op = ops.get(node.op)
    impl = op.impl(frontend)
    assert impl is not None
    ctx = node_ctx(node, types, frontend)
    fields = {key: literal(value) for key, value in node.attrs}
    fields["name"] = repr(node.name)
    if impl.derive:
        fields.update(impl.derive(ctx))
    module = impl.module(ctx) if callable(impl.module) else impl.module
    call = impl.call(ctx) if callable(impl.call) else impl.call
    module_code = module.format(*node.args, **fields) if module else ""
    if module and not call:
        return module_code, f"self.{node.name}({', '.join(node.args)})"
    return module_code, call.format(*node.args, **fields)


def _assign(node: Node, types: Types, frontend: str, expr: str) -> str:
    op = ops.get(node.op)
    count = len(op.out_types(node_ctx(node, types, frontend)))
    targets = node.output_names(count)
    if count == 1:
        return f"{targets[0]} = {expr}"
    return f"{', '.join(targets)} = {expr}"


MODEL_MARKER = "# --- the model ---"

# What turns a seed into the model's weights and inputs: the same text for every case of a
# frontend, so it sits before MODEL_MARKER with the data helpers, in the part that is compiled
# once (fuzzconv.frontends.materialize); the model and its INPUTS, after the marker, are the case's own.
_TORCH_MAKERS = f"""def make_model(seed):
{INDENT}model = Model().eval()
{INDENT}rng = np.random.default_rng([seed, 1])
{INDENT}with torch.no_grad():
{INDENT * 2}for name, tensor in model.state_dict().items():
{INDENT * 3}if tensor.is_floating_point():
{INDENT * 4}fan_in = tensor.numel() // max(1, tensor.shape[0]) if tensor.dim() > 1 else 1
{INDENT * 4}values = weight_values(rng, name, tuple(tensor.shape), fan_in)
{INDENT * 4}tensor.copy_(torch.from_numpy(values))
{INDENT}return model"""

_KERAS_MAKERS = f"""def make_model(seed, float_dtype="float32"):
{INDENT}# float_dtype="float64" builds the float64 reference the oracle judges against
{INDENT}keras.config.set_dtype_policy(float_dtype)
{INDENT}try:
{INDENT * 2}model = build_model(float_dtype)
{INDENT}finally:
{INDENT * 2}keras.config.set_dtype_policy("float32")
{INDENT}rng = np.random.default_rng([seed, 1])
{INDENT}values = []
{INDENT}for weight in model.weights:
{INDENT * 2}shape = tuple(weight.shape)
{INDENT * 2}fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
{INDENT * 2}values.append(weight_values(rng, weight.path, shape, fan_in).astype(weight.dtype))
{INDENT}model.set_weights(values)
{INDENT}return model"""

_MAKE_INPUTS = f"""def make_inputs(seed):
{INDENT}rng = np.random.default_rng(seed)
{INDENT}return [draw_array(rng, shape, dtype, domain, DATA_MODE) for _, shape, dtype, domain in INPUTS]"""


@lru_cache(maxsize=2)
def _prelude(frontend: str) -> str:
    """Everything before MODEL_MARKER: imports, data helpers, make_model and make_inputs."""
    helpers = (datagen.draw_array, datagen.with_edge_values, datagen.weight_values)
    makers = _TORCH_MAKERS if frontend == "torch" else _KERAS_MAKERS
    return "\n".join([
        "import numpy as np",
        "import torch" if frontend == "torch" else "import keras",
        "",
        "",
        "\n\n".join(inspect.getsource(f) for f in helpers),
        "",
        makers,
        "",
        "",
        _MAKE_INPUTS,
        "",
        "",
        MODEL_MARKER,
    ])


def _inputs_block(graph: Graph, data_mode: str) -> str:
    domains = input_domains(graph)
    rows = [
        f"{INDENT}({i.name!r}, {i.type.shape!r}, {i.type.dtype!r}, {domains[i.name]!r}),"
        for i in graph.inputs
    ]
    return "\n".join(
        [
            f"DATA_MODE = {data_mode!r}",
            "# (name, shape, dtype, value domain) of each model input",
            "INPUTS = [",
            *rows,
            "]",
        ]
    )


def torch_source(graph: Graph, data_mode: str = "random") -> str:
    types = infer_types(graph)
    init_lines, body = [], []
    for node in graph.nodes:
        module, expr = render_node(node, types, "torch")
        if module:
            init_lines.append(f"{INDENT * 2}self.{node.name} = {module}")
        body.append(f"{INDENT * 2}{_assign(node, types, 'torch', expr)}")
    args = ", ".join(["self", *(i.name for i in graph.inputs)])
    outputs = "".join(f"{name}, " for name in graph.outputs)
    return "\n".join(
        [
            _prelude("torch"),
            "",
            "class Model(torch.nn.Module):",
            f"{INDENT}def __init__(self):",
            f"{INDENT * 2}super().__init__()",
            *init_lines,
            "",
            f"{INDENT}def forward({args}):",
            *body,
            f"{INDENT * 2}return ({outputs.rstrip()})",
            "",
            "",
            _inputs_block(graph, data_mode),
            "",
        ]
    )


def keras_source(graph: Graph, data_mode: str = "random") -> str:
    types = infer_types(graph)
    body = []
    for graph_input in graph.inputs:
        shape, dtype = graph_input.type.shape, graph_input.type.dtype
        dtype_code = "float_dtype" if dtype == "float32" else repr(dtype)
        body.append(
            f"{INDENT}{graph_input.name} = keras.Input(shape={tuple(shape[1:])!r}, batch_size={shape[0]}, "
            f"dtype={dtype_code}, name={graph_input.name!r})"
        )
    for node in graph.nodes:
        _, expr = render_node(node, types, "keras")
        body.append(f"{INDENT}{_assign(node, types, 'keras', expr)}")
    inputs = ", ".join(i.name for i in graph.inputs)
    outputs = ", ".join(graph.outputs)
    return "\n".join(
        [
            _prelude("keras"),
            "",
            "def build_model(float_dtype=\"float32\"):",
            *body,
            f"{INDENT}return keras.Model(inputs=[{inputs}], outputs=[{outputs}])",
            "",
            "",
            _inputs_block(graph, data_mode),
            "",
        ]
    )


def model_source(graph: Graph, data_mode: str = "random") -> str:
    if graph.frontend == "torch":
        return torch_source(graph, data_mode)
    return keras_source(graph, data_mode)
