"""Buckets we expect, each with a reason and, where one exists, the upstream report.

A campaign marks a matching bucket as known instead of new; replaying a known bucket that no
longer reproduces is reported as such (the upstream fix has landed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownIssue:
    pattern: str  # a regular expression matched against the whole bucket title
    reason: str
    link: str = ""

    def matches(self, title: str) -> bool:
        return re.fullmatch(self.pattern, title) is not None


KNOWN_ISSUES = (
    KnownIssue(
        r"keras/(tf2onnx|export): conversion: crash: unsupported TF op Erfc",
        "TensorFlow's gelu now lowers to Erfc, which tf2onnx has no handler for",
        "https://github.com/onnx/tensorflow-onnx/issues/2347",
    ),
    KnownIssue(
        r"keras/(tf2onnx|export): conversion: crash: unsupported TF op Bitcast",
        "tf2onnx has no handler for TF Bitcast (no ONNX equivalent before a BitCast op)",
        "https://github.com/onnx/tensorflow-onnx/issues/1985",
    ),
    KnownIssue(
        r"keras/(tf2onnx|export): conversion: crash: unsupported TF op (Stateful)?PartitionedCall",
        "tf2onnx does not inline nested TF function calls (Keras jit-compiled helpers produce them)",
        "https://github.com/onnx/tensorflow-onnx/issues/1864",
    ),
)


def known_issue(title: str) -> KnownIssue | None:
    return next((issue for issue in KNOWN_ISSUES if issue.matches(title)), None)
