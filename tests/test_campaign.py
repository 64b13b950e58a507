"""A short real campaign leaves a bucket, and replaying its case prints the same title."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_campaign_buckets_and_replay(tmp_path):
    out = tmp_path / "campaign"
    run = subprocess.run(
        [sys.executable, "-m", "fuzzconv.cli", "fuzz", "--time", "40s", "--seed", "3", "--converter", "tf2onnx",
         "--converter", "torch-script", "--out", str(out)],
        capture_output=True, text=True, timeout=400,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "torch-script" in run.stdout and "buckets" in run.stdout
    buckets = sorted((out / "crashes").iterdir())
    assert buckets, run.stdout[-3000:]
    titles = {(b / "title.txt").read_text().strip(): b for b in buckets}
    # the most often hit conversion crash: deterministic, so replay and minimize must keep it
    crashes = [(json.loads((b / "stats.json").read_text()), t) for t, b in titles.items() if ": conversion: crash: " in t]
    assert crashes, sorted(titles)
    stats, title = max(crashes, key=lambda found: (found[0]["hits"], found[1]))
    assert stats["hits"] >= 1 and stats["stage"] == "conversion"
    assert list((out / "corpus").rglob("*.json")), "passing cases with new coverage are saved"

    replay = subprocess.run([sys.executable, "-m", "fuzzconv.cli", "replay", str(titles[title] / "case.json")],
                            capture_output=True, text=True, timeout=300)
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert f"title     {title}" in replay.stdout

    minimized = subprocess.run([sys.executable, "-m", "fuzzconv.cli", "minimize", str(titles[title]), "--time", "60s"],
                               capture_output=True, text=True, timeout=300)
    assert minimized.returncode == 0, minimized.stderr[-2000:]
    assert f"title     {title}" in minimized.stdout
    assert (titles[title] / "repro.py").is_file() and (titles[title] / "report.md").is_file()
    report = subprocess.run([sys.executable, "-m", "fuzzconv.cli", "report", "--all", "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0 and title in (out / "crashes" / "INDEX.md").read_text()
    status = subprocess.run([sys.executable, "-m", "fuzzconv.cli", "status", str(out), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and json.loads(status.stdout)["cases"] > 0
