"""Which tests executed which line, and which recorded lines are still valid.

The one answer for both readers of the recorded lines: the `.coverage` export
(measure/coverage_export.py) and the app's coverage view (measure/coverage_job.py
computes it in a child process). Both take exactly what `attribute_lines`
returns, so they cannot disagree about what counts.

A record is **valid** when the lines it holds are still where they were
recorded, that is when nothing it executed has changed since:

- a **test** (`ContextKey.test`) is valid unless it is pending: its code
  changed since its lines were recorded, and it has not run since. Its own
  lines are its setup, call and teardown.
- a **shared unit** (an `import`, `collect`, `fixture` or `session` key) is
  valid when every fingerprint it recorded still matches its file's current
  blocks (the code it executed still exists unchanged; in a non-Python file it
  read, the file still exists), and, unless it is an import unit, when at least
  one valid test uses it: a unit only pending tests use is as out of date as
  they are. Import units are reached through import edges, never referenced by
  a test, so they stand on their fingerprints alone.
- a **file** holds valid lines when it is a Python file whose current state is
  known (not missing), which parses, and which exists on disk now. Lines in
  any other file are dropped.

Line 0 in a file means a module body ran without a line of its own (an empty
`__init__.py`); coverage.py records that the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testmon_watch.core.db import Database, FileRow
from testmon_watch.core.keys import ContextKey, ContextKind
from testmon_watch.core.packing import unpack_ints, unpack_lines


@dataclass(frozen=True)
class ContextLines:
    """The lines one context (a test or a shared unit) executed in the valid files."""

    key: ContextKey
    lines: Mapping[str, frozenset[int]]  # project-relative path -> executed lines


@dataclass(frozen=True)
class LineAttribution:
    """The valid recorded lines of one environment, per context."""

    # project-relative path -> absolute real filename, for every valid file (selected by `paths`)
    files: Mapping[str, str]
    tests: tuple[ContextLines, ...]  # every valid test, in stored order; lines may be empty
    units: tuple[ContextLines, ...]  # every valid shared unit, sorted by key; lines may be empty
    users: Mapping[ContextKey, tuple[str, ...]]  # unit key -> node ids of the valid tests using it
    pending: tuple[str, ...] = field(default=())  # node ids left out: their lines are out of date

    def contexts(self) -> Iterator[ContextLines]:
        """Every context with at least one line: the tests, then the shared units."""
        for context in (*self.tests, *self.units):
            if context.lines:
                yield context

    def executed_by(self) -> dict[str, dict[int, set[ContextKey]]]:
        """path -> line -> who executed it, for a reader that shows tests rather than units.

        A test executed its own lines and those of the units it uses (a fixture's
        setup, its module's collection). Units no valid test uses (import units:
        a module body runs once for all of its importers) are named by their own key.
        """
        result: dict[str, dict[int, set[ContextKey]]] = {}

        def credit(context: ContextLines, who: Sequence[ContextKey]) -> None:
            for path, lines in context.lines.items():
                by_line = result.setdefault(path, {})
                for line in lines:
                    by_line.setdefault(line, set()).update(who)

        for test in self.tests:
            credit(test, (test.key,))
        for unit in self.units:
            users = self.users.get(unit.key, ())
            credit(unit, [ContextKey.test(nodeid) for nodeid in users] or [unit.key])
        return result


def under_any(path: str, prefixes: Sequence[str]) -> bool:
    """Whether `path` is one of `prefixes` or below one ("" is the root; none: every path)."""
    if not prefixes:
        return True
    return any(
        prefix == "" or path == prefix or path.startswith(prefix + "/") for prefix in prefixes
    )


def attribute_lines(
    db: Database, env_id: int, root: Path, paths: Sequence[str] = ()
) -> LineAttribution:
    """The valid recorded lines of environment `env_id` (see the module docstring).

    `paths` limits the files to those at or below these '/'-separated
    project-relative paths (empty: every file). Run it inside `db.snapshot()`
    when a writer may be busy, so that every read sees the same state.
    """
    real_root = Path(os.path.realpath(root))
    rows = db.files()
    files_by_id = {row.id: row for row in rows.values()}
    filenames: dict[int, str] = {}  # file id -> absolute filename of the valid, selected files
    for row in rows.values():
        if row.kind != "python" or row.missing or row.error is not None:
            continue
        if not under_any(row.path, paths):
            continue
        absolute = os.path.realpath(real_root / row.path)
        if os.path.isfile(absolute):
            filenames[row.id] = absolute
    path_of = {file_id: files_by_id[file_id].path for file_id in filenames}

    def lines_in_valid_files(blob: bytes) -> dict[str, frozenset[int]]:
        result: dict[str, frozenset[int]] = {}
        for file_id, lines in unpack_lines(blob).items():
            path = path_of.get(file_id)
            kept = frozenset(line for line in lines if line >= 0)
            if path is not None and kept:
                result[path] = kept
        return result

    pending = {test.nodeid for test in db.tests(env_id) if test.pending}
    tests: list[ContextLines] = []
    users_by_id: dict[int, list[str]] = {}
    for nodeid, lines_blob, units_blob in db.test_lines(env_id):
        if nodeid in pending:
            continue
        for unit_id in unpack_ints(units_blob):
            users_by_id.setdefault(unit_id, []).append(nodeid)
        tests.append(ContextLines(ContextKey.test(nodeid), lines_in_valid_files(lines_blob)))

    stored = db.units(env_id, with_lines=True)
    fingerprints = {uid: set(unpack_ints(unit.fingerprints)) for uid, unit in stored.items()}
    valid_fingerprints = _valid_fingerprints(db, files_by_id, set().union(*fingerprints.values()))
    units: list[ContextLines] = []
    users: dict[ContextKey, tuple[str, ...]] = {}
    for unit_id, unit in sorted(stored.items(), key=lambda item: item[1].key):
        try:
            key = ContextKey.parse(unit.key)
        except ValueError:
            continue  # not a key this version writes: nothing says what its lines belong to
        if not fingerprints[unit_id] <= valid_fingerprints:
            continue  # its code changed: the lines are out of date
        if key.kind is not ContextKind.IMPORT and unit_id not in users_by_id:
            continue  # only pending (or no) tests use it
        units.append(ContextLines(key, lines_in_valid_files(unit.lines)))
        if unit_id in users_by_id:
            users[key] = tuple(users_by_id[unit_id])
    return LineAttribution(
        files={path_of[file_id]: name for file_id, name in filenames.items()},
        tests=tuple(tests),
        units=tuple(units),
        users=users,
        pending=tuple(sorted(pending)),
    )


def _valid_fingerprints(
    db: Database, files: Mapping[int, FileRow], fingerprint_ids: set[int]
) -> set[int]:
    """Fingerprints whose checksums all still exist in their file's current blocks."""
    if not fingerprint_ids:
        return set()
    by_file = db.fingerprints_of_files(set(db.fingerprint_files(fingerprint_ids).values()))
    current: dict[int, set[int]] = {}
    valid = set()
    for fp_id, (file_id, checksums) in by_file.items():
        if fp_id not in fingerprint_ids:
            continue
        row = files.get(file_id)
        if row is None or row.missing:
            continue
        if file_id not in current:
            current[file_id] = {block[3] for block in row.blocks}
        if row.kind != "python" or checksums <= current[file_id]:
            valid.add(fp_id)
    return valid
