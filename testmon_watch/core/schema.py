"""The `.testmondata` schema: one versioned SQL string, the single source of truth."""

from __future__ import annotations

TOOL_NAME = "testmon-watch"

# Bump on every incompatible change, and teach `db.py` to migrate or move aside.
# 2: compact binary blobs (packing.py), 1 KiB pages, incremental auto-vacuum.
# 3: the test_file index again (the no-change fast path counts tests per module).
# 4: installed distributions as per-test dependencies (pseudo-rows of `file`).
# 5: filtered_file (test modules the standing -k/-m filter empties), added in place.
# 6: lineset (tests' executed lines stored once per distinct set), added in place.
# 7: fingerprint.digest and its index find a fingerprint (no unique index over
#    the checksums), added in place.
SCHEMA_VERSION = 7

FILTERED_FILE = """
-- Test modules that the last runs collected and that gave no test to run: every
-- test they hold was deselected by the project's standing filter (-k, -m,
-- --deselect from the ini's addopts), or they hold none. Pytest's own filters are
-- the only ones that removed them (no plugin or conftest.py deselects), so while
-- nothing changes the no-change fast path may pass over them as the normal path
-- would after collecting them. Cleared whenever a run sees any file or package
-- change: a row only ever describes the files' current states.
CREATE TABLE filtered_file (
    env_id   INTEGER NOT NULL REFERENCES environment(id),
    file_id  INTEGER NOT NULL REFERENCES file(id),
    filter   TEXT NOT NULL,             -- filtered_modules.filter_in_force(): JSON
    tests    INTEGER NOT NULL,          -- tests it held, all deselected
    PRIMARY KEY (env_id, file_id)
) WITHOUT ROWID;
"""

LINESET = """
-- The executed lines of tests, each distinct set stored once: parametrized
-- suites run the same lines in thousands of tests (opt-einsum: 7,891 tests,
-- 1,898 sets; the file was 1.4x pytest-testmon's, the lines three quarters of
-- the tests' rows). A test refers to its set by test.lineset_id; rows written
-- before schema 6 keep theirs in test.lines, which is otherwise empty.
CREATE TABLE lineset (
    id     INTEGER PRIMARY KEY,
    digest INTEGER NOT NULL,            -- first 8 bytes of blake2b(blob), signed; not unique
    blob   BLOB NOT NULL                -- packing.pack_lines {file id: executed lines}
);
CREATE INDEX lineset_digest ON lineset (digest);
"""

FINGERPRINT_DIGEST = """
-- Finds a fingerprint by file and digest; the checksums decide, as a digest may
-- collide. Before schema 7 a unique index over (file_id, checksums) did this, a
-- copy of every checksum blob: 450 of jinja2's 1,600 KiB. A file migrated to 7
-- keeps that index (dropping it means rebuilding the table).
CREATE INDEX fingerprint_digest ON fingerprint (file_id, digest);
"""

SCHEMA = (
    """
-- Key/value facts about this file: tool = 'testmon-watch', schema_version.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per --testmon-env name: the interpreter and installed packages that
-- the recorded tests ran under. A difference invalidates the environment.
CREATE TABLE environment (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    python   TEXT NOT NULL,
    packages TEXT NOT NULL              -- JSON {distribution name: version}
);

-- The last state seen of every file something depends on. Fingerprints of
-- tests that are not pending are valid against this state. Installed
-- distributions are rows too (core/distributions.py): kind 'dist' (path
-- '<dist>/ENV/NAME', digest its version), 'dist-list' ('<dists>/ENV', the set
-- of names) and 'dist-global' ('<global>/ENV', what every test depends on).
CREATE TABLE file (
    id       INTEGER PRIMARY KEY,
    path     TEXT NOT NULL UNIQUE,      -- relative to the project root, '/'-separated
    kind     TEXT NOT NULL,             -- 'python' | 'data' | 'dir' | 'dist' | 'dist-list' | ...
    mtime_ns INTEGER NOT NULL,          -- -1 when the file is missing
    size     INTEGER NOT NULL,
    digest   BLOB NOT NULL,             -- content hash (bytes if hex, else text); '' when missing
    blocks   BLOB NOT NULL,             -- packing.pack_blocks [(name, start, end, checksum), ...]
    imports  TEXT NOT NULL,             -- python: dotted module names it may import, one a line
    error    TEXT                       -- why the file could not be read or parsed
);

-- The set of block checksums of one file that some execution touched.
-- Shared by every test and unit that touched exactly that set.
CREATE TABLE fingerprint (
    id        INTEGER PRIMARY KEY,
    file_id   INTEGER NOT NULL REFERENCES file(id),
    checksums BLOB NOT NULL,            -- packing.pack_checksums: sorted int64 array
    digest    INTEGER NOT NULL DEFAULT 0  -- testmon_digest(checksums), see FINGERPRINT_DIGEST
);

-- Recorded execution shared by several tests: a fixture instance of a wider
-- scope, a module's import, a test module's collection, the session itself.
CREATE TABLE unit (
    id           INTEGER PRIMARY KEY,
    env_id       INTEGER NOT NULL REFERENCES environment(id),
    -- key: 'fixture:...', 'import:<path>', 'collect:<path>' or 'session'
    key          TEXT NOT NULL,
    fingerprints BLOB NOT NULL,         -- packing.pack_ints of fingerprint ids
    lines        BLOB NOT NULL,         -- packing.pack_lines {file id: executed lines}
    edges        BLOB NOT NULL,         -- packing.pack_ints of file ids the module imports
    UNIQUE (env_id, key)
);

-- One row per test: its own execution (setup, call, teardown), the shared
-- units it used, and whether it must run again.
CREATE TABLE test (
    id           INTEGER PRIMARY KEY,
    env_id       INTEGER NOT NULL REFERENCES environment(id),
    nodeid       TEXT NOT NULL,
    file_id      INTEGER REFERENCES file(id),  -- the test module
    outcome      TEXT NOT NULL,         -- passed | failed | error | skipped | xfailed | xpassed
    duration     REAL NOT NULL,         -- seconds, setup + call + teardown
    fingerprints BLOB NOT NULL,         -- packing.pack_ints of fingerprint ids
    lines        BLOB NOT NULL,         -- empty; before schema 6: packing.pack_lines
    units        BLOB NOT NULL,         -- packing.pack_ints of unit ids
    roots        BLOB NOT NULL,         -- packing.pack_ints of file ids whose import closure
                                        -- the test depends on
    pending      TEXT,                  -- NULL when up to date, else JSON [reason, ...]
    recorded_at  REAL NOT NULL,
    lineset_id   INTEGER REFERENCES lineset(id),  -- its executed lines; NULL: in `lines`
    UNIQUE (env_id, nodeid)
);
-- Tests per module (Database.test_file_summary): 4x faster than scanning the table.
CREATE INDEX test_file ON test (env_id, file_id);

"""
    + FINGERPRINT_DIGEST
    + FILTERED_FILE
    + LINESET
    + """
-- One row per pytest session that recorded or selected, for statistics.
CREATE TABLE run (
    id           INTEGER PRIMARY KEY,
    env_id       INTEGER NOT NULL REFERENCES environment(id),
    started_at   REAL NOT NULL,
    selected     INTEGER NOT NULL,
    deselected   INTEGER NOT NULL,
    saved_seconds REAL NOT NULL         -- recorded duration of the deselected tests
);
"""
)

# Older versions `db.py` brings up to date in place: version -> what takes it one up.
MIGRATIONS: dict[int, str] = {
    4: FILTERED_FILE,
    5: LINESET + "ALTER TABLE test ADD COLUMN lineset_id INTEGER REFERENCES lineset(id);\n",
    6: "ALTER TABLE fingerprint ADD COLUMN digest INTEGER NOT NULL DEFAULT 0;\n"
    "UPDATE fingerprint SET digest = testmon_digest(checksums);\n" + FINGERPRINT_DIGEST,
}
