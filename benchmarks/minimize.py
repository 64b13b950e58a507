"""How far and how fast the minimizer shrinks real buckets, per converter.

Not part of the pass/fail suite: it runs real converters. Every `case.json` with a `title.txt`
beside it under FOLDER (a campaign's output folder, or its crashes/ folder) is minimized with
the production predicate "running the candidate gives the same bucket title". Prints one row
per bucket (converter, nodes before -> after, calls, seconds) and the medians per converter.
Nothing is written.

Without --frontend, each frontend's buckets run in a child process of their own, so that no
process imports both torch and TensorFlow. Buckets whose recorded symptom is a hang or an
abort are skipped: in-process they would stall or kill the benchmark. A bucket that kills its
child anyway (a converter can die of a signal on a candidate the bucket never held) is printed
as such, and a new child goes on from the next bucket; the medians are over every child's rows.

Usage: python benchmarks/minimize.py FOLDER [--frontend torch|keras] [--max-calls N] [--budget-s S]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from fuzzconv.case import FRONTENDS, Case, CaseError

SKIPPED_SYMPTOMS = ("hang", "abort")


@dataclass(frozen=True)
class Bucket:
    folder: Path
    case: Case
    title: str
    symptom: str


@dataclass(frozen=True)
class Row:
    converter: str
    title: str
    nodes_before: int
    nodes_after: int
    calls: int
    seconds: float
    budget_exhausted: bool


def load_buckets(folder: Path) -> list[Bucket]:
    buckets = []
    for path in sorted(folder.rglob("case.json")):
        title_path = path.with_name("title.txt")
        if not title_path.exists():
            continue
        try:
            case = Case.loads(path.read_text())
        except (CaseError, OSError) as exc:
            print(f"skip {path}: {exc}", file=sys.stderr)
            continue
        buckets.append(Bucket(path.parent, case, title_path.read_text().strip(), recorded_symptom(path.parent)))
    return buckets


def recorded_symptom(folder: Path) -> str:
    for name in ("stats.json", "outcome.json"):
        try:
            return str(json.loads((folder / name).read_text()).get("symptom", ""))
        except (OSError, ValueError):
            continue
    return ""


def minimize_bucket(bucket: Bucket, max_calls: int, budget_s: float) -> Row | str:
    """The bucket's row, or why it was not minimized."""
    from fuzzconv.minimize import minimize
    from fuzzconv.pipeline import run_case

    started = time.monotonic()
    first = run_case(bucket.case)
    if first.title != bucket.title:
        return f"does not reproduce (now {first.title or first.status!r})"
    result = minimize(bucket.case, lambda c: run_case(c).title == bucket.title, max_calls=max_calls,
                      budget_s=max(0.0, budget_s - (time.monotonic() - started)))
    return Row(bucket.case.target.converter, bucket.title, len(bucket.case.graph.nodes),
               len(result.minimized.graph.nodes), result.calls, result.seconds, result.budget_exhausted)


def print_row(row: Row, out: TextIO) -> None:
    flag = " (budget)" if row.budget_exhausted else ""
    print(f"{row.converter:14s} {row.nodes_before:4d} -> {row.nodes_after:<4d} {row.calls:6d} {row.seconds:8.1f}s"
          f"{flag:9s}  {row.title[:90]}", file=out, flush=True)


def print_medians(rows: list[Row], out: TextIO) -> None:
    print(f"\n{'converter':14s} {'buckets':>7s} {'nodes before':>13s} {'nodes after':>12s} {'calls':>7s} {'seconds':>8s}", file=out)
    for converter in sorted({row.converter for row in rows}):
        mine = [row for row in rows if row.converter == converter]
        before = statistics.median(r.nodes_before for r in mine)
        after = statistics.median(r.nodes_after for r in mine)
        calls = statistics.median(r.calls for r in mine)
        seconds = statistics.median(r.seconds for r in mine)
        print(f"{converter:14s} {len(mine):7d} {before:13g} {after:12g} {calls:7g} {seconds:8.1f}", file=out, flush=True)


def quiet_stdout(log: Path | None = None) -> TextIO:
    """A stream to the real stdout, which itself then goes to /dev/null: converters print
    their intermediate graphs there, from Python and from C++ alike. With `log`, stderr goes
    there too (the frameworks' warnings, hundreds of lines a run), for the parent to show
    should this process fail."""
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    if log is not None:
        stream = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(stream, 2)
        os.close(stream)
    return out


def frontend_buckets(buckets: list[Bucket], frontend: str) -> list[Bucket]:
    return [b for b in buckets if b.case.target.frontend == frontend]


def run_frontend(buckets: list[Bucket], frontend: str, max_calls: int, budget_s: float, start: int = 0,
                 record: Path | None = None) -> None:
    """Minimize `frontend`'s buckets from the `start`-th on, in this process. With `record`, each
    bucket's index is appended to it as a JSON line before the bucket runs, and its row after:
    what the parent reads back should this process die; stderr goes beside it, `record`.log."""
    mine = frontend_buckets(buckets, frontend)
    out = quiet_stdout(record.with_suffix(".log") if record is not None else None)
    if start == 0:
        print(f"== {frontend}: {len(mine)} buckets (max {max_calls} calls, {budget_s:g}s each)", file=out)
        print(f"{'converter':14s} {'nodes':>12s} {'calls':>6s} {'time':>9s}{'':9s}  title", file=out, flush=True)
    rows = []
    for index in range(start, len(mine)):
        bucket = mine[index]
        converter = bucket.case.target.converter
        if bucket.symptom in SKIPPED_SYMPTOMS:
            print(f"{converter:14s} skipped ({bucket.symptom})  {bucket.title[:90]}", file=out, flush=True)
            continue
        _record(record, {"index": index})
        outcome = minimize_bucket(bucket, max_calls, budget_s)
        if isinstance(outcome, str):
            print(f"{converter:14s} {outcome}  {bucket.title[:90]}", file=out, flush=True)
            continue
        rows.append(outcome)
        _record(record, {"row": asdict(outcome)})
        print_row(outcome, out)
    if rows and record is None:  # run alone; under a parent, the parent prints the medians of all its children
        print_medians(rows, out)


def _record(record: Path | None, entry: dict[str, object]) -> None:
    if record is not None:
        with record.open("a") as stream:
            stream.write(json.dumps(entry) + "\n")


def run_children(folder: Path, frontends: list[str], buckets: list[Bucket], args: argparse.Namespace) -> int:
    """Child processes per frontend, one after the other, their output passed through: a child
    that dies is followed by a new one from the bucket after the one it died on. A child killed
    by a signal is a converter's crash, printed; one that exits non-zero fails the benchmark."""
    status = 0
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    for frontend in frontends:
        mine = frontend_buckets(buckets, frontend)
        rows: list[Row] = []
        start = 0
        with tempfile.TemporaryDirectory() as scratch:
            record = Path(scratch) / "record.jsonl"
            while start < len(mine):
                record.write_text("")
                record.with_suffix(".log").write_text("")
                command = [sys.executable, __file__, str(folder), "--frontend", frontend, "--start", str(start),
                           "--record", str(record), "--max-calls", str(args.max_calls), "--budget-s", str(args.budget_s)]
                code = subprocess.call(command, env=env)
                entries = [json.loads(line) for line in record.read_text().splitlines() if line]
                rows += [Row(**entry["row"]) for entry in entries if "row" in entry]
                if code == 0:
                    break
                began = [entry["index"] for entry in entries if "index" in entry]
                died_on = max(began, default=start)
                how = f"killed by signal {-code}" if code < 0 else f"failed with exit code {code}"
                where = mine[died_on].title[:90] if began else f"before its first bucket ({mine[start].title[:60]})"
                print(f"{mine[died_on].case.target.converter:14s} its process {how}  {where}", flush=True)
                if code > 0:  # fuzzconv's own error, not a converter's crash: the benchmark fails
                    status = status or code
                    print("\n".join(record.with_suffix(".log").read_text().splitlines()[-30:]), file=sys.stderr)
                if not began:  # it died before any bucket: a new child would too
                    break
                start = died_on + 1
        if rows:
            print_medians(rows, sys.stdout)
        print(flush=True)
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--frontend", choices=FRONTENDS)
    parser.add_argument("--max-calls", type=int, default=300)
    parser.add_argument("--budget-s", type=float, default=120.0)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)  # a child's first bucket
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)  # a child's record for its parent
    args = parser.parse_args()
    buckets = load_buckets(args.folder)
    if not buckets:
        print(f"no case.json with a title.txt beside it under {args.folder}")
        return 1
    if args.frontend:
        run_frontend(buckets, args.frontend, args.max_calls, args.budget_s, args.start, args.record)
        return 0
    present = [f for f in FRONTENDS if frontend_buckets(buckets, f)]
    return run_children(args.folder, present, buckets, args)


if __name__ == "__main__":
    sys.exit(main())
