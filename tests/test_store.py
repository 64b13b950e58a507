"""corpus/ and crashes/: atomic files, counted hits, a capped log ring, junk tolerated."""

import json

from fuzzconv.case import Outcome
from fuzzconv.generate import generate_case
from fuzzconv.store import LOG_RING, Store


def _finding(case, title="keras/tf2onnx: conversion: crash: unsupported TF op Erfc"):
    return Outcome(case.id, "finding", "conversion", "crash", title, message="boom")


def test_bucket_keeps_first_case_and_counts_hits(tmp_path):
    store = Store(tmp_path).open()
    first, second = generate_case(1, "tf2onnx"), generate_case(2, "tf2onnx")
    assert store.record_finding(first, _finding(first)).new_bucket
    recorded = store.record_finding(second, _finding(second))
    assert not recorded.new_bucket
    stats = json.loads((recorded.folder / "stats.json").read_text())
    assert stats["hits"] == 2
    assert json.loads((recorded.folder / "case.json").read_text())["data_seed"] == first.data_seed
    assert (recorded.folder / "title.txt").read_text().strip() == _finding(first).title


def test_log_ring_is_capped(tmp_path):
    store = Store(tmp_path).open()
    for seed in range(LOG_RING + 4):
        case = generate_case(seed, "tf2onnx")
        folder = store.record_finding(case, _finding(case)).folder
    assert len(list((folder / "logs").iterdir())) == LOG_RING


def test_junk_in_corpus_is_skipped(tmp_path):
    store = Store(tmp_path).open()
    good = generate_case(3, "torch-script")
    store.save_corpus(good)
    (store.corpus / "torch-script" / "junk.json").write_text("{broken")
    assert store.corpus_cases() == [good]
    assert not list(tmp_path.rglob("*.tmp"))


def test_replays_give_reliability_and_flag_flaky(tmp_path):
    store = Store(tmp_path).open()
    case = generate_case(5, "tf2onnx")
    title = "keras/tf2onnx: conversion: wrong-model: values: roll"
    store.record_finding(case, _finding(case, title))
    store.record_replay(title, reproduced=True)
    stats = store.record_replay(title, reproduced=False)
    assert (stats["reliability"], stats["flaky"]) == ("2/3", True)


def test_known_issue_is_marked_with_its_link(tmp_path):
    store = Store(tmp_path).open()
    case = generate_case(6, "tf2onnx")
    folder = store.record_finding(case, _finding(case)).folder
    stats = json.loads((folder / "stats.json").read_text())
    assert "tensorflow-onnx/issues" in stats["known_issue"]["link"]


def test_deferred_hits_wait_for_flush_and_replays_keep_them(tmp_path):
    """A campaign's repeated hits are written once per flush; a new bucket is on disk at once."""
    store = Store(tmp_path).open()
    store.defer_hits = True
    cases = [generate_case(seed, "tf2onnx") for seed in range(10, 14)]
    folder = store.record_finding(cases[0], _finding(cases[0])).folder
    assert json.loads((folder / "stats.json").read_text())["hits"] == 1  # new: written now
    for case in cases[1:3]:
        store.record_finding(case, _finding(case))
    assert json.loads((folder / "stats.json").read_text())["hits"] == 1
    assert len(list((folder / "logs").iterdir())) == 1
    store.record_replay(_finding(cases[0]).title, reproduced=True)  # written now, with the hits so far
    assert json.loads((folder / "stats.json").read_text())["hits"] == 3
    store.record_finding(cases[3], _finding(cases[3]))
    store.flush()
    stats = json.loads((folder / "stats.json").read_text())
    assert (stats["hits"], stats["runs"], stats["case_ids"][-1]) == (4, 2, cases[3].id)
    assert len(list((folder / "logs").iterdir())) == 4
    assert not list(tmp_path.rglob("*.tmp"))
