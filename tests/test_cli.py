"""Bad input gets one clear line, exit code 2, and nothing already stored is touched."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fuzzconv.cli import UsageError, main, parse_duration
from fuzzconv.generate import generate_case
from fuzzconv.store import Store


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("4h", 14400), ("1h30m", 5400), ("45", 45)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "5x", "0s", "-3m"])
def test_bad_durations(text):
    with pytest.raises(UsageError, match="duration"):
        parse_duration(text)


@pytest.fixture
def stored(tmp_path):
    store = Store(tmp_path).open()
    case = generate_case(4, "torch-script")
    store.save_corpus(case)
    snapshot = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    return tmp_path, snapshot


def _unchanged(folder: Path, snapshot):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == snapshot


def _run(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err


def test_unknown_converter(stored, capsys):
    folder, snapshot = stored
    code, err = _run(["fuzz", "--converter", "tf2onx", "--out", str(folder), "--time", "5s"], capsys)
    assert code == 2
    assert "unknown converter 'tf2onx'; choose from: torch-dynamo, torch-script, tf2onnx, keras-export" in err
    assert _unchanged(folder, snapshot)


def test_bad_duration_on_command_line(stored, capsys):
    folder, snapshot = stored
    code, err = _run(["fuzz", "--time", "soon", "--out", str(folder)], capsys)
    assert code == 2 and "bad duration 'soon'" in err
    assert _unchanged(folder, snapshot)


def test_a_disk_below_the_free_space_to_keep_is_refused_before_anything_starts(stored, capsys, monkeypatch):
    from fuzzconv import engine

    folder, snapshot = stored
    monkeypatch.setattr(engine.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12, 500 << 20))
    code, err = _run(["fuzz", "--time", "5s", "--out", str(folder), "--min-free-disk", "600"], capsys)
    assert code == 2 and "has 500 MB free, less than --min-free-disk 600 MB" in err, err
    assert _unchanged(folder, snapshot) and not (folder / "campaign.sqlite").exists()
    code, err = _run(["fuzz", "--time", "5s", "--out", str(folder), "--min-free-disk", "-1"], capsys)
    assert code == 2 and "--min-free-disk -1 is negative" in err


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, err = _run(["fuzz", "--time", "5s", "--out", str(blocker / "out")], capsys)
    assert code == 2 and "cannot write to output folder" in err and "--out" in err
    assert blocker.read_text() == "not a folder"


def test_corrupt_case_file(stored, capsys):
    folder, snapshot = stored
    bad = folder / "corpus" / "torch-script" / "broken.json"
    bad.write_text('{"schema": 1, "graph": ')
    snapshot[bad] = bad.read_bytes()
    code, err = _run(["replay", str(bad)], capsys)
    assert code == 2 and "is not a valid case: not JSON" in err
    assert _unchanged(folder, snapshot)


def test_crafted_case_with_code_is_refused(tmp_path, capsys):
    data = generate_case(9, "torch-script").to_json()
    data["graph"]["nodes"][0]["attrs"]["payload"] = "__import__('os').system('touch /tmp/pwned')"
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(data))
    code, err = _run(["replay", str(path)], capsys)
    assert code == 2 and "not a valid case" in err
    assert not os.path.exists("/tmp/pwned")


def test_missing_case_file(capsys):
    code, err = _run(["replay", "/nonexistent/case.json"], capsys)
    assert code == 2 and "cannot read case file" in err


def test_ops_lists_registry(capsys):
    assert main(["ops", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    names = {row["name"] for row in listed}
    assert {"relu", "softmax", "add"} <= names


def test_help_does_not_import_frameworks():
    code = "import sys, fuzzconv.cli; fuzzconv.cli.build_parser(); print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_opset_sweep_is_cut_to_each_converter():
    from fuzzconv.cli import parse_opsets

    swept = parse_opsets("16-20", ("tf2onnx", "torch-script"))
    assert swept == {"tf2onnx": (16, 17, 18), "torch-script": (16, 17, 18, 19, 20)}
    assert parse_opsets("17", ("torch-dynamo",)) == {"torch-dynamo": (17,)}


@pytest.mark.parametrize("text, message", [("20-22", "no opset that tf2onnx accepts"), ("x", "bad --opset"),
                                           ("18-13", "range is empty")])
def test_bad_opsets(text, message):
    from fuzzconv.cli import parse_opsets

    with pytest.raises(UsageError, match=message):
        parse_opsets(text, ("tf2onnx",))
