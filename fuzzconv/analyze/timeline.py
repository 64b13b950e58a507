"""Section 6: the campaigns over time: buckets found, cases per second, coverage."""

from __future__ import annotations

from fuzzconv.analyze.data import Campaign
from fuzzconv.analyze.sections import DESCRIPTIVE, NOT_ENOUGH, Figure, Section, Table

BINS = 24
MIN_BIN_S = 30.0


def _steps(times: list[float], end_s: float) -> list[list[float]]:
    """A cumulative count as (minute, count) points, held level to the campaign's end."""
    points = [[0.0, 0]] + [[round(t / 60, 3), i + 1] for i, t in enumerate(sorted(times))]
    return points + [[round(max(end_s, points[-1][0] * 60) / 60, 3), len(times)]]


def _thin(points: list[list[float]], most: int = 400) -> list[list[float]]:
    step = max(1, len(points) // most)
    return points[::step] + ([points[-1]] if (len(points) - 1) % step else [])


def bucket_times(campaign: Campaign) -> list[float]:
    first: dict[str, float] = {}
    for case in campaign.cases:
        if case.failed:
            first[case.title] = min(first.get(case.title, case.elapsed_s), case.elapsed_s)
    return sorted(first.values())


def throughput(campaign: Campaign, label: str) -> dict[str, list[list[float]]]:
    bins = max(1, min(BINS, int(campaign.duration_s // MIN_BIN_S)))
    width = max(campaign.duration_s, 1.0) / bins  # equal bins, no part-empty one at the end
    lines = {}
    for converter in sorted({c.converter for c in campaign.cases}):
        counts = [0] * bins
        for case in campaign.cases:
            if case.converter == converter:
                counts[min(bins - 1, int(case.elapsed_s // width))] += 1
        lines[f"{label}{converter}"] = [[round((i + 0.5) * width / 60, 2), round(n / width, 3)] for i, n in enumerate(counts)]
    return lines


def section(campaigns: list[Campaign]) -> Section:
    many = len(campaigns) > 1
    label = {c.name: (f"{c.name}: " if many else "") for c in campaigns}
    buckets = {c.name: _thin(_steps(bucket_times(c), c.duration_s)) for c in campaigns}
    coverage = {c.name: _thin(_steps(c.coverage_first_seen_s, c.duration_s)) for c in campaigns}
    speed = {k: v for c in campaigns for k, v in throughput(c, label[c.name]).items()}
    figures = [Figure("timeline-buckets", "Buckets (distinct failure titles) found over time", "lines",
                      {"series": buckets, "step": True}, xlabel="minutes since start", ylabel="buckets"),
               Figure("timeline-speed", "Cases per second over time, per converter", "lines",
                      {"series": speed, "linthresh": 0.01}, xlabel="minutes since start",
                      ylabel="cases / s (linear below 0.01)", log_y=True),
               Figure("timeline-coverage", "Coverage keys over time", "lines", {"series": coverage, "step": True},
                      xlabel="minutes since start", ylabel="coverage keys")]
    rows = []
    for c in campaigns:
        times = bucket_times(c)
        late = sum(t > 0.75 * c.duration_s for t in times)
        late_cov = sum(t > 0.75 * c.duration_s for t in c.coverage_first_seen_s)
        rows.append([c.name, f"{c.duration_s / 60:.1f}", len(c.cases), len(times), late,
                     len(c.coverage_first_seen_s), late_cov,
                     ", ".join(f"{k} {v}" for k, v in sorted(c.excluded.items())) or "none"])
    table = Table("Campaigns", ["campaign", "minutes", "valid cases", "buckets", "buckets in the last quarter",
                                "coverage keys", "keys in the last quarter", "excluded cases"], rows)
    total_cases = sum(len(c.cases) for c in campaigns)
    basis = f"{len(campaigns)} campaign(s), {total_cases} valid cases."
    question = "Is the campaign still finding new bugs and new coverage at its end?"
    if not total_cases:
        return Section("timeline", "6. Campaign over time", question, NOT_ENOUGH, "Not enough data: no case.", basis,
                       [table], figures)
    sentence = "; ".join(f"{r[0]}: {r[3]} buckets in {r[1]} min, {r[4]} of them in the last quarter; "
                         f"{r[5]} coverage keys, {r[6]} in the last quarter" for r in rows) + "."
    return Section("timeline", "6. Campaign over time", question, DESCRIPTIVE, sentence, basis, [table], figures)
