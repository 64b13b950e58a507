"""`fuzzconv analyze DIR [DIR...]`: the ISSTA 2024 hypotheses tested on stored campaigns.

Registered through fuzzconv.cli.SUBCOMMAND_MODULES; scipy, scikit-learn and matplotlib are
imported only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("analyze", help="test the ISSTA 2024 structural-cause hypotheses on campaign data",
                            description="Read campaign databases and write report.html (plots embedded), "
                                        "summary.md and figures.json.")
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="campaign folders (each holds campaign.sqlite)")
    parser.add_argument("--out", default=None, metavar="REPORT_DIR",
                        help="folder for the report (default: DIR/analysis of the first DIR)")
    parser.add_argument("--seed", type=int, default=0, help="seed of label shuffles, folds and bootstrap (default 0)")
    parser.add_argument("--permutations", type=int, default=200,
                        help="label shuffles for the unseen-sequence baseline (default 200)")
    parser.add_argument("--resamples", type=int, default=500, help="bootstrap resamples for AUC intervals (default 500)")
    parser.set_defaults(func=cmd_analyze)


def cmd_analyze(args: argparse.Namespace) -> int:
    from fuzzconv.cli import UsageError

    if args.permutations < 0 or args.resamples < 50:
        raise UsageError("--permutations must be 0 or more and --resamples at least 50")
    from fuzzconv.analyze.analysis import Settings, analyze
    from fuzzconv.analyze.data import AnalysisInputError
    from fuzzconv.analyze.render import write

    folders = [Path(d) for d in args.dirs]
    for folder in folders:
        if not folder.exists():
            raise UsageError(f"{folder} does not exist; pass a campaign folder written by `fuzzconv fuzz --out DIR`")
    try:
        analysis = analyze(folders, Settings(args.seed, args.permutations, args.resamples))
    except AnalysisInputError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out) if args.out else folders[0] / "analysis"
    try:
        paths = write(analysis, out)
    except OSError as exc:
        raise UsageError(f"cannot write the report to {out}: {exc.strerror or exc}; pass --out with a writable folder") from None
    for section in analysis.sections:
        print(f"{section.title}: {section.verdict}: {section.sentence}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
