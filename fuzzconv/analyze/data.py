"""Campaign databases read into one tidy record per executed case, plus each campaign's timeline.

The failure label is `status == "finding"`. Cases the source framework rejected (`invalid`)
and version skew in the environment (`environment`) are kept out of every denominator.
Feature families come from the stored coverage keys (see fuzzconv.coverage), with the
frontend or converter name taken off, since every test is run within one converter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fuzzconv.campaign_db import FILENAME, CampaignDB, CampaignDBError
from fuzzconv.compare import REFERENCE_FACTOR

EXCLUDED_STATUSES = ("invalid", "environment")
# family name -> coverage key kind
FAMILIES = {
    "op": "op", "edge": "edge", "ngram3": "ngram3", "ngram4": "ngram4",
    "onnx": "onnx", "onnx-edge": "onnx-edge", "onnx-ngram3": "onnx-ngram3",
}
SEQUENCE_FAMILIES = ("edge", "ngram3", "ngram4")
# The key kinds a run of coverage-keys version 1 made from operator pairs, and of those the
# ones a case's graph rebuilds.
PAIR_MADE_KINDS = ("ngram3:", "ngram4:", "onnx-ngram3:", "onnx-ngram4:")
SOURCE_NGRAM_KINDS = PAIR_MADE_KINDS[:2]


class AnalysisInputError(Exception):
    """A campaign folder cannot be analyzed; the message says why and what to do."""


@dataclass(frozen=True)
class CaseRecord:
    campaign: str
    case_id: str
    converter: str
    opset: int
    status: str
    stage: str
    symptom: str
    title: str
    elapsed_s: float  # finish time, seconds since the campaign's first run started
    total_s: float
    node_count: int
    features: dict[str, frozenset[str]]  # family -> feature names
    required_tol: float | None  # compared cases only: smallest tolerance at which no output is wrong

    @property
    def failed(self) -> bool:
        return self.status == "finding"


@dataclass
class Campaign:
    name: str
    folder: Path
    started: datetime
    duration_s: float
    runs: list[dict[str, Any]]
    coverage_first_seen_s: list[float]
    cases: list[CaseRecord] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def load_campaigns(folders: Iterable[Path]) -> list[Campaign]:
    unique = dict.fromkeys(Path(folder).resolve() for folder in folders)  # a folder named twice counts once
    campaigns = [load_campaign(folder) for folder in unique]
    names = [c.name for c in campaigns]
    for campaign in campaigns:
        if names.count(campaign.name) > 1:  # two folders of the same name: tell them apart by path
            campaign.name = str(campaign.folder)
    if not any(c.cases for c in campaigns):
        folders_text = ", ".join(str(c.folder) for c in campaigns)
        raise AnalysisInputError(f"{folders_text}: no executed case that passed or failed is stored yet; "
                                 "let the campaign run longer (fuzzconv fuzz --out DIR) and retry")
    return campaigns


def load_campaign(folder: Path) -> Campaign:
    path = folder / FILENAME if folder.is_dir() or not folder.name.endswith(".sqlite") else folder
    if not path.is_file():
        raise AnalysisInputError(f"no campaign database at {path}; pass a folder written by "
                                 f"`fuzzconv fuzz --out DIR` (it holds {FILENAME})")
    try:
        with CampaignDB.open(path, readonly=True) as db:
            return _read(db, path.parent)
    except CampaignDBError as exc:
        raise AnalysisInputError(str(exc)) from None


def _read(db: CampaignDB, folder: Path) -> Campaign:
    runs = [dict(row) for row in db.conn.execute("SELECT * FROM runs ORDER BY run_id")]
    if not runs:
        raise AnalysisInputError(f"{db.path} holds no campaign run; run `fuzzconv fuzz --out {folder}` first")
    started = parse_time(min(r["started"] for r in runs))
    coverage = sorted((parse_time(t) - started).total_seconds()
                      for (t,) in db.conn.execute("SELECT first_seen FROM coverage"))
    campaign = Campaign(folder.name or str(folder), folder, started, 0.0, runs, coverage)
    pair_made = {run["run_id"] for run in runs if _keys_version(run) < 2}
    for row in db.iter_cases():
        if row["status"] in EXCLUDED_STATUSES:
            campaign.excluded[row["status"]] = campaign.excluded.get(row["status"], 0) + 1
            continue
        campaign.cases.append(case_record(row, campaign.name, started, row["run_id"] in pair_made))
    ends = [c.elapsed_s for c in campaign.cases] + coverage + [0.0]
    campaign.duration_s = max(ends)
    return campaign


def _keys_version(run: dict[str, Any]) -> int:
    """The meaning of a run's coverage keys (fuzzconv.coverage.KEYS_VERSION); 1 if it stored none."""
    try:
        return int(json.loads(run.get("config") or "{}").get("coverage_keys", 1))
    except (ValueError, TypeError, AttributeError):
        return 1


def case_record(row: dict[str, Any], campaign: str, started: datetime, pair_made: bool = False) -> CaseRecord:
    """`pair_made`: the row's run made its n-gram keys from operator pairs (fuzzconv.coverage,
    KEYS_VERSION 1), so they may hold sequences no path holds. Its source n-grams are rebuilt
    from its graph; its ONNX n-grams cannot be (the model is not stored) and are left out."""
    keys = row.get("coverage_keys")
    if not keys or pair_made:
        rebuilt = _source_keys(row)
        keys = rebuilt if not keys else ([key for key in keys if not key.startswith(PAIR_MADE_KINDS)]
                                         + [key for key in rebuilt if key.startswith(SOURCE_NGRAM_KINDS)])
    features: dict[str, set[str]] = {family: set() for family in FAMILIES}
    kinds = {kind: family for family, kind in FAMILIES.items()}
    for key in keys:
        kind, _, rest = key.partition(":")
        if kind in kinds:
            features[kinds[kind]].add(rest.partition(":")[2])
    features["onnx"].update(row.get("onnx_ops") or ())
    return CaseRecord(
        campaign=campaign, case_id=row["case_id"], converter=row["converter"], opset=int(row["opset"]),
        status=row["status"], stage=row["stage"], symptom=row["symptom"], title=row["title"],
        elapsed_s=(parse_time(row["finished"]) - started).total_seconds(), total_s=float(row["total_s"]),
        node_count=int(row["node_count"]), features={k: frozenset(v) for k, v in features.items()},
        required_tol=required_tolerance(row["outcome"]["diffs"]) if row["outcome"].get("diffs") else None,
    )


def _source_keys(row: dict[str, Any]) -> list[str]:
    """Coverage keys of a row stored before cases carried them, rebuilt from its graph."""
    from fuzzconv.case import Case, CaseError
    from fuzzconv.coverage import source_keys

    try:
        return sorted(source_keys(Case.from_json(row["case"]).graph))
    except (CaseError, KeyError, ValueError):
        return [f"op:{row['frontend']}:{op}" for op in row.get("source_ops", [])]


def required_tolerance(diffs: list[dict[str, Any]]) -> float:
    """The smallest tolerance at which none of a compared case's outputs would be called wrong.

    Infinite when a shape, dtype or NaN/Inf pattern differs (no tolerance waives those).
    Where the float64 reference judged an output, only its excess over REFERENCE_FACTOR times
    the source's own error counts, as in fuzzconv.compare.rejudge_with_reference.
    """
    needed = 0.0
    for diff in diffs:
        if not (diff.get("shape_ok", True) and diff.get("dtype_ok", True) and diff.get("nonfinite_ok", True)):
            return math.inf
        if float(diff.get("converted_ref_err", -1.0)) >= 0:
            excess = float(diff["converted_ref_err"]) - REFERENCE_FACTOR * float(diff.get("source_ref_err", 0.0))
            needed = max(needed, excess)
        else:
            needed = max(needed, float(diff.get("required_tol", 0.0)))
    return needed


def all_cases(campaigns: list[Campaign]) -> list[CaseRecord]:
    return [case for campaign in campaigns for case in campaign.cases]


def by_converter(cases: list[CaseRecord]) -> dict[str, list[CaseRecord]]:
    groups: dict[str, list[CaseRecord]] = {}
    for case in cases:
        groups.setdefault(case.converter, []).append(case)
    return dict(sorted(groups.items()))
