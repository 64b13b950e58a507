"""The curated catalogue: minimized, reliable buckets copied out of campaigns, and its README.md table.

A bucket qualifies when it was minimized (it has minimized.json and repro.py), its replays never
missed (not flaky) and its minimized case still carries the bucket's title. One folder per bug:
a title, where the same tf2onnx failure reached through Keras's own exporter counts as the tf2onnx
one. Of two candidates the smaller minimized case wins, then tf2onnx's own door, then the one
already in the catalogue.
Raw logs stay behind; everything `fuzzconv report`, `minimize` and `recheck` read is copied.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from fuzzconv.report import Bucket, load_bucket
from fuzzconv.store import atomic_write
from fuzzconv.triage import CONVERTER_LABEL

BUCKET_FILES = ("title.txt", "case.json", "outcome.json", "stats.json", "minimized.json", "minimized-outcome.json",
                "minimize.json", "minimized.onnx.txt", "nearest-passing.txt", "repro.py", "report.md")
# A front door that runs another converter inside: past capture its failures are that converter's.
SAME_CONVERTER = {"keras-export": "tf2onnx"}


class CurateError(Exception):
    """A folder to curate from or into cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Candidate:
    bucket: Bucket

    @property
    def size(self) -> int:
        return len(self.bucket.best_case.graph.nodes)


def bucket_folders(folder: Path) -> list[Path]:
    """Bucket folders in a campaign folder, a crashes/ folder, or the bucket folder itself."""
    if (folder / "title.txt").is_file():
        return [folder]
    crashes = folder / "crashes" if (folder / "crashes").is_dir() else folder
    if not crashes.is_dir():
        raise CurateError(f"{folder} is not a folder; pass a campaign folder (fuzzconv fuzz --out) or its crashes/")
    return sorted(sub for sub in crashes.iterdir() if (sub / "title.txt").is_file())


def why_not(bucket: Bucket, exclude: list[str]) -> str:
    """'' when the bucket belongs in the catalogue, else the reason it does not."""
    if any(text in bucket.title for text in exclude):
        return "excluded by --exclude"
    if bucket.outcome.status != "finding":
        return f"status {bucket.outcome.status}, not a converter or runtime finding"
    if bucket.minimized is None or not bucket.repro:
        return "not minimized (no minimized.json / repro.py): run `fuzzconv minimize` on it first"
    if bucket.stats.get("flaky"):
        return f"flaky (reproduced {bucket.stats.get('reliability', '?')})"
    if bucket.minimized_outcome is not None and bucket.minimized_outcome.title != bucket.title:
        return "its minimized case has another title"
    return ""


def bug_key(bucket: Bucket) -> str:
    """The bucket's title with Keras's exporter named as tf2onnx past capture: it runs tf2onnx, so that is one bug."""
    converter = bucket.case.target.converter
    if converter in SAME_CONVERTER and bucket.outcome.stage != "capture":
        door, inner = CONVERTER_LABEL[converter], CONVERTER_LABEL[SAME_CONVERTER[converter]]
        return bucket.title.replace(door, inner, 1)
    return bucket.title


def _rank(candidate: Candidate) -> tuple[int, bool]:
    """Smaller is better: the smaller minimized case, then the converter's own front door."""
    return candidate.size, candidate.bucket.case.target.converter in SAME_CONVERTER


@dataclass
class Choice:
    """What curating would do: buckets to copy in, catalogue folders they replace, what was left out and why."""

    incoming: dict[str, Candidate]
    replaced: list[Path]
    skipped: list[tuple[str, str]]


def choose(folders: list[Path], catalogue: Path, exclude: list[str]) -> Choice:
    """One bucket per bug among the catalogue's and the campaigns' buckets; the catalogue's own win ties."""
    best = {bug_key(c.bucket): c for c in _readable(bucket_folders(catalogue) if catalogue.is_dir() else [])}
    held = {key: c.bucket.folder for key, c in best.items()}
    choice = Choice({}, [], [])
    for folder in folders:
        for candidate in _readable(bucket_folders(folder)):
            reason = why_not(candidate.bucket, exclude)
            key = bug_key(candidate.bucket)
            if not reason and key in best and _rank(candidate) >= _rank(best[key]):
                reason = f"same bug as the kept bucket {best[key].bucket.title!r}"
            if reason:
                choice.skipped.append((candidate.bucket.title, reason))
                continue
            if key in choice.incoming:
                choice.skipped.append((best[key].bucket.title, f"same bug as the kept bucket {candidate.bucket.title!r}"))
            best[key] = choice.incoming[key] = candidate
    for key, candidate in choice.incoming.items():
        if key in held and held[key].name != candidate.bucket.folder.name:
            choice.replaced.append(held[key])
    return choice


def _readable(folders: list[Path]) -> list[Candidate]:
    found = []
    for folder in folders:
        try:
            found.append(Candidate(load_bucket(folder)))
        except ValueError:
            continue
    return found


def copy_bucket(bucket: Bucket, catalogue: Path) -> Path:
    target = catalogue / bucket.folder.name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in BUCKET_FILES:
        source = bucket.folder / name
        if source.is_file():
            shutil.copyfile(source, target / name)
    return target


def curate(folders: list[Path], catalogue: Path, dry_run: bool = False,
           exclude: list[str] | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """Copy the qualifying buckets into the catalogue and rewrite its README.md; (copied titles, skipped)."""
    if not folders:
        raise CurateError("name at least one campaign folder to take buckets from")
    choice = choose(folders, catalogue, exclude or [])
    if not dry_run:
        for folder in choice.replaced:
            shutil.rmtree(folder)
        for candidate in choice.incoming.values():
            copy_bucket(candidate.bucket, catalogue)
        write_readme(catalogue)
    return sorted(c.bucket.title for c in choice.incoming.values()), choice.skipped


def _row(bucket: Bucket, catalogue: Path) -> str:
    case, outcome = bucket.best_case, bucket.best_outcome
    ops = ", ".join(dict.fromkeys(node.op for node in case.graph.nodes))
    title = bucket.title.replace("|", "\\|")
    where = f"{catalogue.name}/{bucket.folder.name}"
    return (f"| [{title}]({bucket.folder.name}/report.md) | {case.target.converter} | {outcome.stage} "
            f"| {outcome.symptom} | {ops} | {len(case.graph.nodes)} (from {len(bucket.case.graph.nodes)}) "
            f"| {bucket.stats.get('reliability', '?')} | `python {where}/repro.py` |")


def _versions(buckets: list[Bucket]) -> str:
    seen: dict[str, set[str]] = {}
    for bucket in buckets:
        for name, version in dict(bucket.stats.get("versions") or {}).items():
            seen.setdefault(name, set()).add(str(version))
    return ", ".join(f"{name} {'/'.join(sorted(v))}" for name, v in sorted(seen.items())) or "not recorded"


def readme_text(catalogue: Path) -> str:
    buckets = sorted((c.bucket for c in _readable(bucket_folders(catalogue))),
                     key=lambda b: (b.case.target.converter, b.best_outcome.stage, b.title))
    lines = [
        f"# {catalogue.name}/: the catalogue of bugs fuzzconv found",
        "",
        "Minimized, reliably reproducing buckets from fuzzconv campaigns on the pinned converter versions "
        f"({_versions(buckets)}). Each folder holds the bucket title, the first and the minimized case with "
        "their outcomes, a standalone `repro.py` (exits 1 while the bug is present, 0 once fixed) and an "
        "issue-ready `report.md`.",
        "",
        f"Before upgrading a converter or runtime, run `fuzzconv recheck {catalogue.name}/` "
        "(`--python` points at the candidate environment, see `make env-candidate`): it says which of these "
        "are fixed, still failing, or failing differently. This file is generated by "
        f"`fuzzconv curate CAMPAIGN_DIR --into {catalogue.name}`; edit the generator, not the table. "
        "`make run` with the default `--out .` also files new buckets here; curate keeps only qualifying ones.",
        "",
        f"{len(buckets)} bucket(s).",
        "",
        "| title | converter | stage | symptom | operators | size (minimized from) | reliability | reproduce |",
        "|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(lines + [_row(b, catalogue) for b in buckets]) + "\n"


def write_readme(catalogue: Path) -> Path:
    path = catalogue / "README.md"
    atomic_write(path, readme_text(catalogue))
    return path
