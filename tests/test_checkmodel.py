"""check-model and the conversion study: specs, data, measures, attacks, reports, and real runs.

The fast tests need no framework. The slow ones run `fuzzconv check-model` end to end on tiny
models of both frontends, including a known tf2onnx failure (Keras gelu lowers to TF Erfc) and a
model the TorchScript tracer gets wrong.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fuzzconv.checkmodel.adversarial import AttackSettings, craft, fgsm, judge
from fuzzconv.checkmodel.loader import UserModelError, check_data_fits, parse_spec, read_data
from fuzzconv.checkmodel.measure import agreement, merge, random_inputs_like, run_batched
from fuzzconv.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "checkmodel"
TINY_TORCH = FIXTURES / "tiny_torch.py"
TINY_KERAS = FIXTURES / "tiny_keras.py"
BRANCHY = FIXTURES / "branchy_torch.py"
CHEAP = ["--repeats", "3", "-n", "3", "--attack-samples", "16", "--json"]


# --- specs and data files (no framework) -----------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("model.py", "is not FILE.py:FUNC"),
    (f"{FIXTURES}/missing.py:build", "does not exist"),
    (f"{TINY_TORCH}:nope", "defines no 'nope'"),
    (f"{TINY_TORCH}:9lives", "is not a Python function name"),
])
def test_bad_specs_say_what_is_wrong(text, message):
    with pytest.raises(UserModelError, match=message):
        parse_spec(text)


def test_missing_func_lists_the_functions_defined(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def build():\n    pass\n\ndef other():\n    pass\n")
    with pytest.raises(UserModelError, match="functions defined there: build, other"):
        parse_spec(f"{path}:make")


def test_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def build(:\n")
    with pytest.raises(UserModelError, match="syntax error at line 1"):
        parse_spec(f"{path}:build")


def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def test_data_keys_and_rows_are_checked(tmp_path):
    with pytest.raises(UserModelError, match="expected the key x"):
        read_data(_npz(tmp_path, images=np.zeros((3, 2))))
    with pytest.raises(UserModelError, match="different numbers of rows"):
        read_data(_npz(tmp_path, x0=np.zeros((3, 2)), x1=np.zeros((4, 2))))
    with pytest.raises(UserModelError, match="one integer class label per row"):
        read_data(_npz(tmp_path, x=np.zeros((3, 2)), y=np.zeros(2, dtype=int)))
    data = read_data(_npz(tmp_path, x0=np.zeros((3, 2)), x1=np.ones((3, 1)), y=np.arange(3)))
    assert data.size == 3 and len(data.inputs) == 2


def test_data_must_fit_the_model_inputs(tmp_path):
    data = read_data(_npz(tmp_path, x=np.zeros((5, 1, 7, 7), np.float32)))
    with pytest.raises(UserModelError, match=r"samples of shape \[1, 7, 7\].*\[1, 8, 8\]"):
        check_data_fits(data, [np.zeros((4, 1, 8, 8), np.float32)], "d.npz")
    with pytest.raises(UserModelError, match="has 1 input array"):
        check_data_fits(data, [np.zeros((4, 1, 7, 7)), np.zeros((4, 2))], "d.npz")
    fitted = check_data_fits(read_data(_npz(tmp_path, x=np.zeros((5, 3)))), [np.zeros((2, 3), np.float32)], "d")
    assert fitted.inputs[0].dtype == np.float32


# --- measures and attacks (numpy only) -------------------------------------------------------


def test_batched_runs_pad_the_last_chunk_and_cut_it_again():
    seen = []

    def run(inputs):
        seen.append(len(inputs[0]))
        return [inputs[0] * 2]

    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    (out,) = run_batched(run, [x], 2)
    assert seen == [2, 2, 2]  # the converted model only ever sees its exported batch size
    np.testing.assert_array_equal(out, x * 2)


def test_agreement_measures_errors_top1_and_accuracy():
    expected = [np.array([[0.0, 1.0], [2.0, 0.0], [0.0, 5.0]], np.float32)]
    actual = [np.array([[0.0, 1.001], [0.0, 2.0], [0.0, 5.0]], np.float32)]
    result = agreement(expected, actual, labels=np.array([1, 1, 1]))
    assert result.max_abs_err == pytest.approx(2.0)
    assert result.required_tol == pytest.approx(2.0)  # |a-e| / (1+|e|), worst where e = 0 and a = 2
    assert result.top1_agreement == pytest.approx(2 / 3)
    assert (result.accuracy_source, result.accuracy_converted) == (pytest.approx(2 / 3), 1.0)
    assert not result.within(1e-3) and agreement(expected, expected).within(0.0)
    assert not agreement(expected, [expected[0][:2]]).shape_ok
    assert merge([result, agreement(expected, expected)]).top1_agreement == pytest.approx(5 / 6)


def test_random_inputs_follow_the_examples():
    rng = np.random.default_rng(0)
    examples = [np.full((4, 3), 10.0, np.float32) + np.arange(3, dtype=np.float32), np.array([[2, 5]], np.int64)]
    floats, ints = random_inputs_like(examples, rng)
    assert floats.shape == (4, 3) and floats.dtype == np.float32 and abs(floats.mean() - 11) < 2
    assert ints.dtype == np.int64 and ints.min() >= 2 and ints.max() <= 5


def _linear_classifier():
    weights = np.array([[1.0, -1.0], [-1.0, 1.0]], np.float32)

    def logits(x):
        return x @ weights

    def gradient(inputs, labels):  # d(cross-entropy)/dx for softmax(x @ W)
        z = logits(inputs[0])
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(labels)), labels] -= 1
        return p @ weights.T

    return logits, gradient


def test_fgsm_and_pgd_move_within_eps_and_fool_a_linear_model():
    logits, gradient = _linear_classifier()
    x = np.array([[0.6, 0.4], [0.4, 0.6], [0.9, 0.1]], np.float32)
    labels = logits(x).argmax(axis=1)
    eps, adversarial = craft([x], labels, gradient, AttackSettings(eps_fraction=0.2, pgd_steps=5))
    assert eps == pytest.approx(0.2 * 0.8)
    for crafted in adversarial.values():
        assert np.abs(crafted - x).max() <= eps + 1e-6 and crafted.min() >= 0.1 and crafted.max() <= 0.9
    result = judge(adversarial["fgsm"], [], labels, eps, lambda xs: logits(xs[0]).argmax(axis=1),
                   lambda xs: logits(xs[0]).argmax(axis=1))
    assert result.success_source == pytest.approx(2 / 3)  # the two rows near the boundary flip, the far one holds
    assert result.success_converted == result.success_source and result.disagreement == 0.0
    assert np.array_equal(fgsm(x, np.zeros_like(x), eps, 0.1, 0.9), x)


# --- the report (no framework) ----------------------------------------------------------------


def _fake_check(model, frontend, converters, accuracy=0.9):
    results = []
    for converter, status in converters:
        result = {"converter": converter, "status": status, "stage": "conversion" if status != "pass" else "",
                  "symptom": "crash" if status != "pass" else "", "title": f"x: conversion: crash: {converter}"}
        if status == "pass":
            result.update(data={"top1_agreement": 1.0, "accuracy_converted": accuracy, "max_abs_err": 1e-6,
                                "required_tol": 1e-7, "samples": 10},
                          latency_ms=0.5, peak_memory_mb=5.0, onnx_size_bytes=1000,
                          robustness={a: {"success_converted": 0.5, "disagreement": 0.0} for a in ("fgsm", "pgd")})
        results.append(result)
    return {"study": {"model": model, "frontend": frontend}, "settings": {"tolerance": 1e-3},
            "model": {"native_size_bytes": 2000}, "versions": {"onnx": "1"},
            "source": {"accuracy": accuracy, "latency_ms": 1.0, "peak_memory_mb": 10.0,
                       "attack_success": {"fgsm": 0.5, "pgd": 0.5}},
            "converters": results}


def test_study_report_lays_out_tables_like_the_paper(tmp_path):
    from fuzzconv.checkmodel.study import StudySettings
    from fuzzconv.checkmodel.study_report import write_reports
    from fuzzconv.checkmodel.study_table import findings_table, paper_tables

    checks = [_fake_check("lenet5", "torch", [("torch-dynamo", "pass"), ("torch-script", "pass")]),
              _fake_check("lenet5", "keras", [("tf2onnx", "finding"), ("keras-export", "pass")])]
    accuracy = paper_tables(checks)[0]
    assert accuracy.header == ("model", "Keras original", "tf2onnx", "keras-export", "PyTorch original",
                               "torch-dynamo", "torch-script")
    assert accuracy.rows == (("LeNet-5", "90.0", "fails (conversion crash)", "90.0", "90.0", "90.0", "90.0"),)
    verdicts = {row[0]: row[3] for row in findings_table(checks).rows}
    assert verdicts["1"] == "yes" and verdicts["3"] == "yes" and verdicts["5"] == "not tested"
    html_path, md_path = write_reports(tmp_path, {"torch/lenet5": {"train_s": 1, "train_rows": 1437}}, checks, 60.0,
                                       StudySettings(out=tmp_path))
    text = md_path.read_text()
    assert "| LeNet-5 | 90.0 | fails (conversion crash) |" in text and "(plots/accuracy.png)" in text
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 6 and "<table>" in page


def test_repro_script_is_valid_python():
    from fuzzconv.case import Outcome
    from fuzzconv.checkmodel.bucket import repro_script

    for frontend, converter in (("torch", "torch-dynamo"), ("torch", "torch-script"), ("keras", "tf2onnx"),
                                ("keras", "keras-export")):
        model = {"spec": "m.py:f", "file": "/abs/m.py", "func": "f", "frontend": frontend, "converter": converter,
                 "opset": 17, "tolerance": 1e-3}
        compile(repro_script(model, Outcome("id", "finding", "conversion", "crash", "t")), "repro.py", "exec")


# --- the command line -------------------------------------------------------------------------


def _cli(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_rejects_bad_specs_with_one_line(capsys, tmp_path):
    code, _, err = _cli(["check-model", f"{TINY_TORCH}:nope", "--out", str(tmp_path)], capsys)
    assert code == 2 and "defines no 'nope'" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli(["check-model", f"{TINY_TORCH}:build", "--converter", "tf2onx"], capsys)
    assert code == 2 and "unknown converter 'tf2onx'; choose from:" in err
    assert not (tmp_path / "crashes").exists()


@pytest.mark.slow
def test_torch_model_passes_with_data_labels_and_memory(capsys, tmp_path):
    rng = np.random.default_rng(0)
    data = _npz(tmp_path, x=rng.normal(size=(10, 1, 8, 8)).astype(np.float32), y=rng.integers(0, 10, 10))
    code, out, _ = _cli(["check-model", f"{TINY_TORCH}:build", "--data", data, "--out", str(tmp_path), *CHEAP], capsys)
    report = json.loads(out)
    assert code == 0 and report["exit_code"] == 0 and report["failed"] == []
    assert report["model"]["frontend"] == "torch" and report["model"]["inputs"] == [{"shape": [4, 1, 8, 8],
                                                                                     "dtype": "float32"}]
    assert report["data"] == {"path": data, "rows": 10, "labels": True}
    assert [r["converter"] for r in report["converters"]] == ["torch-dynamo", "torch-script"]
    source = report["source"]
    assert 0 <= source["accuracy"] <= 1 and source["latency_ms"] > 0 and source["peak_memory_mb"] > 0
    for result in report["converters"]:
        assert result["status"] == "pass" and result["title"] == ""
        assert result["random"]["samples"] == 12 and result["data"]["samples"] == 10  # 3 batches of 4; all rows
        assert result["random"]["required_tol"] < 1e-4 and result["data"]["top1_agreement"] == 1.0
        assert result["data"]["accuracy_converted"] == pytest.approx(source["accuracy"])
        assert result["latency_ms"] > 0 and result["onnx_size_bytes"] > 2610 * 4 and result["peak_memory_mb"] > 0
        assert set(result["robustness"]) == {"fgsm", "pgd"}
        assert result["robustness"]["fgsm"]["samples"] == 10 and result["robustness"]["pgd"]["disagreement"] <= 0.1
    assert not (tmp_path / "crashes").exists()


@pytest.mark.slow
def test_keras_gelu_fails_in_tf2onnx_and_leaves_a_bucket(capsys, tmp_path):
    code, out, _ = _cli(["check-model", f"{TINY_KERAS}:with_gelu", "--converter", "tf2onnx", "--no-memory",
                         "--out", str(tmp_path), *CHEAP], capsys)
    report = json.loads(out)
    assert code == 1 and report["failed"] == ["tf2onnx"]
    (result,) = report["converters"]
    assert (result["status"], result["stage"], result["symptom"]) == ("finding", "conversion", "crash")
    assert result["title"] == "keras/tf2onnx: conversion: crash: unsupported TF op Erfc"
    bucket = Path(result["bucket"])
    assert bucket.parent == tmp_path / "crashes"
    assert {"title.txt", "outcome.json", "stats.json", "model.json", "repro.py", "report.md", "inputs.npz"} <= \
        {p.name for p in bucket.iterdir()}
    assert json.loads((bucket / "stats.json").read_text())["source"] == "check-model"
    report_md = (bucket / "report.md").read_text()
    assert report_md.startswith("# tf2onnx.convert.from_keras fails: unsupported TF op Erfc")
    assert "## Reproduce" in report_md and "## Stage" in report_md
    repro = subprocess.run([sys.executable, str(bucket / "repro.py")], capture_output=True, text=True, timeout=300)
    assert repro.returncode == 1 and "BUG: the converter logged a failure" in repro.stdout


@pytest.mark.slow
def test_keras_model_passes_both_keras_converters(capsys, tmp_path):
    code, out, _ = _cli(["check-model", f"{TINY_KERAS}:build", "--no-memory", "--no-robustness",
                         "--out", str(tmp_path), *CHEAP], capsys)
    report = json.loads(out)
    assert code == 0 and [r["converter"] for r in report["converters"]] == ["tf2onnx", "keras-export"]
    assert all(r["status"] == "pass" and r["random"]["top1_agreement"] == 1.0 for r in report["converters"])
    assert "robustness" not in report["converters"][0] and report["source"]["attack_success"] is None


@pytest.mark.slow
def test_traced_branch_is_a_wrong_model_and_export_refuses_it(capsys, tmp_path):
    code, out, _ = _cli(["check-model", f"{BRANCHY}:build", "--no-memory", "--out", str(tmp_path), *CHEAP], capsys)
    report = json.loads(out)
    results = {r["converter"]: r for r in report["converters"]}
    assert code == 1 and set(report["failed"]) == {"torch-dynamo", "torch-script"}
    script = results["torch-script"]
    assert (script["symptom"], script["stage"]) == ("wrong-model", "conversion")
    assert script["title"] == "torch/script: conversion: wrong-model: values of build"
    assert script["random"]["required_tol"] > 0.1
    assert (results["torch-dynamo"]["stage"], results["torch-dynamo"]["symptom"]) == ("capture", "crash")
    bucket = Path(script["bucket"])
    repro = subprocess.run([sys.executable, str(bucket / "repro.py")], capture_output=True, text=True, timeout=300)
    assert repro.returncode == 1 and "BUG: wrong model" in repro.stdout


@pytest.mark.slow
def test_worker_side_usage_errors(capsys, tmp_path):
    code, _, err = _cli(["check-model", f"{TINY_TORCH}:not_a_model", "--no-memory", *CHEAP], capsys)
    assert code == 2 and "returned (a str, ...); expected (torch.nn.Module, tuple of example tensors)" in err
    code, _, err = _cli(["check-model", f"{TINY_TORCH}:raises", "--no-memory", *CHEAP], capsys)
    assert code == 2 and "raised RuntimeError: cannot build the model today" in err
    data = _npz(tmp_path, x=np.zeros((6, 1, 7, 7), np.float32))
    code, _, err = _cli(["check-model", f"{TINY_TORCH}:build", "--data", data, "--no-memory", *CHEAP], capsys)
    assert code == 2 and "samples of shape [1, 7, 7]" in err
    code, _, err = _cli(["check-model", f"{TINY_TORCH}:build", "--converter", "tf2onnx", "--no-memory", *CHEAP],
                        capsys)
    assert code == 2 and "converter tf2onnx does not take torch models; for torch use: torch-dynamo, torch-script" in err


@pytest.mark.slow
@pytest.mark.parametrize("func, symptom, detail", [("hangs", "hang", "time limit"),
                                                   ("aborts", "abort", "signal SIGSEGV")])
def test_a_converter_that_hangs_or_kills_the_worker_is_a_finding(capsys, tmp_path, func, symptom, detail):
    code, out, _ = _cli(["check-model", f"{FIXTURES / 'hostile_torch.py'}:{func}", "--converter", "torch-script",
                         "--timeout", "20s", "--no-memory", "--no-robustness", "--out", str(tmp_path), *CHEAP], capsys)
    (result,) = json.loads(out)["converters"]
    assert code == 1 and result["title"] == f"torch/script: conversion: {symptom}: {detail}"
    assert "during step 'convert'" in result["message"] and Path(result["bucket"], "repro.py").is_file()
