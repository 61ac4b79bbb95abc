"""Before the tests run: open the data file, plan the selection, and apply it to collection.

Opening also starts recording (the recording hooks, and below 3.12 the
tracing windows). Selection runs at configure time, or, in a standby child
of the warm worker, once the gate releases the run. Collection then skips
known test files none of whose tests must run, deselects the rest of the
unaffected tests, orders the selected ones, and forgets tests that are gone.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from testmon_watch.core.db import Database, DatabaseError
from testmon_watch.core.environment import current_environment
from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.reasons import Reason, ReasonKind
from testmon_watch.core.records import TestRecording
from testmon_watch.core.selection import run_order
from testmon_watch.core.store import RunStore
from testmon_watch.measure.parse_helper import ParseHelper
from testmon_watch.measure.tracer import HAS_MONITORING
from testmon_watch.pytest_plugin.filtered_modules import (
    all_deselected_by_pytest,
    conftest_may_deselect,
)
from testmon_watch.pytest_plugin.names import RECORDING_PLUGIN, WINDOWS_PLUGIN
from testmon_watch.pytest_plugin.recording import RecordingHooks
from testmon_watch.pytest_plugin.selecting import ReadAhead, plan_selection
from testmon_watch.pytest_plugin.session_state import SessionState
from testmon_watch.pytest_plugin.windows import TracingWindows
from testmon_watch.wording import (
    SelectionCounts,
    describe_changes,
    describe_environment,
    describe_running_all,
    describe_selection_counts,
)

# Where pytest keeps the failed collection reports of a session (our attribute).
COLLECT_FAILURES = "_testmon_collect_failures"


class SelectionHooks:
    """The pytest plugin that selects: the header, collection, deselection and order."""

    def __init__(self, state: SessionState) -> None:
        self.state = state
        self.planned = False
        self.collected_files: set[str] = set()  # test modules collected in full
        self.modules_collected: set[str] = set()  # .py test modules whose collection passed
        self.modules_failed: set[str] = set()  # ... and those a collector of which failed
        self.items_per_file: dict[str, list[pytest.Item]] = {}  # before anyone deselected
        # module path -> the name paths to collect in it (None: all)
        self._narrowed_by_path: dict[str, frozenset[tuple[str, ...]] | None] = {}
        self.ahead: ReadAhead | None = None  # the data file's rows, read while a gate waited

    # -- opening -----------------------------------------------------------------------

    def open(self, deliver: Callable[[TestRecording], None] | None) -> None:
        """Open the data file and start recording; selection is `select`'s job.

        Each recorded test goes to `deliver` (see RecordingHooks).
        """
        state = self.state

        def open_db() -> None:
            with state.engine_io():
                state.db, messages = Database.open(state.options.datafile, readonly=state.worker)
            state.messages.extend(messages)

        if not state.guarded(open_db):
            return
        if state.gate is not None and state.options.select:
            state.gate.work_ahead(self.read_ahead)
        if not state.options.record or state.controller:
            return
        if state.recorder is None:
            if sys.version_info < (3, 12) and sys.gettrace() is not None:
                state.messages.append(
                    "another tracer (pytest-cov or a debugger) is active and Python < 3.12 "
                    "allows one: selecting, but not recording this run"
                )
            return
        pluginmanager = state.config.pluginmanager
        state.hooks = RecordingHooks(state.config, state.recorder, deliver)
        pluginmanager.register(state.hooks, RECORDING_PLUGIN)
        if not HAS_MONITORING:
            # Only settrace tracers pay for untraced code (see windows.py).
            TracingWindows.register(pluginmanager, state.recorder, WINDOWS_PLUGIN)

    # -- planning ------------------------------------------------------------------------

    def ensure_planned(self) -> None:
        """Select now if not done yet: after the gate, when a standby child is released."""
        if self.planned:
            return
        if self.state.gate is not None:
            self.state.gate.wait()
            # The run starts at its release, not when the standby child configured pytest:
            # a file saved before is a change this run selects for, not one made during it.
            # (An early gate released it before the conftests were imported, not now.)
            self.state.restart_clock(self.state.gate.released_ns)
        self.select(self.ahead)

    def read_ahead(self) -> None:
        """Read the data file's rows while the standby waits (a gate's job); on failure
        selection reads them, and reports the failure, after the release."""
        db = self.state.db
        if db is None:
            return
        try:
            with self.state.engine_io():
                self.ahead = ReadAhead.read(db)
        except (DatabaseError, OSError, sqlite3.Error):
            self.ahead = None

    def select(self, ahead: ReadAhead | None = None) -> None:
        """Compare disk and environment with the data file: what must run, and why."""
        self.planned = True
        state = self.state
        db = state.db
        if db is None:
            return

        def compare() -> None:
            with state.engine_io():
                env = current_environment(state.options.environment)
                state.plan = plan_selection(
                    db,
                    state.root,
                    env,
                    write=not state.worker,
                    baseline=state.options.baseline,
                    ahead=ahead,
                )

        if not state.guarded(compare) or state.plan is None:
            return
        plan = state.plan
        if plan.environment_change:
            change = describe_environment(plan.environment_change)
            state.messages.append(f"environment changed: {change}")
        state.messages.extend(plan.messages)
        if not state.worker:
            # Recording here: new and changed files are parsed on another core
            # as pytest imports them (see measure/parse_helper).
            recording = state.hooks is not None and state.recorder is not None
            state.helper = ParseHelper(state.root) if recording else None
            state.store = RunStore(
                db,
                plan.env_id,
                state.root,
                plan.files,
                started_ns=state.started_ns,
                helper=state.helper,
                environment=plan.environment,
            )
            if state.recorder is not None and recording:
                state.recorder.on_project_import = state.store.prefetch
        if state.options.select:
            state.skipped_files = plan.test_files_to_skip()
            if not any("::" in str(a) for a in state.config.args):
                state.narrowed_files = plan.parts_to_collect()

    # -- the header --------------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        self.ensure_planned()
        state = self.state
        lines = [f"testmon-watch: {m}" for m in state.messages]
        if state.plan is not None:
            what = describe_changes(state.plan.changes.summary()) or "nothing"
            affected = len(state.plan.selected_known)
            known = len(state.plan.known)
            text = f"testmon-watch: changed: {what}; {affected} of {known} recorded tests to run"
            if not state.options.select:
                why = (
                    "--testmon-verify"
                    if state.options.verify
                    else "-k/-m/node ids or --testmon-noselect"
                )
                text += f" (not deselecting: {why})"
            lines.append(text)
        return lines

    # -- collection ----------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        self.ensure_planned()  # without a terminal reporter no header asked for it

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        skipped = self.state.skipped_files
        if not skipped or collection_path.suffix != ".py":
            return None
        try:
            rel = collection_path.relative_to(self.state.root).as_posix()
        except ValueError:
            return None
        return True if rel in skipped else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        state = self.state
        plan = state.plan
        if plan is None:
            return
        known_selected = plan.selected_known
        selected: dict[str, list[Reason]] = {}
        for item in items:
            rel = state.relative(item.path)
            if rel is not None and rel not in state.narrowed_files:
                self.collected_files.add(rel)
                self.items_per_file.setdefault(rel, []).append(item)
            if item.nodeid not in plan.known:
                selected[item.nodeid] = [Reason.new()]
            elif item.nodeid in known_selected:
                selected[item.nodeid] = known_selected[item.nodeid]
        self._forget_deleted(items, session)
        self._remember_collect_failures(session)
        state.selected = selected
        if state.options.select:
            keep = [i for i in items if i.nodeid in selected]
            drop = [i for i in items if i.nodeid not in selected]
            state.deselected_collected = len(drop)
            present = {i.nodeid for i in items}
            narrowed_away = [
                path
                for path in state.narrowed_files
                for t in plan.known.on_path(path)
                if t.nodeid not in present
            ]
            state.files_collected_in_part = len(set(narrowed_away))
            state.skipped_tests = len(narrowed_away) + sum(
                len(plan.known.on_path(path)) for path in state.skipped_files
            )
            state.deselected_count = state.deselected_collected + state.skipped_tests
            if drop:
                config.hook.pytest_deselected(items=drop)
            items[:] = keep
        if state.options.reorder:
            known = [plan.known.get(i.nodeid) for i in items]
            durations = {t.nodeid: t.duration for t in known if t is not None}
            failed = {t.nodeid for t in known if t is not None and t.outcome.runs_again}
            order = run_order([i.nodeid for i in items], durations, failed)
            position = {nodeid: i for i, nodeid in enumerate(order)}
            items.sort(key=lambda i: position[i.nodeid])

    def _forget_deleted(self, items: list[pytest.Item], session: pytest.Session) -> None:
        """Tests gone from a fully collected file, and tests of deleted files, leave the data."""
        state = self.state
        if state.worker or state.db is None or state.plan is None:
            return
        narrowed = any("::" in str(a) for a in state.config.args)
        failed_files = {
            Path(str(r.fspath)).as_posix() for r in getattr(session, COLLECT_FAILURES, [])
        }
        present = {i.nodeid for i in items}
        gone: list[str] = []
        for path in state.plan.known.paths():
            file_row = state.plan.files.get(path)
            file_gone = file_row is not None and file_row.missing
            not_collected = (
                not narrowed and path in self.collected_files and path not in failed_files
            )
            if file_gone or not_collected:
                tests = state.plan.known.on_path(path)
                gone.extend(t.nodeid for t in tests if t.nodeid not in present)
        if gone:
            with state.db.transaction():
                state.db.delete_tests(state.plan.env_id, gone)
            for nodeid in gone:
                state.plan.known.pop(nodeid, None)
        state.removed = sorted(gone)

    def _remember_collect_failures(self, session: pytest.Session) -> None:
        """Known tests of a collector that failed run next time, so their file is collected.

        Otherwise a file whose tests are all up to date is skipped on the next run
        (`test_files_to_skip`) and nobody learns that it imports again: its error
        would stand for ever. The pending mark is the data file's own way to say
        "must run", so nothing new is stored and the no-change fast path stands aside.
        """
        state = self.state
        failed = [r.nodeid for r in getattr(session, COLLECT_FAILURES, [])]
        state.collect_failures = failed
        if state.worker or state.db is None or state.plan is None or not failed:
            return
        prefixes = tuple(f"{n}::" for n in failed)
        unmarked = [
            nodeid
            for nodeid, test in state.plan.known.items()
            if test.reasons is None and (nodeid in failed or nodeid.startswith(prefixes))
        ]
        if unmarked:
            with state.db.transaction():
                state.db.mark_pending_tests(
                    state.plan.env_id, {n: [Reason.failed(Outcome.ERROR)] for n in unmarked}
                )

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, None]:
        outcome = yield
        report = outcome.get_result()
        if report.passed and isinstance(collector, pytest.Module):
            rel = self.state.relative(collector.path)
            if rel is not None and rel.endswith(".py"):
                self.modules_collected.add(rel)
        if report.failed and isinstance(collector, (pytest.Module, pytest.Class)):
            try:
                rel = Path(collector.path).relative_to(self.state.root).as_posix()
            except ValueError:
                return
            self.modules_failed.add(rel)
            failures = getattr(collector.session, COLLECT_FAILURES, [])
            failures.append(report)
            setattr(collector.session, COLLECT_FAILURES, failures)
            # Its tests were not all collected: none of the file's missing tests is gone.
            self.collected_files.discard(rel)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Which test modules new to the data file gave no test to run (filtered_modules.py)."""
        state = self.state
        plan = state.plan
        if state.worker or state.controller or plan is None or not state.options.select:
            return
        if conftest_may_deselect(state.config):
            return
        remaining = {state.relative(item.path) for item in session.items}
        known = plan.known.paths()
        # A known test file is the fast path's anyway (a stale row of it is never read).
        for rel in self.modules_collected - state.narrowed_files.keys() - known:
            items = self.items_per_file.get(rel, [])
            emptied = (
                rel not in remaining
                and rel not in self.modules_failed
                and all_deselected_by_pytest(items, state.config)
            )
            state.filtered_modules[rel] = len(items) if emptied else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makeitem(
        self, collector: pytest.Collector, name: str, obj: object
    ) -> list[pytest.Item] | None:
        """In a file collected in part, a class or function with no test to run gives nothing.

        Answering first with an empty list spares what collecting it costs (fixture
        parsing, unittest discovery, parametrization): in a 600-class test module
        with one affected class, that was 90% of the time to the first result; in
        a module of one class of 100 methods (jinja2's filters), most of the rest.
        A unittest.TestCase class lists its own methods; those are all collected.
        """
        if not self.state.narrowed_files:
            return None
        # pytest's own collectors only: a plugin's (pytest-describe's blocks, say)
        # may name its tests otherwise.
        names: list[str] = [name]
        node: object = collector
        while type(node) is pytest.Class:
            names.append(node.name)
            node = node.parent
        if type(node) is not pytest.Module:
            return None
        parts = self._narrowed_parts(node)
        if parts is None or tuple(reversed(names)) in parts:
            return None
        return []

    def _narrowed_parts(self, module: pytest.Module) -> frozenset[tuple[str, ...]] | None:
        key = str(module.path)
        if key not in self._narrowed_by_path:
            rel = self.state.relative(module.path)
            found = self.state.narrowed_files.get(rel) if rel is not None else None
            self._narrowed_by_path[key] = found
        return self._narrowed_by_path[key]

    def pytest_report_collectionfinish(
        self, config: pytest.Config, start_path: Path, items: list[pytest.Item]
    ) -> list[str]:
        state = self.state
        if state.plan is None:
            return []
        new = sum(1 for r in state.selected.values() if r and r[0].kind is ReasonKind.NEW)
        if not state.options.select:
            return ["testmon-watch: " + describe_running_all(len(items), new)]
        counts = SelectionCounts(
            selected=len(items),
            new=new,
            deselected_by_pytest=state.deselected_collected,
            not_collected=state.skipped_tests,
            files_not_collected=len(state.skipped_files),
            files_collected_in_part=state.files_collected_in_part,
        )
        return ["testmon-watch: " + describe_selection_counts(counts)]
