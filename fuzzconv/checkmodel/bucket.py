"""A failing converter of check-model leaves a bucket like a campaign finding: crashes/<slug>/.

The folder holds title.txt, outcome.json and stats.json as campaign buckets do (stats counts
hits and says `source: check-model`), model.json in place of case.json (a user's model is not a
generated Case), the inputs that showed the failure (inputs.npz), the converted model when one
was emitted, a standalone repro.py that imports the user's file by absolute path, and report.md
with the campaign report's sections.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fuzzconv.case import Outcome, content_id
from fuzzconv.report import CONVERTER_CALL, TRACKERS, expected_vs_actual, tracker
from fuzzconv.repro import CONVERT, IMPORTS, MAIN, RUN_KERAS
from fuzzconv.store import LOG_RING, atomic_write, bucket_slug, now_iso, read_json_object

RUN_TORCH_USER = '''
def run_source(model, inputs):
    with torch.no_grad():
        outputs = model(*(torch.from_numpy(x) for x in inputs))
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    return [o.numpy() for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
'''

LOAD_USER_MODEL = '''
MODEL_FILE = {file!r}
MODEL_FUNC = {func!r}
HERE = os.path.dirname(os.path.abspath(__file__))


def load_user_model():
    """(model, example inputs as numpy arrays) from FUNC in MODEL_FILE, imported by absolute path."""
    spec = importlib.util.spec_from_file_location("user_model", MODEL_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(MODEL_FILE))
    spec.loader.exec_module(module)
    model, examples = getattr(module, MODEL_FUNC)()
    if hasattr(model, "eval") and callable(getattr(model, "parameters", None)):
        model = model.eval()
    examples = [examples] if hasattr(examples, "shape") else list(examples)
    return model, [np.asarray(x.detach().numpy() if hasattr(x, "detach") else x) for x in examples]


def make_model(seed):
    return load_user_model()[0]


def make_inputs(seed):
    """The inputs on which check-model saw the failure, saved beside this script."""
    with np.load(os.path.join(HERE, "inputs.npz")) as archive:
        return [archive[f"arr_{{i}}"] for i in range(len(archive.files))]
'''

TRACE_AT_EXAMPLES = '''
convert_at = convert


def convert(model, inputs):
    """Export at FUNC's own example inputs, as check-model did; the failing inputs are only run."""
    return convert_at(model, load_user_model()[1])
'''


def outcome_of(report: dict[str, Any], result: dict[str, Any]) -> Outcome:
    return Outcome(
        case_id=content_id({"model": report["model"]["spec"], "converter": result["converter"],
                            "opset": result.get("opset")}),
        status=result["status"], stage=result["stage"], symptom=result["symptom"], title=result["title"],
        message=result.get("message", ""), decided_by=result.get("decided_by", ""),
        versions=tuple(sorted(report["versions"].items())), log_tail=result.get("log_tail", ""),
    )


def write_bucket(out: Path, report: dict[str, Any], result: dict[str, Any], inputs: Path) -> Path:
    outcome = outcome_of(report, result)
    folder = out / "crashes" / bucket_slug(outcome.title)
    stats = read_json_object(folder / "stats.json") or {"title": outcome.title, "hits": 0, "first_seen": now_iso(),
                                                   "case_ids": []}
    if not stats["hits"]:
        atomic_write(folder / "title.txt", outcome.title + "\n")
        atomic_write(folder / "outcome.json", json.dumps(outcome.to_json(), indent=1) + "\n")
    stats.update(hits=int(stats["hits"]) + 1, last_seen=now_iso(), converter=result["converter"],
                 stage=outcome.stage, symptom=outcome.symptom, versions=report["versions"], source="check-model",
                 case_ids=(list(stats.get("case_ids", [])) + [outcome.case_id])[-20:])
    model = {"spec": report["model"]["spec"], "file": report["model"]["file"], "func": report["model"]["func"],
             "frontend": report["model"]["frontend"], "converter": result["converter"], "opset": result.get("opset"),
             "tolerance": report["settings"]["tolerance"]}
    atomic_write(folder / "model.json", json.dumps(model, indent=1) + "\n")
    shutil.copyfile(inputs, folder / "inputs.npz")
    onnx_file = inputs.parent / f"{result['converter']}.onnx"
    if onnx_file.is_file():
        shutil.copyfile(onnx_file, folder / "converted.onnx")
    repro = repro_script(model, outcome)
    atomic_write(folder / "repro.py", repro)
    atomic_write(folder / "logs" / f"{(stats['hits'] - 1) % LOG_RING}.log", _log_text(outcome))
    atomic_write(folder / "stats.json", json.dumps(stats, indent=1, sort_keys=True) + "\n")
    atomic_write(folder / "report.md", report_markdown(model, outcome, result, repro, folder))
    return folder


def _log_text(outcome: Outcome) -> str:
    return "\n".join([f"check-model {outcome.case_id} at {now_iso()}", f"title: {outcome.title}",
                      f"decided by: {outcome.decided_by}", "", outcome.message, "", "--- converter log ---",
                      outcome.log_tail])


def repro_script(model: dict[str, Any], outcome: Outcome) -> str:
    """A standalone script: the user's FUNC, this converter, the campaign repro's checks; exit 1 while it fails."""
    converter = model["converter"]
    imports = ["import importlib.util", "import os", *[line for line in IMPORTS[converter] if line != "import os"]]
    docstring = [
        "#!/usr/bin/env python3",
        f'"""Reproduces: {outcome.title}',
        "",
        f"stage {outcome.stage} ({outcome.decided_by}); symptom {outcome.symptom}.",
        f"Found by fuzzconv check-model on {model['spec']}. Exits 1 while the bug is present, 0 once it is fixed.",
        '"""',
        "",
    ]
    constants = [
        "SEED = 0",
        f"OPSET = {model['opset']}",
        "OPTIMIZE = True",
        f"TOLERANCE = {model['tolerance']!r}",
        "INPUT_NAMES = [f'input_{i}' for i in range(len(make_inputs(SEED)))]",
        "OUTPUT_NAMES = [f'output_{i}' for i in range(len(run_source(make_model(SEED), make_inputs(SEED))))]",
        "DYNAMIC_BATCH = [False] * len(INPUT_NAMES)",
    ]
    run_source = RUN_TORCH_USER if model["frontend"] == "torch" else RUN_KERAS
    return ("\n".join(docstring + imports) + "\n" + LOAD_USER_MODEL.format(file=model["file"], func=model["func"])
            + run_source + "\n\n" + "\n".join(constants) + "\n" + CONVERT[converter] + TRACE_AT_EXAMPLES + MAIN)


def issue_title(converter: str, outcome: Outcome) -> str:
    detail = outcome.title.split(": ", 3)[-1]
    call = CONVERTER_CALL[converter]
    what = {
        "crash": f"{call} fails: {detail}",
        "invalid-model": f"{call} emits a model that is refused: {detail}",
        "wrong-model": f"{call} gives a wrong model ({detail})",
        "hang": f"{call} hangs",
        "abort": f"{call} kills the process ({detail})",
    }.get(outcome.symptom, detail)
    where = tracker(converter, outcome.stage)
    return f"[ONNX] {what}" if where == "pytorch" else f"[CPU EP] {outcome.stage}: {what}" if where == "onnxruntime" \
        else what


def _wrong_model_table(result: dict[str, Any]) -> str:
    rows = ["| inputs | samples | max abs error | max rel error | tolerance needed | allowed | top-1 agreement |",
            "|---|---|---|---|---|---|---|"]
    for name in ("random", "data"):
        figures = result.get(name)
        if figures:
            top1 = "n/a" if figures["top1_agreement"] is None else f"{figures['top1_agreement']:.2%}"
            rows.append(f"| {name} | {figures['samples']} | {figures['max_abs_err']:.3g} | {figures['max_rel_err']:.3g} "
                        f"| {figures['required_tol']:.3g} | {result.get('tolerance', '')} | {top1} |")
    return "\n".join(rows)


def report_markdown(model: dict[str, Any], outcome: Outcome, result: dict[str, Any], repro: str, folder: Path) -> str:
    converter = model["converter"]
    where = tracker(converter, outcome.stage)
    versions = "\n".join(f"- {name} {version}" for name, version in outcome.versions)
    result = {**result, "tolerance": model["tolerance"]}
    evidence = _wrong_model_table(result) + "\n\n" + outcome.message if outcome.symptom == "wrong-model" \
        else expected_vs_actual(outcome)
    sections = [
        f"# {issue_title(converter, outcome)}",
        f"<!-- file at {TRACKERS[where]} ; fuzzconv bucket: {outcome.title} -->",
        "## Summary",
        f"The {model['frontend']} model returned by `{model['func']}` in `{model['file']}`, converted with "
        f"{CONVERTER_CALL[converter]} at opset {model['opset']}, ends in `{outcome.symptom}` at the `{outcome.stage}` "
        f"stage. The stage was decided by: {outcome.decided_by or 'n/a'}. Found by `fuzzconv check-model`.",
        "## Reproduce",
        "Run `python repro.py` in this folder (it reads `inputs.npz` beside it and imports the model file by its "
        "absolute path): it exits 1 while the bug is present and 0 once it is fixed. It needs only numpy, the "
        "source framework, the converter and onnxruntime.",
        "```python\n" + repro.strip() + "\n```",
        "## Expected vs actual",
        evidence,
        "## Stage",
        f"`{outcome.stage}` ({outcome.symptom}), decided by: {outcome.decided_by or 'n/a'}.",
        "## Nearest passing variant",
        "Not applicable: check-model does not minimize a user's model.",
        "## Converted ONNX graph",
        _onnx_summary(folder / "converted.onnx"),
        "## Versions",
        versions or "- (not recorded)",
    ]
    return "\n\n".join(sections) + "\n"


def _onnx_summary(path: Path) -> str:
    if not path.is_file():
        return "(no ONNX model: the failure came before one was emitted, or it did not parse)"
    try:
        import onnx

        nodes = onnx.load(str(path)).graph.node
    except Exception as exc:
        return f"`converted.onnx` in this folder does not load: {type(exc).__name__}"
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    ops = ", ".join(f"{op} x{n}" for op, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"`converted.onnx` in this folder: {len(nodes)} nodes ({ops})."
