"""corpus/ and crashes/: plain, git-friendly JSON files, every write atomic.

A bucket folder `crashes/<slug>/` holds the title, the first original case and its outcome,
a capped ring of raw logs and stats (hits, first and last seen, versions). Files that do not
decode are skipped with a warning, never fatal: the store is a cache that tolerates junk.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fuzzconv.case import Case, Outcome
from fuzzconv.known_issues import known_issue

LOG_RING = 5


class StoreError(Exception):
    """The output folder cannot be used; the message says why and what to do."""


def atomic_write(path: Path, text: str, durable: bool = True) -> None:
    """Write through a temporary file and a rename: readers see the old file or the new one.

    `durable` also syncs the data to disk before the rename (survives a power cut); without it
    the file survives a killed process, as the campaign database (synchronous=NORMAL) does.
    The temporary file is named by process and counter (created exclusively), and the folder
    is made only when it is missing: a campaign writes a corpus or bucket file for most cases,
    so each system call saved counts."""
    data = text.encode("utf-8")
    tmp, fd = _temporary(path)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_TEMPORARY_NUMBERS = itertools.count()


def _temporary(path: Path) -> tuple[str, int]:
    """(name, descriptor) of a new, empty temporary file beside `path`, its folder made if missing."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for attempt in range(3):
        tmp = f"{path.parent}{os.sep}.{path.name}.{os.getpid()}-{next(_TEMPORARY_NUMBERS)}.tmp"
        try:
            return tmp, os.open(tmp, flags, 0o644)
        except FileNotFoundError:
            if attempt:
                raise
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # left by an earlier process of the same pid
            continue
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    return tmp, fd


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON object from a file, or None when the file is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _stats_text(stats: dict[str, Any]) -> str:
    return json.dumps(stats, indent=1, sort_keys=True) + "\n"


def bucket_slug(title: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:72].rstrip("-")
    return f"{words}-{hashlib.sha1(title.encode()).hexdigest()[:8]}"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Recorded:
    new_bucket: bool
    folder: Path


class Store:
    """The output folder's files. A bucket's stats.json is read once and then kept in memory
    (this process is the folder's one writer while a campaign runs). A new bucket's files are
    written and synced at once. A repeated hit changes the bucket's stats and its ring of logs;
    with `defer_hits` (campaigns) those writes wait for the next `flush()`, which the campaign
    calls every second and when it stops, so a bucket hit fifty times a second is written once.
    They are atomic but not synced: what a `kill -9` can cost is hit counts of the last second,
    which the campaign database (one row per case) still holds."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.corpus = out / "corpus"
        self.crashes = out / "crashes"
        self.internal = out / "internal-errors"
        self._stats: dict[Path, dict[str, Any]] = {}  # bucket folder -> its stats as last recorded
        self.defer_hits = False
        self._pending: dict[Path, Callable[[], str]] = {}  # file -> its text, made and written by flush()

    def open(self) -> Store:
        """Create the folders or raise StoreError saying why they cannot be used."""
        try:
            for folder in (self.out, self.corpus, self.crashes):
                folder.mkdir(parents=True, exist_ok=True)
            probe = self.out / f".fuzzconv-write-test-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise StoreError(
                f"cannot write to output folder {self.out}: {exc.strerror or exc}; "
                "pass --out with a folder you can write to"
            ) from None
        return self

    def bucket_folder(self, title: str) -> Path:
        return self.crashes / bucket_slug(title)

    def record_finding(self, case: Case, outcome: Outcome) -> Recorded:
        folder = self.bucket_folder(outcome.title)
        stats = self._bucket_stats(folder)
        new = stats is None
        if new:
            atomic_write(folder / "title.txt", outcome.title + "\n")
            atomic_write(folder / "case.json", case.dumps() + "\n")
            atomic_write(folder / "outcome.json", json.dumps(outcome.to_json(), indent=1) + "\n")
            stats = {"title": outcome.title, "hits": 0, "first_seen": now_iso(), "case_ids": []}
        assert stats is not None
        seen = now_iso()
        stats["hits"] = int(stats.get("hits", 0)) + 1
        stats["last_seen"] = seen
        stats["converter"] = case.target.converter
        stats["stage"], stats["symptom"] = outcome.stage, outcome.symptom
        stats["versions"] = dict(outcome.versions)
        stats["case_ids"] = (list(stats.get("case_ids", [])) + [outcome.case_id])[-20:]
        known = known_issue(outcome.title)
        if known is not None:
            stats["known_issue"] = {"reason": known.reason, "link": known.link}
        ring = (stats["hits"] - 1) % LOG_RING
        self._write(folder / "logs" / f"{ring}.log", lambda: self._log_text(case, outcome, seen), new)
        self._stats[folder] = stats
        self._write(folder / "stats.json", lambda: _stats_text(stats), new)
        return Recorded(new, folder)

    def _write(self, path: Path, text: Callable[[], str], new_bucket: bool) -> None:
        """Write now (a new bucket, synced; or without `defer_hits`), else at the next flush: a
        file rewritten several times before then is rendered and written once."""
        if new_bucket or not self.defer_hits:
            self._pending.pop(path, None)
            atomic_write(path, text(), durable=new_bucket)
        else:
            self._pending[path] = text

    def flush(self) -> None:
        """Write the repeated hits' stats and logs recorded since the last flush."""
        pending, self._pending = self._pending, {}
        for path, text in pending.items():
            atomic_write(path, text(), durable=False)

    def _bucket_stats(self, folder: Path) -> dict[str, Any] | None:
        if folder not in self._stats:
            stats = read_json_object(folder / "stats.json")
            if stats is None:
                return None
            self._stats[folder] = stats
        return dict(self._stats[folder])

    def _write_stats(self, folder: Path, stats: dict[str, Any]) -> None:
        """Write a bucket's stats now, synced, superseding any deferred write of them."""
        self._write(folder / "stats.json", lambda: _stats_text(stats), new_bucket=True)
        self._stats[folder] = stats

    @staticmethod
    def _log_text(case: Case, outcome: Outcome, seen: str) -> str:
        return "\n".join(
            [f"case {outcome.case_id} at {seen}", f"title: {outcome.title}", f"decided by: {outcome.decided_by}",
             "", outcome.message, "", "--- converter log ---", outcome.log_tail, "", "--- case ---", case.dumps()]
        )

    def record_replay(self, title: str, reproduced: bool) -> dict[str, Any]:
        """Count one replay of a bucket's first case; reliability is k of n runs, the first included."""
        folder = self.bucket_folder(title)
        stats = self._bucket_stats(folder) or {"title": title, "hits": 1}
        runs = int(stats.get("runs", 1)) + 1
        reproduced_runs = int(stats.get("reproduced", 1)) + int(reproduced)
        stats.update(runs=runs, reproduced=reproduced_runs, reliability=f"{reproduced_runs}/{runs}",
                     flaky=reproduced_runs < runs)
        self._write_stats(folder, stats)
        return stats

    def save_reduction(self, folder: Path, reduced: dict[str, Any]) -> Path:
        """Store what a minimize job produced beside the bucket's first case, then its report.md."""
        from fuzzconv.report import load_bucket, report_markdown

        minimized = Case.from_json(reduced["minimized"])
        atomic_write(folder / "minimized.json", minimized.dumps() + "\n")
        atomic_write(folder / "minimized-outcome.json", json.dumps(reduced["outcome"], indent=1) + "\n")
        atomic_write(folder / "minimize.json", json.dumps(reduced["stats"], indent=1) + "\n")
        atomic_write(folder / "minimized.onnx.txt", reduced["onnx_text"] + "\n")
        atomic_write(folder / "nearest-passing.txt", reduced["nearest_passing"] + "\n")
        atomic_write(folder / "repro.py", reduced["repro"])
        atomic_write(folder / "report.md", report_markdown(load_bucket(folder)))
        return folder

    def save_corpus(self, case: Case) -> Path:
        path = self.corpus / case.target.converter / f"{case.id}.json"
        if not path.exists():  # a corpus case is saved per new coverage: often, so not synced
            # Compact: more than half of a young campaign's cases are saved, and the indented
            # form (kept for the cases in crashes/, which people read) takes Python's slow encoder.
            atomic_write(path, case.canonical_text + "\n", durable=False)
        return path

    def recent_corpus(self, converter: str, count: int) -> list[Case]:
        """The `count` corpus cases of `converter` written last, oldest first (unreadable ones skipped)."""
        paths = []
        for path in (self.corpus / converter).glob("*.json"):
            try:
                paths.append((path.stat().st_mtime, path.name, path))
            except OSError:
                continue
        cases = []
        for _, _, path in sorted(paths)[-count:]:
            try:
                cases.append(Case.loads(path.read_text()))
            except (ValueError, OSError):
                continue
        return cases

    def save_internal_error(self, case: Case, error: str) -> Path:
        path = self.internal / f"{case.id}.txt"
        atomic_write(path, error + "\n--- case ---\n" + case.dumps() + "\n")
        return path

    def corpus_cases(self, skip_ids: Callable[[list[str]], set[str]] | None = None) -> list[Case]:
        """The corpus cases; `skip_ids` names, from a list of case ids (the file names), those
        not to read (the campaign database already holds their coverage)."""
        paths = sorted(self.corpus.glob("*/*.json"))
        if skip_ids is not None:
            known = skip_ids([path.stem for path in paths])
            paths = [path for path in paths if path.stem not in known]
        cases = []
        for path in paths:
            try:
                cases.append(Case.loads(path.read_text()))
            except (ValueError, OSError):
                continue  # junk in the corpus is skipped, never fatal
        return cases

    def buckets(self) -> list[dict[str, Any]]:
        found = []
        for folder in sorted(self.crashes.iterdir()) if self.crashes.exists() else []:
            stats = read_json_object(folder / "stats.json")
            if stats is not None:
                stats["folder"] = str(folder)
                found.append(stats)
        return found
