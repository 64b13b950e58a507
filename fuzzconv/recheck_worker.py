"""The replay side of `fuzzconv recheck`, run under the interpreter being checked.

`PYTHON -m fuzzconv.recheck_worker versions` prints that environment's Python and package
versions as one JSON line (no framework is imported). `PYTHON -m fuzzconv.recheck_worker serve
FRONTEND` imports the frontend's framework once, then reads one case (JSON) per line on stdin
and answers on its original stdout with JSON lines: `{"ready": ...}` once, then per case
`{"step": ...}` before each pipeline step and `{"outcome": ...}` (or `{"error": traceback}` for
fuzzconv's own bug). Whatever the frameworks print goes to stderr, which the parent logs.
The parent (fuzzconv.remote_worker) enforces time limits and survives this process dying.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import traceback
from importlib import metadata
from typing import IO, Any

# What a recheck compares between environments; the first of a row that is installed is shown.
VERSIONED_PACKAGES: tuple[tuple[str, ...], ...] = (
    ("torch",), ("onnxscript",), ("onnx-ir",), ("tensorflow", "tensorflow-cpu"), ("keras",), ("tf2onnx",),
    ("onnx",), ("onnxruntime",), ("numpy",), ("protobuf",),
)


def environment_versions() -> dict[str, str]:
    """`python` and each package of VERSIONED_PACKAGES that this interpreter resolves ('' if missing)."""
    found = {"python": platform.python_version()}
    for names in VERSIONED_PACKAGES:
        found[names[0]] = ""
        for name in names:
            try:
                found[names[0]] = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def _protocol_stream() -> IO[str]:
    """The original stdout, kept for answers; fd 1 then points at stderr so library prints cannot interleave."""
    answers = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return answers


def _send(stream: IO[str], message: dict[str, Any]) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def serve(frontend: str) -> int:
    from fuzzconv.case import Case
    from fuzzconv.pipeline import run_case
    from fuzzconv.workers import _quiet_process, _warm_up

    answers = _protocol_stream()
    _quiet_process(None)
    _warm_up(frontend)
    _send(answers, {"ready": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            case = Case.from_json(json.loads(line))
            outcome = run_case(case, on_stage=lambda step: _send(answers, {"step": step}))
            _send(answers, {"outcome": outcome.to_json()})
        except Exception:  # fuzzconv's own bug: say so, keep serving
            _send(answers, {"error": traceback.format_exc()})
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["versions"]:
        print(json.dumps(environment_versions()))
        return 0
    if len(argv) == 2 and argv[0] == "serve" and argv[1] in ("torch", "keras"):
        return serve(argv[1])
    print("usage: python -m fuzzconv.recheck_worker versions | serve torch|keras", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
