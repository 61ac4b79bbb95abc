"""Unit tests for testmon_watch.core.db: real SQLite files in tmp_path."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testmon_watch.core.db import (
    PAGE_SIZE,
    Database,
    DatabaseError,
    FileRow,
    RecordedTest,
    RecordedUnit,
)
from testmon_watch.core.keys import SESSION, ContextKey
from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.packing import (
    pack_checksums,
    pack_ints,
    pack_lines,
    unpack_ints,
    unpack_lines,
)
from testmon_watch.core.reasons import Reason, ReasonKind
from testmon_watch.core.schema import (
    FILTERED_FILE,
    FINGERPRINT_DIGEST,
    LINESET,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    TOOL_NAME,
)

OLD_NS = 1_000_000_000_000_000_000  # 2001-09-09: far from "now"


def open_new(path: Path) -> Database:
    db, messages = Database.open(path)
    assert messages == []
    return db


def broken_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.iterdir()
        if ".broken-" in p.name and not p.name.endswith(("-wal", "-shm"))
    )


def make_sqlite(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def make_ours(path: Path, version: int) -> None:
    db = open_new(path)
    with db.transaction() as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    db.close()


def file_row(path: str, mtime_ns: int = OLD_NS, **kw: object) -> FileRow:
    values: dict[str, object] = {
        "kind": "python",
        "size": 10,
        "digest": "d-" + path,
        "blocks": [("<module>", 1, 9, 111), ("f", 3, 4, 222)],
        "imports": ["os", "pkg.mod"],
        "error": None,
    }
    values.update(kw)
    return FileRow(path, mtime_ns=mtime_ns, **values)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_new(tmp_path / ".testmondata")
    yield database
    database.close()


@pytest.fixture
def env_id(db: Database) -> int:
    with db.transaction():
        return db.save_environment("default", "CPython 3.11", {"pytest": "8.0"})


key = ContextKey.parse


def recorded_test(nodeid: str, fps: set[int] = frozenset(), **kw: object) -> RecordedTest:  # type: ignore[assignment]
    values: dict[str, object] = {
        "file_id": None,
        "outcome": Outcome.PASSED,
        "duration": 0.5,
        "fingerprint_ids": set(fps),
        "lines": {},
        "roots": set(),
    }
    values.update(kw)
    return RecordedTest(nodeid, **values)  # type: ignore[arg-type]


# -- opening -----------------------------------------------------------------


def test_create_new_file(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    db = open_new(path)
    meta = dict(db.conn.execute("SELECT key, value FROM meta").fetchall())
    assert meta == {"tool": TOOL_NAME, "schema_version": str(SCHEMA_VERSION)}
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    # Created without waiting for the disk; the runs' writes are WAL-durable again.
    assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    db.close()
    assert path.is_file()
    assert broken_files(tmp_path) == []
    reopened = open_new(path)
    assert reopened.conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    reopened.close()


def test_new_file_is_compact(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    db = open_new(path)
    conn = db.conn
    assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    schema = " ".join(sql for (sql,) in conn.execute("SELECT sql FROM sqlite_master") if sql)
    assert "--" not in schema and "CREATE TABLE test" in schema
    (objects,) = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    db.close()
    # One page per table and index, and a few for the header page, the pointer
    # map and the schema's own text.
    assert path.stat().st_size <= (objects + 6) * PAGE_SIZE
    assert not path.with_name(path.name + "-wal").exists()


def test_existing_file_keeps_its_page_size(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    make_sqlite(path, "PRAGMA page_size = 4096", "CREATE TABLE scratch (x)")
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE scratch")
    conn.close()
    db = open_new(path)  # an empty database: ours to fill
    assert db.conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    with db.transaction():
        db.save_file(file_row("a.py"))
    assert list(db.files()) == ["a.py"]
    db.close()


def test_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    db = open_new(path)
    with db.transaction():
        db.save_file(file_row("a.py"))
    db.close()
    again = open_new(path)
    assert list(again.files()) == ["a.py"]
    again.close()
    assert broken_files(tmp_path) == []


def test_empty_existing_file_gets_schema(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    path.write_bytes(b"")
    db = open_new(path)
    assert db.files() == {}
    db.close()


def test_pytest_testmon_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    make_sqlite(
        path,
        "CREATE TABLE metadata (dataid TEXT PRIMARY KEY, data TEXT)",
        "CREATE TABLE test_execution (id INTEGER PRIMARY KEY, test_name TEXT)",
        "INSERT INTO test_execution (test_name) VALUES ('tests/test_a.py::test_one')",
    )
    original = path.read_bytes()
    db, messages = Database.open(path)
    assert len(messages) == 1
    assert "pytest-testmon" in messages[0]
    assert "\n" not in messages[0]
    [aside] = broken_files(tmp_path)
    assert aside.name.startswith(".testmondata.broken-")
    assert aside.name in messages[0]
    # the original content is preserved in the moved file
    conn = sqlite3.connect(aside)
    assert conn.execute("SELECT test_name FROM test_execution").fetchall() == [
        ("tests/test_a.py::test_one",)
    ]
    conn.close()
    assert aside.read_bytes() == original
    # and a fresh, usable database took its place
    env = None
    with db.transaction():
        env = db.save_environment("default", "py", {})
    assert db.tests(env) == []
    assert dict(db.conn.execute("SELECT key, value FROM meta"))["tool"] == TOOL_NAME
    db.close()


def test_foreign_sqlite_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    make_sqlite(path, "CREATE TABLE something (x)")
    db, messages = Database.open(path)
    assert len(messages) == 1 and "not written by testmon-watch" in messages[0]
    assert len(broken_files(tmp_path)) == 1
    db.close()


def test_meta_of_another_tool_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    make_sqlite(
        path,
        "CREATE TABLE meta (key TEXT, value TEXT)",
        "INSERT INTO meta VALUES ('tool', 'other')",
    )
    db, messages = Database.open(path)
    assert len(messages) == 1 and "not written by testmon-watch" in messages[0]
    db.close()


def test_random_bytes_are_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    garbage = bytes(range(256)) * 64
    path.write_bytes(garbage)
    db, messages = Database.open(path)
    assert len(messages) == 1 and "damaged" in messages[0]
    [aside] = broken_files(tmp_path)
    assert aside.read_bytes() == garbage
    assert db.files() == {}
    db.close()


def test_truncated_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    db = open_new(path)
    with db.transaction():
        for i in range(300):
            db.save_file(file_row(f"pkg/module_{i}.py", blocks=[("<module>", 1, 1, i)] * 20))
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    content = path.read_bytes()
    assert len(content) > 8192
    path.write_bytes(content[: len(content) // 3])
    db, messages = Database.open(path)
    assert len(messages) == 1 and "damaged" in messages[0]
    [aside] = broken_files(tmp_path)
    assert aside.read_bytes() == content[: len(content) // 3]
    assert db.files() == {}
    db.close()


# The newest version no migration brings up to date.
TOO_OLD = min(MIGRATIONS) - 1


def test_older_schema_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    make_ours(path, TOO_OLD)
    db, messages = Database.open(path)
    assert len(messages) == 1
    assert "older schema" in messages[0] and str(TOO_OLD) in messages[0]
    assert len(broken_files(tmp_path)) == 1
    assert dict(db.conn.execute("SELECT key, value FROM meta"))["schema_version"] == str(
        SCHEMA_VERSION
    )
    db.close()


# The fingerprint table before schema 7: a unique index over the checksums found one.
FINGERPRINT_BEFORE_7 = """
CREATE TABLE fingerprint (
    id        INTEGER PRIMARY KEY,
    file_id   INTEGER NOT NULL REFERENCES file(id),
    checksums BLOB NOT NULL,
    UNIQUE (file_id, checksums)
);
"""


def make_old_schema(path: Path, version: int) -> None:
    """A file as an older release created it: the schema without what came later."""
    script = SCHEMA.replace(FINGERPRINT_DIGEST, "")
    start = script.index("CREATE TABLE fingerprint (")
    end = script.index("\n);", start) + 3
    script = script[:start] + FINGERPRINT_BEFORE_7 + script[end:]
    if version < 6:
        script = script.replace(LINESET, "")
        script = "".join(
            line for line in script.splitlines(keepends=True) if "lineset_id" not in line
        )
    if version < 5:
        script = script.replace(FILTERED_FILE, "")
    conn = sqlite3.connect(path)
    conn.executescript(script)
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [("tool", TOOL_NAME), ("schema_version", str(version))],
    )
    conn.commit()
    conn.close()


@pytest.mark.parametrize("version", sorted(MIGRATIONS))
def test_a_migratable_schema_is_brought_up_to_date_in_place(tmp_path: Path, version: int) -> None:
    path = tmp_path / ".testmondata"
    make_old_schema(path, version)
    old_lines = pack_lines({1: {3, 4, 5}})
    old_checksums = pack_checksums([11, 12])
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO environment (name, python, packages) VALUES ('default', 'C', '{}')")
    conn.execute(
        "INSERT INTO file (id, path, kind, mtime_ns, size, digest, blocks, imports) "
        "VALUES (1, 'a.py', 'python', 1, 1, x'', x'', '')"
    )
    conn.execute(
        "INSERT INTO fingerprint (id, file_id, checksums) VALUES (9, 1, ?)", (old_checksums,)
    )
    conn.execute(
        "INSERT INTO test (env_id, nodeid, outcome, duration, fingerprints, lines, units, roots, "
        "recorded_at) VALUES (1, 't::old', 'passed', 0.1, ?, ?, x'', x'', 1.0)",
        (pack_ints([9]), old_lines),
    )
    conn.commit()
    conn.close()
    # Read-only (the fast path, a baseline): usable as it is, nothing written.
    before = path.read_bytes()
    reader, messages = Database.open(path, readonly=True)
    assert messages == [] and reader.filtered_files(1) == {}
    assert [(n, bytes(b)) for n, b, _ in reader.test_lines(1)] == [("t::old", old_lines)]
    assert reader.test_dependencies(1, "t::old") == (pack_ints([9]), old_lines)
    assert reader.fingerprints_of_files([1]) == {9: (1, {11, 12})}
    reader.close()
    assert path.read_bytes() == before
    db, messages = Database.open(path)
    assert messages == [] and broken_files(tmp_path) == []
    assert dict(db.conn.execute("SELECT key, value FROM meta"))["schema_version"] == str(
        SCHEMA_VERSION
    )
    assert db.environment("default") is not None
    with db.transaction():
        db.save_filtered_files(1, "{}", {db.save_file(file_row("tests/test_p.py")): 3})
        db.save_test(1, recorded_test("t::new", lines={1: {3, 4, 5}}), [])
        # An old fingerprint is found by the digest the migration gave it.
        assert db.fingerprint_id(1, [12, 11]) == 9
        added = db.fingerprint_id(1, [11])
    assert list(db.filtered_files(1).values()) == [("{}", 3)]
    assert db.fingerprints_of_files([1]) == {9: (1, {11, 12}), added: (1, {11})}
    # The old record keeps its lines where they were; the new one has a line set.
    assert {n: unpack_lines(b) for n, b, _ in db.test_lines(1)} == {
        "t::old": {1: {3, 4, 5}},
        "t::new": {1: {3, 4, 5}},
    }
    assert [t.nodeid for t in db.test_records(1) if unpack_lines(t.lines)] == ["t::old", "t::new"]
    db.close()


def test_tests_with_the_same_lines_share_one_line_set(db: Database, env_id: int) -> None:
    with db.transaction():
        for nodeid in ("t::a[1]", "t::a[2]", "t::a[3]"):
            db.save_test(env_id, recorded_test(nodeid, lines={1: {1, 2}, 2: {7}}), [])
        db.save_test(env_id, recorded_test("t::b", lines={1: {1, 2, 3}}), [])
    assert db.conn.execute("SELECT count(*) FROM lineset").fetchone() == (2,)
    (inline,) = db.conn.execute("SELECT total(length(lines)) FROM test").fetchone()
    assert inline == 0
    lines = {n: unpack_lines(b) for n, b, _ in db.test_lines(env_id)}
    assert lines["t::a[2]"] == {1: {1, 2}, 2: {7}} and lines["t::b"] == {1: {1, 2, 3}}
    # A rewritten record drops its old set once nothing refers to it.
    with db.transaction():
        db.save_test(env_id, recorded_test("t::b", lines={1: {1, 2}, 2: {7}}), [])
        db.update_test_dependencies(env_id, "t::a[3]", set(), {3: {9}})
        db.collect_garbage()
    assert db.conn.execute("SELECT count(*) FROM lineset").fetchone() == (2,)
    assert db.test_dependencies(env_id, "t::a[3]") == (pack_ints([]), pack_lines({3: {9}}))
    assert db.test_dependencies(env_id, "t::b") == (pack_ints([]), pack_lines({1: {1, 2}, 2: {7}}))


def test_a_line_set_of_a_rolled_back_transaction_is_written_again(
    db: Database, env_id: int
) -> None:
    def write_then_fail() -> None:
        with db.transaction():
            db.save_test(env_id, recorded_test("t::a", lines={1: {4}}), [])
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        write_then_fail()
    assert db.conn.execute("SELECT count(*) FROM lineset").fetchone() == (0,)
    with db.transaction():
        db.save_test(env_id, recorded_test("t::a", lines={1: {4}}), [])
    assert db.test_dependencies(env_id, "t::a") == (pack_ints([]), pack_lines({1: {4}}))


def test_a_line_set_another_connection_dropped_is_written_again(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    first, other = open_new(path), open_new(path)
    with first.transaction():
        env = first.save_environment("default", "C", {})
        first.save_test(env, recorded_test("t::a", lines={1: {4}}), [])
    with other.transaction():
        other.delete_tests(env, ["t::a"])
        other.collect_garbage()
    with first.transaction():
        first.save_test(env, recorded_test("t::b", lines={1: {4}}), [])
    assert first.test_dependencies(env, "t::b") == (pack_ints([]), pack_lines({1: {4}}))
    first.close()
    other.close()


def test_newer_schema_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    make_ours(path, SCHEMA_VERSION + 1)
    db, messages = Database.open(path)
    assert len(messages) == 1 and "newer" in messages[0]
    assert len(broken_files(tmp_path)) == 1
    db.close()


def test_two_moves_in_the_same_second_do_not_collide(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    for _ in range(2):
        path.write_bytes(b"not a database at all" * 100)
        db, messages = Database.open(path)
        db.close()
        assert len(messages) == 1
    assert len(broken_files(tmp_path)) == 2


def test_readonly_on_foreign_file_raises_without_moving(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    make_sqlite(path, "CREATE TABLE test_execution (id INTEGER PRIMARY KEY)")
    before = path.read_bytes()
    with pytest.raises(DatabaseError) as info:
        Database.open(path, readonly=True)
    message = str(info.value)
    assert "\n" not in message
    assert "pytest-testmon" in message
    assert path.read_bytes() == before
    assert broken_files(tmp_path) == []


def test_readonly_on_valid_file_works(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    open_new(path).close()
    db, messages = Database.open(path, readonly=True)
    assert messages == [] and db.files() == {}
    db.close()


def test_wal_companions_move_along(tmp_path: Path) -> None:
    # A pytest-testmon process still has its WAL-mode database open: rows live
    # only in the -wal file, which must travel with the main file.
    path = tmp_path / ".testmondata"
    other = sqlite3.connect(path)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("PRAGMA wal_autocheckpoint = 0")
    other.execute("CREATE TABLE metadata (dataid TEXT PRIMARY KEY, data TEXT)")
    other.execute("CREATE TABLE test_execution (id INTEGER PRIMARY KEY, test_name TEXT)")
    other.execute("INSERT INTO test_execution (test_name) VALUES ('only-in-the-wal')")
    other.commit()
    assert path.with_name(path.name + "-wal").stat().st_size > 0
    try:
        db, messages = Database.open(path)
    finally:
        other.close()  # the last connection on the moved file checkpoints into it
    assert len(messages) == 1 and "pytest-testmon" in messages[0]
    [aside] = broken_files(tmp_path)
    conn = sqlite3.connect(aside)
    assert conn.execute("SELECT test_name FROM test_execution").fetchall() == [("only-in-the-wal",)]
    conn.close()
    assert db.files() == {}
    db.close()


def test_companions_are_renamed_next_to_the_moved_file(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    holder = sqlite3.connect(path)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("CREATE TABLE metadata (x)")
    holder.commit()
    try:
        db, _messages = Database.open(path)
        db.close()
        [aside] = broken_files(tmp_path)
        names = {p.name for p in tmp_path.iterdir()}
        assert {aside.name + "-wal", aside.name + "-shm"} <= names
    finally:
        holder.close()


# -- files -------------------------------------------------------------------


def test_save_file_and_files_round_trip(db: Database) -> None:
    row = file_row("src/a.py", error="syntax error at src/a.py:3: invalid syntax")
    data = file_row("data/x.json", kind="data", blocks=[("<content>", 0, 0, -5)], imports=[])
    with db.transaction():
        file_id = db.save_file(row)
        data_id = db.save_file(data)
    assert row.id == file_id and data.id == data_id and file_id != data_id
    files = db.files()
    assert files["src/a.py"] == row
    assert files["src/a.py"].blocks == [("<module>", 1, 9, 111), ("f", 3, 4, 222)]
    assert files["src/a.py"].imports == ["os", "pkg.mod"]
    assert files["data/x.json"] == data
    assert not files["src/a.py"].missing


def test_hex_digest_is_stored_as_bytes(db: Database) -> None:
    digest = "00ee20dfbf5d5b622528732613a232b9"
    with db.transaction():
        db.save_file(file_row("a.py", digest=digest))
        db.save_file(file_row("dir", kind="dir", digest="abc", blocks=[("<listing>", 0, 0, 9)]))
        db.save_file(file_row("upper.py", digest="ABCD"))
    stored = dict(db.conn.execute("SELECT path, digest FROM file").fetchall())
    assert stored["a.py"] == bytes.fromhex(digest)
    assert stored["dir"] == "abc" and stored["upper.py"] == "ABCD"  # odd length, not lowercase
    files = db.files()
    assert files["a.py"].digest == digest
    assert files["dir"].digest == "abc" and files["upper.py"].digest == "ABCD"


def test_imports_and_blocks_round_trip(db: Database) -> None:
    blocks = [("<module>", 1, 300, -(2**63)), ("C.m", 5, 9, 2**63 - 1), ("f\u00e9", 10, 10, 0)]
    with db.transaction():
        db.save_file(file_row("a.py", blocks=blocks, imports=["a", "b.c", "d.e.f"]))
        db.save_file(file_row("b.py", blocks=[], imports=[]))
    files = db.files()
    assert files["a.py"].blocks == blocks
    assert files["a.py"].imports == ["a", "b.c", "d.e.f"]
    assert files["b.py"].blocks == [] and files["b.py"].imports == []


def test_save_file_updates_in_place(db: Database) -> None:
    with db.transaction():
        first = db.save_file(file_row("a.py"))
        second = db.save_file(file_row("a.py", digest="new", blocks=[("<module>", 1, 1, 7)]))
    assert first == second
    stored = db.files()["a.py"]
    assert stored.digest == "new" and stored.blocks == [("<module>", 1, 1, 7)]


def test_missing_file_round_trip(db: Database) -> None:
    with db.transaction():
        db.save_file(FileRow("gone.py", "python", -1, 0, "", [], [], None))
    stored = db.files()["gone.py"]
    assert stored.missing and stored.mtime_ns == -1


def test_racy_mtime_is_stored_as_zero(db: Database, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.py"
    fresh.write_text("x = 1\n")
    now_mtime = fresh.stat().st_mtime_ns
    with db.transaction():
        db.save_file(file_row("fresh.py", mtime_ns=now_mtime))
        db.save_file(file_row("old.py", mtime_ns=OLD_NS))
    files = db.files()
    assert files["fresh.py"].mtime_ns == 0
    assert files["old.py"].mtime_ns == OLD_NS


def test_touch_file_updates_stat_and_respects_racy(db: Database) -> None:
    with db.transaction():
        file_id = db.save_file(file_row("a.py"))
        db.touch_file(file_id, OLD_NS + 5, 99)
    stored = db.files()["a.py"]
    assert (stored.mtime_ns, stored.size, stored.digest) == (OLD_NS + 5, 99, "d-a.py")
    with db.transaction():
        db.touch_file(file_id, time.time_ns(), 100)
    assert db.files()["a.py"].mtime_ns == 0


# -- fingerprints -----------------------------------------------------------


def test_fingerprint_id_dedupes(db: Database) -> None:
    with db.transaction():
        a = db.save_file(file_row("a.py"))
        b = db.save_file(file_row("b.py"))
        fp1 = db.fingerprint_id(a, [3, 1, 2])
        fp2 = db.fingerprint_id(a, {2, 3, 1})
        fp3 = db.fingerprint_id(a, [1, 2])
        fp4 = db.fingerprint_id(b, [1, 2, 3])
    assert fp1 == fp2
    assert len({fp1, fp3, fp4}) == 3
    assert db.fingerprints_of_files([a]) == {fp1: (a, {1, 2, 3}), fp3: (a, {1, 2})}
    assert db.fingerprints_of_files([a, b])[fp4] == (b, {1, 2, 3})
    assert db.fingerprint_files([fp1, fp4]) == {fp1: a, fp4: b}
    assert db.fingerprints_of_files([]) == {}


def test_fingerprints_of_many_files(db: Database) -> None:
    with db.transaction():
        ids = [db.save_file(file_row(f"m{i}.py")) for i in range(1200)]
        fps = [db.fingerprint_id(fid, [fid]) for fid in ids]
    found = db.fingerprints_of_files(ids)
    assert len(found) == 1200
    assert db.fingerprint_files(fps) == dict(zip(fps, ids, strict=True))


# -- environment -------------------------------------------------------------


def test_environment_round_trip_and_update(db: Database) -> None:
    assert db.environment("default") is None
    with db.transaction():
        first = db.save_environment("default", "py1", {"b": "2", "a": "1"})
        second = db.save_environment("default", "py2", {"a": "3"})
        other = db.save_environment("other", "py1", {})
    assert first == second != other
    row = db.environment("default")
    assert row is not None and (row.python, row.packages) == ("py2", {"a": "3"})


# -- units and tests ----------------------------------------------------------


def test_save_unit_unit_ids_units(db: Database, env_id: int) -> None:
    with db.transaction():
        f = db.save_file(file_row("a.py"))
        fp = db.fingerprint_id(f, [1])
        u1 = db.save_unit(env_id, RecordedUnit(key("import:a.py"), {fp}, {f: {1, 2}}, {f}))
        u2 = db.save_unit(env_id, RecordedUnit(key("fixture:session:::conftest.py::db"), set(), {}))
        u1_again = db.save_unit(env_id, RecordedUnit(key("import:a.py"), set(), {}, set()))
    assert u1 == u1_again != u2
    wanted = [key("import:a.py"), key("import:nope.py"), key("fixture:session:::conftest.py::db")]
    assert db.unit_ids(env_id, wanted) == {
        key("import:a.py"): u1,
        key("fixture:session:::conftest.py::db"): u2,
    }
    units = db.units(env_id, with_lines=True)
    assert set(units) == {u1, u2}
    assert units[u1].key == "import:a.py"
    assert list(unpack_ints(units[u1].fingerprints)) == []  # replaced by the upsert
    assert unpack_lines(units[u1].lines) == {}
    assert db.unit_fingerprints(u1) == b""
    assert db.unit_fingerprints(999) == b""
    assert db.units(env_id)[u1].lines == b""


def test_units_are_per_environment(db: Database, env_id: int) -> None:
    with db.transaction():
        other = db.save_environment("other", "py", {})
        db.save_unit(env_id, RecordedUnit(key("session"), set(), {}))
    assert db.units(other) == {}
    assert db.unit_ids(other, [SESSION]) == {}


def test_save_test_upsert(db: Database, env_id: int) -> None:
    with db.transaction():
        f = db.save_file(file_row("tests/test_a.py"))
        fp = db.fingerprint_id(f, [1, 2])
        u = db.save_unit(env_id, RecordedUnit(key("session"), set(), {}))
        db.save_test(
            env_id,
            recorded_test(
                "t::a",
                {fp},
                file_id=f,
                roots={f},
                lines={f: {1, 2, 3}},
                outcome=Outcome.FAILED,
            ),
            [u],
        )
    [row] = db.tests(env_id, with_blobs=True)
    assert (row.nodeid, row.file_id, row.outcome, row.duration, row.pending) == (
        "t::a",
        f,
        "failed",
        0.5,
        None,
    )
    assert list(unpack_ints(row.fingerprints)) == [fp]
    assert list(unpack_ints(row.units)) == [u]
    assert list(unpack_ints(row.roots)) == [f]
    [(nodeid, lines, units)] = list(db.test_lines(env_id))
    assert (
        nodeid == "t::a"
        and unpack_lines(lines) == {f: {1, 2, 3}}
        and list(unpack_ints(units)) == [u]
    )
    with db.transaction():
        db.save_test(
            env_id,
            recorded_test(
                "t::a", set(), outcome=Outcome.PASSED, duration=2.0, pending=[Reason.interrupted()]
            ),
            [],
        )
    [row] = db.tests(env_id, with_blobs=True)
    assert (row.outcome, row.duration, row.file_id) == ("passed", 2.0, None)
    assert row.pending == [Reason.interrupted()]
    assert list(unpack_ints(row.fingerprints)) == []
    without = db.tests(env_id)[0]
    assert without.fingerprints == b"" and without.units == b""


def test_save_outcome_only_keeps_dependencies(db: Database, env_id: int) -> None:
    with db.transaction():
        f = db.save_file(file_row("a.py"))
        fp = db.fingerprint_id(f, [1])
        db.save_test(env_id, recorded_test("t::a", {fp}, pending=[Reason.new()]), [])
        db.save_outcome_only(env_id, "t::a", Outcome.FAILED, 3.0)
    [row] = db.tests(env_id, with_blobs=True)
    assert (row.outcome, row.duration, row.pending) == ("failed", 3.0, [Reason.new()])
    assert list(unpack_ints(row.fingerprints)) == [fp]


def test_test_file_summary_counts_tests_due_to_run(db: Database, env_id: int) -> None:
    with db.transaction():
        f = db.save_file(file_row("tests/test_a.py"))
        g = db.save_file(file_row("tests/test_b.py"))
        for name, outcome in [
            ("a1", Outcome.PASSED),
            ("a2", Outcome.FAILED),
            ("a3", Outcome.ERROR),
            ("a4", Outcome.XPASSED),  # a pass to pytest: not run again
            ("a5", Outcome.SKIPPED),
        ]:
            db.save_test(env_id, recorded_test(name, file_id=f, outcome=outcome), [])
        db.save_test(env_id, recorded_test("b1", file_id=g, pending=[Reason.new()]), [])
        db.save_test(env_id, recorded_test("b2", file_id=g), [])
    assert db.test_file_summary(env_id) == {f: (5, 2), g: (2, 1)}


def test_mark_pending_and_mark_all_pending(db: Database, env_id: int) -> None:
    with db.transaction():
        other_env = db.save_environment("other", "py", {})
        for name in ("a", "b", "c"):
            db.save_test(env_id, recorded_test(name), [])
        db.save_test(other_env, recorded_test("a"), [])
    ids = {t.nodeid: t.id for t in db.tests(env_id)}
    with db.transaction():
        db.mark_pending({ids["a"]: [Reason(ReasonKind.CHANGED, "x.py", blocks=("f",))]})
    pending = {t.nodeid: t.pending for t in db.tests(env_id)}
    assert pending == {
        "a": [Reason(ReasonKind.CHANGED, "x.py", blocks=("f",))],
        "b": None,
        "c": None,
    }
    why = [Reason(ReasonKind.ENVIRONMENT)]
    with db.transaction():
        db.mark_all_pending(env_id, why)
    assert all(t.pending == why for t in db.tests(env_id))
    assert [t.pending for t in db.tests(other_env)] == [None]


def test_tests_sharing_a_pending_mark_get_lists_of_their_own(db: Database, env_id: int) -> None:
    """Decoded once per distinct text (a change marks thousands alike), handed out as copies."""
    with db.transaction():
        for name in ("a", "b"):
            db.save_test(env_id, recorded_test(name), [])
        db.mark_all_pending(env_id, [Reason.new()])
    first, second = db.tests(env_id)
    assert first.pending == second.pending == [Reason.new()]
    assert first.pending is not None and first.pending is not second.pending
    first.pending.append(Reason.failed())
    assert second.pending == [Reason.new()]
    assert [t.pending for t in db.tests(env_id)] == [[Reason.new()], [Reason.new()]]


def test_delete_tests(db: Database, env_id: int) -> None:
    with db.transaction():
        other_env = db.save_environment("other", "py", {})
        for name in ("a", "b", "c"):
            db.save_test(env_id, recorded_test(name), [])
        db.save_test(other_env, recorded_test("a"), [])
        db.delete_tests(env_id, ["a", "c", "not-there"])
    assert [t.nodeid for t in db.tests(env_id)] == ["b"]
    assert [t.nodeid for t in db.tests(other_env)] == ["a"]


def test_save_run(db: Database, env_id: int) -> None:
    with db.transaction():
        db.save_run(env_id, 123.0, 3, 7, 1.5)
    assert db.conn.execute("SELECT selected, deselected, saved_seconds FROM run").fetchall() == [
        (3, 7, 1.5)
    ]


def test_collect_garbage(db: Database, env_id: int) -> None:
    with db.transaction():
        f = db.save_file(file_row("a.py"))
        fp_test = db.fingerprint_id(f, [1])
        fp_fixture = db.fingerprint_id(f, [2])
        fp_import = db.fingerprint_id(f, [3])
        fp_orphan_unit = db.fingerprint_id(f, [4])
        fp_loose = db.fingerprint_id(f, [5])
        used = db.save_unit(
            env_id, RecordedUnit(key("fixture:session:::conftest.py::db"), {fp_fixture}, {})
        )
        imported = db.save_unit(env_id, RecordedUnit(key("import:a.py"), {fp_import}, {}))
        orphan = db.save_unit(
            env_id, RecordedUnit(key("fixture:module:x::y"), {fp_orphan_unit}, {})
        )
        db.save_test(env_id, recorded_test("t", {fp_test}), [used])
        db.collect_garbage()
    assert set(db.units(env_id)) == {used, imported}
    assert orphan not in db.units(env_id)
    remaining = set(db.fingerprints_of_files([f]))
    assert remaining == {fp_test, fp_fixture, fp_import}
    assert fp_orphan_unit not in remaining and fp_loose not in remaining


def test_collect_garbage_gives_freed_pages_back(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    db = open_new(path)
    with db.transaction():
        env = db.save_environment("default", "py", {})
        f = db.save_file(file_row("a.py"))
        # a few hundred bytes each, not compressible, each test its own set
        names = [f"t{i}" for i in range(400)]
        for i, name in enumerate(names):
            lines = {f: {(line * line + i) % 7919 for line in range(1, 400)}}
            db.save_test(env, recorded_test(name, lines=lines), [])
        lines = {f: {line * line % 7919 for line in range(1, 400)}}  # t0's
    grown = db.conn.execute("PRAGMA page_count").fetchone()[0]
    with db.transaction():
        db.delete_tests(env, names[1:])
        db.collect_garbage()
    assert db.conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert db.conn.execute("PRAGMA page_count").fetchone()[0] < grown / 4
    assert [t.nodeid for t in db.tests(env)] == ["t0"]
    assert {n: unpack_lines(b) for n, b, _ in db.test_lines(env)} == {"t0": lines}
    db.close()
    assert path.stat().st_size < grown * PAGE_SIZE / 4


def test_collect_garbage_keeps_free_pages_when_few(db: Database, env_id: int) -> None:
    with db.transaction():
        for name in ("a", "b"):
            db.save_test(env_id, recorded_test(name), [])
        db.delete_tests(env_id, ["a"])
        db.collect_garbage()
    assert [t.nodeid for t in db.tests(env_id)] == ["b"]


def test_transaction_that_raises_writes_nothing(db: Database, env_id: int) -> None:
    def write_then_fail() -> None:
        with db.transaction():
            db.save_file(file_row("a.py"))
            db.save_test(env_id, recorded_test("t"), [])
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert db.files() == {}
    assert db.tests(env_id) == []
    # the connection is usable afterwards
    with db.transaction():
        db.save_file(file_row("b.py"))
    assert list(db.files()) == ["b.py"]


def test_transaction_is_visible_to_another_connection_only_after_commit(tmp_path: Path) -> None:
    path = tmp_path / ".testmondata"
    writer = open_new(path)
    reader, _ = Database.open(path)
    with writer.transaction():
        writer.save_file(file_row("a.py"))
        assert reader.files() == {}
    assert list(reader.files()) == ["a.py"]
    writer.close()
    reader.close()


def test_move_aside_keeps_file_when_not_permitted(tmp_path: Path) -> None:
    # A directory in place of the file cannot be opened nor renamed over: one-line error.
    path = tmp_path / ".testmondata"
    path.mkdir()
    with pytest.raises(DatabaseError) as info:
        Database.open(path, readonly=True)
    assert "\n" not in str(info.value)
    assert path.is_dir()
    assert os.listdir(tmp_path) == [".testmondata"]
