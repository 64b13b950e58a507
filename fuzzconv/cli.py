"""The fuzzconv command line: fuzz, replay, ops.

Heavy frameworks are never imported here; they live in the worker processes.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import random
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fuzzconv.case import CONVERTER_OPSETS, CONVERTERS, Case, CaseError

if TYPE_CHECKING:
    from fuzzconv.engine import CampaignConfig

EXIT_USAGE = 2
EXIT_STOPPED = 3  # a campaign stopped before its time (low or full disk); what it stored is kept; it resumes

# Modules that each add their own subcommands: `add_parser(sub)` registers the parser(s) and sets
# `func`; they import heavy frameworks only inside that func.
SUBCOMMAND_MODULES: tuple[str, ...] = ("fuzzconv.checkmodel.command", "fuzzconv.analyze.command",
                                       "fuzzconv.recheck_command")


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2, nothing stored is touched."""


class InternalError(Exception):
    """fuzzconv's own bug: printed loudly, exit code 1."""


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


def parse_shares(items: list[str] | None, converters: tuple[str, ...]) -> dict[str, float]:
    """`--share torch-dynamo=2` weights, each a known converter and a positive number."""
    shares: dict[str, float] = {}
    for item in items or []:
        name, _, weight = item.partition("=")
        if name not in CONVERTERS:
            raise UsageError(f"--share {item!r}: unknown converter {name!r}; choose from: {', '.join(CONVERTERS)}")
        try:
            value = float(weight)
        except ValueError:
            value = -1.0
        if value <= 0:
            raise UsageError(f"--share {item!r}: use CONVERTER=WEIGHT with a positive weight, e.g. torch-dynamo=2")
        if name not in converters:
            raise UsageError(f"--share names {name!r}, which is not among the converters of this campaign")
        shares[name] = value
    return shares


def parse_opsets(text: str | None, converters: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """`--opset 17` pins, `--opset 13-18` sweeps; each converter gets the part of it that it accepts."""
    if text is None:
        return {}
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", text)
    if match is None:
        raise UsageError(f"bad --opset {text!r}; use one opset like 17 or a range like 13-18")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if high < low:
        raise UsageError(f"bad --opset {text!r}: the range is empty; write it low-high, like 13-18")
    chosen = {}
    for converter in converters:
        first, last = CONVERTER_OPSETS[converter]
        opsets = tuple(range(max(low, first), min(high, last) + 1))
        if not opsets:
            raise UsageError(f"--opset {text} has no opset that {converter} accepts; it takes {first}..{last}")
        chosen[converter] = opsets
    return chosen


def fuzz_config(args: argparse.Namespace) -> CampaignConfig:
    from fuzzconv.engine import CampaignConfig

    converters = check_converters(args.converter)
    budget_s = parse_duration(args.time)
    if args.max_nodes < 1 or args.max_nodes > 64:
        raise UsageError(f"--max-nodes {args.max_nodes} is out of range; use 1..64")
    if args.replays < 1:
        raise UsageError(f"--replays {args.replays} is out of range; use 1 (no replay) or more")
    if args.recycle_after < 1 or args.memory_limit < 256:
        raise UsageError("--recycle-after must be at least 1 and --memory-limit at least 256 (MB)")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"-j {args.jobs} is out of range; use 1 or more workers")
    if args.min_free_disk < 0:
        raise UsageError(f"--min-free-disk {args.min_free_disk} is negative; give MB to keep free, or 0 for no limit")
    if args.engine == "local" and args.ray_address:
        raise UsageError("--ray-address needs --engine ray")
    python = check_python(args.python) if args.python else None
    if python and args.engine == "ray":
        raise UsageError("--python works with the local engine; on Ray, give the cluster the environment instead")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    minimize_s = 0.0 if args.minimize_budget in ("0", "off") else parse_duration(args.minimize_budget)
    return CampaignConfig(
        Path(args.out), converters, budget_s, seed, args.max_nodes, parse_duration(args.case_timeout),
        replays=args.replays, minimize_budget_s=minimize_s, jobs=args.jobs or (os.cpu_count() or 1),
        shares=parse_shares(args.share, converters), engine=args.engine, ray_address=args.ray_address,
        recycle_after=args.recycle_after, memory_limit_mb=args.memory_limit,
        opsets=parse_opsets(args.opset, converters), guide=not args.no_guide, python=python,
        min_free_mb=args.min_free_disk,
    )


def check_python(path: str) -> str:
    """An interpreter that can host workers (same Python version), as an absolute path."""
    from fuzzconv.workers import InterpreterError, foreign_sys_path

    found = shutil.which(path) if os.sep not in path else path
    if not found or not os.access(found, os.X_OK):
        raise UsageError(f"--python {path}: no such interpreter; give the path of another environment's "
                         "python, e.g. .venv-candidate/bin/python (make env-candidate SPEC=... builds one)")
    absolute = os.path.abspath(found)
    try:
        foreign_sys_path(absolute)
    except InterpreterError as exc:
        raise UsageError(f"--python {path}: {exc}") from None
    return absolute


def cmd_fuzz(args: argparse.Namespace) -> int:
    from fuzzconv.dashboard import Dashboard
    from fuzzconv.engine import Campaign
    from fuzzconv.report_console import console, print_summary
    from fuzzconv.store import Store, StoreError

    config = fuzz_config(args)
    check_free_disk(config)
    try:
        store = Store(config.out).open()
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    db = open_campaign_db(config.out)
    dashboard = Dashboard(config, console)
    if dashboard.interactive:
        config.progress_every_s = 1.0
    ray_engine = start_ray(config) if config.engine == "ray" else None
    campaign = Campaign(config, store, handle_factory=ray_engine.handle if ray_engine else None, db=db,
                        on_progress=dashboard.update, on_bucket=dashboard.new_bucket)
    dashboard.start()
    try:
        stats = campaign.run()
    finally:
        dashboard.stop()
        if ray_engine is not None:
            ray_engine.shutdown()
    if stats.interrupted:
        console.print("interrupted: workers stopped; everything recorded so far is kept")
    print_summary(stats, config)
    if stats.stopped_for:
        lost = f" ({stats.unstored} finished cases could not be stored)" if stats.unstored else ""
        print(f"fuzzconv: stopped early: {stats.stopped_for}{lost}", file=sys.stderr)
        return EXIT_STOPPED
    return 0


def check_free_disk(config: CampaignConfig) -> None:
    """Refuse to start a campaign on a disk that already has less free space than it keeps."""
    from fuzzconv.engine import free_disk_mb

    free_mb = free_disk_mb(config.out)
    if config.min_free_mb and free_mb < config.min_free_mb:
        raise UsageError(f"the disk of {config.out} has {free_mb} MB free, less than --min-free-disk "
                         f"{config.min_free_mb} MB; free some space, pass --out on another disk, or lower "
                         "--min-free-disk")


def open_campaign_db(out: Path) -> Any:
    """The campaign database of an output folder; a foreign or corrupt file is refused untouched."""
    from fuzzconv.campaign_db import CampaignDB, CampaignDBError

    try:
        return CampaignDB.open(out / "campaign.sqlite")
    except CampaignDBError as exc:
        raise UsageError(str(exc)) from None


def start_ray(config: CampaignConfig) -> Any:
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"--engine ray needs Ray ({exc}); install it with `pip install -e .[ray]`") from None
    from fuzzconv.ray_engine import RayEngine

    try:
        return RayEngine(config)
    except ConnectionError as exc:
        raise UsageError(f"cannot reach the Ray cluster at {config.ray_address}: {exc}; check --ray-address") from None


def cmd_replay(args: argparse.Namespace) -> int:
    from fuzzconv.report_console import print_bucket_check, print_outcome

    case = load_case_file(args.case)
    result = _run_in_worker(case, parse_duration(args.case_timeout), lambda worker: worker.submit(case))
    if args.json:
        print(json.dumps(result.outcome.to_json(), indent=1))
        return 0
    print_outcome(case, result.outcome)
    bucket_title = Path(args.case).parent / "title.txt"
    if bucket_title.is_file():
        print_bucket_check(bucket_title.read_text(encoding="utf-8").strip(), result.outcome)
    return 0


def _run_in_worker(case: Case, timeout_s: float, job: Callable[[Any], None]) -> Any:
    """Start a worker for the case's frontend, give it one job, wait for the result."""
    from fuzzconv.workers import WorkerHandle

    worker = WorkerHandle(case.graph.frontend, case_timeout_s=timeout_s)
    worker.start()
    try:
        job(worker)
        while (result := worker.collect()) is None:
            if worker.conn is not None:
                worker.conn.poll(0.2)
    finally:
        worker.stop()
    if result.error:
        print(result.error, file=sys.stderr)
        raise InternalError("fuzzconv hit its own bug (traceback above)")
    return result


def _minimize_target(path: Path) -> tuple[Path, Case, str | None]:
    """(folder to write into, case, bucket title if known) for a bucket folder or a case file."""
    if path.is_dir():
        title_file = path / "title.txt"
        if not title_file.is_file() or not (path / "case.json").is_file():
            raise UsageError(f"{path} is not a bucket folder (no title.txt and case.json); pass crashes/<bucket>")
        return path, load_case_file(str(path / "case.json")), title_file.read_text(encoding="utf-8").strip()
    return path.parent, load_case_file(str(path)), None


def _submit(worker: Any, case: Case) -> None:
    worker.submit(case)


def _submit_minimize(worker: Any, case: Case, title: str, max_calls: int, budget_s: float) -> None:
    worker.submit_minimize(case, title, max_calls, budget_s)


def cmd_minimize(args: argparse.Namespace) -> int:
    from fuzzconv.report_console import print_minimized
    from fuzzconv.store import Store, atomic_write

    budget_s = parse_duration(args.time)
    for target in args.targets:
        folder, case, title = _minimize_target(Path(target))
        timeout_s = parse_duration(args.case_timeout)
        if title is None:
            first = _run_in_worker(case, timeout_s, functools.partial(_submit, case=case)).outcome
            if first is None or first.status != "finding":
                raise UsageError(f"{target} does not fail (status {first.status if first else '?'}); nothing to minimize")
            title = first.title
        job = functools.partial(_submit_minimize, case=case, title=title, max_calls=args.max_calls, budget_s=budget_s)
        result = _run_in_worker(case, timeout_s, job)
        if result.reduced is None:
            raise InternalError(f"minimizing {target} ended with {result.outcome.title if result.outcome else 'nothing'}")
        if Path(target).is_dir():
            Store(folder.parent.parent).save_reduction(folder, result.reduced)
        else:
            stem = Path(target).with_suffix("")
            atomic_write(Path(f"{stem}.min.json"), Case.from_json(result.reduced["minimized"]).dumps() + "\n")
            atomic_write(Path(f"{stem}.repro.py"), result.reduced["repro"])
        print_minimized(target, title, result.reduced)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from fuzzconv.report import index_markdown, load_bucket, report_markdown
    from fuzzconv.store import atomic_write

    if args.all:
        crashes = Path(args.out) / "crashes"
        folders = sorted(p for p in crashes.iterdir() if (p / "title.txt").is_file()) if crashes.is_dir() else []
        buckets = []
        for folder in folders:
            try:
                buckets.append(load_bucket(folder))
            except ValueError as exc:
                print(f"fuzzconv: skipping {exc}", file=sys.stderr)
        for bucket in buckets:
            atomic_write(bucket.folder / "report.md", report_markdown(bucket))
        index = index_markdown(buckets)
        if buckets:
            atomic_write(crashes / "INDEX.md", index)
        print(index, end="")
        return 0
    if not args.bucket:
        raise UsageError("name a bucket folder (fuzzconv report crashes/<bucket>) or pass --all")
    try:
        bucket = load_bucket(Path(args.bucket))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    text = report_markdown(bucket)
    atomic_write(bucket.folder / "report.md", text)
    print(text, end="")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from fuzzconv.campaign_db import CampaignDB, CampaignDBError
    from fuzzconv.report_console import print_status

    path = Path(args.out) / "campaign.sqlite"
    if not path.is_file():
        raise UsageError(f"no campaign database at {path}; run `fuzzconv fuzz --out {args.out}` first")
    try:
        with CampaignDB.open(path, readonly=True) as db:
            summary = db.summary()
    except CampaignDBError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(summary, indent=1, sort_keys=True))
    else:
        print_status(path, summary)
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    from fuzzconv.campaign_db import CampaignDB, CampaignDBError
    from fuzzconv.coverage_report import coverage_summary
    from fuzzconv.report_console import print_coverage

    path = Path(args.out) / "campaign.sqlite"
    if not path.is_file():
        raise UsageError(f"no campaign database at {path}; run `fuzzconv fuzz --out {args.out}` first")
    try:
        with CampaignDB.open(path, readonly=True) as db:
            summary = coverage_summary(db.coverage_keys(), db.iter_cases())
    except CampaignDBError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(summary, indent=1, sort_keys=True))
    else:
        print_coverage(summary)
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
    fuzz.add_argument("--opset", default=None, metavar="N|LOW-HIGH",
                      help="ONNX opset to pin (17) or sweep (13-18); default: each converter's own default")
    fuzz.add_argument("--no-guide", action="store_true",
                      help="plain random generation: no steering to uncovered operators, no corpus mutation")
    fuzz.add_argument("-j", "--jobs", type=int, default=None, help="worker processes (default: number of cores)")
    fuzz.add_argument("--share", action="append", metavar="CONVERTER=WEIGHT",
                      help="wall-time weight of a converter, repeatable (default: equal shares)")
    fuzz.add_argument("--engine", choices=("local", "ray"), default="local",
                      help="run workers as local processes (default) or as Ray actors")
    fuzz.add_argument("--ray-address", default=None, help="address of a Ray cluster (default: start a local one)")
    fuzz.add_argument("--recycle-after", type=int, default=5000,
                      help="replace a worker process after this many cases (default 5000)")
    fuzz.add_argument("--memory-limit", type=int, default=3072, metavar="MB",
                      help="replace a worker process whose memory grows past this (default 3072 MB)")
    fuzz.add_argument("--min-free-disk", type=int, default=1024, metavar="MB",
                      help="stop cleanly (to resume later) when the output folder's disk has less free space "
                           "than this; 0 never stops (default 1024 MB)")
    fuzz.add_argument("--replays", type=int, default=3, help="runs of a new bucket's case to measure reliability (default 3)")
    fuzz.add_argument("--python", default=None, metavar="PATH",
                      help="run the workers under another environment's interpreter, e.g. a candidate release")
    fuzz.add_argument("--minimize-budget", default="60s",
                      help="time to minimize each new bucket in a separate worker, or 0 to skip (default 60s)")
    fuzz.set_defaults(func=cmd_fuzz)

    replay = sub.add_parser("replay", help="re-run one case and print its outcome and title")
    replay.add_argument("case", help="a case.json, e.g. crashes/<bucket>/case.json")
    replay.add_argument("--case-timeout", default="120s", help="time limit (default 120s)")
    replay.add_argument("--json", action="store_true", help="print the outcome as JSON")
    replay.set_defaults(func=cmd_replay)

    minimize = sub.add_parser("minimize", help="shrink a bucket's case (or a case file) keeping its bucket title")
    minimize.add_argument("targets", nargs="+", metavar="CASE.json|BUCKET_DIR")
    minimize.add_argument("--max-calls", type=int, default=300, help="most predicate runs per target (default 300)")
    minimize.add_argument("--time", default="3m", help="time budget per target (default 3m)")
    minimize.add_argument("--case-timeout", default="120s", help="time limit of one run (default 120s)")
    minimize.set_defaults(func=cmd_minimize)

    report = sub.add_parser("report", help="print a bucket's issue-ready report.md, or index all buckets")
    report.add_argument("bucket", nargs="?", help="a bucket folder, crashes/<bucket>")
    report.add_argument("--all", action="store_true", help="write report.md for every bucket and crashes/INDEX.md")
    report.add_argument("--out", default=".", help="campaign folder for --all (default: current folder)")
    report.set_defaults(func=cmd_report)

    status = sub.add_parser("status", help="summary of a stored campaign (from its database)")
    status.add_argument("out", nargs="?", default=".", help="the campaign's output folder (default: current)")
    status.add_argument("--json", action="store_true", help="print the summary as JSON")
    status.set_defaults(func=cmd_status)

    coverage = sub.add_parser("coverage", help="architectural coverage of a stored campaign")
    coverage.add_argument("out", nargs="?", default=".", help="the campaign's output folder (default: current)")
    coverage.add_argument("--json", action="store_true", help="print the figures as JSON")
    coverage.set_defaults(func=cmd_coverage)

    ops_cmd = sub.add_parser("ops", help="list the operator registry")
    ops_cmd.add_argument("--frontend", choices=("torch", "keras"))
    ops_cmd.add_argument("--json", action="store_true")
    ops_cmd.set_defaults(func=cmd_ops)

    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"fuzzconv: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InternalError as exc:
        print(f"fuzzconv: internal error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
