"""One analysis of one or more campaigns: load, run every section, keep the results as data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fuzzconv import __version__
from fuzzconv.analyze import (
    association,
    characteristics,
    operator_sequences,
    operator_types,
    opsets,
    timeline,
    tolerance,
)
from fuzzconv.analyze.data import Campaign, all_cases, load_campaigns
from fuzzconv.analyze.sections import Section

HYPOTHESIS_SECTIONS = ("types", "sequences")  # whose findings count as discoveries


@dataclass
class Settings:
    seed: int = 0
    permutations: int = 200
    resamples: int = 500


@dataclass
class Analysis:
    campaigns: list[Campaign]
    sections: list[Section]
    settings: Settings
    created: str

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)

    def discoveries(self) -> list[str]:
        """Significant results of the structural hypotheses (empty when nothing is found)."""
        return [f for s in self.sections if s.key in HYPOTHESIS_SECTIONS for f in s.findings]

    def to_json(self) -> dict[str, Any]:
        return {
            "fuzzconv_version": __version__, "created": self.created,
            "settings": vars(self.settings),
            "campaigns": [{"name": c.name, "folder": str(c.folder), "started": c.started.isoformat(),
                           "minutes": round(c.duration_s / 60, 2), "valid_cases": len(c.cases),
                           "excluded": c.excluded} for c in self.campaigns],
            "sections": [s.to_json() for s in self.sections],
        }


def analyze(folders: list[Path], settings: Settings) -> Analysis:
    campaigns = load_campaigns(folders)
    return analyze_campaigns(campaigns, settings)


def analyze_campaigns(campaigns: list[Campaign], settings: Settings) -> Analysis:
    cases = all_cases(campaigns)
    tests = association.structural_tests(cases)
    sections = [
        characteristics.section(cases),
        operator_types.section(cases, tests),
        operator_sequences.section(cases, tests, [c.folder for c in campaigns], settings.seed, settings.permutations,
                                   settings.resamples),
        opsets.section(cases),
        tolerance.section(cases),
        timeline.section(campaigns),
    ]
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return Analysis(campaigns, sections, settings, created)
