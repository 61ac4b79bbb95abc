"""pytest hooks that open and close recording contexts: imports, collection, fixtures, tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from testmon_watch.core.outcomes import outcome_of
from testmon_watch.measure.recorder import Execution, Recorder
from testmon_watch.pytest_plugin.names import PAYLOAD_KEY

WIDE_SCOPES = ("session", "package", "module", "class")


class RecordingHooks:
    """Feeds the recorder's context stack from pytest's hooks and emits JSON-able payloads."""

    def __init__(self, config: pytest.Config, recorder: Recorder) -> None:
        self.config = config
        self.recorder = recorder
        self.root = Path(recorder.files.root)
        self.active_fixtures: dict[int, str] = {}  # id(FixtureDef) -> unit key
        self.finished_units: list[dict[str, Any]] = []
        self.sent_modules: set[str] = set()
        self._modules_seen = 0
        self.reports: dict[str, list[pytest.TestReport]] = {}
        self.item_units: dict[str, set[str]] = {}  # nodeid -> fixture unit keys it used
        self._conftests: dict[Path, tuple[list[str], list[str]]] = {}

    # -- payload plumbing ----------------------------------------------------

    def _queue(self, execution: Execution) -> None:
        self.finished_units.append(execution.to_payload())

    def take_units(self) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Units finished since the last call, and newly seen project modules."""
        for done in self.recorder.take_finished_imports():
            self._queue(done)
        units, self.finished_units = self.finished_units, []
        modules: dict[str, str] = {}
        if len(sys.modules) == self._modules_seen:
            return units, modules  # nothing imported since the last look (the usual case)
        self._modules_seen = len(sys.modules)
        for name, module in list(sys.modules.items()):
            if name in self.sent_modules:
                continue
            filename = getattr(module, "__file__", None)
            if filename:
                rel = self.recorder.files.relative(filename)
                if rel is not None:
                    modules[name] = rel
                    self.sent_modules.add(name)
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
        self.recorder.push(f"collect:{rel}")
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
        key = (
            f"fixture:{fixturedef.scope}:{request.node.nodeid}:"
            f"{fixturedef.baseid}::{fixturedef.argname}"
        )
        if getattr(fixturedef, "params", None) is not None and hasattr(request, "param_index"):
            key += f"[{request.param_index}]"
        self.recorder.push(key)
        try:
            yield
        finally:
            self._queue(self.recorder.pop())
            self.active_fixtures[id(fixturedef)] = key

    @pytest.hookimpl
    def pytest_fixture_post_finalizer(self, fixturedef: Any, request: Any) -> None:
        self.active_fixtures.pop(id(fixturedef), None)

    def _fixture_units(self, item: pytest.Item) -> set[str]:
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
        self.recorder.push(f"test:{item.nodeid}")
        self.reports[item.nodeid] = []
        try:
            yield
        finally:
            # Normally popped in makereport(teardown); an exception may leave it here.
            if self.recorder.current.key == f"test:{item.nodeid}":
                self.recorder.pop()
            self.reports.pop(item.nodeid, None)
            self.item_units.pop(item.nodeid, None)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        reports = self.reports.setdefault(item.nodeid, [])
        reports.append(report)
        # Note the fixture instances now: by the teardown report, fixtures whose
        # scope ends with this test are already finalized and forgotten.
        self.item_units.setdefault(item.nodeid, set()).update(self._fixture_units(item))
        if call.when != "teardown" or self.recorder.current.key != f"test:{item.nodeid}":
            return
        execution = self.recorder.pop()
        rel = self.recorder.files.relative(str(item.path))
        conftests, absent_conftests = self._conftest_paths(Path(item.path))
        payload = execution.to_payload()
        payload.update(
            nodeid=item.nodeid,
            path=rel or os.path.relpath(item.path, self.root),
            outcome=outcome_of(reports).value,  # plain JSON: xdist sends it with the report
            duration=sum(r.duration for r in reports),
            units=sorted(
                self.item_units.pop(item.nodeid, set())
                | {"session"}
                | ({f"collect:{rel}"} if rel else set())
            ),
            roots=([rel] if rel else []) + conftests,
            complete=True,
            incomplete_children=execution.incomplete_children,
        )
        if absent_conftests:
            payload["reads"] = sorted(set(payload["reads"]).union(absent_conftests))
        units, modules = self.take_units()
        setattr(report, PAYLOAD_KEY, {"test": payload, "units": units, "modules": modules})

    def session_payload(self) -> dict[str, Any]:
        session = self.recorder.session()
        units, modules = self.take_units()
        units.append(session.to_payload())
        return {"units": units, "modules": modules}
