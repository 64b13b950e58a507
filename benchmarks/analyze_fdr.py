"""False discoveries and power of `fuzzconv analyze` on synthetic campaigns, over many trials.

Null trials: failures at a constant rate, independent of the graph; a trial counts when any
structural result (a significant operator or sequence, or a classifier win for sequences) is
reported. Planted trials (3000 cases): the pair tanh>exp fails 30 % of the time, everything else at 2 %;
a trial counts when that pair is found beyond its operators and when the classifier says
sequences win. Not part of the test suite.
Usage: python benchmarks/analyze_fdr.py [NULL_TRIALS] [PLANTED_TRIALS]
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzzconv.analyze.analysis import Settings, analyze  # noqa: E402
from tests.test_analyze import PLANTED, write_campaign  # noqa: E402


def null_trials(trials: int) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for seed in range(1000, 1000 + trials):
        with tempfile.TemporaryDirectory(prefix="fuzzconv-fdr-") as folder:
            write_campaign(Path(folder), seed=seed, cases=600, planted=False, base_rate=0.1)
            found = analyze([Path(folder)], Settings(seed=seed, permutations=0, resamples=200)).discoveries()
        kinds["any"] += bool(found)
        kinds.update({f.split(":", 1)[0] for f in found})
    return kinds


def planted_trials(trials: int) -> Counter[str]:
    hits: Counter[str] = Counter()
    for seed in range(2000, 2000 + trials):
        with tempfile.TemporaryDirectory(prefix="fuzzconv-power-") as folder:
            write_campaign(Path(folder), seed=seed, cases=3000, planted=True)
            found = analyze([Path(folder)], Settings(seed=seed, permutations=0, resamples=200)).discoveries()
        hits["beyond"] += f"beyond: torch-script: {'>'.join(PLANTED)}" in found
        hits["classifier"] += "classifier: torch-script" in found
        hits["other operators blamed"] += any(f.startswith("op:") and f.rsplit(": ", 1)[1] not in PLANTED for f in found)
    return hits


def main() -> None:
    null = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    planted = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    kinds = null_trials(null)
    print(f"null: {kinds['any']} of {null} trials reported anything ({100 * kinds['any'] / max(1, null):.1f} %); "
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()) if k != "any"))
    hits = planted_trials(planted)
    print(f"planted: found beyond its operators in {hits['beyond']} of {planted}, classifier win in "
          f"{hits['classifier']} of {planted}, another operator blamed in {hits['other operators blamed']} of {planted}")


if __name__ == "__main__":
    main()
