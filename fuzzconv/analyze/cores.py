"""Minimized bucket cores: the operators and operator pairs left once the minimizer has cut a
bucket's first case down while keeping its title. They are what actually causes each bug."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fuzzconv.store import read_json_object


@dataclass(frozen=True)
class Core:
    title: str
    converter: str
    hits: int
    nodes_before: int
    ops: tuple[str, ...]
    pairs: tuple[str, ...]  # producer>consumer operator pairs of the minimized graph

    @property
    def kind(self) -> str:
        if not self.ops:
            return "not minimized"
        return "sequence" if self.pairs else ("single operator" if len(self.ops) == 1 else "unconnected operators")

    @property
    def text(self) -> str:
        return ", ".join(self.pairs) if self.pairs else " + ".join(self.ops) or "-"

    def row(self) -> list[object]:
        return [self.title, self.hits, self.kind, f"{self.nodes_before}\u2192{len(self.ops) or '?'}", self.text]


COLUMNS = ["bucket", "hits", "core", "nodes", "minimized operators / pairs"]
KIND_ORDER = ("sequence", "unconnected operators", "single operator", "not minimized")  # sequences first


def _graph_ops(case: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    nodes = case.get("graph", {}).get("nodes", []) if isinstance(case, dict) else []
    op_of = {n.get("name"): n.get("op", "?") for n in nodes}
    made_by = {}
    for node in nodes:  # a multi-output node's outputs are name_0, name_1, ...
        made_by[node.get("name")] = node.get("name")
        made_by.update({f"{node.get('name')}_{i}": node.get("name") for i in range(8)})
    pairs = [f"{op_of[made_by[a]]}>{n.get('op')}" for n in nodes for a in n.get("args", []) if a in made_by]
    return tuple(n.get("op", "?") for n in nodes), tuple(dict.fromkeys(pairs))


def load_cores(folder: Path) -> list[Core]:
    cores = []
    for bucket in sorted((folder / "crashes").glob("*/title.txt")):
        # a bucket file that does not decode is skipped, never fatal
        stats = read_json_object(bucket.parent / "stats.json") or {}
        original = read_json_object(bucket.parent / "case.json")
        minimized = read_json_object(bucket.parent / "minimized.json")
        ops, pairs = _graph_ops(minimized) if minimized else ((), ())
        before = len(original.get("graph", {}).get("nodes", [])) if isinstance(original, dict) else 0
        title = bucket.read_text(encoding="utf-8").strip()
        cores.append(Core(title, str(stats.get("converter", "")), int(stats.get("hits", 0) or 0), before, ops, pairs))
    return sorted(cores, key=lambda c: (KIND_ORDER.index(c.kind), -c.hits, c.title))
