"""The `recheck` and `curate` subcommands: check a release against what is stored, keep a catalogue of bugs."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from fuzzconv.cli import UsageError, parse_duration


def cmd_recheck(args: argparse.Namespace) -> int:
    from fuzzconv.recheck import RecheckConfig, RecheckError, collect_all, recheck
    from fuzzconv.recheck_report import RecheckReport, json_report, markdown_report, text_report
    from fuzzconv.recheck_worker import environment_versions
    from fuzzconv.remote_worker import RemoteWorkerError, interpreter_versions
    from fuzzconv.store import atomic_write

    if args.json and args.markdown:
        raise UsageError("choose one of --json and --markdown")
    python = args.python or sys.executable
    if os.sep in python:  # absolute, since repro.py runs in a scratch folder; not resolved: a venv's python is a link
        python = os.path.abspath(python)
    try:
        items = collect_all([Path(folder) for folder in args.folders or ["."]], corpus=not args.no_corpus)
        rechecked = interpreter_versions(python)
    except (RecheckError, RemoteWorkerError) as exc:
        raise UsageError(f"{exc}") from None
    timeout_s = parse_duration(args.case_timeout)
    if args.jobs < 1:
        raise UsageError(f"-j {args.jobs} is out of range; use 1 or more")
    config = RecheckConfig(python, timeout_s, timeout_s + 120, not args.no_repro, args.jobs,
                           on_progress=lambda line: print(f"recheck: {line}", file=sys.stderr))
    checked = recheck(items, config)
    if any(one.verdict == "error" for one in checked):
        print(f"recheck: worker logs kept in {config.log_dir}", file=sys.stderr)
    else:
        shutil.rmtree(config.log_dir, ignore_errors=True)
    report = RecheckReport(args.folders or ["."], python, environment_versions(), rechecked, checked)
    if args.save_json:
        atomic_write(Path(args.save_json), json_report(report))
    render = json_report if args.json else markdown_report if args.markdown else text_report
    print(render(report), end="")
    return report.exit_code


def cmd_curate(args: argparse.Namespace) -> int:
    from fuzzconv.curate import CurateError, curate

    try:
        chosen, skipped = curate([Path(f) for f in args.campaigns], Path(args.into), args.dry_run,
                                 exclude=args.exclude or [])
    except CurateError as exc:
        raise UsageError(str(exc)) from None
    for title, reason in skipped:
        print(f"skipped: {title}: {reason}", file=sys.stderr)
    verb = "would copy" if args.dry_run else "copied"
    for bucket in chosen:
        print(f"{verb}: {bucket}")
    print(f"{len(chosen)} bucket(s) {verb} into {args.into}, {len(skipped)} skipped", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    recheck = sub.add_parser(
        "recheck", help="replay stored buckets and corpus cases under another Python environment",
        description="Replay every bucket (minimized case and repro.py) and corpus case of the given folders "
                    "under --python and say what is fixed, still failing, failing differently or newly failing. "
                    "Exit code 0 when nothing got worse, 1 when something did.")
    recheck.add_argument("folders", nargs="*", metavar="DIR",
                         help="campaign folders, crashes/ folders or bucket folders (default: current folder)")
    recheck.add_argument("--python", default=None, metavar="PATH",
                         help="interpreter of the environment to check (default: this one)")
    recheck.add_argument("--case-timeout", default="60s", help="time limit of one case (default 60s)")
    recheck.add_argument("-j", "--jobs", type=int, default=1,
                         help="frontend workers and repro.py scripts run at once (default 1)")
    recheck.add_argument("--no-repro", action="store_true", help="do not run the buckets' repro.py scripts")
    recheck.add_argument("--no-corpus", action="store_true", help="recheck buckets only, not corpus cases")
    recheck.add_argument("--json", action="store_true", help="print the result as JSON")
    recheck.add_argument("--markdown", action="store_true", help="print the result as markdown (for a CI summary)")
    recheck.add_argument("--save-json", default=None, metavar="FILE",
                         help="also write the JSON result to FILE (e.g. a CI artifact)")
    recheck.set_defaults(func=cmd_recheck)

    curate = sub.add_parser(
        "curate", help="copy minimized, reliable buckets into a catalogue and write its README.md table",
        description="Copy each minimized, non-flaky bucket of the given campaign folders (with case.json, "
                    "repro.py, report.md) into --into, one per title, and regenerate its README.md.")
    curate.add_argument("campaigns", nargs="*", metavar="DIR", help="campaign folders or crashes/ folders to take from")
    curate.add_argument("--into", default="crashes", help="the catalogue folder (default: crashes)")
    curate.add_argument("--exclude", action="append", metavar="TEXT",
                        help="leave out buckets whose title contains TEXT, repeatable")
    curate.add_argument("--dry-run", action="store_true", help="say what would be copied, copy nothing")
    curate.set_defaults(func=cmd_curate)
