"""Coverage with and without guidance: the same converter, seed and time, side by side.

Runs a guided and an unguided campaign at the same time (one worker each, so each gets one
core) and prints operator, pair, 3-gram and 4-gram coverage of the source graphs, converted
graph coverage, and buckets found, with the guided/unguided ratio. Not part of the test
suite. Usage: python benchmarks/guidance.py [MINUTES] [CONVERTER]
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

KINDS = ("op", "edge", "ngram3", "ngram4", "onnx-edge", "onnx-ngram3", "onnx-ngram4")


def campaign(out: Path, minutes: float, converter: str, guided: bool) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "fuzzconv.cli", "fuzz", "-j", "1", "--converter", converter, "--time",
            f"{minutes}m", "--seed", "2024", "--minimize-budget", "0", "--replays", "1", "--out", str(out)]
    if not guided:
        argv.append("--no-guide")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def figures(out: Path) -> Counter[str]:
    connection = sqlite3.connect(f"file:{out / 'campaign.sqlite'}?mode=ro", uri=True)
    counts: Counter[str] = Counter()
    for (key,) in connection.execute("SELECT key FROM coverage"):
        counts[key.split(":", 1)[0]] += 1
    counts["cases"] = connection.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
    counts["buckets"] = connection.execute(
        "SELECT COUNT(DISTINCT title) FROM cases WHERE status = 'finding'").fetchone()[0]
    connection.close()
    return counts


def main() -> None:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    converter = sys.argv[2] if len(sys.argv) > 2 else "torch-script"
    with tempfile.TemporaryDirectory(prefix="fuzzconv-guide-") as folder:
        guided_out, plain_out = Path(folder) / "guided", Path(folder) / "unguided"
        runs = [campaign(guided_out, minutes, converter, True), campaign(plain_out, minutes, converter, False)]
        for run in runs:
            run.wait()
        guided, plain = figures(guided_out), figures(plain_out)
    print(f"{converter}, {minutes:g} min each, seed 2024")
    print(f"{'figure':12s} {'guided':>8s} {'unguided':>9s} {'ratio':>7s}")
    for kind in (*KINDS, "buckets", "cases"):
        ratio = guided[kind] / plain[kind] if plain[kind] else float("inf")
        print(f"{kind:12s} {guided[kind]:8d} {plain[kind]:9d} {ratio:7.2f}")


if __name__ == "__main__":
    main()
