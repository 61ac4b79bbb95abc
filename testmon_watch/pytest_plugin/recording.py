"""pytest hooks that open and close recording contexts: imports, collection, fixtures, tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testmon_watch.core.keys import SESSION, ContextKey, ContextKind
from testmon_watch.core.outcomes import outcome_of
from testmon_watch.core.records import Execution, SessionRecording, TestRecord, TestRecording
from testmon_watch.measure.loaded import loaded_modules
from testmon_watch.measure.recorder import Recorder
from testmon_watch.pytest_plugin.names import PAYLOAD_KEY
from testmon_watch.wire import xdist

WIDE_SCOPES = ("session", "package", "module", "class")


@dataclass(frozen=True)
class _TestFile:
    """What the record of every test in one file shares."""

    path: str  # project-relative (or relative to the root when outside the project)
    roots: tuple[str, ...]  # the file itself and the conftest.py files that apply to it
    absent_conftests: tuple[str, ...]  # where a conftest.py created later would apply
    unit_set: frozenset[ContextKey]  # the session, and the file's collection when a project file
    units: tuple[ContextKey, ...]  # the same, sorted as TestRecord.units is


class RecordingHooks:
    """Feeds the recorder's context stack from pytest's hooks and hands over what each test ran.

    Each finished test goes to `deliver` as a `TestRecording`; with no `deliver`
    (an xdist worker, which stores nothing) it rides on the test's teardown
    report, encoded by `wire.xdist`, to the controller.
    """

    def __init__(
        self,
        config: pytest.Config,
        recorder: Recorder,
        deliver: Callable[[TestRecording], None] | None = None,
    ) -> None:
        self.config = config
        self.recorder = recorder
        self.deliver = deliver
        self.root = Path(recorder.files.root)
        self.active_fixtures: dict[int, ContextKey] = {}  # id(FixtureDef) -> unit key
        self.finished_units: list[Execution] = []
        self.looked_at_modules: set[str] = set()  # names in sys.modules already handed over
        self._modules_seen = 0
        self.reports: dict[str, list[pytest.TestReport]] = {}
        self.item_units: dict[str, set[ContextKey]] = {}  # nodeid -> fixture units it used
        self._conftests: dict[Path, tuple[list[str], list[str]]] = {}
        self._test_files: dict[Path, _TestFile] = {}  # item.path -> what every test in it shares

    # -- handing over ----------------------------------------------------------

    def _queue(self, execution: Execution) -> None:
        self.finished_units.append(execution)

    def take_units(self) -> tuple[list[Execution], dict[str, str]]:
        """Units finished since the last call, and newly seen project modules."""
        for done in self.recorder.take_finished_imports():
            self._queue(done)
        units, self.finished_units = self.finished_units, []
        modules: dict[str, str] = {}
        if len(sys.modules) == self._modules_seen:
            return units, modules  # nothing imported since the last look (the usual case)
        self._modules_seen = len(sys.modules)
        for name, module in loaded_modules().items():
            if name in self.looked_at_modules:
                continue
            # Each module once: most are not the project's, and a run imports
            # a few at a time between thousands of tests.
            self.looked_at_modules.add(name)
            filename = getattr(module, "__file__", None)
            if filename:
                rel = self.recorder.files.relative(filename)
                if rel is not None:
                    modules[name] = rel
        return units, modules

    # -- collection ------------------------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, None]:
        rel = None
        if isinstance(collector, pytest.Module):
            rel = self.recorder.files.relative(str(collector.path))
        if rel is None:
            yield
            return
        self.recorder.push(ContextKey.collection(rel))
        try:
            yield
        finally:
            self._queue(self.recorder.pop())

    # -- fixtures of a wider scope -------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Generator[None, Any, None]:
        if fixturedef.scope not in WIDE_SCOPES:
            yield
            return
        parametrized = getattr(fixturedef, "params", None) is not None
        key = ContextKey.fixture(
            fixturedef.scope,
            request.node.nodeid,
            fixturedef.baseid,
            fixturedef.argname,
            request.param_index if parametrized and hasattr(request, "param_index") else None,
        )
        self.recorder.push(key)
        try:
            yield
        finally:
            self._queue(self.recorder.pop())
            self.active_fixtures[id(fixturedef)] = key

    @pytest.hookimpl
    def pytest_fixture_post_finalizer(self, fixturedef: Any, request: Any) -> None:
        self.active_fixtures.pop(id(fixturedef), None)

    def _fixture_units(self, item: pytest.Item) -> set[ContextKey]:
        keys = set()
        info = getattr(item, "_fixtureinfo", None)
        name2defs = getattr(info, "name2fixturedefs", {}) if info is not None else {}
        for name in getattr(item, "fixturenames", ()):
            for fixturedef in name2defs.get(name, ()):
                key = self.active_fixtures.get(id(fixturedef))
                if key is not None:
                    keys.add(key)
        return keys

    def _conftest_paths(self, path: Path) -> tuple[list[str], list[str]]:
        """conftest.py files that apply to a test file: every one in its directory or above.

        Returns (existing, absent): a conftest.py created later in one of those
        directories applies to the test too, so the absent ones are dependencies.
        """
        directory = path.parent
        cached = self._conftests.get(directory)
        if cached is None:
            cached = ([], [])
            current = directory
            while True:
                candidate = current / "conftest.py"
                if candidate.is_file():
                    rel = self.recorder.files.relative(str(candidate))
                    if rel is not None:
                        cached[0].append(rel)
                else:
                    rel = self.recorder.files.relative_path(str(candidate))
                    if rel is not None:
                        cached[1].append(rel)
                if current == self.root or current.parent == current:
                    break
                current = current.parent
            self._conftests[directory] = cached
        return cached

    # -- tests -----------------------------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: Any
    ) -> Generator[None, Any, None]:
        key = ContextKey.test(item.nodeid)
        self.recorder.push(key)
        self.reports[item.nodeid] = []
        try:
            yield
        finally:
            # Normally popped in makereport(teardown); an exception may leave it here.
            if self.recorder.current.key == key:
                self.recorder.pop()
            self.reports.pop(item.nodeid, None)
            self.item_units.pop(item.nodeid, None)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        nodeid = item.nodeid
        reports = self.reports.setdefault(nodeid, [])
        reports.append(report)
        # Note the fixture instances now: by the teardown report, fixtures whose
        # scope ends with this test are already finalized and forgotten. Only
        # fixtures of a wider scope are units (pytest_fixture_setup): with none
        # set up, there is nothing to look for.
        if self.active_fixtures:
            self.item_units.setdefault(nodeid, set()).update(self._fixture_units(item))
        key = self.recorder.current.key
        if call.when != "teardown" or key.kind is not ContextKind.TEST or key.target != nodeid:
            return
        execution = self.recorder.pop()
        shared = self._test_file(item.path)
        # A conftest.py created later in one of these folders applies to the test too.
        execution.reads.update(shared.absent_conftests)
        units = self.item_units.pop(nodeid, None)
        test = TestRecord(
            nodeid=nodeid,
            path=shared.path,
            outcome=outcome_of(reports),
            duration=sum(r.duration for r in reports),
            units=sorted(units | shared.unit_set, key=str) if units else list(shared.units),
            roots=list(shared.roots),
            execution=execution,
        )
        finished, modules = self.take_units()
        recording = TestRecording(test, finished, modules)
        if self.deliver is not None:
            self.deliver(recording)
        else:
            setattr(report, PAYLOAD_KEY, xdist.encode_test(recording))

    def _test_file(self, path: Path) -> _TestFile:
        """What every test of the file at `path` shares: computed once per file, not per test."""
        shared = self._test_files.get(path)
        if shared is None:
            rel = self.recorder.files.relative(str(path))
            conftests, absent = self._conftest_paths(Path(path))
            unit_set = frozenset({SESSION, ContextKey.collection(rel)} if rel else {SESSION})
            shared = self._test_files[path] = _TestFile(
                path=rel or os.path.relpath(path, self.root),
                roots=tuple(([rel] if rel else []) + conftests),
                absent_conftests=tuple(absent),
                unit_set=unit_set,
                units=tuple(sorted(unit_set, key=str)),
            )
        return shared

    def session_recording(self) -> SessionRecording:
        """The end of the session: the session unit, units not handed over yet, late data."""
        session = self.recorder.session()
        units, modules = self.take_units()
        units.append(session)
        return SessionRecording(units, modules, self.recorder.late_executions())
