"""Real tracebacks captured from real converter failures keep their stage and their title.

The files under tests/golden/tracebacks come from `python -m tests.golden.capture_tracebacks`;
the expected stage in each was assigned by a person, the title is the golden one.
"""

import json
import re
from pathlib import Path

import pytest

from fuzzconv.pipeline import validation_detail
from fuzzconv.triage import CrashInfo, crash_detail, crash_stage, title

GOLDEN = sorted((Path(__file__).parent / "golden" / "tracebacks").glob("*.json"))


def test_there_are_goldens_for_every_converter():
    converters = {json.loads(p.read_text())["converter"] for p in GOLDEN}
    assert {"torch-dynamo", "torch-script", "keras-export"} <= converters


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_traceback(path):
    record = json.loads(path.read_text())
    info = CrashInfo(**{k: tuple(v) if isinstance(v, list) else v for k, v in record["info"].items()})
    converter, expected = record["converter"], record["expected_stage"]
    if expected == "validation":
        got = title(converter, "validation", "invalid-model", validation_detail(info))
    else:
        stage, _ = crash_stage(converter, info)
        assert stage == expected
        got = title(converter, stage, "crash", crash_detail(info))
    assert got == record["golden_title"]
    assert not re.search(r"\b\d+\b", got), "titles carry no free-standing numbers"
