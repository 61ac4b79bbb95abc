"""Copies test records from one data file into another: what a baseline and `combine` share.

A record is only as good as the file states it was made against. So before
anything is copied, each file row of the source is compared with the state
the destination selects against: the destination's own row for that path,
else `state_of_new_path` (for a baseline: the disk; for `combine`: the
source's own row). Where they differ, the source's tests go through the same
`affected_tests` as a local change, and an imported test whose code changed
becomes pending with the reasons a local record would get. An imported test
that is not pending has fingerprints whose checksums all exist in the
destination's rows, so it is as valid there as a test recorded there.

Everything else is remapped by what identifies it in any file: files by path,
fingerprints by (file, checksums), units by (environment, key), tests by
(environment, node id). The destination's existing file rows are never
changed (its own tests stay valid); rows for paths it did not know are added.

Where both files know a test, the newer record (`recorded_at`) wins; equal
times keep the destination's, so importing the same file twice copies nothing.
A shared unit (an import, a wide fixture, the session) that both know is
united: a test that used either recording of it now depends on both, which can
select more, never less. Shards of one suite united this way hold what one
full recording would: every shard's session and import effects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from testmon_watch.core.changes import ChangeSet, FileChange
from testmon_watch.core.db import Database, FileRow, RecordedTest, TestRow, is_import_key
from testmon_watch.core.environment import Environment, environment_difference
from testmon_watch.core.packing import unpack_ints, unpack_lines
from testmon_watch.core.reasons import Reason, ReasonKind
from testmon_watch.core.selection import affected_tests

# The state to select against for a path the destination has no row for.
StateOfNewPath = Callable[[FileRow], FileRow]


@dataclass(frozen=True)
class Conflict:
    """A test both files know, and the times of both records (the newer is kept)."""

    environment: str
    nodeid: str
    source_recorded_at: float
    destination_recorded_at: float

    @property
    def source_won(self) -> bool:
        return self.source_recorded_at > self.destination_recorded_at


@dataclass
class ImportResult:
    """What one import did."""

    imported: list[str] = field(default_factory=list)  # node ids copied: new, or newer there
    pending: int = 0  # of those, tests that must run (changed since recorded, or pending there)
    conflicts: list[Conflict] = field(default_factory=list)  # tests both files knew


def same_state(recorded: FileRow, current: FileRow) -> bool:
    """Do two rows of one path describe the same content, cut into the same blocks?

    Blocks are compared as well as digests: a file recorded by another version
    of the tool may cut the same content differently, and its fingerprints
    must then not be trusted here.
    """
    return (
        recorded.kind == current.kind
        and recorded.digest == current.digest
        and recorded.error == current.error
        and sorted(recorded.blocks) == sorted(current.blocks)
    )


def import_tests(
    source: Database,
    destination: Database,
    environment: str,
    state_of_new_path: StateOfNewPath,
) -> ImportResult:
    """Copy the tests of one environment that the destination lacks or has older records of.

    Call inside a transaction of the destination; the source is only read.
    """
    source_env = source.environment(environment)
    if source_env is None:
        return ImportResult()
    dest_env = destination.environment(environment)
    if dest_env is None:
        dest_env_id = destination.save_environment(
            environment, source_env.python, source_env.packages
        )
        env_change = None
    else:
        dest_env_id = dest_env.id
        # The rule plan_selection applies to a local record: another interpreter
        # invalidates everything; installed packages are rows of the file table
        # (core/distributions.py), compared with the other files below.
        here = Environment(dest_env.name, dest_env.python, {})
        env_change = environment_difference(source_env.python, {}, here)

    result = ImportResult()
    known = destination.test_times(dest_env_id)
    to_copy: list[TestRow] = []
    for test in source.test_records(source_env.id):
        recorded_here = known.get(test.nodeid)
        if recorded_here is not None:
            result.conflicts.append(
                Conflict(environment, test.nodeid, test.recorded_at, recorded_here)
            )
            if recorded_here >= test.recorded_at:
                continue
        to_copy.append(test)
    if not to_copy:
        return result

    source_files = source.files()
    dest_files = destination.files()
    current = {
        path: dest_files[path] if path in dest_files else state_of_new_path(row)
        for path, row in source_files.items()
    }
    changes = ChangeSet(
        [
            FileChange(row, current[path])
            for path, row in source_files.items()
            if not same_state(row, current[path])
        ]
    )
    units = source.units(source_env.id, with_lines=True)
    fingerprints = source.fingerprints_of_files(row.id for row in source_files.values())
    affected = affected_tests(to_copy, units, changes, fingerprints, source_files).tests

    remap = _Remap(destination, fingerprints)
    for path, row in source_files.items():
        if path in dest_files:
            remap.files[row.id] = dest_files[path].id
        else:
            remap.files[row.id] = destination.save_file(_fresh_copy(current[path]))

    wanted_units = {unit_id for test in to_copy for unit_id in unpack_ints(test.units)}
    wanted_units.update(unit_id for unit_id, unit in units.items() if is_import_key(unit.key))
    unit_ids: dict[int, int] = {}
    incomplete_units: set[int] = set()  # a reference of theirs led nowhere in the source
    for unit_id in wanted_units:
        unit = units.get(unit_id)
        if unit is None:
            continue  # a dangling reference: the tests that make it are not trusted (below)
        remap.broken = False
        fps, lines, edges = (
            remap.fingerprints(unpack_ints(unit.fingerprints)),
            remap.lines(unpack_lines(unit.lines)),
            remap.file_ids(unpack_ints(unit.edges)),
        )
        stored = destination.unit_by_key(dest_env_id, unit.key)
        if stored is not None:
            fps |= set(unpack_ints(stored.fingerprints))
            edges |= set(unpack_ints(stored.edges))
            for file_id, file_lines in unpack_lines(stored.lines).items():
                lines.setdefault(file_id, set()).update(file_lines)
        unit_ids[unit_id] = destination.save_unit_by_key(dest_env_id, unit.key, fps, lines, edges)
        if remap.broken:
            incomplete_units.add(unit_id)

    environment_reasons = []
    if env_change is not None:
        environment_reasons.append(Reason(ReasonKind.ENVIRONMENT, environment=env_change))
    for test in to_copy:
        source_units = unpack_ints(test.units)
        remap.broken = any(u not in unit_ids or u in incomplete_units for u in source_units)
        test_units = [unit_ids[u] for u in source_units if u in unit_ids]
        recorded = RecordedTest(
            nodeid=test.nodeid,
            file_id=remap.file_id(test.file_id),
            outcome=test.outcome,
            duration=test.duration,
            fingerprint_ids=remap.fingerprints(unpack_ints(test.fingerprints)),
            lines=remap.lines(unpack_lines(test.lines)),
            roots=remap.file_ids(unpack_ints(test.roots)),
        )
        reasons = [*(test.pending or ()), *affected.get(test.id, ()), *environment_reasons]
        if remap.broken:
            reasons.append(Reason.interrupted())  # part of its record is missing in the source
        recorded.pending = list(dict.fromkeys(reasons)) or None
        result.pending += recorded.pending is not None
        destination.save_test(dest_env_id, recorded, test_units, recorded_at=test.recorded_at)
        result.imported.append(test.nodeid)
    return result


def _fresh_copy(row: FileRow) -> FileRow:
    """A row object of our own: saving it sets its id, which must not touch the source's."""
    return FileRow(
        row.path, row.kind, row.mtime_ns, row.size, row.digest, row.blocks, row.imports, row.error
    )


class _Remap:
    """Source ids -> destination ids; notes (`broken`) when a source reference leads nowhere."""

    def __init__(
        self, destination: Database, fingerprints: Mapping[int, tuple[int, set[int]]]
    ) -> None:
        self.destination = destination
        self.source_fingerprints = fingerprints
        self.files: dict[int, int] = {}
        self._fingerprints: dict[int, int] = {}
        self.broken = False

    def file_id(self, file_id: int | None) -> int | None:
        if file_id is None:
            return None
        mapped = self.files.get(file_id)
        self.broken |= mapped is None
        return mapped

    def file_ids(self, ids: Iterable[int]) -> set[int]:
        result = set()
        for file_id in ids:
            mapped = self.files.get(file_id)
            if mapped is None:
                self.broken = True
            else:
                result.add(mapped)
        return result

    def fingerprints(self, ids: Iterable[int]) -> set[int]:
        result = set()
        for fp_id in ids:
            mapped = self._fingerprints.get(fp_id)
            if mapped is None:
                entry = self.source_fingerprints.get(fp_id)
                if entry is None or entry[0] not in self.files:
                    self.broken = True
                    continue
                file_id, checksums = entry
                mapped = self.destination.fingerprint_id(self.files[file_id], checksums)
                self._fingerprints[fp_id] = mapped
            result.add(mapped)
        return result

    def lines(self, lines: Mapping[int, set[int]]) -> dict[int, set[int]]:
        result: dict[int, set[int]] = {}
        for file_id, file_lines in lines.items():
            mapped = self.files.get(file_id)
            if mapped is None:
                self.broken = True
            else:
                result.setdefault(mapped, set()).update(file_lines)
        return result
