"""Coverage figures of a stored campaign: covered keys per kind and scope, against the registry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from fuzzconv import ops
from fuzzconv.coverage import universe

LEAST_COVERED = 10


def coverage_summary(keys: Iterable[str], cases: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Covered keys per (kind, frontend or converter), totals where the registry defines them,
    and the operators the fewest cases used, per frontend (unused ones first)."""
    per_scope: Counter[tuple[str, str]] = Counter()
    for key in keys:
        kind, scope, _ = key.split(":", 2)
        per_scope[(kind, scope)] += 1
    kinds = []
    for (kind, scope), covered in sorted(per_scope.items()):
        total = universe(scope).get(kind) if scope in ("torch", "keras") else None
        kinds.append({"kind": kind, "scope": scope, "covered": covered, "total": total})
    return {"kinds": kinds, "least_covered": least_covered(cases)}


def least_covered(cases: Iterable[dict[str, Any]]) -> dict[str, list[tuple[str, int]]]:
    used: dict[str, Counter[str]] = {"torch": Counter(), "keras": Counter()}
    for row in cases:
        used[row["frontend"]].update(set(row["source_ops"]))
    result = {}
    for frontend, counts in used.items():
        every = {op.name: counts.get(op.name, 0) for op in ops.for_frontend(frontend)}
        result[frontend] = sorted(every.items(), key=lambda item: (item[1], item[0]))[:LEAST_COVERED]
    return result
