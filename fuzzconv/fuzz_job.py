"""A fuzz job: the case is made in the worker, from a seed and what the campaign has seen.

The parent only decides which converter and seed come next (time shares, the seed stream) and,
now and then, which corpus case to mutate; generating the graph, running it and computing its
coverage keys all happen in the worker, so the parent's work per case is storing the result.

Guided generation needs the campaign's seen operator pairs and 3-grams: the parent marks them
in memory it shares with its workers (fuzzconv.seen), so no job carries them and a new worker
process knows them all at once. Operator counts for the rare-operator guide are the worker's
own, from the cases it generated: workers of one frontend draw from the same distribution, so
their counts agree closely.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fuzzconv.case import CONVERTER_FRONTEND, Case, Outcome
from fuzzconv.generate import Guide, generate_case, guide_from, mutate_case
from fuzzconv.seen import SeenSequences

GUIDE_REFRESH = 50  # cases between recomputations of the rare-operator set


def fuzz_job(converter: str, index: int, seed: int, opset: int | None, max_nodes: int, guided: bool,
             parent: Case | None = None) -> dict[str, Any]:
    """The message that asks a worker to make and run the case `index` of `converter`'s seed stream."""
    return {"kind": "fuzz", "converter": converter, "index": index, "seed": seed, "opset": opset,
            "max_nodes": max_nodes, "guided": guided, "parent": parent.to_json() if parent is not None else None}


class Knowledge:
    """What one process making cases knows of the campaign's coverage, per frontend: the seen
    sequences (the parent's shared memory, or a private copy) and its own operator counts."""

    def __init__(self, seen: dict[str, SeenSequences] | None = None) -> None:
        self.seen: dict[str, SeenSequences] = dict(seen or {})
        self.op_counts: dict[str, Counter[str]] = {}
        self.guides: dict[str, tuple[int, Guide]] = {}  # frontend -> (cases made when computed, guide)
        self.made: Counter[str] = Counter()

    def sequences(self, frontend: str) -> SeenSequences:
        if frontend not in self.seen:
            self.seen[frontend] = SeenSequences(frontend)
        return self.seen[frontend]

    def guide(self, frontend: str) -> Guide:
        cached = self.guides.get(frontend)
        if cached is None or self.made[frontend] - cached[0] >= GUIDE_REFRESH:
            guide = guide_from(frontend, self.op_counts.get(frontend, Counter()), self.sequences(frontend))
            self.guides[frontend] = cached = (self.made[frontend], guide)
        return cached[1]

    def count(self, case: Case) -> None:
        frontend = case.graph.frontend
        self.made[frontend] += 1
        self.op_counts.setdefault(frontend, Counter()).update(set(case.graph.op_sequence))


def make_case(job: dict[str, Any], knowledge: Knowledge) -> Case:
    """The case a fuzz job names: a mutant of its parent, else a fresh (guided) graph."""
    converter = job["converter"]
    frontend = CONVERTER_FRONTEND[converter]
    guide = knowledge.guide(frontend) if job["guided"] else None
    if job.get("parent") is not None:
        case = mutate_case(Case.from_json(job["parent"]), job["seed"], job["max_nodes"], guide)
    else:
        case = generate_case(job["seed"], converter, job["max_nodes"], job["opset"], guide=guide)
    knowledge.count(case)
    return case


def stand_in_case(job: dict[str, Any]) -> Case:
    """For a fuzz job whose worker died before it said which case it made: the unguided case of
    the same seed, so that the loss is still recorded against a concrete, replayable case."""
    return generate_case(job["seed"], job["converter"], job["max_nodes"], job["opset"])


def done_payload(case: Case, case_text: str, outcome: Outcome, index: int | None) -> dict[str, Any]:
    """What a worker sends back for a fuzz job: the case it made (its canonical JSON text, which
    the parent stores as it is), the outcome, its coverage keys. The outcome's ONNX keys travel
    only among the coverage keys (they were half the message); `answer_outcome` puts them back
    where the parent needs them."""
    from fuzzconv.coverage import coverage_keys

    outcome_json = outcome.to_json()
    del outcome_json["onnx_keys"]
    return {"case": case_text, "outcome": outcome_json, "index": index, "keys": sorted(coverage_keys(case, outcome))}


def answer_outcome(outcome_json: dict[str, Any], keys: tuple[str, ...]) -> Outcome:
    """The outcome of a fuzz job's answer. A passing case's ONNX keys are left in its coverage
    keys (the database rebuilds them from there); a finding, whose outcome.json a person
    reads, gets them back."""
    outcome = Outcome.from_json(outcome_json)
    if outcome.status == "pass" or "onnx_keys" in outcome_json:
        return outcome
    from dataclasses import replace

    from fuzzconv.coverage import onnx_keys_from

    return replace(outcome, onnx_keys=onnx_keys_from(keys))
