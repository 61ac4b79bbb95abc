"""After each test and at the end: store what ran, fix the exit status, and report it.

Recorded tests arrive from the recording hooks of this process, or under
xdist from the workers (with each report, and in `workeroutput` at their end,
decoded by `wire.xdist`). They are saved in batches; at the session's end come
the session unit, late data (child processes that reported after their test,
lines threads ran for a test that had finished), the run's statistics,
the `--testmon-cov` export and the terminal summary.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

import pytest

from testmon_watch.core.records import Execution, SessionRecording, TestRecord, TestRecording
from testmon_watch.paths import ProjectPaths
from testmon_watch.pytest_plugin.fast_path_reasons import not_taken_line
from testmon_watch.pytest_plugin.filtered_modules import config_filter
from testmon_watch.pytest_plugin.names import PAYLOAD_KEY
from testmon_watch.pytest_plugin.session_state import SessionState
from testmon_watch.wire import xdist
from testmon_watch.wording import describe_reasons

# Results are saved when this many tests wait, or this long after the last save.
FLUSH_TESTS = 200
FLUSH_SECONDS = 1.0
# ...unless the parse helper still owes files that the save needs: saving now would
# parse them here a second time (packaging: 330 ms of a first run). Up to these bounds.
DEFER_TESTS = 5000
DEFER_SECONDS = 30.0


class ResultHooks:
    """The pytest plugin that saves recorded tests and reports the run's outcome."""

    def __init__(self, state: SessionState) -> None:
        self.state = state
        self.pending_tests: list[TestRecord] = []
        self.pending_units: list[Execution] = []
        self.late_executions: list[Execution] = []
        self.written = 0  # tests saved this run
        self.last_flush = time.monotonic()
        self.ran: set[str] = set()  # node ids of the tests this run ran
        self.misses: list[str] = []  # --testmon-verify: deselectable tests whose outcome changed
        self.coverage_message: str | None = None
        self.session: pytest.Session | None = None  # once the run is finished

    # -- recorded tests ---------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.ran.add(report.nodeid)
        # Under xdist the controller gets a worker's recording with the report.
        carried = getattr(report, PAYLOAD_KEY, None)
        if carried is not None and self.state.store is not None:
            try:
                recording = xdist.decode_test(carried)
            except ValueError as exc:
                self.state.messages.append(f"could not read an xdist worker's recording ({exc})")
                return
            self.receive_test(recording)

    def receive_test(self, recording: TestRecording) -> None:
        """A test finished recording (in this process or, under xdist, in a worker)."""
        store = self.state.store
        if store is None:
            return
        self.pending_units.extend(recording.units)
        store.modules.update(recording.modules)
        self.pending_tests.append(recording.test)
        if self.state.options.verify:
            self._check_verify(recording.test)
        waited = time.monotonic() - self.last_flush
        if len(self.pending_tests) >= FLUSH_TESTS or waited > FLUSH_SECONDS:
            helper = self.state.helper
            if (
                helper is not None
                and len(self.pending_tests) < DEFER_TESTS
                and waited < DEFER_SECONDS
                and helper.owes()
            ):
                return
            self._flush()

    def receive_worker_output(self, output: Mapping[str, object]) -> None:
        """xdist controller: a worker's session-wide recording arrives with its shutdown."""
        carried = output.get(PAYLOAD_KEY)
        if carried is None:
            return
        try:
            recording = xdist.decode_session(carried)
        except ValueError as exc:
            self.state.messages.append(f"could not read an xdist worker's recording ({exc})")
            return
        self.receive_session(recording)

    def receive_session(self, recording: SessionRecording) -> None:
        """The session-wide recording of this process or of an xdist worker."""
        store = self.state.store
        if store is not None:
            self.pending_units.extend(recording.units)
            store.modules.update(recording.modules)
            self.late_executions.extend(recording.late)

    def _check_verify(self, test: TestRecord) -> None:
        plan = self.state.plan
        if plan is None:
            return
        known = plan.known.get(test.nodeid)
        if known is None or known.reasons:
            return
        if known.outcome != test.outcome:
            self.misses.append(f"{test.nodeid}: {known.outcome} -> {test.outcome}")

    def _flush(self) -> None:
        self.last_flush = time.monotonic()
        state = self.state
        if state.store is None or (not self.pending_tests and not self.pending_units):
            return
        units, tests = self.pending_units, self.pending_tests
        self.pending_units, self.pending_tests = [], []
        self.written += len(tests)
        assert state.db is not None
        try:
            with state.engine_io(), state.db.transaction():
                state.store.save_units(units)
                state.store.save_tests(tests)
        except Exception as exc:  # noqa: BLE001 - a failed save must not fail the test run
            state.messages.append(f"could not save results ({exc}); they will run again next time")
            state.close_store()

    def _merge_late(self) -> None:
        state = self.state
        if state.store is None or state.db is None or not self.late_executions:
            return
        try:
            with state.engine_io(), state.db.transaction():
                state.store.merge_late(self.late_executions)
        except Exception as exc:  # noqa: BLE001 - a failed merge must not fail the test run
            state.messages.append(f"could not save late child-process or thread data ({exc})")

    # -- the end of the session ---------------------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_sessionfinish(
        self, session: pytest.Session, exitstatus: int
    ) -> Generator[None, Any, None]:
        state = self.state
        if state.hooks is not None:
            recording = state.hooks.session_recording()
            if state.worker:
                output = state.config.workeroutput  # type: ignore[attr-defined]
                output[PAYLOAD_KEY] = xdist.encode_session(recording)
            else:
                self.receive_session(recording)
        if state.recorder is not None:
            state.recorder.stop()
            state.recorder.close_children()
        # Before yielding: the terminal summary (printed by the terminal reporter's
        # own wrapper) must already see what we saved and exported.
        if not state.worker:
            self._flush()
            self._merge_late()
            self._finish_run(session)
            self._export_coverage()
        state.end_parse_helper()
        yield
        if state.db is not None:
            state.db.close()
            state.db = None

    def _finish_run(self, session: pytest.Session) -> None:
        state = self.state
        plan, db = state.plan, state.db
        if plan is None or db is None:
            return
        saved = sum(t.duration for p in state.skipped_files for t in plan.known.on_path(p))
        try:
            with db.transaction():
                db.save_run(
                    plan.env_id,
                    state.started_at,
                    len(state.selected),
                    state.deselected_count,
                    saved,
                )
                if state.store is not None and state.filtered_modules:
                    state.store.save_filtered_modules(
                        config_filter(state.config), state.filtered_modules
                    )
                # Garbage appears only when tests are deleted or re-recorded; a
                # no-change run has none, and scanning every row costs time.
                if self.written and session.testsfailed == 0:
                    db.collect_garbage()
        except Exception as exc:  # noqa: BLE001 - nor may failed statistics
            state.messages.append(f"could not save run statistics ({exc})")
        self.session = session
        self._fix_exit_status()

    def _fix_exit_status(self) -> None:
        """Everything deselected is success, not "no tests ran"; a verify miss is failure."""
        session, plan = self.session, self.state.plan
        if session is None or plan is None:
            return
        if (
            session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED
            and self.state.options.select
            and (self.state.deselected_count or plan.known)
        ):
            session.exitstatus = pytest.ExitCode.OK
        if self.misses and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _export_coverage(self) -> None:
        state = self.state
        source = state.options.coverage_source
        if source is None or state.plan is None or state.db is None:
            return
        from testmon_watch.measure.coverage_export import SourceError, export_coverage

        try:
            summary = export_coverage(
                state.db,
                state.plan.env_id,
                state.root,
                ProjectPaths.of(state.root).coverage_file,
                source=source,
                ran=self.ran,
            )
        except SourceError as exc:
            state.messages.append(f"could not write .coverage: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - coverage.py or SQLite failed: say it, keep the run
            state.messages.append(f"could not write .coverage ({exc})")
            return
        self.coverage_message = summary.message(Path(state.config.invocation_params.dir))

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.state.end_parse_helper()  # sessionfinish normally did
        # Again, last: other plugins' sessionfinish hooks may have put the old status
        # back (syrupy ORs in the status the hook was called with).
        self._fix_exit_status()

    # -- the terminal summary -------------------------------------------------------------

    def pytest_terminal_summary(
        self, terminalreporter: Any, exitstatus: int, config: pytest.Config
    ) -> None:
        tr = terminalreporter
        state = self.state
        plan = state.plan
        if state.options.explain:
            tr.write_sep("-", "testmon-watch: why these tests")
            tr.write_line(not_taken_line(config))  # this run took the normal path
        if state.options.explain and plan is not None:
            for nodeid, reasons in sorted(state.selected.items()):
                tr.write_line(f"{nodeid}: " + describe_reasons(reasons))
            for arg in config.args:
                if "::" in str(arg):
                    nodeid = self._nodeid_of_arg(str(arg))
                    if nodeid not in state.selected:
                        tr.write_line(f"{nodeid}: not selected: {plan.why_not(nodeid)}")
        if state.options.verify and plan is not None:
            if self.misses:
                tr.write_sep("=", f"testmon-watch verify: {len(self.misses)} missed", red=True)
                for miss in self.misses:
                    tr.write_line(f"MISSED {miss}")
            else:
                checked = len(plan.known) - len(plan.selected_known)
                tr.write_line(
                    f"testmon-watch verify: no misses ({checked} deselectable tests "
                    "kept their outcome)"
                )
        for message in state.messages[-3:]:
            if message.startswith("could not"):
                tr.write_line(f"testmon-watch: {message}", yellow=True)
        if plan is not None and plan.baseline_refused and not _header_shown(config):
            # Said in the header otherwise; a refused baseline must not go unnoticed under -q.
            tr.write_line(f"testmon-watch: {plan.baseline_message}", yellow=True)
        if self.coverage_message:
            tr.write_line(self.coverage_message)

    def _nodeid_of_arg(self, arg: str) -> str:
        path, _, rest = arg.partition("::")
        invocation = Path(self.state.config.invocation_params.dir)
        try:
            rel = (invocation / path).resolve().relative_to(self.state.root)
        except ValueError:
            return arg
        return f"{rel.as_posix()}::{rest}"


def _header_shown(config: pytest.Config) -> bool:
    """Did pytest print the report header (where the plan's messages went)?"""
    return config.get_verbosity() >= 0 and not config.getoption("no_header", False)
