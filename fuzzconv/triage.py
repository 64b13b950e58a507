"""Stages, symptoms and bucket titles.

A crash's stage comes from its exception type, message markers and the module paths of the
innermost frames outside fuzzconv (the whole cause chain is read), and from what the
converter logged. Titles are stable one-line strings with numbers, names and shapes masked.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

CONVERTER_LABEL = {
    "torch-dynamo": "torch/dynamo",
    "torch-script": "torch/script",
    "tf2onnx": "keras/tf2onnx",
    "keras-export": "keras/export",
}


@dataclass(frozen=True)
class CrashInfo:
    """What is kept of an exception: enough to attribute it and to title it."""

    exc_type: str
    message: str
    modules: tuple[str, ...]  # innermost last, fuzzconv's own frames removed
    chain_types: tuple[str, ...]
    innermost_message: str = ""


def crash_info(exc: BaseException) -> CrashInfo:
    modules: list[str] = []
    types: list[str] = []
    messages: list[str] = []
    for link in _chain(exc):
        types.append(type(link).__name__)
        messages.append(str(link))
        for frame, _ in traceback.walk_tb(link.__traceback__):  # file names only: no source lines read
            filename = frame.f_code.co_filename
            if "/fuzzconv/" not in filename and "<fuzzconv-model>" not in filename:
                modules.append(filename.replace("\\", "/"))
    innermost = _innermost_exception(exc)
    return CrashInfo(
        exc_type=type(innermost).__name__,
        message="\n".join(messages),
        modules=tuple(modules),
        chain_types=tuple(types),
        innermost_message=str(innermost),
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _innermost_exception(exc: BaseException) -> BaseException:
    *_, last = _chain(exc)
    # A wrapper such as ConversionError names the stage; its cause names the failure.
    return last


# --- stage rules per converter ----------------------------------------------------------------

# (pattern on module path, stage), first match from the innermost frame outwards wins.
PATH_RULES = {
    "torch-dynamo": (
        (r"onnxscript/optimizer|onnxscript/rewriter|onnx_ir/passes|_internal/exporter/_optimize", "optimization"),
        (r"onnxscript/version_converter", "serialization"),
        (r"onnx_ir/serde|onnx_ir/_protocols|_onnx_program\.py", "serialization"),
        (r"onnxscript/function_libs|_internal/exporter/_core\.py|_internal/exporter/_building|"
         r"_internal/exporter/_dispatching", "conversion"),
        (r"torch/export|torch/_dynamo|torch/_export|torch/fx/experimental|_internal/exporter/_capture", "capture"),
    ),
    "torch-script": (
        (r"torch/jit/_trace|torch/jit/", "capture"),
        (r"symbolic_opset|symbolic_helper|torchscript_exporter/symbolic", "conversion"),
        (r"torchscript_exporter/utils\.py|torch/onnx/utils\.py", "conversion"),
    ),
    "tf2onnx": (
        (r"tf2onnx/optimizer/", "optimization"),
        (r"tf2onnx/onnx_opset/|tf2onnx/tfonnx|tf2onnx/rewriter/|tf2onnx/handler", "conversion"),
        (r"tf2onnx/graph\.py|tf2onnx/utils\.py|google/protobuf", "serialization"),
        (r"tf2onnx/tf_loader|tf2onnx/tf_utils|tensorflow/|keras/", "capture"),
    ),
}
PATH_RULES["keras-export"] = (
    (r"keras/src/export/", "capture"),
    *PATH_RULES["tf2onnx"],
)

MESSAGE_RULES = {
    "torch-dynamo": (
        (r"TorchExportError|step 1/3|Failed to export the model with torch\.export", "capture"),
        (r"step 2/3|decompos", "conversion"),
        (r"step 3/3|DispatchError|GraphConstructionError|No decompositions registered", "conversion"),
    ),
    "torch-script": (
        (r"UnsupportedOperatorError|SymbolicValueError|is not supported|Unsupported", "conversion"),
        (r"constant.?fold", "optimization"),
        (r"_export_onnx|serializ|protobuf", "serialization"),
        (r"TracerWarning|jit trace|tracing", "capture"),
    ),
    "tf2onnx": (),
    "keras-export": (),
}


def crash_stage(converter: str, info: CrashInfo) -> tuple[str, str]:
    """(stage, how it was decided) for an exception raised while converting."""
    for pattern, stage in MESSAGE_RULES[converter]:
        if re.search(pattern, " ".join(info.chain_types) + "\n" + info.message[:4000]):
            return stage, f"message marker /{pattern.split('|')[0]}/"
    for module in reversed(info.modules):
        for pattern, stage in PATH_RULES[converter]:
            if re.search(pattern, module):
                return stage, f"innermost frame in {_short_path(module)}"
    return "conversion", "no stage marker; conversion by default"


def _short_path(path: str) -> str:
    marker = path.rfind("site-packages/")
    return path[marker + len("site-packages/"):] if marker >= 0 else path.rsplit("/", 2)[-1]


# --- logged failures (tf2onnx logs instead of raising) -------------------------------------

UNSUPPORTED_OP = re.compile(r"Tensorflow op \[[^\]]*?:\s*(\w+)\] is not supported")
FAILED_NODE = re.compile(r"Failed to convert node \S+ \(fct=.*?\)|Failed to convert node.*?\((\w+)\)")
FAILED_OPTIMIZER = re.compile(r"Failed to apply (\w+)")


@dataclass(frozen=True)
class LoggedFailure:
    stage: str
    detail: str
    evidence: str


def logged_failure(log: str) -> LoggedFailure | None:
    """A failure the converter only logged, or None."""
    match = UNSUPPORTED_OP.search(log)
    if match:
        return LoggedFailure("conversion", f"unsupported TF op {match.group(1)}", match.group(0))
    match = re.search(r"Failed to convert node.*", log)
    if match:
        op = re.search(r"op_type=(\w+)|\((\w+)\)", match.group(0))
        name = next((g for g in (op.groups() if op else ()) if g), "a node")
        return LoggedFailure("conversion", f"failed to convert {name}", match.group(0))
    match = FAILED_OPTIMIZER.search(log)
    if match:
        return LoggedFailure("optimization", f"optimizer {match.group(1)} failed", match.group(0))
    return None


# --- titles ------------------------------------------------------------------------------------

CULPRIT_PATTERNS = (
    r"(aten[.:]{1,2}\w+(?:\.\w+)?)",
    r"while running (\w+) node",
    r"ONNX export of (?:operator )?(\w+(?: pooling)?)",
    r"= onnx::(\w+)\[",
    r"Could not find an implementation for (\w+)",
    r"No Op registered for (\w+)",
    r"Exporting the operator '?([\w:.]+)'? to ONNX",
    r"op_type[=:]\s*'?(\w+)",
    r"Node \(\S*\) Op \((\w+)\)",
    r"\[ShapeInferenceError\].*?\((\w+)\)",
    r"Op \((\w+)\)",
)


def culprit(message: str) -> str:
    for pattern in CULPRIT_PATTERNS:
        match = re.search(pattern, message)
        if match:
            return match.group(1).replace("::", ".")
    return ""


def mask(text: str, limit: int = 72) -> str:
    """One stable line: addresses, numbers, quoted names, shapes and our node names masked."""
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    line = re.sub(r"0x[0-9a-fA-F]+", "ADDR", line)
    line = re.sub(r"'[^']*'|\"[^\"]*\"", "\0", line)
    line = re.sub(r"'[^']*$|\"[^\"]*$", "\0", line).replace("\0", "'…'")
    line = re.sub(r"\b[nx]\d+(_\d+)*\b", "NAME", line)
    line = re.sub(r"[\w./-]*/[\w./-]+", "PATH", line)
    line = re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "N", line)
    line = re.sub(r"[(\[]\s*N?(\s*,\s*N)*\s*,?\s*[)\]]", "SHAPE", line)
    line = re.sub(r"\s+", " ", line)
    return line[:limit].rstrip()


def crash_detail(info: CrashInfo) -> str:
    name = culprit(info.message)
    if name:
        return f"{info.exc_type} in {name}"
    masked = mask(info.innermost_message)
    return f"{info.exc_type}: {masked}" if masked else info.exc_type


def title(converter: str, stage: str, symptom: str, detail: str) -> str:
    return f"{CONVERTER_LABEL[converter]}: {stage}: {symptom}: {detail}"


def invalid_title(frontend: str, info: CrashInfo, op: str) -> str:
    where = f" in {op}" if op else ""
    return f"{frontend}: invalid: {info.exc_type}{where}"
