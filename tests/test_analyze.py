"""`fuzzconv analyze` on synthetic campaign databases written through the real CampaignDB.

A planted effect (one operator pair that fails 30 % of the time, while its two operators on
their own fail at the base rate) must be found; data with no effect must give no discovery
in at least 95 % of repeated trials. No deep-learning framework is needed.
"""

from __future__ import annotations

import csv
import json
import math
import random
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from fuzzconv.analyze import study
from fuzzconv.analyze.analysis import Analysis, Settings, analyze
from fuzzconv.analyze.association import structural_tests
from fuzzconv.analyze.data import FAMILIES, CaseRecord, all_cases, load_campaigns, required_tolerance
from fuzzconv.analyze.opsets import schema_changes
from fuzzconv.analyze.sections import NOT_ENOUGH, NOT_SUPPORTED, SUPPORTED
from fuzzconv.analyze.sequences import unseen_share
from fuzzconv.campaign_db import CampaignDB
from fuzzconv.case import Case, Graph, GraphInput, Node, Outcome, Target, TensorType
from fuzzconv.cli import main
from fuzzconv.coverage import coverage_keys

OPS = ("relu", "tanh", "abs", "exp", "cos")
PLANTED = ("tanh", "exp")  # tanh feeding exp fails 30 % of the time; tanh or exp elsewhere do not
PLANTED_RATE, BASE_RATE = 0.30, 0.02
FAST = Settings(seed=0, permutations=20, resamples=100)
STUDY_CSV = Path("/work/shared/data/issta24_converter_failures_200.csv")


def random_graph(rng: random.Random) -> Graph:
    """A random DAG of unary ops: each node reads the input or an earlier node."""
    nodes: list[Node] = []
    for i in range(rng.randint(3, 8)):
        arg = "x0" if not nodes or rng.random() < 0.4 else rng.choice(nodes).name
        nodes.append(Node(f"n{i}", rng.choice(OPS), (arg,)))
    consumed = {a for node in nodes for a in node.args}
    outputs = tuple(node.name for node in nodes if node.name not in consumed)
    return Graph("torch", (GraphInput("x0", TensorType((2, 3))),), tuple(nodes), outputs)


def has_planted_pair(graph: Graph) -> bool:
    op_of = {node.name: node.op for node in graph.nodes}
    return any((op_of.get(arg), node.op) == PLANTED for node in graph.nodes for arg in node.args)


def outcome_for(case: Case, failed: bool) -> Outcome:
    if failed:
        return Outcome(case.id, "finding", "conversion", "crash", "torch/script: conversion: crash: planted",
                       timings=(("convert", 0.01),))
    onnx_ops = tuple(dict.fromkeys(node.op.capitalize() for node in case.graph.nodes))
    return Outcome(case.id, "pass", timings=(("convert", 0.01),), onnx_ops=onnx_ops)


def write_campaign(folder: Path, seed: int, cases: int, planted: bool, base_rate: float = BASE_RATE,
                   converter: str = "torch-script", per_schema_change: float = 0.0) -> Path:
    """A campaign folder whose database holds `cases` synthetic cases (plus two invalid ones)."""
    rng = random.Random(seed)
    with CampaignDB.open(folder / "campaign.sqlite") as db, db.transaction():
        run = db.start_run(seed, [converter], {})
        for index in range(cases + 2):
            graph = random_graph(rng)
            case = Case(graph, Target(converter, opset=13 + index % 6), data_seed=index)
            rate = PLANTED_RATE if planted and has_planted_pair(graph) else base_rate
            rate += per_schema_change * schema_changes().get(case.target.opset, 0)
            outcome = outcome_for(case, rng.random() < rate)
            if index >= cases:
                outcome = Outcome(case.id, "invalid", "source", "crash", "torch: source: crash: invalid")
            db.record_case(case, outcome, run, index, coverage=coverage_keys(case, outcome))
    return folder


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_campaign(tmp_path_factory.mktemp("planted"), seed=2000, cases=3000, planted=True)


@pytest.fixture(scope="module")
def planted_analysis(planted: Path) -> Analysis:
    return analyze([planted], FAST)


def test_invalid_cases_are_kept_out_of_the_denominators(planted: Path) -> None:
    (campaign,) = load_campaigns([planted])
    assert campaign.excluded == {"invalid": 2}
    assert len(campaign.cases) == 3000
    assert all(case.status in ("pass", "finding") for case in campaign.cases)


def test_planted_sequence_is_found_and_its_operators_are_not_blamed(planted_analysis: Analysis) -> None:
    analysis = planted_analysis
    sequences = analysis.section("sequences")
    assert sequences.verdict == SUPPORTED, sequences.sentence
    assert f"beyond: torch-script: {'>'.join(PLANTED)}" in sequences.findings
    assert "classifier: torch-script" in sequences.findings
    tests = structural_tests(all_cases(analysis.campaigns))
    raised = {t.feature for t in tests["op"] if t.significant and t.odds_ratio > 1}
    assert raised <= set(PLANTED), raised  # only the planted pair's own operators carry (some of) its effect


def trial_has_discovery(folder: Path, seed: int) -> list[str]:
    write_campaign(folder, seed=seed, cases=600, planted=False, base_rate=0.1)  # enough failing cases to model
    return analyze([folder], Settings(seed=seed, permutations=0, resamples=100)).discoveries()


def test_no_effect_gives_no_discovery_in_95_percent_of_trials(tmp_path: Path) -> None:
    trials = 25
    found = {seed: trial_has_discovery(tmp_path / f"null-{seed}", seed) for seed in range(trials)}
    with_discovery = [seed for seed, d in found.items() if d]
    # Under 5 %: at most one trial of 25 (4 %) may report anything significant.
    assert len(with_discovery) <= 1, {seed: found[seed] for seed in with_discovery}


def test_unseen_sequence_measure_has_a_shuffled_baseline(planted_analysis: Analysis) -> None:
    figure = next(f for f in planted_analysis.section("sequences").figures if f.id == "sequences-unseen")
    assert len(figure.data["series"]["shuffled within converter"]) == FAST.permutations
    observed = figure.data["markers"]["observed"]
    assert 0 < observed <= 100


def test_opsets_with_more_schema_changes_failing_more_are_found(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path / "opsets", seed=5, cases=1800, planted=False, per_schema_change=0.003)
    opsets = analyze([folder], FAST).section("opsets")
    assert opsets.verdict == SUPPORTED, opsets.sentence


def test_opsets_without_an_effect_are_not_blamed(planted_analysis: Analysis) -> None:
    opsets = planted_analysis.section("opsets")
    assert opsets.verdict == NOT_SUPPORTED, opsets.sentence
    assert "over 6 opsets (3000 cases)" in opsets.sentence


def test_too_little_data_says_so(tmp_path: Path) -> None:
    folder = write_campaign(tmp_path / "tiny", seed=3, cases=40, planted=True)
    analysis = analyze([folder], FAST)
    sequences = analysis.section("sequences")
    assert sequences.verdict == NOT_ENOUGH
    assert "failing of 40 cases" in sequences.sentence


def test_required_tolerance_of_a_case() -> None:
    value = {"shape_ok": True, "dtype_ok": True, "nonfinite_ok": True, "ok": False, "required_tol": 0.02,
             "converted_ref_err": -1.0, "source_ref_err": -1.0}
    assert required_tolerance([value, {**value, "required_tol": 1e-6, "ok": True}]) == 0.02
    assert math.isinf(required_tolerance([value, {**value, "nonfinite_ok": False}]))
    judged = {**value, "converted_ref_err": 0.5, "source_ref_err": 0.01}
    assert required_tolerance([judged]) == pytest.approx(0.4)


@pytest.mark.skipif(not STUDY_CSV.is_file(), reason="the study's shared CSV is not on this machine")
def test_study_figures_match_the_artifact() -> None:
    rows = list(csv.DictReader(STUDY_CSV.open(encoding="utf-8")))
    tally = Counter((r["converter"], r["Component"], r["Symptoms"]) for r in rows)
    assert dict(tally) == study.ISSUES


def test_cli_writes_the_report(planted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    code = main(["analyze", str(planted), "--out", str(out), "--permutations", "10", "--resamples", "60"])
    assert code == 0, capsys.readouterr().err
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 8
    assert "http" not in page.split("<body>", 1)[1].replace("https://github.com", "")  # nothing fetched
    figures = json.loads((out / "figures.json").read_text(encoding="utf-8"))
    assert [s["key"] for s in figures["sections"]] == ["characteristics", "types", "sequences", "opsets",
                                                       "tolerance", "timeline"]
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "3. Operator sequences | supported" in summary


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "does not exist"),
    (lambda d: d.mkdir(), "no campaign database"),
    (lambda d: (d.mkdir(), (d / "campaign.sqlite").write_bytes(b"not sqlite" * 200)), "not a SQLite database"),
    (lambda d: CampaignDB.open(d / "campaign.sqlite").close(), "no campaign run"),
    (lambda d: (d.mkdir(), sqlite3.connect(d / "campaign.sqlite").execute("CREATE TABLE t (x)").connection.commit()),
     "not a fuzzconv campaign database"),
])
def test_cli_refuses_bad_input_with_one_line(make, message, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "campaign"
    make(folder)
    code = main(["analyze", str(folder), "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "report").exists()


def test_cli_refuses_a_campaign_without_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "campaign"
    with CampaignDB.open(folder / "campaign.sqlite") as db:
        db.start_run(1, ["torch-script"], {})
    assert main(["analyze", str(folder)]) == 2
    assert "no executed case" in capsys.readouterr().err


def record(case_id: str, ops: tuple[str, ...], failed: bool) -> CaseRecord:
    pairs = frozenset(f"{a}>{b}" for a, b in zip(ops, ops[1:]))
    features = {family: frozenset() for family in FAMILIES} | {"op": frozenset(ops), "edge": pairs}
    return CaseRecord("c", case_id, "torch-script", 17, "finding" if failed else "pass", "", "", "", 0.0, 0.0,
                      len(ops), features, None)


def test_unseen_measure_can_leave_out_operators_that_never_pass() -> None:
    """A failing operator makes every sequence through it 'never seen passing'; the second count drops those."""
    cases = [record(f"p{i}", ("relu", "tanh"), False) for i in range(5)]
    cases += [record("f1", ("relu", "boom"), True), record("f2", ("tanh", "relu"), True)]
    measure = unseen_share(cases, permutations=0, seed=0)
    assert (measure.holders, measure.holders_of_known_ops, measure.failing) == (2, 1, 2)


def test_runs_that_made_n_grams_from_operator_pairs_get_their_source_n_grams_rebuilt(tmp_path: Path) -> None:
    # relu -> tanh -> relu, and tanh -> exp: the pairs alone also made tanh>relu>tanh
    nodes = (Node("n0", "relu", ("x0",)), Node("n1", "tanh", ("n0",)), Node("n2", "relu", ("n1",)),
             Node("n3", "tanh", ("x0",)), Node("n4", "exp", ("n3",)))
    graph = Graph("torch", (GraphInput("x0", TensorType((2, 3))),), nodes, ("n2", "n4"))
    case = Case(graph, Target("torch-script", opset=17), data_seed=1)
    outcome = outcome_for(case, False)
    stored = coverage_keys(case, outcome) | {"ngram3:torch:tanh>relu>tanh", "onnx-ngram3:torch-script:Relu>Tanh>Relu"}
    with CampaignDB.open(tmp_path / "campaign.sqlite") as db, db.transaction():
        old = db.start_run(1, ["torch-script"], {"jobs": 2})  # a run from before KEYS_VERSION
        db.record_case(case, outcome, old, 0, coverage=stored)
        new = db.start_run(2, ["torch-script"], {"jobs": 2, "coverage_keys": 2})
        other = Case(graph, Target("torch-script", opset=16), data_seed=1)
        db.record_case(other, outcome_for(other, False), new, 0, coverage=stored)
    (campaign,) = load_campaigns([tmp_path])
    by_opset = {record.opset: record.features for record in campaign.cases}
    assert by_opset[17]["ngram3"] == {"relu>tanh>relu"}
    assert by_opset[17]["onnx-ngram3"] == set()
    assert by_opset[17]["edge"] == {"relu>tanh", "tanh>relu", "tanh>exp"}
    assert by_opset[16]["ngram3"] == {"relu>tanh>relu", "tanh>relu>tanh"}  # a current run's keys are read as stored
    assert by_opset[16]["onnx-ngram3"] == {"Relu>Tanh>Relu"}
