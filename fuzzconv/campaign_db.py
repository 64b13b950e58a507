"""The campaign database: one SQLite file per output folder, `<out>/campaign.sqlite`.

It sits beside the file store (corpus/, crashes/): the store keeps what a person reads, the
database keeps one row per executed case for resuming, `fuzzconv status` and later analyses.
Only the campaign's main process writes; readers (status, analyses) may open it at any time.
WAL journal, synchronous=NORMAL: a commit survives a killed process (not a power cut).

Schema 1 (`PRAGMA user_version`; the `meta` table repeats it for people):

    meta(key TEXT PRIMARY KEY, value TEXT)       application=fuzzconv, schema=1, created=ISO time
    runs(run_id INTEGER PRIMARY KEY AUTOINCREMENT, started, ended NULL, seed,
         converters JSON list, config JSON object, fuzzconv_version, pid)
    cases(case_id TEXT PRIMARY KEY               content hash; a case is stored once
          run_id -> runs, generation_index NULL  index of the case in its converter's seed stream
          data_seed, converter, frontend, opset, status, stage, symptom, title, decided_by,
          timings JSON object, total_s           sum of the stage timings unless given
          source_ops JSON list, onnx_ops JSON list, node_count, versions JSON object,
          finished ISO time, case_json           the full case, to rebuild the graph
          outcome_json)                          the outcome without its log tail (crashes/ has logs)
    coverage(key TEXT PRIMARY KEY, first_case_id, first_seen)
    view titles(title, status, cases, first_seen, last_seen)

Schema 2 adds cases.coverage_keys (JSON list). Schema 3 makes a row about a fifth of its
size, since a days-long campaign stores millions of them: coverage_keys is stored as a zlib
stream of its JSON (sorted keys share long prefixes: 8 KB of text becomes about 1 KB), and
outcome_json leaves out what the row's columns already hold (status ... decided_by, timings,
versions, onnx_ops) and the converted graph's keys, which are the case's `onnx-edge`,
`onnx-ngram3` and `onnx-ngram4` coverage keys. `iter_cases` puts them back, so a reader gets
the same full outcome from rows of either form. Two covering indexes, cases_totals (converter,
status, stage, symptom, total_s) and cases_titles (status, title, finished), replace three that
made totals read every row. Schema 4 makes the coverage table append-only: coverage(key, hash,
first_case_id, first_seen), no index, kept unique by the writer (fuzzconv.key_hashes). Schema 5
packs a row's four largest text columns (case_json, outcome_json, onnx_ops, source_ops: 1.6 KB
of a torch-script row's 3 KB of text) into one zlib stream, `packed`, compressed against a
preset dictionary that the database trains on its own first rows and keeps in `dictionaries`
(dict_id, data, made); `cases.dict_id` names it, and the packed columns hold ''. The writer
stores its first DICTIONARY_AFTER_ROWS rows plain, then trains one (the last 32 KB of those
rows' text, which a zlib window can reach) and packs every later row: about 330 bytes a row
against 650 for zlib without a dictionary (measured on a torch-script campaign's rows), in
15 us a row. `iter_cases` unpacks, so a reader sees rows of every form alike; the columns a
query is likely to want (status ... title, timings, versions, total_s) stay plain.

Times are UTC ISO-8601 text with milliseconds, so they sort as text. An older schema is
migrated in place by `MIGRATIONS` (from-version -> function), one transaction per step, when
a writer opens it; a reader reads it as it is from READABLE_FROM on. A file that is not a
fuzzconv campaign database, or is newer than this code, is refused untouched.
"""

from __future__ import annotations

import json
import os
import sqlite3
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fuzzconv import __version__
from fuzzconv.case import Case, Outcome

APPLICATION = "fuzzconv"
FILENAME = "campaign.sqlite"
BASE_VERSION = 1  # the version `_SCHEMA` creates; later versions are reached by MIGRATIONS
SCHEMA_VERSION = 5
# The oldest schema a reader (`fuzzconv status`, analyses) reads as it is, without the migration
# a writer makes: schema 5 only adds packed rows, which a schema-4 file has none of. A campaign
# still running under an older fuzzconv can so be read by a newer one.
READABLE_FROM = 4
BUSY_TIMEOUT_S = 10.0
FIX = "pass --out with a new folder"

WAL_CHECKPOINT_PAGES = 8192  # of 4 KB: see _open_writer


# from-version -> function that brings a connection (inside a transaction) to from-version + 1
def _add_case_coverage_keys(conn: sqlite3.Connection) -> None:
    """Schema 2: each case row also holds its coverage keys (JSON list)."""
    conn.execute("ALTER TABLE cases ADD COLUMN coverage_keys TEXT NOT NULL DEFAULT '[]'")


def _compact_rows(conn: sqlite3.Connection) -> None:
    """Schema 3: new rows are written compact (see the module's docstring; older rows stay as
    they are and are read as before), and covering indexes answer the totals of a resume and
    `fuzzconv status` without reading rows: on a million rows (about 4 hours of two workers)
    those queries took 6-10 s, now 1-2 s. (Databases written at schema 3 by the first version
    of this step also made the coverage table WITHOUT ROWID; schema 4 reads either form.)"""
    _covering_indexes(conn)


def _covering_indexes(conn: sqlite3.Connection) -> None:
    """The indexes of schema 3 and later; idempotent, for databases an early schema-3 step left without them."""
    for name in ("cases_converter_status", "cases_status_title", "cases_stage_symptom"):
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    conn.execute("CREATE INDEX IF NOT EXISTS cases_totals ON cases (converter, status, stage, symptom, total_s)")
    conn.execute("CREATE INDEX IF NOT EXISTS cases_titles ON cases (status, title, finished)")


def _append_only_coverage(conn: sqlite3.Connection) -> None:
    """Schema 4: the coverage table becomes append-only, in the order keys were first seen: no
    index on the key (each new key cost a random page write of that index), each key with its
    64-bit hash, by which the writer keeps keys unique (fuzzconv.key_hashes)."""
    from fuzzconv.key_hashes import key_hash

    conn.create_function("fuzzconv_key_hash", 1, key_hash, deterministic=True)
    conn.execute("""CREATE TABLE coverage_appended (
        key TEXT NOT NULL,
        hash INTEGER NOT NULL,
        first_case_id TEXT NOT NULL,
        first_seen TEXT NOT NULL)""")
    conn.execute("INSERT INTO coverage_appended SELECT key, fuzzconv_key_hash(key), first_case_id, first_seen "
                 "FROM coverage ORDER BY first_seen, key")
    conn.execute("DROP TABLE coverage")
    conn.execute("ALTER TABLE coverage_appended RENAME TO coverage")
    _covering_indexes(conn)


def _packed_rows(conn: sqlite3.Connection) -> None:
    """Schema 5: rows written from now on pack their largest text columns against a dictionary
    the database trains on its own rows (see the module's docstring); older rows stay plain."""
    conn.execute("CREATE TABLE dictionaries (dict_id INTEGER PRIMARY KEY, data BLOB NOT NULL, made TEXT NOT NULL)")
    conn.execute("ALTER TABLE cases ADD COLUMN packed BLOB")
    conn.execute("ALTER TABLE cases ADD COLUMN dict_id INTEGER REFERENCES dictionaries(dict_id)")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _add_case_coverage_keys, 2: _compact_rows, 3: _append_only_coverage, 4: _packed_rows}

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY AUTOINCREMENT,
        started TEXT NOT NULL,
        ended TEXT,
        seed INTEGER NOT NULL,
        converters TEXT NOT NULL,
        config TEXT NOT NULL,
        fuzzconv_version TEXT NOT NULL,
        pid INTEGER NOT NULL)""",
    """CREATE TABLE cases (
        case_id TEXT PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(run_id),
        generation_index INTEGER,
        data_seed INTEGER NOT NULL,
        converter TEXT NOT NULL,
        frontend TEXT NOT NULL,
        opset INTEGER NOT NULL,
        status TEXT NOT NULL,
        stage TEXT NOT NULL,
        symptom TEXT NOT NULL,
        title TEXT NOT NULL,
        decided_by TEXT NOT NULL,
        timings TEXT NOT NULL,
        total_s REAL NOT NULL,
        source_ops TEXT NOT NULL,
        onnx_ops TEXT NOT NULL,
        node_count INTEGER NOT NULL,
        versions TEXT NOT NULL,
        finished TEXT NOT NULL,
        case_json TEXT NOT NULL,
        outcome_json TEXT NOT NULL)""",
    "CREATE INDEX cases_converter_index ON cases (converter, generation_index)",
    "CREATE INDEX cases_converter_status ON cases (converter, status)",
    "CREATE INDEX cases_status_title ON cases (status, title)",
    "CREATE INDEX cases_stage_symptom ON cases (stage, symptom)",
    "CREATE INDEX cases_run ON cases (run_id)",
    "CREATE INDEX cases_finished ON cases (finished)",
    """CREATE TABLE coverage (
        key TEXT PRIMARY KEY,
        first_case_id TEXT NOT NULL,
        first_seen TEXT NOT NULL)""",
    """CREATE VIEW titles AS
        SELECT title, status, COUNT(*) AS cases, MIN(finished) AS first_seen, MAX(finished) AS last_seen
        FROM cases WHERE title != '' GROUP BY title, status""",
)

PLAIN_CASE_COLUMNS = (  # a row's columns up to schema 4
    "case_id", "run_id", "generation_index", "data_seed", "converter", "frontend", "opset", "status",
    "stage", "symptom", "title", "decided_by", "timings", "total_s", "source_ops", "onnx_ops",
    "coverage_keys", "node_count", "versions", "finished", "case_json", "outcome_json",
)
_CASE_COLUMNS = (*PLAIN_CASE_COLUMNS, "packed", "dict_id")
# The columns schema 5 packs into one stream, in this order, joined by newlines (compact JSON
# text holds none: json.dumps escapes them inside strings).
PACKED_COLUMNS = ("case_json", "outcome_json", "onnx_ops", "source_ops")
DICTIONARY_AFTER_ROWS = 300  # plain rows a database stores before it trains its dictionary
DICTIONARY_BYTES = 32 * 1024  # zlib's window: a preset dictionary's bytes beyond it are never used
_JSON_COLUMNS = {"timings": "timings", "source_ops": "source_ops", "onnx_ops": "onnx_ops",
                 "versions": "versions", "case_json": "case"}
# Outcome fields a schema-3 row keeps in its own columns, not in outcome_json.
_OUTCOME_IN_COLUMNS = ("case_id", "status", "stage", "symptom", "title", "decided_by", "timings", "versions",
                       "onnx_ops")
ZLIB_LEVEL = 1  # 8 KB of keys in 0.06 ms to about 1.1 KB; level 6 saves 15 % more for twice the time


class _Packer:
    """Compresses rows against one preset dictionary. zlib reads the dictionary into a fresh
    stream's window at a cost (35 us for 32 KB); a primed stream is copied instead, 15 us a row."""

    def __init__(self, dict_id: int, data: bytes) -> None:
        self.dict_id = dict_id
        self._primed = zlib.compressobj(ZLIB_LEVEL, zdict=data)

    def pack(self, text: str) -> bytes:
        stream = self._primed.copy()
        return stream.compress(text.encode()) + stream.flush()


def train_dictionary(texts: Iterable[str]) -> bytes:
    """A preset dictionary from rows' packed text: its last DICTIONARY_BYTES (zlib favours the
    end of a dictionary, where matches are nearest), joined as the rows are packed."""
    return "\n".join(texts).encode()[-DICTIONARY_BYTES:]


class CampaignDBError(Exception):
    """The campaign database cannot be used; the one-line message says why and what to do."""


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


# --- opening -----------------------------------------------------------------------------


def inspect_file(path: Path) -> int | None:
    """The schema version of the fuzzconv database at `path`, None if there is none yet.

    Reads read-only, and without even a -shm side file unless the database has a live -wal,
    so a file that is refused is left byte for byte, its folder as it was.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None
    flags = "mode=ro" if Path(f"{path}-wal").exists() else "mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?{flags}", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            identity = _read_identity(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise _unreadable(path, exc) from None
    return _judge(path, *identity)


def _judge(path: Path, version: int, tables: list[str], meta: dict[str, str]) -> int | None:
    """The version of a fuzzconv database, None for an empty file; CampaignDBError for anything else."""
    if not tables and version == 0:
        return None  # an empty SQLite file, e.g. left by a crash right after creation
    if meta.get("application") != APPLICATION:
        raise CampaignDBError(
            f"{path} is not a fuzzconv campaign database (it is a SQLite database with tables "
            f"{', '.join(tables) or 'none'}); expected {FILENAME} written by fuzzconv; {FIX}")
    if version > SCHEMA_VERSION:
        raise CampaignDBError(
            f"{path} is a fuzzconv campaign database of schema {version}, newer than this fuzzconv "
            f"{__version__} reads (schema {SCHEMA_VERSION}); upgrade fuzzconv or {FIX}")
    return version


def _read_identity(conn: sqlite3.Connection) -> tuple[int, list[str], dict[str, str]]:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    meta: dict[str, str] = {}
    if "meta" in tables:
        try:
            meta = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        except sqlite3.DatabaseError:  # some other application's `meta` table
            meta = {}
    return version, tables, meta


def _unreadable(path: Path, exc: sqlite3.DatabaseError) -> CampaignDBError:
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or "not a database" in str(exc):
        return CampaignDBError(
            f"{path} is not a SQLite database ({exc}); expected a fuzzconv campaign database "
            f"({FILENAME}); move the file away or {FIX}")
    return CampaignDBError(f"cannot read {path} ({exc}); check its permissions or {FIX}")


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    target = f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rwc'}"
    conn = sqlite3.connect(target, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def _open_writer(path: Path) -> tuple[sqlite3.Connection, int | None]:
    """A read-write connection in WAL mode and the file's version, checked again before any write."""
    conn = _connect(path, readonly=False)
    try:
        try:
            version = _judge(path, *_read_identity(conn))
        except sqlite3.DatabaseError as exc:
            raise _unreadable(path, exc) from None
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise CampaignDBError(f"{path} cannot use a write-ahead log (journal mode {mode}); {FIX}")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Checkpoint the log into the database every 32 MB rather than every 4 MB: a campaign
        # commits every loop turn, and each checkpoint rewrites (and syncs) pages that the next
        # few hundred commits dirty again. Measured on replayed torch-script rows: 0.41 against
        # 0.58 ms of CPU per case.
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn, version


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _create(conn: sqlite3.Connection) -> None:
    with _transaction(conn):
        if _read_identity(conn)[1]:  # another process created it since we looked
            return
        for statement in _SCHEMA:
            conn.execute(statement)
        meta = {"application": APPLICATION, "schema": str(BASE_VERSION), "created": utc_now()}
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
        conn.execute(f"PRAGMA user_version = {BASE_VERSION}")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Run the registered migrations from the file's version up to SCHEMA_VERSION, one per step."""
    while True:
        with _transaction(conn):
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version >= SCHEMA_VERSION:
                return
            step = MIGRATIONS.get(version)
            if step is None:
                raise CampaignDBError(
                    f"{path} is a fuzzconv campaign database of schema {version}, which this fuzzconv "
                    f"cannot upgrade to schema {SCHEMA_VERSION}; {FIX}")
            step(conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", (str(version + 1),))


# --- the database --------------------------------------------------------------------------


class CampaignDB:
    """One campaign's database. Every write method commits before it returns, unless it runs
    inside `transaction()`, which then commits (or rolls back) all of them at once."""

    def __init__(self, path: Path, conn: sqlite3.Connection, readonly: bool = False) -> None:
        self.path = path
        self.conn = conn
        self.readonly = readonly
        self._depth = 0
        self._hashes: Any = None  # KeyHashes of the stored coverage keys, loaded by the first add_coverage
        self._packer: _Packer | None = None  # the writer's, once the database has a dictionary
        self._plain_rows: int | None = None  # rows the writer knows of while it has none
        self._dictionaries: dict[int, bytes] = {}  # a reader's, by dict_id

    @classmethod
    def open(cls, path: Path, readonly: bool = False) -> CampaignDB:
        """Open (creating or migrating if needed) or raise CampaignDBError, leaving the file as it was."""
        path = Path(path)
        version = inspect_file(path)  # refuses a foreign, broken or newer file without touching it
        if readonly:
            if version is None:
                raise CampaignDBError(f"{path} does not exist or holds no campaign yet; run `fuzzconv fuzz --out "
                                      f"{path.parent}` first or pass the folder of an existing campaign")
            if version < READABLE_FROM:
                raise CampaignDBError(f"{path} has the older schema {version}; resume the campaign once "
                                      f"(fuzzconv fuzz --out {path.parent}) to upgrade it, then retry")
            return cls(path, _connect(path, readonly=True), readonly=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn, version = _open_writer(path)
        try:
            if version is None:
                _create(conn)
            _migrate(conn, path)
        except BaseException:
            conn.close()
            raise
        return cls(path, conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> CampaignDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one atomic commit; nested uses join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            with _transaction(self.conn):
                yield
        except BaseException:
            self._packer, self._plain_rows = None, None  # a dictionary made inside may be gone with it
            raise
        finally:
            self._depth = 0

    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {k: v for k, v in self.conn.execute("SELECT key, value FROM meta")}
        meta["schema"] = int(meta.get("schema", 0))
        return meta

    # --- runs ------------------------------------------------------------------------------

    def start_run(self, seed: int, converters: Iterable[str], config: Mapping[str, Any]) -> int:
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO runs (started, seed, converters, config, fuzzconv_version, pid) VALUES (?, ?, ?, ?, ?, ?)",
                (utc_now(), int(seed), _dumps(list(converters)), _dumps(dict(config)), __version__, os.getpid()))
        return int(cursor.lastrowid or 0)

    def end_run(self, run_id: int) -> None:
        with self.transaction():
            self.conn.execute("UPDATE runs SET ended = ? WHERE run_id = ?", (utc_now(), run_id))

    # --- cases -----------------------------------------------------------------------------

    def record_case(self, case: Case, outcome: Outcome, run_id: int, generation_index: int | None,
                    elapsed_s: float | None = None, coverage: Iterable[str] = ()) -> bool:
        """Store one executed case; False if its id was already stored (it is then left as it was).

        `generation_index` < 0 or None means the case did not come from the seed stream.
        `elapsed_s` defaults to the sum of the outcome's stage timings.
        """
        placeholders = ", ".join("?" for _ in _CASE_COLUMNS)
        with self.transaction():
            row = _case_row(case, outcome, run_id, generation_index, elapsed_s, coverage, self._writer_packer())
            cursor = self.conn.execute(
                f"INSERT OR IGNORE INTO cases ({', '.join(_CASE_COLUMNS)}) VALUES ({placeholders})", row)
        if cursor.rowcount == 1 and self._plain_rows is not None:
            self._plain_rows += 1
        return cursor.rowcount == 1

    def _writer_packer(self) -> _Packer | None:
        """The dictionary rows are packed against: the newest stored, else one trained now from
        the last DICTIONARY_AFTER_ROWS plain rows once there are that many, else None (plain)."""
        if self._packer is not None:
            return self._packer
        if self._plain_rows is None:
            newest = self.conn.execute("SELECT dict_id, data FROM dictionaries ORDER BY dict_id DESC LIMIT 1").fetchone()
            if newest is not None:
                self._packer = _Packer(int(newest[0]), bytes(newest[1]))
                return self._packer
            self._plain_rows = int(self.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM cases").fetchone()[0])
        if self._plain_rows < DICTIONARY_AFTER_ROWS:
            return None
        columns = ", ".join(PACKED_COLUMNS)
        recent = self.conn.execute(f"SELECT {columns} FROM cases WHERE packed IS NULL ORDER BY rowid DESC LIMIT ?",
                                   (DICTIONARY_AFTER_ROWS,)).fetchall()
        data = train_dictionary("\n".join(row) for row in reversed(recent))
        with self.transaction():
            cursor = self.conn.execute("INSERT INTO dictionaries (data, made) VALUES (?, ?)", (data, utc_now()))
        self._packer = _Packer(int(cursor.lastrowid or 0), data)
        return self._packer

    def _dictionary(self, dict_id: int) -> bytes:
        if dict_id not in self._dictionaries:
            row = self.conn.execute("SELECT data FROM dictionaries WHERE dict_id = ?", (dict_id,)).fetchone()
            if row is None:
                raise CampaignDBError(f"{self.path} is damaged: rows are packed against dictionary {dict_id}, "
                                      f"which it does not hold; restore the file from a copy or {FIX}")
            self._dictionaries[dict_id] = bytes(row[0])
        return self._dictionaries[dict_id]

    def _unpack(self, row: dict[str, Any]) -> None:
        """Put a packed row's columns back in place (a plain row has none packed)."""
        packed, dict_id = row.pop("packed", None), row.pop("dict_id", None)
        if packed is None:
            return
        try:
            stream = zlib.decompressobj(zdict=self._dictionary(int(dict_id)))
            texts = (stream.decompress(packed) + stream.flush()).decode().split("\n")
        except (zlib.error, UnicodeDecodeError, TypeError, ValueError) as exc:
            raise CampaignDBError(f"{self.path} is damaged: case {row.get('case_id')} does not unpack ({exc}); "
                                  f"restore the file from a copy or {FIX}") from None
        if len(texts) != len(PACKED_COLUMNS):
            raise CampaignDBError(f"{self.path} is damaged: case {row.get('case_id')} unpacks to {len(texts)} "
                                  f"columns, not {len(PACKED_COLUMNS)}; restore the file from a copy or {FIX}")
        row.update(zip(PACKED_COLUMNS, texts))

    def has_case(self, case_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone() is not None

    def stored_ids(self, case_ids: list[str]) -> set[str]:
        """Those of `case_ids` that are stored."""
        found: set[str] = set()
        for start in range(0, len(case_ids), 500):
            chunk = case_ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            found.update(row[0] for row in self.conn.execute(
                f"SELECT case_id FROM cases WHERE case_id IN ({marks})", chunk))
        return found

    def next_generation_index(self, converter: str) -> int:
        """One past the largest generation index stored for `converter` (0 for a new campaign)."""
        row = self.conn.execute("SELECT MAX(generation_index) FROM cases WHERE converter = ?", (converter,)).fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def iter_cases(self, where: str | None = None, params: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
        """Case rows in insertion order, JSON columns decoded (`case_json` -> `case`,
        `outcome_json` -> `outcome`). `where` is an SQL condition with `?` placeholders."""
        sql = "SELECT * FROM cases" + (f" WHERE {where}" if where else "") + " ORDER BY rowid"
        for row in self.conn.execute(sql, tuple(params)):
            found = dict(row)
            self._unpack(found)
            yield _decode_row(found)

    # --- coverage --------------------------------------------------------------------------

    def coverage_keys(self, prefixes: Iterable[str] | None = None, limit: int | None = None) -> set[str]:
        """The coverage keys reached (at most `limit` of them, the earliest first), or only
        those starting with one of `prefixes` (one pass over the table)."""
        if prefixes is None:
            sql = "SELECT key FROM coverage ORDER BY rowid" + (f" LIMIT {int(limit)}" if limit is not None else "")
            return {row[0] for row in self.conn.execute(sql)}
        ranges = [(prefix, prefix + "\U0010ffff") for prefix in prefixes]  # prefix <= key < prefix + U+10FFFF
        if not ranges:
            return set()
        where = " OR ".join("(key >= ? AND key < ?)" for _ in ranges)
        return {row[0] for row in self.conn.execute(f"SELECT key FROM coverage WHERE {where}",
                                                    [bound for pair in ranges for bound in pair])}

    def coverage_count(self) -> int:
        """Keys are only ever appended, so the last rowid counts them without reading the table."""
        return int(self.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM coverage").fetchone()[0])

    def add_coverage(self, keys: Iterable[str], case_id: str) -> set[str]:
        """Store the keys not seen before, first seen by `case_id`; return those new keys.

        Whether a key was seen is read from the hashes of every stored key, loaded at the first
        call; a transaction that rolls back afterwards leaves them marked here (the campaign
        stops on a failed write, and the next run reloads them from the file)."""
        from fuzzconv.key_hashes import KeyHashes, key_hash

        if self._hashes is None:
            self._hashes = KeyHashes(hash_value for (hash_value,) in self.conn.execute("SELECT hash FROM coverage"))
        wanted = sorted(set(keys))
        hashes = [key_hash(key) for key in wanted]
        new = [(key, value) for key, value, fresh in zip(wanted, hashes, self._hashes.unseen(hashes)) if fresh]
        if not new:
            return set()
        now = utc_now()
        with self.transaction():
            self.conn.executemany("INSERT INTO coverage (key, hash, first_case_id, first_seen) VALUES (?, ?, ?, ?)",
                                  [(key, value, case_id, now) for key, value in new])
        self._hashes.add_all(value for _, value in new)
        return {key for key, _ in new}

    # --- totals and summary ----------------------------------------------------------------

    def totals(self) -> dict[str, Any]:
        """Counters keyed like the engine's Stats, to carry an earlier run's totals over:
        cases and busy_s per converter, statuses per (converter, status), stages per
        (converter, stage, symptom) of findings and environment errors, invalid_titles, runs."""
        return {
            "cases": Counter(dict(self._rows("SELECT converter, COUNT(*) FROM cases GROUP BY converter"))),
            "busy_s": Counter(dict(self._rows("SELECT converter, SUM(total_s) FROM cases GROUP BY converter"))),
            "statuses": self._counter("SELECT converter, status, COUNT(*) FROM cases GROUP BY converter, status"),
            "stages": self._counter(
                "SELECT converter, stage, symptom, COUNT(*) FROM cases INDEXED BY cases_totals "
                "WHERE status IN ('finding', 'environment') GROUP BY converter, stage, symptom"),
            "invalid_titles": Counter(dict(self._rows(
                "SELECT title, cases FROM titles WHERE status = 'invalid'"))),
            "runs": self._scalar("SELECT COUNT(*) FROM runs"),
        }

    def titles(self, limit: int | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Titles with their case counts, most frequent first."""
        sql = "SELECT * FROM titles" + (" WHERE status = ?" if status else "") + " ORDER BY cases DESC, title"
        params: tuple[Any, ...] = (status,) if status else ()
        if limit is not None:
            sql, params = sql + " LIMIT ?", (*params, limit)
        return [dict(row) for row in self.conn.execute(sql, params)]

    def summary(self, top: int = 10) -> dict[str, Any]:
        """Everything `fuzzconv status` shows, JSON-serializable."""
        cases = self._scalar("SELECT COUNT(*) FROM cases")
        invalid = self._scalar("SELECT COUNT(*) FROM cases WHERE status = 'invalid'")
        first, last = self.conn.execute(
            "SELECT MIN(started), MAX(MAX(started), COALESCE(MAX(ended), ''), "
            "COALESCE((SELECT MAX(finished) FROM cases), '')) FROM runs").fetchone()
        return {
            "path": str(self.path),
            "schema": SCHEMA_VERSION,
            "runs": self._scalar("SELECT COUNT(*) FROM runs"),
            "first": first,
            "last": last or None,
            "cases": cases,
            "converters": self._converter_summary(),
            "stages": [
                {"status": status, "stage": stage, "symptom": symptom, "cases": n}
                for status, stage, symptom, n in self._rows(
                    "SELECT status, stage, symptom, COUNT(*) AS n FROM cases INDEXED BY cases_totals "
                    "WHERE status IN ('finding', 'environment') "
                    "GROUP BY status, stage, symptom ORDER BY n DESC, status, stage, symptom")
            ],
            "top_titles": self.titles(limit=top),
            "coverage": self.coverage_count(),
            "invalid": invalid,
            "invalid_rate": invalid / cases if cases else 0.0,
        }

    def _converter_summary(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for converter, n, busy in self._rows(
                "SELECT converter, COUNT(*), SUM(total_s) FROM cases GROUP BY converter ORDER BY converter"):
            out[converter] = {"cases": n, "busy_s": busy, "cases_per_s": n / busy if busy else 0.0, "statuses": {}}
        for converter, status, n in self._rows(
                "SELECT converter, status, COUNT(*) FROM cases GROUP BY converter, status ORDER BY status"):
            out[converter]["statuses"][status] = n
        return out

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.conn.execute(sql, params)]

    def _counter(self, sql: str) -> Counter[Any]:
        return Counter({tuple(row[:-1]): row[-1] for row in self._rows(sql)})

    def _scalar(self, sql: str) -> int:
        return int(self.conn.execute(sql).fetchone()[0] or 0)


def _case_row(case: Case, outcome: Outcome, run_id: int, generation_index: int | None,
              elapsed_s: float | None, coverage: Iterable[str], packer: _Packer | None = None) -> tuple[Any, ...]:
    """The row of a case (schema 5), packed with `packer` when given. The outcome's ONNX keys
    are added to the coverage keys, so that the outcome can always be rebuilt from them."""
    timings = dict(outcome.timings)
    total = float(elapsed_s) if elapsed_s is not None else float(sum(timings.values()))
    index = generation_index if generation_index is not None and generation_index >= 0 else None
    from fuzzconv.coverage import scoped_onnx_keys

    outcome_json = outcome.to_json()
    held = {name: outcome_json.pop(name) for name in _OUTCOME_IN_COLUMNS}  # the row's own columns
    del outcome_json["onnx_keys"], outcome_json["log_tail"]
    converter = case.target.converter
    keys = set(coverage) | scoped_onnx_keys(converter, outcome.onnx_keys)
    texts = {"case_json": case.canonical_text, "outcome_json": _dumps(outcome_json),
             "onnx_ops": _dumps(held["onnx_ops"]), "source_ops": _dumps(list(case.graph.op_sequence))}
    packed = dict_id = None
    if packer is not None:
        joined = "\n".join(texts[column] for column in PACKED_COLUMNS)
        if joined.count("\n") == len(PACKED_COLUMNS) - 1:  # else a text holds a newline: stored plain
            packed, dict_id = packer.pack(joined), packer.dict_id
            texts = dict.fromkeys(texts, "")
    return (
        case.id, run_id, index, case.data_seed, converter, case.graph.frontend, case.target.opset,
        outcome.status, outcome.stage, outcome.symptom, outcome.title, outcome.decided_by,
        _dumps(held["timings"]), total, texts["source_ops"], texts["onnx_ops"],
        zlib.compress(_dumps(sorted(keys)).encode(), ZLIB_LEVEL), len(case.graph.nodes), _dumps(held["versions"]),
        utc_now(), texts["case_json"], texts["outcome_json"], packed, dict_id,
    )


def _decode_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its JSON decoded and its outcome whole, whichever schema wrote it."""
    for column, key in _JSON_COLUMNS.items():
        row[key] = json.loads(row.pop(column))
    keys = row["coverage_keys"]
    row["coverage_keys"] = json.loads(zlib.decompress(keys) if isinstance(keys, bytes) else keys)
    outcome = json.loads(row.pop("outcome_json"))
    for name in _OUTCOME_IN_COLUMNS:
        outcome.setdefault(name, row[name])
    if "onnx_keys" not in outcome:
        from fuzzconv.coverage import onnx_keys_from

        outcome["onnx_keys"] = list(onnx_keys_from(row["coverage_keys"]))
    row["outcome"] = outcome
    return row


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "CampaignDB", "CampaignDBError", "inspect_file", "utc_now"]
