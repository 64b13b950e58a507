"""The campaign database: schema, round trip, resume, refusals that leave files untouched, a killed writer."""

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from functools import cache
from pathlib import Path

import pytest

from fuzzconv import campaign_db
from fuzzconv.campaign_db import SCHEMA_VERSION, CampaignDB, CampaignDBError
from fuzzconv.case import Case, Outcome, OutputDiff
from fuzzconv.generate import generate_case


@cache
def _case(seed: int, converter: str = "torch-script") -> Case:
    return generate_case(seed, converter)


def _outcome(case: Case, status: str = "pass", title: str = "", stage: str = "", symptom: str = "",
             seconds: float = 0.5) -> Outcome:
    return Outcome(case.id, status, stage, symptom, title, message="m", decided_by="test",
                   versions=(("torch", "2.13.0"),), timings=(("capture", seconds / 2), ("runtime", seconds / 2)),
                   onnx_ops=("Add", "Relu"), log_tail="a long log")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(path: Path, expected: str) -> str:
    before, listing = _digest(path), sorted(os.listdir(path.parent))
    with pytest.raises(CampaignDBError) as info:
        CampaignDB.open(path)
    message = str(info.value)
    assert expected in message and "--out" in message and "\n" not in message, message
    assert _digest(path) == before and sorted(os.listdir(path.parent)) == listing
    return message


def test_new_database_has_schema_wal_and_meta(tmp_path):
    path = tmp_path / "out" / "campaign.sqlite"
    with CampaignDB.open(path) as db:
        pragma = {name: db.conn.execute(f"PRAGMA {name}").fetchone()[0]
                  for name in ("journal_mode", "synchronous", "user_version", "busy_timeout")}
        assert pragma == {"journal_mode": "wal", "synchronous": 1, "user_version": SCHEMA_VERSION,
                          "busy_timeout": 10000}
        meta = db.meta()
        assert meta["application"] == "fuzzconv" and meta["schema"] == SCHEMA_VERSION and meta["created"]
        names = {row[0] for row in db.conn.execute("SELECT name FROM sqlite_master")}
        assert {"meta", "runs", "cases", "coverage", "titles", "cases_converter_index"} <= names
    with CampaignDB.open(path) as db:  # reopening an up-to-date file changes nothing
        assert db.meta() == meta


def test_empty_file_is_initialised(tmp_path):
    path = tmp_path / "campaign.sqlite"
    path.touch()  # what a crash right after creating the file leaves
    with CampaignDB.open(path) as db:
        assert db.meta()["application"] == "fuzzconv"


def test_record_round_trip(tmp_path):
    case = _case(1)
    diff = OutputDiff("out", True, True, True, float("inf"), 1e-3, 1e-4, False, (2, 3), (2, 3), "float32", "float32")
    outcome = Outcome(case.id, "finding", "runtime-kernel", "wrong-model", "t: wrong", "msg", "compare",
                      (diff,), (("onnx", "1.18"),), (("capture", 0.25), ("runtime", 0.5)), ("Add",), "log")
    with CampaignDB.open(tmp_path / "c.sqlite") as db:
        run = db.start_run(5, ["torch-script"], {"argv": ["fuzz"], "out": tmp_path})
        assert db.record_case(case, outcome, run, 3)
        assert db.has_case(case.id) and not db.has_case("0" * 16)
        [row] = list(db.iter_cases("converter = ?", ("torch-script",)))
    assert Case.from_json(row["case"]) == case
    assert Outcome.from_json(row["outcome"]).diffs[0].max_abs_err == float("inf")
    assert Outcome.from_json({**row["outcome"], "log_tail": "log"}) == outcome
    assert row["case_id"] == case.id and row["run_id"] == run and row["generation_index"] == 3
    assert row["data_seed"] == case.data_seed and row["opset"] == case.target.opset and row["frontend"] == "torch"
    assert (row["status"], row["stage"], row["symptom"], row["title"]) == (
        "finding", "runtime-kernel", "wrong-model", "t: wrong")
    assert row["timings"] == {"capture": 0.25, "runtime": 0.5} and row["total_s"] == 0.75
    assert row["source_ops"] == list(case.graph.op_sequence) and row["node_count"] == len(case.graph.nodes)
    assert row["onnx_ops"] == ["Add"] and row["versions"] == {"onnx": "1.18"} and row["finished"].endswith("Z")


def test_same_case_recorded_twice_is_stored_once(tmp_path):
    case = _case(2)
    path = tmp_path / "c.sqlite"
    with CampaignDB.open(path) as db:
        run = db.start_run(1, ["torch-script"], {})
        assert db.record_case(case, _outcome(case), run, 0)
        assert not db.record_case(case, _outcome(case, "finding", "other"), run, 9)
    with CampaignDB.open(path) as db:  # after a resume too
        assert not db.record_case(case, _outcome(case), db.start_run(1, ["torch-script"], {}), 0)
        rows = list(db.iter_cases())
    assert len(rows) == 1 and rows[0]["status"] == "pass" and rows[0]["generation_index"] == 0


def test_next_generation_index_continues_after_the_max(tmp_path):
    path = tmp_path / "c.sqlite"
    with CampaignDB.open(path) as db:
        assert db.next_generation_index("torch-script") == 0
        run = db.start_run(1, ["torch-script", "tf2onnx"], {})
        for index in (0, 4, 2):
            db.record_case(_case(index), _outcome(_case(index)), run, index)
        db.record_case(_case(10), _outcome(_case(10)), run, -1)  # not from the seed stream
        keras = _case(1, "tf2onnx")
        db.record_case(keras, _outcome(keras), run, 7)
    with CampaignDB.open(path) as db:
        assert db.next_generation_index("torch-script") == 5
        assert db.next_generation_index("tf2onnx") == 8
        assert db.next_generation_index("torch-dynamo") == 0


def test_resume_reads_only_the_corpus_files_the_database_does_not_hold(tmp_path):
    from fuzzconv.store import Store

    store = Store(tmp_path).open()
    recorded, curated = _case(3), _case(4)
    for case in (recorded, curated):
        store.save_corpus(case)
    with CampaignDB.open(tmp_path / "c.sqlite") as db:
        db.record_case(recorded, _outcome(recorded), db.start_run(1, ["torch-script"], {}), 0)
        assert db.stored_ids([recorded.id, curated.id, "0" * 16]) == {recorded.id}
        assert store.corpus_cases(db.stored_ids) == [curated]
    assert sorted(c.id for c in store.corpus_cases()) == sorted([recorded.id, curated.id])


def test_totals_carry_over_across_reopen(tmp_path):
    path = tmp_path / "c.sqlite"
    with CampaignDB.open(path) as db:
        run = db.start_run(1, ["torch-script"], {})
        db.record_case(_case(0), _outcome(_case(0)), run, 0)
        db.record_case(_case(1), _outcome(_case(1), "invalid", "bad attr"), run, 1)
        db.end_run(run)
    with CampaignDB.open(path) as db:
        run = db.start_run(1, ["torch-script"], {})
        db.record_case(_case(2), _outcome(_case(2), "finding", "t", "conversion", "crash", seconds=1.0), run, 2)
        first = db.totals()
    with CampaignDB.open(path) as db:
        assert db.totals() == first
    assert first["cases"] == {"torch-script": 3} and first["runs"] == 2
    assert first["busy_s"]["torch-script"] == pytest.approx(2.0)
    assert first["statuses"] == {("torch-script", "pass"): 1, ("torch-script", "invalid"): 1,
                                 ("torch-script", "finding"): 1}
    assert first["stages"] == {("torch-script", "conversion", "crash"): 1}
    assert first["invalid_titles"] == {"bad attr": 1}


def test_coverage_reports_only_new_keys(tmp_path):
    with CampaignDB.open(tmp_path / "c.sqlite") as db:
        assert db.add_coverage({"op:torch:add", "op:torch:mul"}, "a" * 16) == {"op:torch:add", "op:torch:mul"}
        assert db.add_coverage({"op:torch:add", "edge:torch:add>mul"}, "b" * 16) == {"edge:torch:add>mul"}
        assert db.add_coverage(set(), "c" * 16) == set()
        assert db.coverage_keys() == {"op:torch:add", "op:torch:mul", "edge:torch:add>mul"}
        first = db.conn.execute("SELECT first_case_id FROM coverage WHERE key = 'op:torch:add'").fetchone()[0]
    assert first == "a" * 16
    with CampaignDB.open(tmp_path / "c.sqlite") as db:  # a resumed writer knows every stored key
        assert db.add_coverage({"op:torch:mul", "edge:torch:add>mul", "op:torch:neg"}, "d" * 16) == {"op:torch:neg"}
        assert db.coverage_count() == 4
        assert db.coverage_keys(prefixes=["op:", "edge:torch:"]) == db.coverage_keys()
        assert db.coverage_keys(prefixes=["edge:"]) == {"edge:torch:add>mul"}


def test_garbage_file_is_refused_untouched(tmp_path):
    path = tmp_path / "campaign.sqlite"
    path.write_bytes(random.Random(0).randbytes(8192))
    _refused(path, "is not a SQLite database")


@pytest.mark.parametrize("schema", ["CREATE TABLE songs (title TEXT)", "CREATE TABLE meta (k, v)"])
def test_foreign_sqlite_database_is_refused_untouched(tmp_path, schema):
    path = tmp_path / "campaign.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(schema)
    conn.close()
    message = _refused(path, "is not a fuzzconv campaign database")
    assert schema.split()[2] in message


def test_newer_schema_is_refused_untouched(tmp_path):
    path = tmp_path / "campaign.sqlite"
    CampaignDB.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    _refused(path, f"schema {SCHEMA_VERSION + 1}, newer than")


def test_registered_migration_upgrades_in_place(tmp_path, monkeypatch):
    path = tmp_path / "campaign.sqlite"
    with CampaignDB.open(path) as db:
        db.record_case(_case(0), _outcome(_case(0)), db.start_run(1, ["torch-script"], {}), 0)

    def add_notes(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE cases ADD COLUMN notes TEXT NOT NULL DEFAULT ''")

    monkeypatch.setattr(campaign_db, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(campaign_db, "MIGRATIONS", {**campaign_db.MIGRATIONS, SCHEMA_VERSION: add_notes})
    with CampaignDB.open(path) as db:
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert db.meta()["schema"] == SCHEMA_VERSION + 1
        [row] = list(db.iter_cases())
    assert row["notes"] == "" and row["case_id"] == _case(0).id
    with CampaignDB.open(tmp_path / "fresh.sqlite") as db:  # a new file gets the base schema, then migrations
        assert "notes" in [col[0] for col in db.conn.execute("SELECT * FROM cases LIMIT 0").description]


def test_failed_or_missing_migration_leaves_the_file(tmp_path, monkeypatch):
    path = tmp_path / "campaign.sqlite"
    CampaignDB.open(path).close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(campaign_db, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(campaign_db, "MIGRATIONS", {SCHEMA_VERSION: broken})
    with pytest.raises(RuntimeError):
        CampaignDB.open(path)
    monkeypatch.setattr(campaign_db, "MIGRATIONS", {})
    with pytest.raises(CampaignDBError, match="cannot upgrade"):
        CampaignDB.open(path)
    monkeypatch.undo()
    with CampaignDB.open(path) as db:
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert "half_done" not in {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master")}


def test_transaction_is_all_or_nothing(tmp_path):
    with CampaignDB.open(tmp_path / "c.sqlite") as db:
        run = db.start_run(1, ["torch-script"], {})
        with pytest.raises(KeyError), db.transaction():
            db.record_case(_case(0), _outcome(_case(0)), run, 0)
            db.add_coverage({"k"}, _case(0).id)
            raise KeyError("crash between the two writes")
        assert not db.has_case(_case(0).id) and db.coverage_keys() == set()


def test_summary_numbers(tmp_path):
    path = tmp_path / "c.sqlite"
    with CampaignDB.open(path) as db:
        run = db.start_run(1, ["torch-script", "tf2onnx"], {})
        for i in range(3):
            db.record_case(_case(i), _outcome(_case(i), seconds=0.5), run, i)
        db.record_case(_case(3), _outcome(_case(3), "finding", "A", "conversion", "crash", 1.5), run, 3)
        db.record_case(_case(4), _outcome(_case(4), "invalid", "I", seconds=1.0), run, 4)
        keras = [_case(i, "tf2onnx") for i in range(3)]
        db.record_case(keras[0], _outcome(keras[0], "finding", "A", "conversion", "crash", 2.0), run, 0)
        db.record_case(keras[1], _outcome(keras[1], "finding", "B", "runtime-kernel", "wrong-model", 1.0), run, 1)
        db.record_case(keras[2], _outcome(keras[2], "environment", "E", "environment", "crash", 1.0), run, 2)
        db.add_coverage({"a", "b", "c"}, keras[0].id)
        db.end_run(run)
    with CampaignDB.open(path, readonly=True) as db:
        summary = db.summary()
    assert summary["runs"] == 1 and summary["cases"] == 8 and summary["coverage"] == 3
    assert summary["first"] <= summary["last"]
    torch = summary["converters"]["torch-script"]
    assert torch["cases"] == 5 and torch["busy_s"] == pytest.approx(4.0) and torch["cases_per_s"] == pytest.approx(1.25)
    assert torch["statuses"] == {"pass": 3, "finding": 1, "invalid": 1}
    assert summary["converters"]["tf2onnx"]["statuses"] == {"finding": 2, "environment": 1}
    assert summary["stages"][0] == {"status": "finding", "stage": "conversion", "symptom": "crash", "cases": 2}
    assert len(summary["stages"]) == 3
    assert [(t["title"], t["cases"]) for t in summary["top_titles"]] == [("A", 2), ("B", 1), ("E", 1), ("I", 1)]
    assert summary["invalid"] == 1 and summary["invalid_rate"] == pytest.approx(1 / 8)


def test_readonly_open(tmp_path):
    path = tmp_path / "c.sqlite"
    with pytest.raises(CampaignDBError, match="holds no campaign"):
        CampaignDB.open(path, readonly=True)
    assert not path.exists()
    with CampaignDB.open(path) as writer, CampaignDB.open(path, readonly=True) as reader:
        writer.record_case(_case(0), _outcome(_case(0)), writer.start_run(1, [], {}), 0)
        assert reader.has_case(_case(0).id)
        with pytest.raises(sqlite3.OperationalError):
            reader.add_coverage({"k"}, "x")


WRITER = """
import sys
from pathlib import Path
from fuzzconv.campaign_db import CampaignDB
from fuzzconv.case import Outcome
from fuzzconv.generate import generate_case

db = CampaignDB.open(Path(sys.argv[1]))
run = db.start_run(7, ["torch-script"], {})
index = 0
while True:
    case = generate_case(index, "torch-script", max_nodes=2)
    with db.transaction():
        db.record_case(case, Outcome(case.id, "pass", timings=(("capture", 0.001),)), run, index)
        db.add_coverage({f"index:{index}"}, case.id)
    print(case.id, flush=True)
    index += 1
"""


def test_killed_writer_leaves_only_complete_rows(tmp_path):
    path = tmp_path / "campaign.sqlite"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    guard = threading.Timer(15, child.kill)
    guard.start()
    committed = []
    try:
        for line in child.stdout:
            committed.append(line.strip())
            if len(committed) == 20:  # a reader while the writer runs
                with CampaignDB.open(path, readonly=True) as reader:
                    assert reader.summary()["cases"] >= 20
            if len(committed) == 60:
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        guard.cancel()
        child.kill()
        child.wait()
        committed += [line.strip() for line in child.stdout.read().splitlines()]
    assert child.returncode == -signal.SIGKILL and len(committed) >= 60
    assert Path(f"{path}-wal").exists()  # the killed writer left its log: reopening must recover it
    with CampaignDB.open(path) as db:
        assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = list(db.iter_cases())
        ids = [row["case_id"] for row in rows]
        assert len(ids) == len(set(ids)) and set(committed) <= set(ids)
        for row in rows:
            assert None not in [v for k, v in row.items() if k != "generation_index"]
            assert Case.from_json(row["case"]).id == row["case_id"]
        indexes = sorted(row["generation_index"] for row in rows)
        assert indexes == list(range(len(rows)))
        assert db.coverage_keys() == {f"index:{i}" for i in indexes}  # case and coverage commit together
        assert db.next_generation_index("torch-script") == len(rows)
        assert db.record_case(_case(999), _outcome(_case(999)), db.start_run(7, [], {}), len(rows))


def test_schema_one_database_is_migrated_to_hold_coverage_per_case(tmp_path, monkeypatch):
    path = tmp_path / "old.sqlite"
    with monkeypatch.context() as patch:
        patch.setattr(campaign_db, "SCHEMA_VERSION", 1)
        patch.setattr(campaign_db, "MIGRATIONS", {})
        CampaignDB.open(path).close()
    with CampaignDB.open(path) as db:
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
        case = generate_case(1, "torch-script")
        run = db.start_run(1, ["torch-script"], {})
        db.record_case(case, Outcome(case.id, "pass"), run, 0, coverage={"op:torch:relu"})
        assert next(db.iter_cases())["coverage_keys"] == ["op:torch:relu"]


def test_past_the_memory_cap_coverage_is_looked_up_in_the_database(tmp_path, monkeypatch):
    """A long campaign's coverage set lives in the database; the parent keeps a bounded part."""
    from fuzzconv import engine
    from fuzzconv.store import Store

    monkeypatch.setattr(engine, "COVERAGE_IN_MEMORY", 3)
    store = Store(tmp_path).open()
    with CampaignDB.open(tmp_path / "campaign.sqlite") as db:
        campaign = engine.Campaign(engine.CampaignConfig(tmp_path, ("torch-script",), 1, seed=1), store, db=db)
        campaign._resume()
        saved = []
        for seed, keys in [(1, {"op:a", "op:b", "op:c", "op:d"}), (2, {"op:a", "op:e"}), (3, {"op:e", "op:f"}),
                           (4, {"op:b", "op:f"})]:
            case = _case(seed)
            before = campaign.stats.corpus_saved
            campaign._cover(case, _outcome(case), keys)
            saved.append(campaign.stats.corpus_saved - before)
        assert len(campaign.stats.coverage) == 4  # capped: e and f were never held in memory
        assert campaign.stats.coverage_count == db.coverage_count() == 6
        assert saved == [1, 1, 1, 0]  # e was new for case 2, f for case 3; case 4 added nothing
        assert db.coverage_keys(prefixes=["op:"]) == {"op:a", "op:b", "op:c", "op:d", "op:e", "op:f"}


def _schema_two_row(db: CampaignDB, case: Case, outcome: Outcome, run: int, keys: list[str]) -> None:
    """A row the way schema 2 wrote it: plain JSON keys, the whole outcome but its log tail."""
    import json

    dump = campaign_db._dumps
    full = outcome.to_json()
    del full["log_tail"]
    db.conn.execute(
        "INSERT INTO cases (case_id, run_id, generation_index, data_seed, converter, frontend, opset, status, "
        "stage, symptom, title, decided_by, timings, total_s, source_ops, onnx_ops, coverage_keys, node_count, "
        "versions, finished, case_json, outcome_json) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1.0, ?, ?, ?, "
        "?, ?, ?, ?, ?)",
        (case.id, run, case.data_seed, case.target.converter, case.graph.frontend, case.target.opset, outcome.status,
         outcome.stage, outcome.symptom, outcome.title, outcome.decided_by, dump(full["timings"]),
         dump(list(case.graph.op_sequence)), dump(list(outcome.onnx_ops)), dump(sorted(keys)), len(case.graph.nodes),
         dump(dict(outcome.versions)), campaign_db.utc_now(), json.dumps(case.to_json()), dump(full)))


def test_schema_two_rows_and_compact_rows_read_back_alike(tmp_path, monkeypatch):
    """Schema 3 stores a row in a fraction of the bytes; rows of both forms give the same outcome."""
    from fuzzconv.coverage import coverage_keys

    path = tmp_path / "c.sqlite"
    with monkeypatch.context() as patch:
        patch.setattr(campaign_db, "SCHEMA_VERSION", 2)
        patch.setattr(campaign_db, "MIGRATIONS", {1: campaign_db.MIGRATIONS[1]})
        with CampaignDB.open(path) as db:  # schema 2's coverage table: a key index, no hash
            db.conn.executemany("INSERT INTO coverage VALUES (?, ?, ?)",
                                [(key, "0" * 16, campaign_db.utc_now()) for key in ("op:torch:relu", "onnx:x:Relu")])
    onnx_keys = tuple(sorted({f"onnx-edge:Op{i}>Op{i + 1}" for i in range(40)}
                             | {f"onnx-ngram3:Op{i}>Op{i + 1}>Op{i + 2}" for i in range(40)}))
    old, new = _case(11), _case(12)
    outcomes = {case.id: Outcome(case.id, "finding", "conversion", "wrong-model", "t", "m", "how",
                                 (OutputDiff("out", True, True, True, 0.5, 1e-3, 1e-4, False, (2,), (2,), "float32",
                                             "float32"),),
                                 (("torch", "2.13.0"),), (("convert", 0.25),), ("Relu", "Add"), "log", onnx_keys)
                for case in (old, new)}
    keys = {case.id: sorted(coverage_keys(case, outcomes[case.id])) for case in (old, new)}
    with CampaignDB.open(path) as db:  # migrated to the current schema
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        assert not db.conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'coverage' AND type = 'index'"
                                   ).fetchall()  # append-only: no index to update at random places
        assert db.coverage_keys() == {"op:torch:relu", "onnx:x:Relu"} and db.coverage_count() == 2
        assert db.add_coverage({"op:torch:relu", "op:torch:neg"}, "1" * 16) == {"op:torch:neg"}  # migrated keys known
        run = db.start_run(1, ["torch-script"], {})
        with db.transaction():
            _schema_two_row(db, old, outcomes[old.id], run, keys[old.id])
        db.record_case(new, outcomes[new.id], run, 1, coverage=keys[new.id])
        sizes = dict(db.conn.execute("SELECT case_id, length(coverage_keys) + length(outcome_json) FROM cases"))
        rows = {row["case_id"]: row for row in db.iter_cases()}
    assert sizes[new.id] * 4 < sizes[old.id]
    for case in (old, new):
        row = rows[case.id]
        assert row["coverage_keys"] == keys[case.id]
        assert Outcome.from_json({**row["outcome"], "log_tail": "log"}) == outcomes[case.id]
    assert set(rows[old.id]["outcome"]) == set(rows[new.id]["outcome"])


def test_a_case_stored_without_its_coverage_keys_keeps_its_onnx_keys(tmp_path):
    case = _case(13)
    outcome = Outcome(case.id, "pass", onnx_ops=("Relu",), onnx_keys=("onnx-edge:Relu>Add", "onnx-ngram3:A>B>C"))
    with CampaignDB.open(tmp_path / "c.sqlite") as db:
        db.record_case(case, outcome, db.start_run(1, ["torch-script"], {}), 0)
        [row] = list(db.iter_cases())
    assert Outcome.from_json(row["outcome"]) == outcome
    assert row["coverage_keys"] == ["onnx-edge:torch-script:Relu>Add", "onnx-ngram3:torch-script:A>B>C"]


def test_only_structural_coverage_earns_a_corpus_file_while_any_new_key_makes_a_parent(tmp_path):
    from fuzzconv import engine
    from fuzzconv.store import Store

    store = Store(tmp_path).open()
    with CampaignDB.open(tmp_path / "campaign.sqlite") as db:
        campaign = engine.Campaign(engine.CampaignConfig(tmp_path, ("torch-script",), 1, seed=1), store, db=db)
        campaign._resume()
        for seed, keys in [(1, {"op:torch:relu", "ngram3:torch:a>b>c"}), (2, {"ngram3:torch:a>b>d"}),
                           (3, {"onnx-ngram4:torch-script:A>B>C>D"}), (4, {"onnx-edge:torch-script:A>B"}),
                           (5, {"ngram3:torch:a>b>d"})]:
            campaign._cover(_case(seed), _outcome(_case(seed)), keys)
        files = {path.stem for path in (tmp_path / "corpus").rglob("*.json")}
        assert files == {_case(1).id, _case(4).id} and campaign.stats.corpus_saved == 2
        assert [c.id for c in campaign.parents["torch-script"]] == [_case(s).id for s in (1, 2, 3, 4)]
        assert campaign.stats.coverage_count == db.coverage_count() == 5


def test_resume_totals_and_status_read_indexes_not_rows(tmp_path):
    """On a days-long campaign's millions of rows, the totals a resume carries over and what
    `fuzzconv status` shows must come from covering indexes, not from reading every row."""
    path = tmp_path / "c.sqlite"
    with CampaignDB.open(path) as db:
        run = db.start_run(1, ["torch-script"], {})
        for seed in range(3):
            db.record_case(_case(seed), _outcome(_case(seed), "finding", "t", "conversion", "crash"), run, seed)
    with CampaignDB.open(path, readonly=True) as db:
        statements: list[str] = []
        db.conn.set_trace_callback(statements.append)
        db.totals()
        db.summary()
        db.conn.set_trace_callback(None)
        reading_rows = {}
        for sql in {s for s in statements if "FROM cases" in s}:
            plan = [row[3] for row in db.conn.execute("EXPLAIN QUERY PLAN " + sql)]
            if any(step.startswith(("SCAN cases", "SEARCH cases")) and "COVERING INDEX" not in step for step in plan):
                reading_rows[sql] = plan
    assert len(statements) > 8 and not reading_rows, reading_rows


def test_a_resumed_campaign_takes_its_latest_corpus_cases_as_mutation_parents(tmp_path, monkeypatch):
    import os

    from fuzzconv import engine
    from fuzzconv.store import Store

    monkeypatch.setattr(engine, "MAX_PARENTS", 3)
    store = Store(tmp_path).open()
    for age, seed in enumerate(range(20, 25)):
        path = store.save_corpus(_case(seed))
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    (tmp_path / "corpus" / "torch-script" / "junk.json").write_text("{")
    os.utime(tmp_path / "corpus" / "torch-script" / "junk.json", (2_000_000, 2_000_000))
    with CampaignDB.open(tmp_path / "campaign.sqlite") as db:
        campaign = engine.Campaign(engine.CampaignConfig(tmp_path, ("torch-script", "tf2onnx"), 1, seed=1), store,
                                   db=db)
        campaign._resume()
    assert [case.id for case in campaign.parents["torch-script"]] == [_case(s).id for s in (23, 24)]
    assert campaign.parents["tf2onnx"] == []


def test_a_schema_three_database_with_a_keyed_coverage_table_becomes_append_only(tmp_path, monkeypatch):
    """Schema 3 as its first version wrote it (coverage WITHOUT ROWID, keyed by the key) is
    migrated to schema 4: every key kept, in the order first seen, and known to the writer."""
    path = tmp_path / "c.sqlite"
    with monkeypatch.context() as patch:
        patch.setattr(campaign_db, "SCHEMA_VERSION", 3)
        patch.setattr(campaign_db, "MIGRATIONS", {v: campaign_db.MIGRATIONS[v] for v in (1, 2)})
        with CampaignDB.open(path) as db, db.transaction():
            db.conn.execute("DROP TABLE coverage")
            db.conn.execute("CREATE TABLE coverage (key TEXT PRIMARY KEY, first_case_id TEXT NOT NULL, "
                            "first_seen TEXT NOT NULL) WITHOUT ROWID")
            db.conn.executemany("INSERT INTO coverage VALUES (?, ?, ?)",
                                [("op:torch:b", "1" * 16, "2026-01-01T00:00:01.000Z"),
                                 ("op:torch:a", "2" * 16, "2026-01-01T00:00:02.000Z")])
    with CampaignDB.open(path) as db:
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [row[0] for row in db.conn.execute("SELECT key FROM coverage ORDER BY rowid")] == ["op:torch:b",
                                                                                                 "op:torch:a"]
        assert db.coverage_count() == 2
        assert db.add_coverage({"op:torch:a", "op:torch:c"}, "3" * 16) == {"op:torch:c"}


def _finding(case: Case) -> Outcome:
    diff = OutputDiff("out", True, True, True, 0.5, 1e-3, 1e-4, False, (2, 3), (2, 3), "float32", "float32")
    return Outcome(case.id, "finding", "conversion", "wrong-model", f"t: {case.id}", "line one\nline two", "how",
                   (diff,), (("torch", "2.13.0"),), (("convert", 0.25),), ("Relu", "Add"), "log",
                   ("onnx-edge:Relu>Add",))


def _write_cases(path: Path, seeds: range) -> None:
    with CampaignDB.open(path) as db:
        run = db.start_run(1, ["torch-script"], {})
        for seed in seeds:
            case = _case(seed)
            outcome = _finding(case) if seed % 3 == 0 else _outcome(case)
            with db.transaction():
                db.record_case(case, outcome, run, seed, coverage={f"op:torch:{case.graph.nodes[0].op}"})


def _rows(path: Path) -> dict[str, dict]:
    with CampaignDB.open(path, readonly=True) as db:
        return {row["case_id"]: {k: v for k, v in row.items() if k not in ("finished", "run_id")}
                for row in db.iter_cases()}


def test_rows_past_the_first_ones_are_packed_against_a_trained_dictionary_and_read_back_alike(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign_db, "DICTIONARY_AFTER_ROWS", 6)
    packed, plain = tmp_path / "packed.sqlite", tmp_path / "plain.sqlite"
    _write_cases(packed, range(0, 10))
    _write_cases(packed, range(10, 30))  # resumed: it packs against the dictionary it trained
    with monkeypatch.context() as patch:
        patch.setattr(campaign_db, "DICTIONARY_AFTER_ROWS", 10**9)
        _write_cases(plain, range(0, 30))
    assert _rows(packed) == _rows(plain) and len(_rows(packed)) == 30
    with CampaignDB.open(packed, readonly=True) as db:
        forms = db.conn.execute("SELECT packed IS NOT NULL, dict_id, case_json = '' FROM cases ORDER BY rowid").fetchall()
        assert [tuple(f) for f in forms] == [(0, None, 0)] * 6 + [(1, 1, 1)] * 24
        assert db.conn.execute("SELECT COUNT(*) FROM dictionaries").fetchone()[0] == 1
        packed_bytes = db.conn.execute("SELECT SUM(length(packed)) FROM cases WHERE rowid > 6").fetchone()[0]
    with CampaignDB.open(plain, readonly=True) as db:
        plain_bytes = db.conn.execute("SELECT SUM(length(case_json) + length(outcome_json) + length(onnx_ops) + "
                                      "length(source_ops)) FROM cases WHERE rowid > 6").fetchone()[0]
    assert packed_bytes * 3 < plain_bytes, (packed_bytes, plain_bytes)


def test_a_rolled_back_dictionary_is_trained_again_and_no_row_points_at_a_missing_one(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign_db, "DICTIONARY_AFTER_ROWS", 3)
    path = tmp_path / "c.sqlite"
    _write_cases(path, range(0, 3))
    with CampaignDB.open(path) as db:
        run = db.start_run(1, ["torch-script"], {})
        with pytest.raises(sqlite3.OperationalError), db.transaction():
            db.record_case(_case(3), _outcome(_case(3)), run, 3)  # trains the dictionary, then the disk "fails"
            raise sqlite3.OperationalError("disk I/O error")
        db.record_case(_case(4), _outcome(_case(4)), run, 4)
        assert [tuple(r) for r in db.conn.execute("SELECT dict_id FROM cases WHERE packed IS NOT NULL")] == [(1,)]
        assert [tuple(r) for r in db.conn.execute("SELECT dict_id FROM dictionaries")] == [(1,)]
    assert set(_rows(path)) == {_case(s).id for s in (0, 1, 2, 4)}


def test_a_schema_four_database_keeps_its_plain_rows_and_packs_new_ones(tmp_path, monkeypatch):
    path = tmp_path / "c.sqlite"
    with monkeypatch.context() as patch:  # plain rows, in a file then taken back to what schema 4 made
        patch.setattr(campaign_db, "DICTIONARY_AFTER_ROWS", 10**9)
        _write_cases(path, range(0, 8))
    conn = sqlite3.connect(path)
    for statement in ("ALTER TABLE cases DROP COLUMN packed", "ALTER TABLE cases DROP COLUMN dict_id",
                      "DROP TABLE dictionaries", "PRAGMA user_version = 4", "UPDATE meta SET value = '4' WHERE key = 'schema'"):
        conn.execute(statement)
    conn.commit()
    conn.close()
    before = _digest(path)
    assert len(_rows(path)) == 8  # a reader reads schema 4 as it is (a campaign an older fuzzconv still runs)
    with CampaignDB.open(path, readonly=True) as db:
        assert db.summary()["cases"] == 8
    assert _digest(path) == before
    monkeypatch.setattr(campaign_db, "DICTIONARY_AFTER_ROWS", 5)
    _write_cases(path, range(8, 12))  # migrated, and trained on the rows schema 4 wrote
    rows = _rows(path)
    assert len(rows) == 12 and rows[_case(9).id]["case"] == _case(9).to_json()
    assert Outcome.from_json({**rows[_case(9).id]["outcome"], "log_tail": "log"}) == _finding(_case(9))
    with CampaignDB.open(path, readonly=True) as db:
        assert db.conn.execute("SELECT COUNT(*) FROM cases WHERE packed IS NOT NULL").fetchone()[0] == 4


def test_a_packed_row_whose_dictionary_is_gone_is_reported_as_damage(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign_db, "DICTIONARY_AFTER_ROWS", 2)
    path = tmp_path / "c.sqlite"
    _write_cases(path, range(0, 4))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("DELETE FROM dictionaries")
    conn.commit()
    conn.close()
    with CampaignDB.open(path, readonly=True) as db, pytest.raises(CampaignDBError, match="damaged.*dictionary 1"):
        list(db.iter_cases())


def test_a_reader_refuses_a_schema_older_than_it_reads_and_says_to_resume(tmp_path):
    path = tmp_path / "c.sqlite"
    _write_cases(path, range(0, 2))
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {campaign_db.READABLE_FROM - 1}")
    conn.commit()
    conn.close()
    with pytest.raises(CampaignDBError, match=f"older schema {campaign_db.READABLE_FROM - 1}; resume the campaign once"):
        CampaignDB.open(path, readonly=True)


def test_a_case_text_holding_a_newline_is_stored_plain_past_the_dictionary(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(campaign_db, "DICTIONARY_AFTER_ROWS", 2)
    path = tmp_path / "c.sqlite"
    _write_cases(path, range(0, 3))
    spread = Case.from_canonical(json.dumps(_case(7).to_json(), indent=1))  # as a worker might send it
    with CampaignDB.open(path) as db:
        db.record_case(spread, _outcome(spread), db.start_run(1, ["torch-script"], {}), 7)
        assert db.conn.execute("SELECT packed IS NULL FROM cases WHERE case_id = ?", (spread.id,)).fetchone()[0] == 1
        assert db.conn.execute("SELECT COUNT(*) FROM cases WHERE packed IS NOT NULL").fetchone()[0] == 1
    assert Case.from_json(_rows(path)[spread.id]["case"]) == _case(7)
