"""The one owner of SQL: opens, validates, migrates and reads/writes `.testmondata`."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from testmon_watch.core.keys import ContextKey, ContextKind
from testmon_watch.core.outcomes import OUTCOME_BY_VALUE, RUNS_AGAIN, Outcome
from testmon_watch.core.packing import (
    pack_blocks,
    pack_checksums,
    pack_ints,
    pack_lines,
    unpack_blocks,
    unpack_checksums,
    unpack_ints,
)
from testmon_watch.core.reasons import Reason, reasons_from_json, reasons_to_json
from testmon_watch.core.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, TOOL_NAME

BlockRow = tuple[str, int, int, int]  # name, start, end, checksum

# A file modified less than this before we look at it may be modified again
# within the same timestamp tick (git's "racy" files): store its mtime as 0 so
# that the next check hashes the content instead of trusting the stat.
RACY_NS = 2_000_000_000

# Page size of a new file (SQLite's default is 4096). Every table and index
# takes at least one page and most end in a partly filled one, so small pages keep
# a small project's file small; but a row larger than half a page fills one alone,
# and real projects' line sets and fingerprints run to hundreds of bytes. Measured
# (the same data, VACUUMed; KiB at 1024 / 2048 / 4096): toolz 125 / 138 / 164,
# jinja2 1,194 / 1,056 / 1,056, packaging 6,313 / 5,546 / 5,428.
PAGE_SIZE = 2048

# After a run the WAL is emptied by a checkpoint but keeps its size unless told.
WAL_SIZE_LIMIT = 1 << 20


def blob_digest(blob: bytes) -> int:
    """First 8 bytes of blake2b(blob) as a signed 64-bit integer: an index key for blobs.

    Not unique: whoever looks a blob up by its digest compares the blobs. Also
    the SQL function `testmon_digest` on our connections (schema migrations).
    """
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big", signed=True)


def _pack_digest(digest: str) -> str | bytes:
    """A lowercase hex digest is stored as its bytes (half the size); anything else as text."""
    try:
        packed = bytes.fromhex(digest)
    except ValueError:
        return digest
    return packed if digest and packed.hex() == digest else digest


def _unpack_digest(stored: str | bytes) -> str:
    return stored.hex() if isinstance(stored, bytes) else stored


def _pack_imports(imports: Iterable[str]) -> str:
    """Dotted module names, one a line (a name never contains a newline or is empty)."""
    return "\n".join(name for name in imports if name)


def _unpack_imports(stored: str) -> list[str]:
    return stored.split("\n") if stored else []


def _pack_pending(reasons: list[Reason] | None) -> str | None:
    return json.dumps(reasons_to_json(reasons)) if reasons else None


def _unpack_pending(stored: str | None) -> list[Reason] | None:
    """The reasons of a pending test; a mark that does not decode still keeps it pending."""
    if not stored:
        return None
    return list(_decode_pending(stored))


@functools.lru_cache(maxsize=1024)
def _decode_pending(stored: str) -> tuple[Reason, ...]:
    """Decoded once per distinct text: a change marks thousands of tests with the same reasons."""
    try:
        return tuple(reasons_from_json(json.loads(stored))) or (Reason.interrupted(),)
    except ValueError:
        return (Reason.interrupted(),)


def _stored_mtime(mtime_ns: int) -> int:
    if mtime_ns > 0 and time.time_ns() - mtime_ns < RACY_NS:
        return 0
    return mtime_ns


def is_import_key(text: str) -> bool:
    """Is this stored unit key a module's import (reached through import edges, not by tests)?"""
    try:
        return ContextKey.parse(text).kind is ContextKind.IMPORT
    except ValueError:
        return False  # not a key at all: garbage like any unit nothing refers to


class DatabaseError(Exception):
    """A database problem, phrased as one line for the user."""


class FileRow:
    """The stored state of one file (see the `file` table).

    Blocks and imports are decoded from JSON only when asked for: a no-change
    run reads thousands of rows and needs none of them.
    """

    __slots__ = (
        "path",
        "kind",
        "mtime_ns",
        "size",
        "digest",
        "error",
        "id",
        "_blocks",
        "_imports",
        "_raw_blocks",
        "_raw_imports",
    )

    def __init__(
        self,
        path: str,
        kind: str,
        mtime_ns: int,
        size: int,
        digest: str,
        blocks: list[BlockRow],
        imports: list[str],
        error: str | None = None,
        id: int = 0,  # noqa: A002 - the `file` table's column, like self.id
    ) -> None:
        self.path = path
        self.kind = kind
        self.mtime_ns = mtime_ns
        self.size = size
        self.digest = digest
        self.error = error
        self.id = id
        self._blocks: list[BlockRow] | None = blocks
        self._imports: list[str] | None = imports
        self._raw_blocks = b""
        self._raw_imports = ""

    @classmethod
    def stored(
        cls,
        id: int,  # noqa: A002 - the `file` table's column, like self.id
        path: str,
        kind: str,
        mtime_ns: int,
        size: int,
        digest: str | bytes,
        raw_blocks: bytes,
        raw_imports: str,
        error: str | None,
    ) -> FileRow:
        row = cls(path, kind, mtime_ns, size, _unpack_digest(digest), [], [], error, id)
        row._blocks = row._imports = None
        row._raw_blocks, row._raw_imports = raw_blocks, raw_imports
        return row

    @property
    def blocks(self) -> list[BlockRow]:
        if self._blocks is None:
            self._blocks = unpack_blocks(self._raw_blocks)
        return self._blocks

    @property
    def imports(self) -> list[str]:
        if self._imports is None:
            self._imports = _unpack_imports(self._raw_imports)
        return self._imports

    @property
    def missing(self) -> bool:
        return self.digest == ""

    def _key(self) -> tuple[object, ...]:
        return (
            self.path,
            self.kind,
            self.mtime_ns,
            self.size,
            self.digest,
            self.blocks,
            self.imports,
            self.error,
            self.id,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileRow) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FileRow({self.path!r}, {self.kind!r}, mtime_ns={self.mtime_ns}, id={self.id})"


@dataclass
class EnvironmentRow:
    id: int
    name: str
    python: str
    packages: dict[str, str]


@dataclass
class TestRow:
    """A test's stored record; the blobs are decoded lazily by the caller."""

    id: int
    nodeid: str
    file_id: int | None
    outcome: Outcome
    duration: float
    pending: list[Reason] | None
    fingerprints: bytes = b""
    units: bytes = b""
    roots: bytes = b""
    lines: bytes = b""
    recorded_at: float = 0.0  # read only by `test_records` (merging keeps the newer record)
    env_id: int = 0  # read only by `tests`


@dataclass
class UnitRow:
    id: int
    key: str  # the stored text of a ContextKey (ContextKey.parse reads it)
    fingerprints: bytes
    edges: bytes
    lines: bytes = b""


@dataclass
class RecordedUnit:
    """A shared unit ready to be written: fingerprints and lines keyed by file id."""

    key: ContextKey
    fingerprint_ids: set[int]
    lines: Mapping[int, AbstractSet[int]]
    edges: set[int] = field(default_factory=set)


@dataclass
class RecordedTest:
    """A finished test ready to be written."""

    nodeid: str
    file_id: int | None
    outcome: Outcome
    duration: float
    fingerprint_ids: set[int]
    lines: Mapping[int, AbstractSet[int]]
    roots: set[int]
    pending: list[Reason] | None = None


def _statements(script: str) -> Iterator[str]:
    """Split a SQL script into statements (executescript would commit our transaction).

    `--` comments are left out: SQLite keeps each CREATE statement's text in
    the file, and the comments are for readers of schema.py (no literal in the
    schema contains `--`).
    """
    pending = ""
    for line in script.splitlines(keepends=True):
        line = line.split("--", 1)[0].rstrip()
        if not line:
            continue
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""


def _aside_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.name}.broken-{stamp}")
    counter = 1
    while candidate.exists():
        counter += 1
        candidate = path.with_name(f"{path.name}.broken-{stamp}-{counter}")
    return candidate


def _move_aside(path: Path) -> Path:
    """Rename the file (and its WAL companions) out of the way; never delete."""
    target = _aside_name(path)
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.replace(companion, target.with_name(target.name + suffix))
    return target


def _inspect(conn: sqlite3.Connection) -> str | None:
    """Return why an existing file is unusable, or None when it is ours and current."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return None  # empty file: fine, the schema gets created
    if "meta" not in tables:
        if "test_execution" in tables or "metadata" in tables:
            return "it is a pytest-testmon database"
        return "it was not written by testmon-watch"
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("tool") != TOOL_NAME:
        return "it was not written by testmon-watch"
    version = int(meta.get("schema_version", "0"))
    if version < SCHEMA_VERSION and not _migratable(version):
        return f"it has the older schema version {version} (now {SCHEMA_VERSION})"
    if version > SCHEMA_VERSION:
        return (
            f"it was written by a newer testmon-watch "
            f"(schema {version}, this one reads {SCHEMA_VERSION})"
        )
    expected = ("environment", "file", "fingerprint", "unit", "test", "run")
    missing = [t for t in expected if t not in tables]
    if missing:
        return f"it is incomplete (no table {missing[0]})"
    # Touch every table once so a damaged file fails here rather than mid-run.
    for table in expected:
        conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return None


def _migratable(version: int) -> bool:
    """Can `Database._ensure_schema` bring a file of this version up to date in place?"""
    return all(v in MIGRATIONS for v in range(version, SCHEMA_VERSION))


class Database:
    """A connection to `.testmondata` with typed reads and transactional writes.

    Over 400 lines on purpose: every SQL statement of the project is here, next
    to the others that touch the same tables, so a schema change is one file.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        # Packed line set -> its lineset id, for the sets written or found in the
        # current transaction: a run saves the same few sets thousands of times.
        self._lineset_ids: dict[bytes, int] = {}
        self._has_linesets: bool | None = None

    # -- opening ---------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], readonly: bool = False
    ) -> tuple[Database, list[str]]:
        """Open or create the file; an unusable one is moved aside with a message."""
        path = Path(path)
        messages: list[str] = []
        if readonly and not path.exists():
            raise DatabaseError(f"cannot use {path}: it does not exist yet")
        for attempt in range(2):
            conn = None
            try:
                conn = cls._connect(path)
                problem = _inspect(conn)
            except sqlite3.OperationalError as exc:
                # Locked, unreadable, read-only: the file may be fine; never move it.
                if conn is not None:
                    conn.close()
                raise DatabaseError(f"cannot use {path}: {exc}") from exc
            except sqlite3.DatabaseError as exc:
                problem = f"it is damaged ({exc})"
                if conn is not None:
                    conn.close()
                conn = None
            if problem is None and conn is not None:
                db = cls(conn, path)
                if not readonly:
                    try:
                        cls._configure(conn)
                        db._ensure_schema()
                        # Runs write with WAL's usual durability: a crash loses at most
                        # the last commits, never the file.
                        conn.execute("PRAGMA synchronous = NORMAL")
                    except sqlite3.DatabaseError as exc:
                        conn.close()
                        raise DatabaseError(f"cannot use {path}: {exc}") from exc
                return db, messages
            if conn is not None:
                conn.close()
            if attempt == 1 or readonly:
                raise DatabaseError(f"cannot use {path}: {problem}")
            try:
                target = _move_aside(path)
            except OSError as exc:
                raise DatabaseError(
                    f"cannot use {path}: {problem}; moving it aside failed: {exc}"
                ) from exc
            messages.append(
                f"{path.name}: {problem}; moved it to {target.name} and started a new one"
            )
        raise AssertionError("unreachable")

    @classmethod
    def open_for_reading(cls, path: str | os.PathLike[str]) -> Database:
        """Open a data file made elsewhere (a CI artifact, a shard's) to read it, never to write.

        Unlike `open`, nothing is created, migrated or moved aside, and the file
        stays byte for byte as it was: without a `-wal` beside it, it is opened
        `immutable` (no lock, no `-shm` created); with one (a file some process
        may still be writing), read-only through that WAL. Raises DatabaseError
        with one line saying why it cannot be used.
        """
        path = Path(path)
        if not path.is_file():
            raise DatabaseError(
                f"{path}: " + ("it is not a file" if path.exists() else "it does not exist")
            )
        wal = path.with_name(path.name + "-wal")
        query = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
        conn = None
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?{query}",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            problem = _inspect(conn) if tables else "it is empty"
        except (sqlite3.DatabaseError, ValueError) as exc:  # ValueError: a garbled meta value
            problem = f"it is not a testmon-watch data file ({exc})"
        if problem is not None:
            if conn is not None:
                conn.close()
            raise DatabaseError(f"{path}: {problem}")
        assert conn is not None  # connect either returned or raised into `problem`
        return cls(conn, path)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.create_function("testmon_digest", 1, blob_digest, deterministic=True)
        return conn

    @staticmethod
    def _configure(conn: sqlite3.Connection) -> None:
        """Only once the file is known to be ours: switching to WAL rewrites its header."""
        # Creating a file (header, WAL switch, schema) would wait for the disk three
        # or four times (about 40 ms here, a tenth of a small project's recording
        # overhead). It holds no data yet: if the machine crashes meanwhile, the next
        # open finds it damaged, moves it aside and starts again, losing nothing.
        conn.execute("PRAGMA synchronous = OFF")
        # Both only take effect on a new, empty file and must come before WAL.
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        # Pages freed by deleting rows can be given back (see `_release_free_pages`).
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")

    def _ensure_schema(self) -> None:
        with self.transaction():
            exists = self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
            if exists:
                self._migrate()
                return
            for statement in _statements(SCHEMA):
                self.conn.execute(statement)
            self.conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("tool", TOOL_NAME), ("schema_version", str(SCHEMA_VERSION))],
            )

    def _migrate(self) -> None:
        """Inside `_ensure_schema`'s transaction: apply MIGRATIONS up to SCHEMA_VERSION.

        Only additions: a reader of the older version (open readonly, as the fast
        path and baselines are) finds every table it knows unchanged.
        """
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else SCHEMA_VERSION
        if version >= SCHEMA_VERSION:
            return
        for step in range(version, SCHEMA_VERSION):
            for statement in _statements(MIGRATIONS[step]):
                self.conn.execute(statement)
        self.conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
        )

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: one writer at a time, all or nothing."""
        self.conn.execute("BEGIN IMMEDIATE")
        # Between transactions another process may have dropped a line set this
        # connection knew (collect_garbage); within one, no one else writes.
        self._lineset_ids.clear()
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            self._lineset_ids.clear()
            raise
        else:
            self.conn.execute("COMMIT")

    def version_stamp(self) -> tuple[int, int]:
        """Changes whenever anything commits to the file: another connection (SQLite's
        data_version) or this one (its total_changes). For data read ahead."""
        (data_version,) = self.conn.execute("PRAGMA data_version").fetchone()
        return int(data_version), self.conn.total_changes

    # -- meta ------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- environment -----------------------------------------------------

    def environment(self, name: str) -> EnvironmentRow | None:
        row = self.conn.execute(
            "SELECT id, name, python, packages FROM environment WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        return EnvironmentRow(row[0], row[1], row[2], json.loads(row[3]))

    def environments(self) -> list[EnvironmentRow]:
        return [
            EnvironmentRow(row[0], row[1], row[2], json.loads(row[3]))
            for row in self.conn.execute("SELECT id, name, python, packages FROM environment")
        ]

    def save_environment(self, name: str, python: str, packages: Mapping[str, str]) -> int:
        self.conn.execute(
            "INSERT INTO environment (name, python, packages) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET "
            "python = excluded.python, packages = excluded.packages",
            (name, python, json.dumps(dict(packages), sort_keys=True)),
        )
        row = self.conn.execute("SELECT id FROM environment WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    # -- files -----------------------------------------------------------

    def files(self) -> dict[str, FileRow]:
        result: dict[str, FileRow] = {}
        for row in self.conn.execute(
            "SELECT id, path, kind, mtime_ns, size, digest, blocks, imports, error FROM file"
        ):
            result[row[1]] = FileRow.stored(*row)
        return result

    def save_file(self, row: FileRow) -> int:
        """Insert or update a file's state (inside a transaction); returns its id."""
        self.conn.execute(
            "INSERT INTO file (path, kind, mtime_ns, size, digest, blocks, imports, error) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
            "kind = excluded.kind, mtime_ns = excluded.mtime_ns, size = excluded.size, "
            "digest = excluded.digest, blocks = excluded.blocks, imports = excluded.imports, "
            "error = excluded.error",
            (
                row.path,
                row.kind,
                _stored_mtime(row.mtime_ns),
                row.size,
                _pack_digest(row.digest),
                pack_blocks(row.blocks),
                _pack_imports(row.imports),
                row.error,
            ),
        )
        found = self.conn.execute("SELECT id FROM file WHERE path = ?", (row.path,)).fetchone()
        row.id = int(found[0])
        return row.id

    def touch_file(self, file_id: int, mtime_ns: int, size: int) -> None:
        """Content unchanged, only the stat differs: remember the new stat."""
        self.conn.execute(
            "UPDATE file SET mtime_ns = ?, size = ? WHERE id = ?",
            (_stored_mtime(mtime_ns), size, file_id),
        )

    # -- fingerprints ----------------------------------------------------

    def fingerprint_id(self, file_id: int, checksums: Iterable[int]) -> int:
        """The id of the fingerprint of these checksums in that file, added if there is none.

        Inside a transaction (BEGIN IMMEDIATE: no other writer between the look and
        the insert), so a set is stored once.
        """
        blob = pack_checksums(checksums)
        return self._find_or_add(
            "SELECT id, checksums FROM fingerprint WHERE file_id = ? AND digest = ?",
            "INSERT INTO fingerprint (file_id, checksums, digest) VALUES (?, ?, ?)",
            file_id,
            blob,
        )

    def _find_or_add(self, select: str, insert: str, owner: int | None, blob: bytes) -> int:
        """The id of the row holding `blob`, found by its digest (and owner), else added.

        `select` takes (owner?, digest) and returns (id, blob) rows; `insert` takes
        (owner?, blob, digest). A digest may collide: the blob decides.
        """
        digest = blob_digest(blob)
        key = (digest,) if owner is None else (owner, digest)
        for row_id, stored in self.conn.execute(select, key):
            if bytes(stored) == blob:
                return int(row_id)
        values = (blob, digest) if owner is None else (owner, blob, digest)
        cursor = self.conn.execute(insert, values)
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def fingerprints_of_files(self, file_ids: Iterable[int]) -> dict[int, tuple[int, set[int]]]:
        """fingerprint id -> (file id, checksums) for the given files."""
        ids = list(file_ids)
        result: dict[int, tuple[int, set[int]]] = {}
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            marks = ",".join("?" * len(chunk))
            for fp_id, file_id, blob in self.conn.execute(
                f"SELECT id, file_id, checksums FROM fingerprint WHERE file_id IN ({marks})", chunk
            ):
                result[fp_id] = (file_id, set(unpack_checksums(blob)))
        return result

    def fingerprint_files(self, fingerprint_ids: Iterable[int]) -> dict[int, int]:
        """fingerprint id -> file id."""
        ids = list(fingerprint_ids)
        result: dict[int, int] = {}
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT id, file_id FROM fingerprint WHERE id IN ({marks})"
            result.update(self.conn.execute(query, chunk))
        return result

    # -- tests and units -------------------------------------------------

    def tests(self, env_id: int | None, with_blobs: bool = False) -> list[TestRow]:
        """Tests of one environment, or of all of them (file states are shared)."""
        columns = "id, nodeid, file_id, outcome, duration, pending, env_id"
        if with_blobs:
            columns += ", fingerprints, units, roots"
        where, args = ("WHERE env_id = ?", (env_id,)) if env_id is not None else ("", ())
        result = []
        # Inlined per row: a large suite reads 20,000 of them before every run.
        outcome_of, error = OUTCOME_BY_VALUE.get, Outcome.ERROR
        for row in self.conn.execute(f"SELECT {columns} FROM test {where}", args):
            pending = _unpack_pending(row[5]) if row[5] else None
            test = TestRow(row[0], row[1], row[2], outcome_of(row[3], error), row[4], pending)
            test.env_id = row[6]
            if with_blobs:
                test.fingerprints, test.units, test.roots = row[7], row[8], row[9]
            result.append(test)
        return result

    def test_lines(self, env_id: int) -> Iterator[tuple[str, bytes, bytes]]:
        """(nodeid, lines blob, units blob) of every test: for coverage export."""
        lines, join = self._test_lines_sql()
        yield from self.conn.execute(
            f"SELECT t.nodeid, {lines}, t.units FROM test t {join} WHERE t.env_id = ?", (env_id,)
        )

    def test_records(self, env_id: int) -> list[TestRow]:
        """Every column of every test of one environment: what a merge copies."""
        result = []
        lines, join = self._test_lines_sql()
        for row in self.conn.execute(
            "SELECT t.id, t.nodeid, t.file_id, t.outcome, t.duration, t.pending, t.fingerprints, "
            f"t.units, t.roots, {lines}, t.recorded_at FROM test t {join} WHERE t.env_id = ?",
            (env_id,),
        ):
            outcome = OUTCOME_BY_VALUE.get(row[3], Outcome.ERROR)
            test = TestRow(row[0], row[1], row[2], outcome, row[4], _unpack_pending(row[5]))
            test.fingerprints, test.units, test.roots, test.lines = row[6], row[7], row[8], row[9]
            test.recorded_at = float(row[10])
            result.append(test)
        return result

    def test_times(self, env_id: int) -> dict[str, float]:
        """nodeid -> when its record was made (time.time())."""
        return {
            nodeid: float(at)
            for nodeid, at in self.conn.execute(
                "SELECT nodeid, recorded_at FROM test WHERE env_id = ?", (env_id,)
            )
        }

    def records_stamp(self, env_id: int | None) -> tuple[int, float, float]:
        """(tests, latest recorded_at, sum of recorded_at) of one environment, or of all.

        Changes whenever a test is recorded, added or removed: tells cheaply
        whether a file holds records another has not seen yet.
        """
        where, args = ("WHERE env_id = ?", (env_id,)) if env_id is not None else ("", ())
        count, latest, total = self.conn.execute(
            f"SELECT count(*), coalesce(max(recorded_at), 0), total(recorded_at) FROM test {where}",
            args,
        ).fetchone()
        return int(count), float(latest), float(total)

    def units(self, env_id: int | None, with_lines: bool = False) -> dict[int, UnitRow]:
        columns = "id, key, fingerprints, edges" + (", lines" if with_lines else "")
        where, args = ("WHERE env_id = ?", (env_id,)) if env_id is not None else ("", ())
        result = {}
        for row in self.conn.execute(f"SELECT {columns} FROM unit {where}", args):
            result[row[0]] = UnitRow(row[0], row[1], row[2], row[3], row[4] if with_lines else b"")
        return result

    def mark_pending(self, reasons: Mapping[int, list[Reason]]) -> None:
        self.conn.executemany(
            "UPDATE test SET pending = ? WHERE id = ?",
            [(_pack_pending(why), test_id) for test_id, why in reasons.items()],
        )

    def mark_pending_tests(self, env_id: int, reasons: Mapping[str, list[Reason]]) -> None:
        """Like mark_pending, by node id (what pytest's collection knows a test by)."""
        self.conn.executemany(
            "UPDATE test SET pending = ? WHERE env_id = ? AND nodeid = ?",
            [(_pack_pending(why), env_id, nodeid) for nodeid, why in reasons.items()],
        )

    def mark_all_pending(self, env_id: int, why: list[Reason]) -> None:
        self.conn.execute(
            "UPDATE test SET pending = ? WHERE env_id = ?", (_pack_pending(why), env_id)
        )

    def delete_tests(self, env_id: int, nodeids: Iterable[str]) -> None:
        self.conn.executemany(
            "DELETE FROM test WHERE env_id = ? AND nodeid = ?", [(env_id, n) for n in nodeids]
        )

    def save_unit(self, env_id: int, unit: RecordedUnit) -> int:
        return self.save_unit_by_key(
            env_id, str(unit.key), unit.fingerprint_ids, unit.lines, unit.edges
        )

    def save_unit_by_key(
        self,
        env_id: int,
        key: str,
        fingerprint_ids: Iterable[int],
        lines: Mapping[int, Iterable[int]],
        edges: Iterable[int],
    ) -> int:
        """Insert or replace a unit given its stored key text (a merge copies it as stored)."""
        self.conn.execute(
            "INSERT INTO unit (env_id, key, fingerprints, lines, edges) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (env_id, key) DO UPDATE SET fingerprints = excluded.fingerprints, "
            "lines = excluded.lines, edges = excluded.edges",
            (env_id, key, pack_ints(fingerprint_ids), pack_lines(lines), pack_ints(edges)),
        )
        row = self.conn.execute(
            "SELECT id FROM unit WHERE env_id = ? AND key = ?", (env_id, key)
        ).fetchone()
        return int(row[0])

    def unit_by_key(self, env_id: int, key: str) -> UnitRow | None:
        row = self.conn.execute(
            "SELECT id, key, fingerprints, edges, lines FROM unit WHERE env_id = ? AND key = ?",
            (env_id, key),
        ).fetchone()
        return UnitRow(row[0], row[1], row[2], row[3], row[4]) if row else None

    def unit_fingerprints(self, unit_id: int) -> bytes:
        row = self.conn.execute("SELECT fingerprints FROM unit WHERE id = ?", (unit_id,)).fetchone()
        return bytes(row[0]) if row else b""

    def unit_edges(self, unit_id: int) -> bytes:
        row = self.conn.execute("SELECT edges FROM unit WHERE id = ?", (unit_id,)).fetchone()
        return bytes(row[0]) if row else b""

    def unit_ids(self, env_id: int, keys: Iterable[ContextKey]) -> dict[ContextKey, int]:
        """The ids of those of the units that are stored."""
        by_text = {str(key): key for key in keys}
        texts = list(by_text)
        result: dict[ContextKey, int] = {}
        for chunk_start in range(0, len(texts), 500):
            chunk = texts[chunk_start : chunk_start + 500]
            marks = ",".join("?" * len(chunk))
            for text, unit_id in self.conn.execute(
                f"SELECT key, id FROM unit WHERE env_id = ? AND key IN ({marks})", [env_id, *chunk]
            ):
                result[by_text[text]] = unit_id
        return result

    def save_test(
        self,
        env_id: int,
        test: RecordedTest,
        unit_ids: Sequence[int],
        recorded_at: float | None = None,
    ) -> None:
        """Insert or replace a test's record; `recorded_at` (default: now) for a copied one."""
        self.conn.execute(
            "INSERT INTO test (env_id, nodeid, file_id, outcome, duration, fingerprints, lines, "
            "lineset_id, units, roots, pending, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, x'', ?, ?, ?, ?, ?) "
            "ON CONFLICT (env_id, nodeid) DO UPDATE SET file_id = excluded.file_id, "
            "outcome = excluded.outcome, duration = excluded.duration, "
            "fingerprints = excluded.fingerprints, lines = x'', "
            "lineset_id = excluded.lineset_id, units = excluded.units, "
            "roots = excluded.roots, pending = excluded.pending, "
            "recorded_at = excluded.recorded_at",
            (
                env_id,
                test.nodeid,
                test.file_id,
                test.outcome.value,
                test.duration,
                pack_ints(test.fingerprint_ids),
                self._lineset_id(pack_lines(test.lines)),
                pack_ints(unit_ids),
                pack_ints(test.roots),
                _pack_pending(test.pending),
                time.time() if recorded_at is None else recorded_at,
            ),
        )

    def test_dependencies(self, env_id: int, nodeid: str) -> tuple[bytes, bytes] | None:
        """(fingerprints, lines) blobs of a recorded test."""
        lines, join = self._test_lines_sql()
        row = self.conn.execute(
            f"SELECT t.fingerprints, {lines} FROM test t {join} "
            "WHERE t.env_id = ? AND t.nodeid = ?",
            (env_id, nodeid),
        ).fetchone()
        return (bytes(row[0]), bytes(row[1])) if row else None

    def update_test_dependencies(
        self,
        env_id: int,
        nodeid: str,
        fingerprint_ids: Iterable[int],
        lines: Mapping[int, Iterable[int]],
    ) -> None:
        self.conn.execute(
            "UPDATE test SET fingerprints = ?, lines = x'', lineset_id = ? "
            "WHERE env_id = ? AND nodeid = ?",
            (pack_ints(fingerprint_ids), self._lineset_id(pack_lines(lines)), env_id, nodeid),
        )

    # -- tests' line sets (schema: lineset) ----------------------------------

    def _test_lines_sql(self) -> tuple[str, str]:
        """(expression, join) that read a test's packed lines as `t`, in any schema since 4.

        A file opened read-only keeps its version: before 6 (no lineset table)
        every test's lines are in test.lines.
        """
        if self._has_linesets is None:
            self._has_linesets = bool(
                self.conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lineset'"
                ).fetchone()
            )
        if not self._has_linesets:
            return "t.lines", ""
        return "coalesce(l.blob, t.lines)", "LEFT JOIN lineset l ON l.id = t.lineset_id"

    def _lineset_id(self, blob: bytes) -> int:
        """The id of the lineset row holding `blob`, added if there is none (in a transaction)."""
        known = self._lineset_ids.get(blob)
        if known is not None:
            return known
        found = self._lineset_ids[blob] = self._find_or_add(
            "SELECT id, blob FROM lineset WHERE digest = ?",
            "INSERT INTO lineset (blob, digest) VALUES (?, ?)",
            None,
            blob,
        )
        return found

    def unit_dependencies(
        self, env_id: int, key: ContextKey
    ) -> tuple[int, bytes, bytes, bytes] | None:
        """(id, fingerprints, lines, edges) of a stored unit."""
        row = self.conn.execute(
            "SELECT id, fingerprints, lines, edges FROM unit WHERE env_id = ? AND key = ?",
            (env_id, str(key)),
        ).fetchone()
        return (int(row[0]), bytes(row[1]), bytes(row[2]), bytes(row[3])) if row else None

    def tests_using_unit(self, env_id: int, unit_id: int) -> list[int]:
        return [
            test_id
            for test_id, units in self.conn.execute(
                "SELECT id, units FROM test WHERE env_id = ?", (env_id,)
            )
            if unit_id in unpack_ints(units)
        ]

    def save_outcome_only(
        self, env_id: int, nodeid: str, outcome: Outcome, duration: float
    ) -> None:
        """--testmon-nocollect: remember the outcome, keep dependencies and pending state."""
        self.conn.execute(
            "UPDATE test SET outcome = ?, duration = ? WHERE env_id = ? AND nodeid = ?",
            (outcome.value, duration, env_id, nodeid),
        )

    def save_run(
        self, env_id: int, started_at: float, selected: int, deselected: int, saved_seconds: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO run (env_id, started_at, selected, deselected, saved_seconds) "
            "VALUES (?, ?, ?, ?, ?)",
            (env_id, started_at, selected, deselected, saved_seconds),
        )

    def collect_garbage(self) -> None:
        """Drop units, fingerprints and line sets nothing refers to any more (in a transaction)."""
        used_units: set[int] = set()
        used_fps: set[int] = set()
        # DISTINCT: parametrized tests share their blobs (opt-einsum: 7,891 tests,
        # a few hundred distinct pairs); each is decoded once.
        for fps, units in self.conn.execute("SELECT DISTINCT fingerprints, units FROM test"):
            used_fps.update(unpack_ints(fps))
            used_units.update(unpack_ints(units))
        # Import units are reached through import edges, not referenced by tests.
        stale_units = [
            (uid,)
            for uid, key in self.conn.execute("SELECT id, key FROM unit")
            if uid not in used_units and not is_import_key(key)
        ]
        self.conn.executemany("DELETE FROM unit WHERE id = ?", stale_units)
        for (fps,) in self.conn.execute("SELECT fingerprints FROM unit"):
            used_fps.update(unpack_ints(fps))
        stale_fps = [
            (fid,)
            for (fid,) in self.conn.execute("SELECT id FROM fingerprint")
            if fid not in used_fps
        ]
        self.conn.executemany("DELETE FROM fingerprint WHERE id = ?", stale_fps)
        self.conn.execute(
            "DELETE FROM lineset WHERE id NOT IN "
            "(SELECT lineset_id FROM test WHERE lineset_id IS NOT NULL)"
        )
        self._lineset_ids.clear()
        self._release_free_pages()

    def _release_free_pages(self) -> None:
        """Shrink the file when more than a quarter of it is free pages (after deletions).

        Runs inside the caller's transaction. Each `incremental_vacuum` statement
        frees one page as Python's sqlite3 steps it, hence the loop.
        """
        (mode,) = self.conn.execute("PRAGMA auto_vacuum").fetchone()
        if mode != 2:  # a file created without INCREMENTAL cannot shrink this way
            return
        (free,) = self.conn.execute("PRAGMA freelist_count").fetchone()
        (total,) = self.conn.execute("PRAGMA page_count").fetchone()
        if free * 4 <= total:
            return
        for _ in range(free):
            self.conn.execute("PRAGMA incremental_vacuum(1)")

    def test_file_summary(self, env_id: int) -> dict[int | None, tuple[int, int]]:
        """Test module id -> (tests, tests due to run: pending or failed last time)."""
        again = sorted(outcome.value for outcome in RUNS_AGAIN)
        marks = ",".join("?" * len(again))
        return {
            file_id: (int(count), int(due or 0))
            for file_id, count, due in self.conn.execute(
                "SELECT file_id, count(*), "
                f"sum(pending IS NOT NULL OR outcome IN ({marks})) "
                "FROM test WHERE env_id = ? GROUP BY file_id",
                (*again, env_id),
            )
        }

    # -- test modules the standing filter empties (schema: filtered_file) -----------

    def filtered_files(self, env_id: int) -> dict[int, tuple[str, int]]:
        """File id -> (the filter in force, tests it deselected); {} in a file of schema 4."""
        try:
            rows = self.conn.execute(
                "SELECT file_id, filter, tests FROM filtered_file WHERE env_id = ?", (env_id,)
            ).fetchall()
        except sqlite3.OperationalError:  # no such table: an older file opened read-only
            return {}
        return {file_id: (str(text), int(tests)) for file_id, text, tests in rows}

    def save_filtered_files(
        self, env_id: int, filter_text: str, collected: Mapping[int, int | None]
    ) -> None:
        """Test modules this run collected: tests all filtered out (a count) or not (None)."""
        self.conn.executemany(
            "DELETE FROM filtered_file WHERE env_id = ? AND file_id = ?",
            [(env_id, fid) for fid, tests in collected.items() if tests is None],
        )
        self.conn.executemany(
            "INSERT OR REPLACE INTO filtered_file (env_id, file_id, filter, tests) "
            "VALUES (?, ?, ?, ?)",
            [(env_id, fid, filter_text, t) for fid, t in collected.items() if t is not None],
        )

    def clear_filtered_files(self, env_id: int | None = None) -> None:
        """Something changed: no module is known to be empty under the filter any more."""
        if env_id is None:
            self.conn.execute("DELETE FROM filtered_file")
        else:
            self.conn.execute("DELETE FROM filtered_file WHERE env_id = ?", (env_id,))

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads that see one committed state, whatever writers do meanwhile (no lock taken)."""
        self.conn.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            self.conn.execute("ROLLBACK")
