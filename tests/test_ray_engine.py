"""The Ray engine runs a real campaign on a local Ray head bound to 127.0.0.1."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_ray_campaign_records_cases(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "campaign"
    run = subprocess.run(
        [sys.executable, "-m", "fuzzconv.cli", "fuzz", "--engine", "ray", "-j", "1", "--converter", "torch-script",
         "--time", "20s", "--seed", "1", "--minimize-budget", "0", "--replays", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "torch-script" in run.stdout
    buckets = list((out / "crashes").glob("*/stats.json"))
    assert buckets, run.stdout[-2000:]
    stats = json.loads(buckets[0].read_text())
    assert stats["hits"] >= 1 and stats["converter"] == "torch-script"
    assert list((out / "corpus" / "torch-script").glob("*.json"))
