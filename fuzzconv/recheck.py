"""Recheck stored buckets and corpus cases under another Python environment.

What is stored is the baseline: a bucket's title (its minimized case must fail with it), a
corpus case's status in the campaign database (corpus cases are stored because they passed).
Each case is replayed under the other interpreter by warm workers, one per frontend
(fuzzconv.remote_worker), and each bucket's standalone repro.py is run there too. Every item
gets one verdict:

    fixed           a bucket's case now passes
    still-failing   a bucket's case fails with the same title
    changed         a bucket's case fails differently (a new title, or the source now rejects it)
    new-failure     a corpus case that passed now fails (or the source now rejects it)
    still-passing   a corpus case that passed still passes
    error           fuzzconv could not replay the case (its own bug, or the environment cannot
                    start the replay worker): nothing is known

`changed`, `new-failure` and `error` are worse: a recheck with any of them exits 1.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzzconv.case import Case, CaseError
from fuzzconv.remote_worker import RemoteWorker, RemoteWorkerError, exit_reason, worker_env
from fuzzconv.store import read_json_object

VERDICTS = ("fixed", "still-failing", "changed", "new-failure", "still-passing", "error")
WORSE = frozenset({"changed", "new-failure", "error"})
FRONTEND_ORDER = ("torch", "keras")
PROGRESS_EVERY = 50  # replays between two progress lines


class RecheckError(Exception):
    """Nothing to recheck, or a folder that cannot be read; the message says what to pass instead."""


@dataclass(frozen=True)
class Item:
    """One stored case and what it did when it was stored."""

    kind: str  # "bucket" or "corpus"
    label: str  # the bucket folder's name, or the corpus case's converter/id
    path: str  # the case file replayed
    case: Case
    before_status: str
    before_title: str
    repro: str = ""  # the bucket's repro.py, if it has one
    flaky: bool = False
    stored_versions: tuple[tuple[str, str], ...] = ()


@dataclass
class Checked:
    """An item after its replay: the new status and title, the verdict, what repro.py said."""

    item: Item
    after_status: str = ""
    after_title: str = ""
    verdict: str = "error"
    repro: str = ""  # reproduces | passes | hang | abort (...) | error (...) | "" when not run
    error: str = ""
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        item = self.item
        return {"kind": item.kind, "label": item.label, "path": item.path, "converter": item.case.target.converter,
                "before_status": item.before_status, "before_title": item.before_title, "flaky": item.flaky,
                "after_status": self.after_status, "after_title": self.after_title, "verdict": self.verdict,
                "repro": self.repro, "error": self.error[-2000:], "elapsed_s": round(self.elapsed_s, 3)}


def verdict_of(before_status: str, before_title: str, after_status: str, after_title: str) -> str:
    if not after_status:
        return "error"
    if before_status == "pass":
        return "still-passing" if after_status == "pass" else "new-failure"
    if after_status == "pass":
        return "fixed"
    return "still-failing" if after_title == before_title else "changed"


# --- collecting what is stored ------------------------------------------------------------------

def _read_json(path: Path) -> dict[str, Any]:
    return read_json_object(path) or {}


def bucket_item(folder: Path) -> Item | None:
    """The bucket's minimized case (its first case if never minimized) and its title; None if unreadable."""
    try:
        title = (folder / "title.txt").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    case_path = folder / "minimized.json" if (folder / "minimized.json").is_file() else folder / "case.json"
    try:
        case = Case.loads(case_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, CaseError):
        print(f"fuzzconv: skipping {folder}: {case_path.name} is not a readable case", file=sys.stderr)
        return None
    stats = _read_json(folder / "stats.json")
    versions = tuple(sorted((str(k), str(v)) for k, v in dict(stats.get("versions") or {}).items()))
    repro = folder / "repro.py"
    return Item("bucket", folder.name, str(case_path), case, "finding", title,
                str(repro) if repro.is_file() else "", bool(stats.get("flaky")), versions)


def corpus_items(corpus: Path, stored: Callable[[str], dict[str, Any] | None]) -> list[Item]:
    """Every readable case under corpus/<converter>/; the baseline is the database row, else 'pass'."""
    items = []
    for path in sorted(corpus.glob("*/*.json")):
        try:
            case = Case.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, CaseError):
            continue  # junk in the corpus is skipped, as a campaign skips it
        row = stored(case.id) or {}
        versions = tuple(sorted((str(k), str(v)) for k, v in dict(row.get("versions") or {}).items()))
        items.append(Item("corpus", f"{path.parent.name}/{path.stem}", str(path), case,
                          str(row.get("status") or "pass"), str(row.get("title") or ""), stored_versions=versions))
    return items


def _database_lookup(folder: Path) -> Callable[[str], dict[str, Any] | None]:
    """case id -> its stored row, read once from <folder>/campaign.sqlite (nothing if there is none)."""
    from fuzzconv.campaign_db import CampaignDB, CampaignDBError

    path = folder / "campaign.sqlite"
    rows: dict[str, dict[str, Any]] = {}
    if path.is_file():
        try:
            with CampaignDB.open(path, readonly=True) as db:
                for row in db.conn.execute("SELECT case_id, status, title, versions FROM cases"):
                    rows[row[0]] = {"status": row[1], "title": row[2], "versions": json.loads(row[3] or "{}")}
        except (CampaignDBError, ValueError) as exc:
            print(f"fuzzconv: {path}: {exc}; corpus cases are taken as passing", file=sys.stderr)
    return rows.get


def _is_bucket(folder: Path) -> bool:
    return (folder / "title.txt").is_file()


def collect(folder: Path, corpus: bool = True) -> list[Item]:
    """What a folder holds: a campaign folder (crashes/, corpus/), a crashes/ folder, or one bucket."""
    if not folder.is_dir():
        raise RecheckError(f"{folder} is not a folder; pass a campaign folder, a crashes/ folder or a bucket folder")
    if _is_bucket(folder):
        found = bucket_item(folder)
        return [found] if found else []
    crashes = folder / "crashes" if (folder / "crashes").is_dir() else folder
    items = [b for sub in sorted(crashes.iterdir()) if sub.is_dir() and _is_bucket(sub) for b in [bucket_item(sub)] if b]
    if corpus and (folder / "corpus").is_dir():
        items += corpus_items(folder / "corpus", _database_lookup(folder))
    return items


def collect_all(folders: list[Path], corpus: bool = True) -> list[Item]:
    items: list[Item] = []
    seen: set[str] = set()
    for folder in folders:
        found = collect(folder, corpus)
        if not found:
            raise RecheckError(f"{folder} holds no bucket (crashes/<bucket>/title.txt) and no corpus case "
                               "(corpus/<converter>/<id>.json); pass the folder a campaign wrote (fuzzconv fuzz --out)")
        for item in found:
            if str(Path(item.path).resolve()) not in seen:
                seen.add(str(Path(item.path).resolve()))
                items.append(item)
    return items


# --- replaying ---------------------------------------------------------------------------------

@dataclass
class RecheckConfig:
    python: str
    case_timeout_s: float = 60.0
    repro_timeout_s: float = 180.0
    run_repro: bool = True
    jobs: int = 1  # frontends replayed and repro.py scripts run at once
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fuzzconv-recheck-")))
    on_progress: Callable[[str], None] = lambda line: None


def replay_items(items: list[Item], config: RecheckConfig) -> list[Checked]:
    """Replay every item in the other environment, one warm worker per frontend, in the items' order."""
    batches = {frontend: [(i, item) for i, item in enumerate(items) if item.case.graph.frontend == frontend]
               for frontend in FRONTEND_ORDER}
    results: dict[int, Checked] = {}
    with ThreadPoolExecutor(max_workers=max(1, config.jobs)) as pool:
        jobs = [(frontend, batch) for frontend, batch in batches.items() if batch]
        for done in pool.map(lambda job: _replay_batch(job[0], job[1], config), jobs):
            results.update(done)
    return [results[i] for i in range(len(items))]


def _replay_batch(frontend: str, batch: list[tuple[int, Item]], config: RecheckConfig) -> dict[int, Checked]:
    """One frontend's items through one worker; if the worker cannot start, each item is an error."""
    config.on_progress(f"replaying {len(batch)} {frontend} case(s) under {config.python}")
    worker = RemoteWorker(config.python, frontend, config.log_dir / f"{frontend}-worker.log", config.case_timeout_s)
    results: dict[int, Checked] = {}
    broken = ""
    try:
        for done, (index, item) in enumerate(batch, 1):
            if broken:
                results[index] = Checked(item, error=broken)
                continue
            try:
                results[index] = _replay_one(worker, item)
            except RemoteWorkerError as exc:
                broken = str(exc)
                results[index] = Checked(item, error=broken)
            if done % PROGRESS_EVERY == 0:
                config.on_progress(f"{frontend}: {done} of {len(batch)} replayed")
    finally:
        worker.stop()
    return results


def _replay_one(worker: RemoteWorker, item: Item) -> Checked:
    replayed = worker.replay(item.case)
    if replayed.outcome is None:
        return Checked(item, error=replayed.error or "no outcome", elapsed_s=replayed.elapsed_s)
    outcome = replayed.outcome
    checked = Checked(item, outcome.status, outcome.title, elapsed_s=replayed.elapsed_s)
    checked.verdict = verdict_of(item.before_status, item.before_title, outcome.status, outcome.title)
    return checked


def run_repro(python: str, script: str, timeout_s: float) -> str:
    """What a bucket's repro.py says under `python`: reproduces, passes, hang, abort (signal) or error (why).

    repro.py prints a line starting 'BUG:' and exits 1 while the bug is present, exits 0 once it is fixed;
    exit 1 without a 'BUG:' line is an exception of its own (a missing module, a changed API).
    """
    env = {**worker_env(), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryDirectory(prefix="fuzzconv-repro-") as folder:
        try:
            done = subprocess.run([python, str(Path(script).resolve())], capture_output=True, text=True,
                                  cwd=folder, env=env, timeout=timeout_s, start_new_session=True)
        except subprocess.TimeoutExpired:
            return "hang"
    if done.returncode == 0:
        return "passes"
    if done.returncode == 1 and any(line.startswith("BUG:") for line in done.stdout.splitlines()):
        return "reproduces"
    if done.returncode < 0:
        return f"abort ({exit_reason(done.returncode)})"
    last = (done.stderr.strip().splitlines() or [exit_reason(done.returncode)])[-1]
    return f"error ({last[:160]})"


def recheck(items: list[Item], config: RecheckConfig) -> list[Checked]:
    """Replay every item, then run each bucket's repro.py, under config.python."""
    checked = replay_items(items, config)
    if config.run_repro:
        scripts = [c for c in checked if c.item.repro]
        config.on_progress(f"running {len(scripts)} repro.py script(s) under {config.python}")
        with ThreadPoolExecutor(max_workers=max(1, config.jobs)) as pool:
            verdicts = pool.map(lambda one: run_repro(config.python, one.item.repro, config.repro_timeout_s), scripts)
            for one, verdict in zip(scripts, verdicts):
                one.repro = verdict
    return checked


def repro_agrees(checked: Checked) -> bool:
    """Whether repro.py tells the same story as the replay (a fixed bucket passes, a failing one does not)."""
    if not checked.repro or checked.repro.startswith("error"):
        return not checked.repro
    return (checked.repro == "passes") == (checked.after_status == "pass")


# onnxruntime's Python exception classes, one per status code; older releases raised RuntimeException for most.
ORT_STATUS_NAMES = ("Fail", "InvalidArgument", "RuntimeException", "InvalidGraph", "NotImplemented", "NoSuchFile",
                    "NoModel", "EngineError", "InvalidProtobuf", "ModelLoaded", "EPFail")
_ORT_STATUS = re.compile(r"\b(" + "|".join(ORT_STATUS_NAMES) + r"|[A-Z]+(?:_[A-Z]+)+|FAIL)\b")


def only_runtime_status_differs(before_title: str, after_title: str) -> bool:
    """Whether two titles differ only in the onnxruntime status (exception class) they name: the same bug,
    reported under another exception class by another onnxruntime release."""
    if before_title == after_title:
        return False
    short, long = sorted((_ORT_STATUS.sub("S", before_title), _ORT_STATUS.sub("S", after_title)), key=len)
    return long.startswith(short)  # titles are cut at a fixed length, so a longer class name cuts the tail


def worse(checked: list[Checked]) -> list[Checked]:
    return [c for c in checked if c.verdict in WORSE]

