"""recheck: verdicts, crash isolation in the other interpreter, repro.py verdicts, reports, curate, candidate envs.

The slow test builds a real second environment that differs in onnxruntime only (1.20.1) and
shows recheck finding both directions on a stored campaign: a bucket that the older runtime
does not have (ConvTranspose with dilation and output_padding crashes only in 1.31) and a
corpus case that only the older runtime gets wrong (NaN from Sqrt after Roll).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from fuzzconv.candidate_env import CandidateEnvError, requirement_name
from fuzzconv.case import Case
from fuzzconv.cli import main
from fuzzconv.curate import curate, readme_text
from fuzzconv.recheck import Checked, Item, collect_all, only_runtime_status_differs, run_repro, verdict_of
from fuzzconv.recheck_report import RecheckReport, markdown_report, text_report
from fuzzconv.remote_worker import RemoteWorker

DATA = Path(__file__).parent / "recheck_data" / "campaign"
BUCKET = "torch-script-runtime-kernel-crash-invalidargument-in-convtranspose-66f9708a"
BUCKET_TITLE = "torch/script: runtime-kernel: crash: InvalidArgument in ConvTranspose"
CORPUS_CASE = "keras-export/0ea6043a7a038dee"
OLD_ORT = "onnxruntime==1.20.1"


@pytest.mark.parametrize("before, after, verdict", [
    (("finding", "A"), ("pass", ""), "fixed"),
    (("finding", "A"), ("finding", "A"), "still-failing"),
    (("finding", "A"), ("finding", "B"), "changed"),
    (("finding", "A"), ("invalid", "torch: invalid: X"), "changed"),
    (("pass", ""), ("finding", "B"), "new-failure"),
    (("pass", ""), ("environment", "E"), "new-failure"),
    (("pass", ""), ("pass", ""), "still-passing"),
    (("finding", "A"), ("", ""), "error"),
])
def test_verdicts(before, after, verdict):
    assert verdict_of(*before, *after) == verdict


@pytest.mark.parametrize("before, after, same", [
    ("torch/script: runtime-kernel: crash: Fail in GatherElements",
     "torch/script: runtime-kernel: crash: RuntimeException in GatherElements", True),
    ("keras/tf2onnx: runtime-optimization: crash: Fail: [ONNXRuntimeError] : N : FAIL : Exception during "
     "initialization: PATH:N",
     "keras/tf2onnx: runtime-optimization: crash: RuntimeException: [ONNXRuntimeError] : N : RUNTIME_EXCEPTION : "
     "Exception during initializa", True),
    ("torch/script: runtime-optimization: crash: Fail in Sub", "torch/script: runtime-kernel: crash: RuntimeException in Sub",
     False),
    ("torch/script: runtime-kernel: crash: Fail in Sub", "torch/script: runtime-kernel: crash: Fail in Add", False),
    ("torch/script: runtime-kernel: crash: Fail in Sub", "torch/script: runtime-kernel: crash: Fail in Sub", False),
])
def test_titles_that_differ_only_in_the_onnxruntime_status(before, after, same):
    assert only_runtime_status_differs(before, after) is same


def test_collect_reads_buckets_and_corpus(tmp_path):
    items = collect_all([DATA])
    assert [(i.kind, i.label, i.before_status, i.before_title) for i in items] == [
        ("bucket", BUCKET, "finding", BUCKET_TITLE), ("corpus", CORPUS_CASE, "pass", "")]
    assert items[0].path.endswith("minimized.json") and items[0].repro.endswith("repro.py")
    assert ("onnxruntime", "1.31.1") in items[0].stored_versions
    assert [i.kind for i in collect_all([DATA / "crashes"])] == ["bucket"]
    assert [i.kind for i in collect_all([DATA / "crashes" / BUCKET], corpus=False)] == ["bucket"]


def test_collect_refuses_an_empty_folder(tmp_path, capsys):
    assert main(["recheck", str(tmp_path)]) == 2
    assert "holds no bucket" in capsys.readouterr().err


def test_bad_interpreter_is_a_usage_error(tmp_path, capsys):
    assert main(["recheck", "--python", str(tmp_path / "no-python"), str(DATA)]) == 2
    assert "cannot run" in capsys.readouterr().err


FAKE_WORKER = '''
import json, os, signal, sys, time
from fuzzconv.case import Case, Outcome

if "versions" in sys.argv:
    print(json.dumps({"python": "3.0", "onnxruntime": "0.0"}))
    sys.exit(0)
print(json.dumps({"ready": os.getpid()}), flush=True)
for line in sys.stdin:
    case = Case.from_json(json.loads(line))
    print(json.dumps({"step": "convert"}), flush=True)
    if case.data_seed == 1:
        os.kill(os.getpid(), signal.SIGSEGV)
    if case.data_seed == 2:
        time.sleep(60)
    print(json.dumps({"outcome": Outcome(case.id, "pass").to_json()}), flush=True)
'''


def fake_python(tmp_path: Path) -> str:
    """An 'interpreter' whose replay worker dies on data seed 1, hangs on 2 and passes the rest."""
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    launcher = tmp_path / "python"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


def test_a_dying_or_hanging_worker_is_an_outcome_and_replaced(tmp_path):
    case = Case.loads((DATA / "crashes" / BUCKET / "minimized.json").read_text())
    worker = RemoteWorker(fake_python(tmp_path), "torch", tmp_path / "worker.log", case_timeout_s=1.0)
    try:
        seeds = [0, 1, 0, 2, 0]
        results = [worker.replay(dataclasses.replace(case, data_seed=seed)) for seed in seeds]
    finally:
        worker.stop()
    titles = [(r.outcome.status, r.outcome.title) for r in results if r.outcome]
    assert titles == [("pass", ""), ("finding", "torch/script: conversion: abort: signal SIGSEGV"), ("pass", ""),
                      ("finding", "torch/script: conversion: hang: time limit"), ("pass", "")]
    assert worker.lost == 2


def test_an_environment_without_the_framework_makes_errors_not_a_crash(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the worker logs are kept
    python = fake_python(tmp_path)
    script = tmp_path / "fake_worker.py"
    Path(python).write_text(f'#!/bin/sh\ncase "$*" in *serve*) echo "No module named torch" >&2; exit 1;; esac\n'
                            f'exec "{sys.executable}" "{script}" "$@"\n')
    code = main(["recheck", "--python", python, "--no-repro", "--no-corpus", "--save-json", str(tmp_path / "r.json"),
                 str(DATA)])
    assert code == 1 and "error (could not replay)" in capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    assert [(i["verdict"], "No module named torch" in i["error"]) for i in report["items"]] == [("error", True)]


REPRO_SCRIPTS = {
    "reproduces": 'print("BUG: conversion raised X"); raise SystemExit(1)',
    "passes": 'print("FIXED: every step passes")',
    "error (ModuleNotFoundError: No module named 'no_such_converter')": "import no_such_converter",
    "abort (signal SIGABRT)": "import os; os.abort()",
    "hang": "import time; time.sleep(30)",
}


@pytest.mark.parametrize("expected", list(REPRO_SCRIPTS))
def test_repro_verdicts(tmp_path, expected):
    script = tmp_path / "repro.py"
    script.write_text(REPRO_SCRIPTS[expected] + "\n")
    assert run_repro(sys.executable, str(script), timeout_s=1.5) == expected


def _checked(verdict: str, kind: str = "bucket", after: str = "finding") -> Checked:
    case = Case.loads((DATA / "crashes" / BUCKET / "minimized.json").read_text())
    item = Item(kind, f"{kind}-{verdict}", "x.json", case, "pass" if kind == "corpus" else "finding", "A",
                stored_versions=(("onnxruntime", "1.31.1"),))
    return Checked(item, after, "" if after == "pass" else "B", verdict)


def test_report_exit_code_follows_what_got_worse():
    versions = {"python": "3.11", "onnxruntime": "1.31.1"}
    better = RecheckReport(["d"], "py", versions, {**versions, "onnxruntime": "1.30.0"},
                           [_checked("fixed", after="pass"), _checked("still-failing"),
                            _checked("still-passing", "corpus", "pass")])
    assert better.exit_code == 0 and "nothing got worse" in text_report(better)
    assert "corpus-still-passing" not in text_report(better)  # unchanged corpus cases are only counted
    worse = dataclasses.replace(better, checked=better.checked + [_checked("changed"), _checked("new-failure", "corpus")])
    assert worse.exit_code == 1
    assert worse.counts()["new-failure"] == {"bucket": 0, "corpus": 1}
    text = markdown_report(worse)
    assert "| onnxruntime | 1.31.1 | 1.31.1 | **1.30.0** |" in text
    assert "**WORSE: 1 failing differently (new title), 1 new failure (passed before) (exit code 1)**" in text


def test_curate_copies_qualifying_buckets_and_writes_the_table(tmp_path):
    campaign = tmp_path / "campaign"
    shutil.copytree(DATA, campaign)
    flaky = campaign / "crashes" / "flaky-bucket"
    shutil.copytree(campaign / "crashes" / BUCKET, flaky)
    stats = json.loads((flaky / "stats.json").read_text())
    (flaky / "title.txt").write_text("torch/script: conversion: crash: Flaky\n")
    (flaky / "stats.json").write_text(json.dumps({**stats, "flaky": True, "reliability": "1/3"}))
    catalogue = tmp_path / "crashes"
    copied, skipped = curate([campaign], catalogue)
    assert copied == [BUCKET_TITLE]
    assert skipped == [("torch/script: conversion: crash: Flaky", "flaky (reproduced 1/3)")]
    assert sorted(p.name for p in (catalogue / BUCKET).iterdir())[:3] == ["case.json", "minimize.json", "minimized-outcome.json"]
    assert not (catalogue / BUCKET / "logs").exists()
    row = next(line for line in readme_text(catalogue).splitlines() if BUCKET_TITLE in line)
    assert f"`python crashes/{BUCKET}/repro.py`" in row and "| conv_transpose1d | 1 (from " in row
    assert (catalogue / "README.md").read_text() == readme_text(catalogue)


def test_curate_keeps_one_bucket_per_bug_across_keras_front_doors(tmp_path):
    catalogue = tmp_path / "crashes"
    copied, skipped = curate([DATA.parent / "doors"], catalogue)
    assert copied == ["keras/tf2onnx: conversion: wrong-model: values: remainder"]
    assert skipped == [("keras/export: conversion: wrong-model: values: remainder",
                        "same bug as the kept bucket 'keras/tf2onnx: conversion: wrong-model: values: remainder'")]
    assert [p.name for p in catalogue.iterdir() if p.is_dir()] == ["keras-tf2onnx-conversion-wrong-model-values-remainder-bb3236cc"]


def test_requirement_names():
    assert requirement_name("onnxruntime==1.20.1") == "onnxruntime"
    assert requirement_name("onnx-ir>=0.1") == "onnx-ir"
    with pytest.raises(CandidateEnvError):
        requirement_name("-e .")


def _recheck_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["recheck", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_recheck_against_an_older_onnxruntime(tmp_path, capsys):
    from fuzzconv.candidate_env import env_python, make_candidate

    found = make_candidate(tmp_path / "env", [OLD_ORT])
    assert [(d.name, d.version) for d in found] == [("onnxruntime", "1.20.1")]
    code, now = _recheck_json(capsys, str(DATA))
    assert code == 0
    assert [(i["verdict"], i["repro"]) for i in now["items"]] == [("still-failing", "reproduces"), ("still-passing", "")]
    code, old = _recheck_json(capsys, "--python", str(env_python(tmp_path / "env")), str(DATA))
    assert old["versions"]["rechecked"]["onnxruntime"] == "1.20.1"
    assert old["versions"]["current"]["onnxruntime"] == now["versions"]["rechecked"]["onnxruntime"]
    bucket, corpus = old["items"]
    assert (bucket["verdict"], bucket["after_status"], bucket["repro"]) == ("fixed", "pass", "passes")
    assert (corpus["verdict"], corpus["after_title"]) == (
        "new-failure", "keras/export: runtime-kernel: wrong-model: nan-inf: sqrt")
    assert code == 1 and old["worse"] == 1
