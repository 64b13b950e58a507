"""The ISSTA 2024 converter failure study's own figures (Jajal et al.), for side-by-side tables.

Counts of its 200 labelled GitHub issues (100 torch.onnx, 100 tf2onnx) by converter, stage
(`Component`) and symptom, tallied from the authors' public artifact
(PurdueDualityLab/issta24-onnx-artifact, Theme2/FailureAnalysis.xlsx, Apache-2.0), as shared
in issta24_converter_failures_200.csv. The sheet's labels are mapped to fuzzconv's words:
Node Transformation = conversion, Graph Optimization = optimization, Tracer = capture (load
model), Protobuf = serialization (export), Wrong Code = wrong-model.
"""

from __future__ import annotations

from collections import Counter

SOURCE = ("Jajal et al., ISSTA 2024: 200 converter issues (100 torch.onnx, 100 tf2onnx), "
          "PurdueDualityLab/issta24-onnx-artifact")

# (converter, component, symptom) -> issues, as labelled in the artifact
ISSUES: dict[tuple[str, str, str], int] = {
    ("PyTorch", "Graph Optimization", "Crash"): 3,
    ("PyTorch", "Graph Optimization", "Wrong Code"): 2,
    ("PyTorch", "Node Transformation", "Bad Performance"): 1,
    ("PyTorch", "Node Transformation", "Crash"): 50,
    ("PyTorch", "Node Transformation", "Unreported"): 3,
    ("PyTorch", "Node Transformation", "Wrong Code"): 24,
    ("PyTorch", "Not Dis.", "Build Failure"): 2,
    ("PyTorch", "Not Dis.", "Crash"): 1,
    ("PyTorch", "Not Dis.", "Unreported"): 2,
    ("PyTorch", "Not Dis.", "Wrong Code"): 3,
    ("PyTorch", "Tracer", "Crash"): 6,
    ("PyTorch", "Validation", "Crash"): 2,
    ("PyTorch", "Validation", "Wrong Code"): 1,
    ("tf2onnx", "Graph Optimization", "Bad Performance"): 2,
    ("tf2onnx", "Graph Optimization", "Crash"): 4,
    ("tf2onnx", "Graph Optimization", "Unreported"): 2,
    ("tf2onnx", "Graph Optimization", "Wrong Code"): 6,
    ("tf2onnx", "Node Transformation", "Crash"): 40,
    ("tf2onnx", "Node Transformation", "Unreported"): 1,
    ("tf2onnx", "Node Transformation", "Wrong Code"): 29,
    ("tf2onnx", "Not Dis.", "Build Failure"): 3,
    ("tf2onnx", "Not Dis.", "Crash"): 2,
    ("tf2onnx", "Not Dis.", "Unreported"): 5,
    ("tf2onnx", "Protobuf", "Crash"): 1,
    ("tf2onnx", "Tracer", "Crash"): 3,
    ("tf2onnx", "Tracer", "Unreported"): 2,
}

STAGE_WORDS = {
    "Tracer": "capture", "Node Transformation": "conversion", "Graph Optimization": "optimization",
    "Protobuf": "serialization", "Validation": "validation", "Not Dis.": "not distinguishable",
}
SYMPTOM_WORDS = {
    "Crash": "crash", "Wrong Code": "wrong-model", "Unreported": "unreported",
    "Build Failure": "build failure", "Bad Performance": "bad performance",
}
# fuzzconv converter -> the study's converter it belongs to
CONVERTER_FAMILY = {"torch-dynamo": "PyTorch", "torch-script": "PyTorch", "tf2onnx": "tf2onnx",
                    "keras-export": "tf2onnx"}


def counts(axis: str) -> Counter[str]:
    """The study's issue counts by 'converter', 'stage' or 'symptom', in fuzzconv's words."""
    index = {"converter": 0, "stage": 1, "symptom": 2}[axis]
    words = {1: STAGE_WORDS, 2: SYMPTOM_WORDS}.get(index, {})
    tally: Counter[str] = Counter()
    for key, n in ISSUES.items():
        tally[words.get(key[index], key[index])] += n
    return tally
