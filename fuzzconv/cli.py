"""The fuzzconv command line: fuzz, replay, ops.

Heavy frameworks are never imported here; they live in the worker processes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
from pathlib import Path

from fuzzconv.case import CONVERTERS, Case, CaseError

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2, nothing stored is touched."""


def parse_duration(text: str) -> float:
    """Seconds in '90s', '10m', '4h', '1h30m' or a bare number of seconds."""
    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or parts is None or not any(parts.groups()):
        raise UsageError(f"bad duration {text!r}; use a number with a unit, like 90s, 10m, 4h or 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in parts.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise UsageError(f"duration {text!r} is not positive; use e.g. 90s, 10m or 4h")
    return total


def check_converters(names: list[str] | None) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(names or CONVERTERS))
    for name in chosen:
        if name not in CONVERTERS:
            raise UsageError(f"unknown converter {name!r}; choose from: {', '.join(CONVERTERS)}")
    return chosen


def load_case_file(path: str) -> Case:
    from fuzzconv.graphcheck import load_case_text

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read case file {path}: {exc.strerror or exc}") from None
    try:
        return load_case_text(text)
    except CaseError as exc:
        raise UsageError(f"{path} is not a valid case: {exc}; regenerate it or fix that field") from None


def cmd_fuzz(args: argparse.Namespace) -> int:
    from fuzzconv.engine import Campaign, CampaignConfig
    from fuzzconv.report_console import Progress, print_summary
    from fuzzconv.store import Store, StoreError

    converters = check_converters(args.converter)
    budget_s = parse_duration(args.time)
    if args.max_nodes < 1 or args.max_nodes > 64:
        raise UsageError(f"--max-nodes {args.max_nodes} is out of range; use 1..64")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    try:
        store = Store(Path(args.out)).open()
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    config = CampaignConfig(Path(args.out), converters, budget_s, seed, args.max_nodes, parse_duration(args.case_timeout))
    progress = Progress(config)
    progress.start()
    campaign = Campaign(config, store, on_progress=progress.update, on_bucket=progress.new_bucket)
    try:
        stats = campaign.run()
    except KeyboardInterrupt:
        stats = campaign.stats
        progress.say("interrupted: stopping workers; everything recorded so far is kept")
    print_summary(stats, config)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from fuzzconv.report_console import print_bucket_check, print_outcome
    from fuzzconv.workers import WorkerHandle

    case = load_case_file(args.case)
    worker = WorkerHandle(case.graph.frontend, case_timeout_s=parse_duration(args.case_timeout))
    worker.start()
    try:
        worker.submit(case)
        while (result := worker.collect()) is None:
            if worker.conn is not None:
                worker.conn.poll(0.2)
    finally:
        worker.stop()
    if result.outcome is None:
        print(result.error, file=sys.stderr)
        print("fuzzconv: internal error while replaying; the traceback above is fuzzconv's own bug", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.outcome.to_json(), indent=1))
        return 0
    print_outcome(case, result.outcome)
    bucket_title = Path(args.case).parent / "title.txt"
    if bucket_title.is_file():
        print_bucket_check(bucket_title.read_text(encoding="utf-8").strip(), result.outcome)
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    from fuzzconv import ops
    from fuzzconv.report_console import print_ops

    registry = ops.all_ops()
    if args.frontend:
        registry = [op for op in registry if args.frontend in op.frontends]
    if args.json:
        print(json.dumps([{"name": op.name, "family": op.family, "frontends": list(op.frontends),
                           "dtypes": list(op.dtypes())} for op in registry], indent=1))
    else:
        print_ops(registry)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fuzzconv", description="Differential fuzzer for model converters to ONNX.")
    sub = parser.add_subparsers(dest="command", required=True)

    fuzz = sub.add_parser("fuzz", help="run a fuzzing campaign")
    fuzz.add_argument("--converter", action="append", metavar="NAME",
                      help=f"converter to fuzz, repeatable (default: all of {', '.join(CONVERTERS)})")
    fuzz.add_argument("--time", default="10m", help="campaign length, e.g. 90s, 10m, 4h (default 10m)")
    fuzz.add_argument("--seed", type=int, default=None, help="campaign seed (default: random, printed)")
    fuzz.add_argument("--max-nodes", type=int, default=8, help="largest graph, in operators (default 8)")
    fuzz.add_argument("--out", default=".", help="folder for corpus/ and crashes/ (default: current folder)")
    fuzz.add_argument("--case-timeout", default="60s", help="time limit of one case (default 60s)")
    fuzz.set_defaults(func=cmd_fuzz)

    replay = sub.add_parser("replay", help="re-run one case and print its outcome and title")
    replay.add_argument("case", help="a case.json, e.g. crashes/<bucket>/case.json")
    replay.add_argument("--case-timeout", default="120s", help="time limit (default 120s)")
    replay.add_argument("--json", action="store_true", help="print the outcome as JSON")
    replay.set_defaults(func=cmd_replay)

    ops_cmd = sub.add_parser("ops", help="list the operator registry")
    ops_cmd.add_argument("--frontend", choices=("torch", "keras"))
    ops_cmd.add_argument("--json", action="store_true")
    ops_cmd.set_defaults(func=cmd_ops)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"fuzzconv: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
