"""Turns recorded executions (lines, reads, imports) into fingerprints and database rows."""

from __future__ import annotations

import os
import time
from bisect import bisect_right
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from testmon_watch.core import distributions
from testmon_watch.core.changes import file_kind, read_state
from testmon_watch.core.db import Database, FileRow, RecordedTest, RecordedUnit
from testmon_watch.core.defaults import DEFAULT_ENVIRONMENT
from testmon_watch.core.keys import ContextKind
from testmon_watch.core.packing import unpack_ints, unpack_lines
from testmon_watch.core.reasons import FileEvent, Interruption, Reason, ReasonKind
from testmon_watch.core.records import Execution, TestRecord

# File timestamps come from a coarser clock than time.time_ns(): a write just
# after the run began can carry a slightly earlier mtime.
MTIME_SLACK_NS = 20_000_000

# Checksum for lines in a file whose blocks are unknown (it did not parse):
# never equal to a real block's checksum, so any later change selects again.
UNKNOWN_BLOCK = 0


class ParseAhead(Protocol):
    """Parses project files ahead of need, elsewhere (measure.parse_helper.ParseHelper)."""

    def request(self, relpath: str, kind: str) -> None:
        """Start on this file; never raises, never blocks."""

    def take(self, relpath: str) -> FileRow | None:
        """The file's state if an answer has arrived, else None (the caller parses it)."""


class BlockIndex:
    """Maps an executed line to the checksum of the block that contains it."""

    MEMO_SIZE = 4096  # distinct line sets remembered per file

    def __init__(self, blocks: list[tuple[str, int, int, int]]) -> None:
        functions = sorted((b for b in blocks if b[0] != "<module>"), key=lambda b: b[1])
        self.starts = [b[1] for b in functions]
        self.functions = functions
        module = [b[3] for b in blocks if b[0] == "<module>"]
        self.module = module[0] if module else (blocks[0][3] if blocks else UNKNOWN_BLOCK)
        # Parametrized tests run the same lines over and over (packaging: 12,683
        # tests): a set of lines seen before is one lookup, not a bisect per line.
        self._memo: dict[frozenset[int], frozenset[int]] = {}

    def checksums(self, lines: frozenset[int]) -> frozenset[int]:
        found = self._memo.get(lines)
        if found is not None:
            return found
        result = set()
        for line in lines:
            i = bisect_right(self.starts, line) - 1
            if i >= 0 and line <= self.functions[i][2]:
                result.add(self.functions[i][3])
            else:
                result.add(self.module)
        if len(self._memo) >= self.MEMO_SIZE:
            self._memo.clear()
        found = self._memo[lines] = frozenset(result)
        return found


@dataclass
class Dependencies:
    """An execution resolved against file states."""

    fingerprint_ids: set[int]
    lines: dict[int, frozenset[int]]
    files: set[int]
    changed_during_run: list[str]


class RunStore:
    """Writes one run's recordings; owns the file states seen during the run."""

    def __init__(
        self,
        db: Database,
        env_id: int,
        root: Path,
        files: dict[str, FileRow],
        started_ns: int | None = None,
        helper: ParseAhead | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
    ) -> None:
        self.db = db
        self.environment = environment  # its name: the installed distributions' rows are its own
        self.helper = helper  # parses files ahead, on another core (see ParseAhead)
        self.started_ns = time.time_ns() if started_ns is None else started_ns
        self.env_id = env_id
        self.root = root
        self.files = files  # path -> state at the start of the run (already saved)
        self._checked: set[str] = set()
        self._changed_during_run: set[str] = set()
        self._index: dict[str, BlockIndex] = {}
        self._fingerprints: dict[tuple[int, frozenset[int]], int] = {}
        self.modules: dict[str, str] = {}  # dotted name -> path, from the recording processes
        self._unit_files: dict[int, set[int]] = {}  # unit id -> files it executed code in
        self._distributions: distributions.DistributionIndex | None = None

    # -- file states -------------------------------------------------------

    def _state(self, path: str, kind: str) -> tuple[FileRow, bool]:
        """The file's stored state; True when it changed on disk during the run."""
        row = self.files.get(path)
        if path in self._checked and row is not None:
            return row, path in self._changed_during_run
        self._checked.add(path)
        parsed = self.helper.take(path) if self.helper is not None else None
        current, changed = read_state(self.root, path, kind, row, parsed)
        if row is None:
            self.db.save_file(current)
            self.files[path] = current
            # First seen now, but modified after the run began: the code that ran
            # may be the older content. Trust neither; its tests run again.
            if current.mtime_ns >= self.started_ns - MTIME_SLACK_NS:
                self._changed_during_run.add(path)
                return current, True
            return current, False
        if changed:
            # Recorded code may be the old or the new content: trust neither.
            self._changed_during_run.add(path)
            return row, True
        return row, False

    def prefetch(self, path: str) -> None:
        """A project file is being imported: have the helper parse it if it is new or changed."""
        if self.helper is None or path in self._checked:
            return
        kind = file_kind(path)
        row = self.files.get(path)
        if row is not None:
            try:
                st = os.stat(os.path.join(self.root, path))
            except OSError:
                return
            if row.mtime_ns == st.st_mtime_ns and row.size == st.st_size:
                return
        self.helper.request(path, kind)

    def _file_id(self, path: str, kind: str) -> tuple[int, BlockIndex, bool]:
        row, changed = self._state(path, kind)
        index = self._index.get(path)
        if index is None:
            index = self._index[path] = BlockIndex(row.blocks)
        return row.id, index, changed

    def _fingerprint(self, file_id: int, checksums: AbstractSet[int]) -> int:
        key = (file_id, frozenset(checksums))
        fp = self._fingerprints.get(key)
        if fp is None:
            fp = self._fingerprints[key] = self.db.fingerprint_id(file_id, checksums)
        return fp

    def resolve(self, execution: Execution) -> Dependencies:
        deps = Dependencies(set(), {}, set(), [])
        for path, executed in execution.lines.items():
            lines = frozenset(executed)
            file_id, index, changed = self._file_id(path, file_kind(path))
            deps.fingerprint_ids.add(self._fingerprint(file_id, index.checksums(lines)))
            deps.lines[file_id] = lines
            deps.files.add(file_id)
            if changed:
                deps.changed_during_run.append(path)
        for path, kind in [(p, "data") for p in execution.reads] + [
            (p, "dir") for p in execution.listings
        ]:
            if path.endswith(".py") and kind == "data":
                kind = "python"
            file_id, index, changed = self._file_id(path, kind)
            deps.fingerprint_ids.add(self._fingerprint(file_id, {index.module}))
            if changed:
                deps.changed_during_run.append(path)
        for path, kind in self._installed_dependencies(execution):
            file_id, index, _changed = self._file_id(path, kind)
            deps.fingerprint_ids.add(self._fingerprint(file_id, {index.module}))
        return deps

    def _installed_dependencies(self, execution: Execution) -> list[tuple[str, str]]:
        """Pseudo-rows (path, kind) of the installed distributions an execution used.

        What those require counts too (core/distributions.py): a module a
        warm worker imported before the test ran its imports for it.
        """
        env = self.environment
        found: list[tuple[str, str]] = []
        if execution.distributions:
            # Once per run: asking current_index stats every sys.path entry, and a
            # run may save thousands of tests (nothing is installed meanwhile).
            if self._distributions is None:
                self._distributions = distributions.current_index(self.root)
            index = self._distributions
            found.extend(
                (distributions.dist_path(env, name), distributions.DIST_KIND)
                for name in sorted(index.dependencies(execution.distributions))
            )
        if execution.lists_distributions:
            found.append((distributions.listing_path(env), distributions.LISTING_KIND))
        return found

    def _global_fingerprint(self) -> int:
        """pytest, its plugins and what runs at startup: every test's (core/distributions)."""
        path = distributions.global_path(self.environment)
        file_id, index, _changed = self._file_id(path, distributions.GLOBAL_KIND)
        return self._fingerprint(file_id, {index.module})

    # -- writing -----------------------------------------------------------

    def _edges(self, path: str, imported: Iterable[str]) -> set[int]:
        """File ids a module imports: statically (any import statement) or while importing."""
        targets = set(imported)
        row = self.files.get(path)
        for name in row.imports if row is not None else ():
            target = self.modules.get(name)
            if target is not None and target != path:
                targets.add(target)
        ids = set()
        for target in targets:
            file_id, _, _ = self._file_id(target, file_kind(target))
            ids.add(file_id)
        return ids

    def save_units(self, units: Iterable[Execution]) -> None:
        for unit in units:
            deps = self.resolve(unit)
            key = unit.key
            if key.kind is ContextKind.SESSION:
                deps.fingerprint_ids.add(self._global_fingerprint())
            if key.kind is ContextKind.IMPORT:
                edges = self._edges(key.target, unit.imported)
            else:
                # Modules this unit imported or loaded by name: roots of its users.
                edges = {self._file_id(p, file_kind(p))[0] for p in unit.imported}
            unit_id = self.db.save_unit(
                self.env_id, RecordedUnit(key, deps.fingerprint_ids, deps.lines, edges)
            )
            self._unit_files[unit_id] = deps.files | edges

    def save_tests(self, tests: Iterable[TestRecord]) -> None:
        tests = list(tests)
        keys = {k for t in tests for k in t.units}
        unit_ids = self.db.unit_ids(self.env_id, keys)
        for missing in keys - unit_ids.keys():
            # Referenced before it was written (e.g. the session unit, saved at the end):
            # an empty placeholder keeps the reference; the real content replaces it.
            unit_ids[missing] = self.db.save_unit(self.env_id, RecordedUnit(missing, set(), {}))
        for test in tests:
            execution = test.execution
            deps = self.resolve(execution)
            roots = set(deps.files)
            for root_path in [*test.roots, *execution.imported]:
                file_id, _, _ = self._file_id(root_path, file_kind(root_path))
                roots.add(file_id)
            ids = [unit_ids[k] for k in test.units]
            # Code a fixture ran counts as a root too: its module's globals matter.
            for unit_id in ids:
                roots.update(self._files_of_unit(unit_id))
            pending = None
            if not test.complete:
                pending = [Reason.interrupted()]
            elif execution.incomplete_children:
                pending = [CHILD_LOST]
            elif deps.changed_during_run:
                pending = [
                    Reason(
                        ReasonKind.CHANGED,
                        deps.changed_during_run[0],
                        FileEvent.CHANGED_DURING_RUN,
                    )
                ]
            self.db.save_test(
                self.env_id,
                RecordedTest(
                    nodeid=test.nodeid,
                    file_id=self._file_id(test.path, file_kind(test.path))[0],
                    outcome=test.outcome,
                    duration=test.duration,
                    fingerprint_ids=deps.fingerprint_ids,
                    lines=deps.lines,
                    roots=roots,
                    pending=pending,
                ),
                ids,
            )

    def save_filtered_modules(self, filter_text: str, modules: dict[str, int | None]) -> None:
        """Test modules collected this run: emptied by the filter (their test count) or not.

        A module that changed on disk during the run is not known to be empty.
        """
        collected: dict[int, int | None] = {}
        for path, tests in modules.items():
            file_id, _, changed = self._file_id(path, file_kind(path))
            collected[file_id] = None if changed else tests
        self.db.save_filtered_files(self.env_id, filter_text, collected)

    def _files_of_unit(self, unit_id: int) -> set[int]:
        files = self._unit_files.get(unit_id)
        if files is None:
            fps = list(unpack_ints(self.db.unit_fingerprints(unit_id)))
            files = set(self.db.fingerprint_files(fps).values()) if fps else set()
            files |= set(unpack_ints(self.db.unit_edges(unit_id)))
            self._unit_files[unit_id] = files
        return files

    def merge_late(self, executions: Iterable[Execution]) -> None:
        """Data that arrived after its context was saved: add it there.

        Child processes that reported late, and lines a thread ran for the test
        that started it after that test finished.

        A context whose children never reported (killed, or still running at the
        end) cannot be trusted: its tests must run again.
        """
        for execution in executions:
            key = execution.key
            deps = self.resolve(execution)
            incomplete = execution.incomplete_children > 0
            if key.kind is ContextKind.TEST:
                nodeid = key.target
                stored = self.db.test_dependencies(self.env_id, nodeid)
                if stored is None:
                    continue
                if deps.lines:
                    fps = set(unpack_ints(stored[0])) | deps.fingerprint_ids
                    lines = unpack_lines(stored[1])
                    for file_id, file_lines in deps.lines.items():
                        lines.setdefault(file_id, set()).update(file_lines)
                    self.db.update_test_dependencies(self.env_id, nodeid, fps, lines)
                if incomplete:
                    test_ids = [t.id for t in self.db.tests(self.env_id) if t.nodeid == nodeid]
                    self.db.mark_pending({i: [CHILD_LOST] for i in test_ids})
                continue
            unit = self.db.unit_dependencies(self.env_id, key)
            if unit is None:
                continue
            unit_id, fps_blob, lines_blob, edges_blob = unit
            lines = unpack_lines(lines_blob)
            for file_id, file_lines in deps.lines.items():
                lines.setdefault(file_id, set()).update(file_lines)
            self.db.save_unit(
                self.env_id,
                RecordedUnit(
                    key,
                    set(unpack_ints(fps_blob)) | deps.fingerprint_ids,
                    lines,
                    set(unpack_ints(edges_blob)),
                ),
            )
            if incomplete:
                self.db.mark_pending(
                    {i: [CHILD_LOST] for i in self.db.tests_using_unit(self.env_id, unit_id)}
                )


CHILD_LOST = Reason.interrupted(Interruption.CHILD_LOST)
