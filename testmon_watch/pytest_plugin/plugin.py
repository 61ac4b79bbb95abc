"""Entry point of `pytest --testmon`: wires options, selection, recording and storage together."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from testmon_watch.core.db import Database, DatabaseError
from testmon_watch.core.environment import current_environment
from testmon_watch.core.reasons import Reason, ReasonKind
from testmon_watch.core.records import Execution, SessionRecording, TestRecord, TestRecording
from testmon_watch.core.selection import run_order
from testmon_watch.core.store import RunStore
from testmon_watch.measure.parse_helper import ParseHelper
from testmon_watch.measure.project_files import ProjectFiles
from testmon_watch.measure.recorder import Recorder
from testmon_watch.measure.tracer import HAS_MONITORING
from testmon_watch.pytest_plugin import fast_path
from testmon_watch.pytest_plugin.names import (
    GATE_PLUGIN,
    PAYLOAD_KEY,
    RECORDING_PLUGIN,
    SESSION_PLUGIN,
    WINDOWS_PLUGIN,
    XDIST_PLUGIN,
)
from testmon_watch.pytest_plugin.options import (
    TestmonOptions,
    add_options,
    project_paths,
    testmon_options,
)
from testmon_watch.pytest_plugin.recording import RecordingHooks
from testmon_watch.pytest_plugin.selecting import SelectionPlan, format_counts, plan_selection
from testmon_watch.pytest_plugin.windows import TracingWindows
from testmon_watch.wire import xdist
from testmon_watch.wording import describe_changes, describe_environment, describe_reasons

RECORDER_KEY = pytest.StashKey[Recorder]()
FLUSH_SECONDS = 1.0
FLUSH_TESTS = 200


def _pytest_testmon_installed() -> bool:
    return importlib.util.find_spec("testmon") is not None


def pytest_addoption(parser: pytest.Parser) -> None:
    if _pytest_testmon_installed():
        return  # pytest-testmon owns --testmon; pytest_configure explains
    add_options(parser)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _is_controller(config: pytest.Config) -> bool:
    return not _is_worker(config) and getattr(config.option, "dist", "no") != "no"


# Neither tryfirst nor trylast: after pytest-cov's tryfirst hook has claimed the tracer
# (we must see that), and before pytest's own trylast hook imports the start-up
# conftest.py files (a later trylast hook runs after it, and their imports went unseen).
@pytest.hookimpl
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    """Start tracing before conftest.py files are imported, so their import is recorded."""
    if _pytest_testmon_installed():
        return
    ns = early_config.known_args_namespace
    wanted = any(
        getattr(ns, name, False)
        for name in (
            "testmon",
            "testmon_noselect",
            "testmon_forceselect",
            "testmon_explain",
            "testmon_verify",
        )
    )
    if not wanted or getattr(ns, "no_testmon", False) or getattr(ns, "testmon_nocollect", False):
        return
    # An xdist worker is an execnet process started as `python -c ...`; the variable
    # alone may be inherited from an outer xdist run (pytest run by a test).
    xdist_worker = "PYTEST_XDIST_WORKER" in os.environ and sys.argv[:1] == ["-c"]
    if not xdist_worker and (
        getattr(ns, "dist", "no") not in ("no", None) or getattr(ns, "numprocesses", None)
    ):
        return  # xdist controller: its workers record
    if sys.version_info < (3, 12) and sys.gettrace() is not None:
        return  # another tracer (pytest-cov, a debugger) owns sys.settrace; configure says so
    if fast_path.decide(early_config, args) is not None:
        return  # nothing will run: no tracer, no conftest.py imports (see fast_path)
    from _pytest.assertion.rewrite import AssertionRewritingHook

    recorder = Recorder(
        ProjectFiles(early_config.rootpath),
        children_dir=project_paths(early_config).children_dir,
    )
    try:
        recorder.start(extra_loader_classes=[AssertionRewritingHook])
    except RuntimeError:
        return
    early_config.stash[RECORDER_KEY] = recorder


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """End a run that has nothing to do before configuration and collection."""
    return fast_path.end_session(config)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if _pytest_testmon_installed():
        if config.getoption("testmon", False):
            raise pytest.UsageError(
                "testmon-watch: pytest-testmon is installed too and both provide --testmon; "
                "uninstall one of them (pip uninstall pytest-testmon)"
            )
        return
    mode = testmon_options(config)
    if mode.active and mode.coverage_source is not None and config.getoption("cov_source", None):
        raise pytest.UsageError(
            "testmon-watch: --testmon-cov and pytest-cov's --cov both write .coverage; "
            "drop one of them (--testmon-cov covers deselected tests and child processes too)"
        )
    recorder = config.stash.get(RECORDER_KEY, None)
    if not mode.active:
        if recorder is not None:
            recorder.stop()
        return
    session = TestmonSession(config, mode, recorder)
    config.pluginmanager.register(session, SESSION_PLUGIN)
    if session.controller and config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistControllerHooks(session), XDIST_PLUGIN)


class XdistControllerHooks:
    """Hooks that exist only under pytest-xdist (pytest rejects unknown hook names)."""

    def __init__(self, session: TestmonSession) -> None:
        self.session = session

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.session.receive_worker_output(getattr(node, "workeroutput", None) or {})


class TestmonSession:
    """One pytest session's selection and recording."""

    def __init__(
        self, config: pytest.Config, mode: TestmonOptions, recorder: Recorder | None
    ) -> None:
        self.config = config
        self.mode = mode
        self.root = config.rootpath
        self.root_prefix = str(config.rootpath) + os.sep
        self.worker = _is_worker(config)
        self.controller = _is_controller(config)
        self.started_at = time.time()
        self.started_ns = time.time_ns()
        self.messages: list[str] = []
        self.db: Database | None = None
        self.plan: SelectionPlan | None = None
        self.store: RunStore | None = None
        self.helper: ParseHelper | None = None
        self.hooks: RecordingHooks | None = None
        self.recorder = recorder
        self.pending_tests: list[TestRecord] = []
        self.pending_units: list[Execution] = []
        self.late_children: list[Execution] = []
        self.pending_written = 0
        self.coverage_message: str | None = None
        self.session: pytest.Session | None = None
        self.last_flush = time.monotonic()
        self.selected: dict[str, list[Reason]] = {}
        self.deselected_count = 0
        self.skipped_files: set[str] = set()
        self.collected_files: set[str] = set()
        self.misses: list[str] = []
        self.ran: set[str] = set()  # node ids of the tests this run ran
        self.gate: Any = config.pluginmanager.get_plugin(GATE_PLUGIN)
        self.planned = False
        self._open(config)
        if self.gate is None:
            self._plan()

    # -- setup -----------------------------------------------------------------

    def _open(self, config: pytest.Config) -> None:
        """Open the data file and start recording; selection is `_plan`'s job."""

        def open_db() -> None:
            with self._engine_io():
                self.db, messages = Database.open(self.mode.datafile, readonly=self.worker)
            self.messages.extend(messages)

        if not self._guarded(open_db):
            return
        if self.mode.record and not self.controller:
            if self.recorder is None:
                if sys.version_info < (3, 12) and sys.gettrace() is not None:
                    self.messages.append(
                        "another tracer (pytest-cov or a debugger) is active and Python < 3.12 "
                        "allows one: selecting, but not recording this run"
                    )
            else:
                deliver = None if self.worker else self.receive_test
                self.hooks = RecordingHooks(config, self.recorder, deliver)
                config.pluginmanager.register(self.hooks, RECORDING_PLUGIN)
                if not HAS_MONITORING:
                    # Only settrace tracers pay for untraced code (see windows.py).
                    config.pluginmanager.register(
                        TracingWindows(config.pluginmanager, self.recorder),
                        WINDOWS_PLUGIN,
                    )

    def _ensure_planned(self) -> None:
        """Select now if not done yet: after the gate, when a standby child is released."""
        if self.planned:
            return
        if self.gate is not None:
            self.gate.wait()
            # The run starts now, not when the standby child configured pytest: a file
            # saved in between is a change this run selects for, not one made during it.
            self.started_at = time.time()
            self.started_ns = time.time_ns()
        self._plan()

    def _plan(self) -> None:
        self.planned = True
        db = self.db
        if db is None:
            return

        def select() -> None:
            with self._engine_io():
                env = current_environment(self.mode.environment)
                self.plan = plan_selection(db, self.root, env, write=not self.worker)

        if not self._guarded(select) or self.plan is None:
            return
        if self.plan.environment_change:
            change = describe_environment(self.plan.environment_change)
            self.messages.append(f"environment changed: {change}")
        self.messages.extend(self.plan.messages)
        if not self.worker and self.db is not None and self.plan is not None:
            # Recording here: new and changed files are parsed on another core
            # as pytest imports them (see measure/parse_helper).
            recording = self.hooks is not None and self.recorder is not None
            self.helper = ParseHelper(self.root) if recording else None
            self.store = RunStore(
                self.db,
                self.plan.env_id,
                self.root,
                self.plan.files,
                started_ns=self.started_ns,
                helper=self.helper,
            )
            if recording:
                assert self.recorder is not None
                self.recorder.on_project_import = self.store.prefetch
        if self.mode.select and self.plan is not None:
            self.skipped_files = self.plan.test_files_to_skip()

    def _end_parse_helper(self) -> None:
        if self.helper is not None:
            self.helper.close()
        if self.recorder is not None:
            self.recorder.on_project_import = None

    def _close_store(self) -> None:
        self._end_parse_helper()
        self.store = None

    def _engine_io(self) -> contextlib.AbstractContextManager[None]:
        """Files the engine itself reads are not dependencies of the current test."""
        return self.recorder.pause() if self.recorder is not None else contextlib.nullcontext()

    def _guarded(self, action: Callable[[], None]) -> bool:
        """Run a data-file step; on failure go on without selection or recording."""
        try:
            action()
        except (DatabaseError, OSError) as exc:
            self._disable(f"{exc}; running without selection or recording")
            return False
        except Exception as exc:  # a damaged file can fail in many sqlite ways
            self._disable(
                f"cannot use {self.mode.datafile.name} ({exc}); "
                "running without selection or recording"
            )
            return False
        return True

    def _disable(self, message: str) -> None:
        self.messages.append(message)
        self.plan = None
        self._close_store()
        if self.hooks is not None:
            self.config.pluginmanager.unregister(self.hooks)
            self.hooks = None
        if self.recorder is not None:
            self.recorder.stop()
            self.recorder = None

    # -- reporting ---------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        self._ensure_planned()
        lines = [f"testmon-watch: {m}" for m in self.messages]
        if self.plan is not None:
            what = describe_changes(self.plan.changes.summary()) or "nothing"
            affected = len(self.plan.selected_known)
            known = len(self.plan.known)
            text = f"testmon-watch: changed: {what}; {affected} of {known} recorded tests to run"
            if not self.mode.select:
                text += (
                    " (not deselecting: "
                    + (
                        "--testmon-verify"
                        if self.mode.verify
                        else "-k/-m/node ids or --testmon-noselect"
                    )
                    + ")"
                )
            lines.append(text)
        return lines

    # -- collection ----------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        self._ensure_planned()  # without a terminal reporter no header asked for it

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        if not self.skipped_files or collection_path.suffix != ".py":
            return None
        try:
            rel = collection_path.relative_to(self.root).as_posix()
        except ValueError:
            return None
        return True if rel in self.skipped_files else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if self.plan is None:
            return
        plan = self.plan
        known_selected = plan.selected_known
        selected: dict[str, list[Reason]] = {}
        for item in items:
            rel = self._rel(item)
            if rel is not None:
                self.collected_files.add(rel)
            if item.nodeid not in plan.known:
                selected[item.nodeid] = [Reason.new()]
            elif item.nodeid in known_selected:
                selected[item.nodeid] = known_selected[item.nodeid]
        self._forget_deleted(items, session)
        self.selected = selected
        durations = {n: t.duration for n, t in plan.known.items()}
        failed = {n for n, t in plan.known.items() if t.outcome.runs_again}
        if self.mode.select:
            keep = [i for i in items if i.nodeid in selected]
            drop = [i for i in items if i.nodeid not in selected]
            self.deselected_count = len(drop) + sum(
                1 for t in plan.known.values() if t.path in self.skipped_files
            )
            if drop:
                config.hook.pytest_deselected(items=drop)
            items[:] = keep
        if self.mode.reorder:
            position = {
                n: i for i, n in enumerate(run_order([i.nodeid for i in items], durations, failed))
            }
            items.sort(key=lambda i: position[i.nodeid])

    def _rel(self, item: pytest.Item) -> str | None:
        path = str(item.path)
        if not path.startswith(self.root_prefix):
            return None
        return path[len(self.root_prefix) :].replace(os.sep, "/")

    def _forget_deleted(self, items: list[pytest.Item], session: pytest.Session) -> None:
        """Tests gone from a fully collected file, and tests of deleted files, leave the data."""
        if self.worker or self.db is None or self.plan is None:
            return
        narrowed = any("::" in str(a) for a in self.config.args)
        failed_files = {
            Path(str(r.fspath)).as_posix()
            for r in getattr(session, "_testmon_collect_failures", [])
        }
        present = {i.nodeid for i in items}
        gone = []
        for nodeid, test in self.plan.known.items():
            if nodeid in present or test.path is None:
                continue
            file_row = self.plan.files.get(test.path)
            if file_row is not None and file_row.missing:
                gone.append(nodeid)
            elif (
                not narrowed and test.path in self.collected_files and test.path not in failed_files
            ):
                gone.append(nodeid)
        if gone:
            with self.db.transaction():
                self.db.delete_tests(self.plan.env_id, gone)
            for nodeid in gone:
                self.plan.known.pop(nodeid, None)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, None]:
        outcome = yield
        report = outcome.get_result()
        if report.failed and isinstance(collector, pytest.Module):
            try:
                rel = Path(collector.path).relative_to(self.root).as_posix()
            except ValueError:
                return
            failures = getattr(collector.session, "_testmon_collect_failures", [])
            failures.append(report)
            collector.session._testmon_collect_failures = failures  # type: ignore[attr-defined]
            self.collected_files.discard(rel)

    def pytest_report_collectionfinish(
        self, config: pytest.Config, start_path: Path, items: list[pytest.Item]
    ) -> list[str]:
        if self.plan is None:
            return []
        new = sum(1 for r in self.selected.values() if r and r[0].kind is ReasonKind.NEW)
        if not self.mode.select:
            return [f"testmon-watch: running all {len(items)} collected ({new} new)"]
        return ["testmon-watch: " + format_counts(len(items), self.deselected_count, new)]

    # -- results -------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.ran.add(report.nodeid)
        # Under xdist the controller gets a worker's recording with the report.
        carried = getattr(report, PAYLOAD_KEY, None)
        if carried is not None and self.store is not None:
            try:
                recording = xdist.decode_test(carried)
            except ValueError as exc:
                self.messages.append(f"could not read an xdist worker's recording ({exc})")
                return
            self.receive_test(recording)

    def receive_test(self, recording: TestRecording) -> None:
        """A test finished recording (in this process or, under xdist, in a worker)."""
        if self.store is None:
            return
        self.pending_units.extend(recording.units)
        self.store.modules.update(recording.modules)
        self.pending_tests.append(recording.test)
        if self.mode.verify:
            self._check_verify(recording.test)
        if (
            len(self.pending_tests) >= FLUSH_TESTS
            or time.monotonic() - self.last_flush > FLUSH_SECONDS
        ):
            self._flush()

    def _check_verify(self, test: TestRecord) -> None:
        plan = self.plan
        if plan is None:
            return
        known = plan.known.get(test.nodeid)
        if known is None or known.reasons:
            return
        if known.outcome != test.outcome:
            self.misses.append(f"{test.nodeid}: {known.outcome} -> {test.outcome}")

    def _flush(self) -> None:
        self.last_flush = time.monotonic()
        if self.store is None or (not self.pending_tests and not self.pending_units):
            return
        units, tests = self.pending_units, self.pending_tests
        self.pending_units, self.pending_tests = [], []
        self.pending_written += len(tests)
        assert self.db is not None
        try:
            with self._engine_io(), self.db.transaction():
                self.store.save_units(units)
                self.store.save_tests(tests)
        except Exception as exc:
            self.messages.append(f"could not save results ({exc}); they will run again next time")
            self._close_store()

    def receive_worker_output(self, output: dict[str, Any]) -> None:
        """xdist controller: a worker's session-wide recording arrives with its shutdown."""
        carried = output.get(PAYLOAD_KEY)
        if carried is None:
            return
        try:
            recording = xdist.decode_session(carried)
        except ValueError as exc:
            self.messages.append(f"could not read an xdist worker's recording ({exc})")
            return
        self.receive_session(recording)

    def receive_session(self, recording: SessionRecording) -> None:
        """The session-wide recording of this process or of an xdist worker."""
        if self.store is not None:
            self.pending_units.extend(recording.units)
            self.store.modules.update(recording.modules)
            self.late_children.extend(recording.late)

    def _merge_late(self) -> None:
        if self.store is None or self.db is None or not self.late_children:
            return
        try:
            with self._engine_io(), self.db.transaction():
                self.store.merge_late(self.late_children)
        except Exception as exc:
            self.messages.append(f"could not save child-process data ({exc})")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_sessionfinish(
        self, session: pytest.Session, exitstatus: int
    ) -> Generator[None, Any, None]:
        if self.hooks is not None:
            recording = self.hooks.session_recording()
            if self.worker:
                output = self.config.workeroutput  # type: ignore[attr-defined]
                output[PAYLOAD_KEY] = xdist.encode_session(recording)
            else:
                self.receive_session(recording)
        if self.recorder is not None:
            self.recorder.stop()
            self.recorder.close_children()
        # Before yielding: the terminal summary (printed by the terminal reporter's
        # own wrapper) must already see what we saved and exported.
        if not self.worker:
            self._flush()
            self._merge_late()
            self._finish_run(session)
            self._export_coverage()
        self._end_parse_helper()
        yield
        if self.db is not None:
            self.db.close()
            self.db = None

    def _export_coverage(self) -> None:
        if self.mode.coverage_source is None or self.plan is None or self.db is None:
            return
        from testmon_watch.measure.coverage_export import SourceError, export_coverage

        try:
            summary = export_coverage(
                self.db,
                self.plan.env_id,
                self.root,
                self.root / ".coverage",
                source=self.mode.coverage_source,
                ran=self.ran,
            )
        except SourceError as exc:
            self.messages.append(f"could not write .coverage: {exc}")
            return
        except Exception as exc:  # a coverage.py or SQLite failure: say it, keep the run
            self.messages.append(f"could not write .coverage ({exc})")
            return
        self.coverage_message = summary.message(Path(self.config.invocation_params.dir))

    def _finish_run(self, session: pytest.Session) -> None:
        if self.plan is None or self.db is None:
            return
        saved = sum(t.duration for t in self.plan.known.values() if t.path in self.skipped_files)
        try:
            with self.db.transaction():
                self.db.save_run(
                    self.plan.env_id,
                    self.started_at,
                    len(self.selected),
                    self.deselected_count,
                    saved,
                )
                # Garbage appears only when tests are deleted or re-recorded; a
                # no-change run has none, and scanning every row costs time.
                if self.pending_written and session.testsfailed == 0:
                    self.db.collect_garbage()
        except Exception as exc:
            self.messages.append(f"could not save run statistics ({exc})")
        self.session = session
        self._fix_exit_status()

    def _fix_exit_status(self) -> None:
        """Everything deselected is success, not "no tests ran"; a verify miss is failure."""
        session = self.session
        if session is None or self.plan is None:
            return
        if (
            session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED
            and self.mode.select
            and (self.deselected_count or self.plan.known)
        ):
            session.exitstatus = pytest.ExitCode.OK
        if self.misses and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._end_parse_helper()  # sessionfinish normally did
        # Again, last: other plugins' sessionfinish hooks may have put the old status
        # back (syrupy ORs in the status the hook was called with).
        self._fix_exit_status()

    def pytest_terminal_summary(
        self, terminalreporter: Any, exitstatus: int, config: pytest.Config
    ) -> None:
        tr = terminalreporter
        if self.mode.explain and self.plan is not None:
            tr.write_sep("-", "testmon-watch: why these tests")
            for nodeid, reasons in sorted(self.selected.items()):
                tr.write_line(f"{nodeid}: " + describe_reasons(reasons))
            for arg in config.args:
                if "::" in str(arg):
                    nodeid = self._nodeid_of_arg(str(arg))
                    if nodeid not in self.selected:
                        tr.write_line(f"{nodeid}: not selected: {self.plan.why_not(nodeid)}")
        if self.mode.verify and self.plan is not None:
            if self.misses:
                tr.write_sep("=", f"testmon-watch verify: {len(self.misses)} missed", red=True)
                for miss in self.misses:
                    tr.write_line(f"MISSED {miss}")
            else:
                checked = sum(1 for t in self.plan.known.values() if not t.reasons)
                tr.write_line(
                    f"testmon-watch verify: no misses ({checked} deselectable tests "
                    "kept their outcome)"
                )
        for message in self.messages[-3:]:
            if message.startswith("could not"):
                tr.write_line(f"testmon-watch: {message}", yellow=True)
        if self.coverage_message:
            tr.write_line(self.coverage_message)

    def _nodeid_of_arg(self, arg: str) -> str:
        path, _, rest = arg.partition("::")
        try:
            rel = (Path(self.config.invocation_params.dir) / path).resolve().relative_to(self.root)
        except ValueError:
            return arg
        return f"{rel.as_posix()}::{rest}"
