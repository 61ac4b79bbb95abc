"""The app's model of the world, built from session events: pure Python, no Textual import.

`WatchState.apply(event)` folds one session event (a worker protocol message or
a session dataclass) into: every known test with its status, latest result and
selection reasons; a run history keyed by trigger with the tests that flipped;
flaky suspects; counts; latency; time saved by deselection; the worker's state.
Tests and runs are the run model's (`core.runs`): each test is a `TestStatus`
(phase and last outcome) with the app's details, each run of the history a
`Run`, fed with the same events as the session's own.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.reasons import Reason
from testmon_watch.core.runs import Run, TestPhase, TestStatus, WorkerExit, WorkerState
from testmon_watch.session import ChangesSeen, KnownTest, RunDone, RunRequested, SessionNotice
from testmon_watch.ui.display import STATUS_ORDER, Status, display_status, label
from testmon_watch.ui.nodeids import collects, error_file, split_nodeid
from testmon_watch.wire.worker_protocol import (
    CollectionError,
    Notice,
    RunFinished,
    RunStarted,
    TestFinished,
    TestStarted,
    WorkerReady,
    WorkerRecycling,
    trigger_text,
)

__all__ = ["Flip", "RunRecord", "Status", "TestState", "WatchState", "label", "split_nodeid"]

# Runs that change nothing by themselves: a flip in one of them is a flaky suspect.
# A test with one of these statuses is failing: `f` reruns it, `n` jumps to it.
FAILING_STATUSES = frozenset(o for o in Outcome if o.failing)
CHANGE_FREE_MODES = frozenset({RunMode.ALL, RunMode.FAILED})
MANUAL_TRIGGERS = ("start", "manual")


@dataclass
class TestState(TestStatus):
    """One test as the UI shows it: the run model's phase, its last outcome, and its details.

    `outcome` and `duration` are the last result any run produced (kept for flips
    and history); what the screen shows is `status`, made from the phase, so a
    cancelled or not-run test never shows that earlier result as its mark.
    """

    __test__ = False
    phase: TestPhase = TestPhase.UP_TO_DATE
    result: TestFinished | None = None  # the latest TestFinished
    reasons: list[Reason] = field(default_factory=list)
    history: list[tuple[str, Outcome]] = field(default_factory=list)  # (trigger, outcome)
    flaky: bool = False
    ran_for: float | None = None  # cancelled: how long it ran before the run was stopped

    @property
    def status(self) -> Status:
        return display_status(self)

    @property
    def shown_duration(self) -> float | None:
        """The time that goes with the status: the result's, or how long a stopped test ran."""
        if self.phase in (TestPhase.FINISHED, TestPhase.UP_TO_DATE):
            return self.duration
        if self.phase is TestPhase.CANCELLED:
            return self.ran_for
        return None

    @property
    def shows_failure(self) -> bool:
        """The screen shows it failing: `f` reruns it, `n` jumps to it."""
        return self.status in FAILING_STATUSES

    @property
    def file(self) -> str:
        return split_nodeid(self.nodeid)[0]


@dataclass
class RunRecord(Run):
    """One run of the history, keyed by what triggered it: the run model and what the app adds."""

    flipped: list[tuple[str, Outcome, Outcome]] = field(default_factory=list)  # nodeid, old, new
    latency: float | None = None
    time_saved: float = 0.0


@dataclass(frozen=True)
class Flip:
    """A test went from passing to failing or back (what the app notifies)."""

    nodeid: str
    old: Outcome
    new: Outcome


class WatchState:
    """Everything the panes show; `apply` returns the flips the event caused."""

    def __init__(self) -> None:
        self.tests: dict[str, TestState] = {}  # the tests that exist now
        self.runs: list[RunRecord] = []
        self.current: RunRecord | None = None
        self.worker_state = WorkerState.STARTING
        self.worker_detail = ""
        self.paused = False
        self.watched_files = 0
        self.last_trigger = ""
        self.latencies: list[float] = []
        self.time_saved = 0.0
        self.notices: list[str] = []
        self.message = ""  # a one-line note in the status bar (notices when toasts are off)
        self.progress_total = 0
        self.progress_done = 0
        # Collectors that failed to import or collect, by node id: they belong to their file.
        self.collection_errors: dict[str, CollectionError] = {}
        self.looked_in: list[str] = []  # where pytest looked for tests in the last run
        self.version = 0  # bumped when the set of tests or their order may change

    # -- reading ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.current is not None and not self.current.done

    @property
    def started_runs(self) -> int:
        """Runs that got as far as selecting (an empty project's first run counts)."""
        return sum(1 for r in self.runs if r.started)

    @property
    def last_latency(self) -> float | None:
        return self.latencies[-1] if self.latencies else None

    @property
    def median_latency(self) -> float | None:
        return statistics.median(self.latencies) if self.latencies else None

    def counts(self) -> dict[Status, int]:
        """Tests by the status they show; the values add up to `len(self.tests)`."""
        result: dict[Status, int] = {}
        for test in self.tests.values():
            result[test.status] = result.get(test.status, 0) + 1
        return result

    @property
    def error_files(self) -> dict[str, list[CollectionError]]:
        """Files with a collector that failed to import or collect, and their errors."""
        files: dict[str, list[CollectionError]] = {}
        for error in self.collection_errors.values():
            files.setdefault(error_file(error), []).append(error)
        return files

    @property
    def flaky_suspects(self) -> list[TestState]:
        return [t for t in self.tests.values() if t.flaky]

    def failures(self, names: Iterable[str] | None = None) -> list[str]:
        tests = self.tests.values() if names is None else (self.tests[n] for n in names)
        return [t.nodeid for t in tests if t.shows_failure]

    def grouped(
        self, name_filter: str = "", file_filter: str = ""
    ) -> list[tuple[str, list[tuple[str | None, list[TestState]]]]]:
        """Files, then classes, then tests, failures first at each level.

        A file whose module failed to import is listed even with no known test, and
        first: its error is the first thing to fix.
        """
        needle, file_needle = name_filter.lower(), file_filter.lower()
        files: dict[str, dict[str | None, list[TestState]]] = {}
        broken = self.error_files
        for path in broken:
            if (not needle or needle in path.lower()) and file_needle in path.lower():
                files[path] = {}
        for test in self.tests.values():
            path, cls, _name = split_nodeid(test.nodeid)
            if needle and needle not in test.nodeid.lower():
                continue
            if file_needle and file_needle not in path.lower():
                continue
            files.setdefault(path, {}).setdefault(cls, []).append(test)

        def rank(tests: list[TestState]) -> int:
            return min((STATUS_ORDER.get(t.status, 99) for t in tests), default=99)

        result = []
        for path, classes in files.items():
            groups = []
            for cls, tests in classes.items():
                tests.sort(key=lambda t: (STATUS_ORDER.get(t.status, 99), t.nodeid))
                groups.append((cls, tests))
            groups.sort(key=lambda g: (rank(g[1]), g[0] is not None, g[0] or ""))
            result.append((path, groups))
        result.sort(
            key=lambda f: (
                f[0] not in broken,
                min((rank(g[1]) for g in f[1]), default=99),
                f[0],
            )
        )
        return result

    # -- loading ------------------------------------------------------------------------

    def load_known(self, known: Iterable[KnownTest]) -> None:
        """Tests recorded by earlier runs, shown up to date with their last outcome."""
        for row in known:
            test = self.tests.setdefault(row.nodeid, TestState(row.nodeid))
            if test.outcome is None:
                test.outcome, test.duration = row.outcome, row.duration
                if test.phase is TestPhase.UP_TO_DATE and self.in_error(row.nodeid):
                    test.phase = TestPhase.NOT_RUN
        self.version += 1

    # -- folding events -------------------------------------------------------------------

    def apply(self, event: object) -> list[Flip]:
        if isinstance(event, TestFinished):
            return self._test_finished(event)
        if isinstance(event, RunFinished):
            return self._run_finished(event)
        if isinstance(event, TestStarted):
            self._test_started(event)
        elif isinstance(event, RunRequested):
            self._run_requested(event)
        elif isinstance(event, RunStarted):
            self._run_started(event)
        elif isinstance(event, RunDone):
            self._run_done(event)
        elif isinstance(event, WorkerReady):
            self.worker_state, self.worker_detail = WorkerState.WARM, ""
        elif isinstance(event, WorkerRecycling):
            self.worker_state, self.worker_detail = WorkerState.RECYCLING, event.reason
        elif isinstance(event, ChangesSeen):
            self.last_trigger = ", ".join(event.paths)
        elif isinstance(event, (Notice, SessionNotice)):
            self.notices.append(event.text)
        return []

    def _test(self, nodeid: str) -> TestState:
        test = self.tests.get(nodeid)
        if test is None:
            test = self.tests[nodeid] = TestState(nodeid, phase=TestPhase.QUEUED)
            self.version += 1
        return test

    def _run_for(self, run_id: str) -> RunRecord | None:
        for record in reversed(self.runs):
            if record.run_id == run_id:
                return record
        return None

    def in_error(self, nodeid: str) -> bool:
        """Its module (or class) failed to import or collect in the last run that looked."""
        return any(collects(error, nodeid) for error in self.collection_errors.values())

    def _run_requested(self, event: RunRequested) -> None:
        self.runs.append(RunRecord(event.run_id, mode=event.mode, trigger=event.trigger))
        if event.trigger not in MANUAL_TRIGGERS and not event.trigger.startswith("key"):
            self.last_trigger = event.trigger

    def _run_started(self, event: RunStarted) -> None:
        record = self._run_for(event.run_id)
        if record is None:
            record = RunRecord(event.run_id, trigger=trigger_text(event.trigger))
            self.runs.append(record)
        self.current = record
        selected = [item.nodeid for item in event.selected]
        errors = {e.nodeid: e.longrepr for e in event.collection_errors}
        record.start(selected, event.deselected, errors, event.removed)
        self.worker_state, self.worker_detail = WorkerState.RUNNING, ""
        self.looked_in = list(event.looked_in)
        self._forget(event.removed)
        self._replace_errors(record.mode, selected, event.collection_errors)
        for item in event.selected:
            test = self._test(item.nodeid)
            test.phase, test.reasons, test.ran_for = TestPhase.QUEUED, list(item.reasons), None
        chosen = set(selected)
        saved = 0.0
        for test in self.tests.values():
            if test.nodeid in chosen:
                continue
            if self.in_error(test.nodeid):
                test.phase, test.ran_for = TestPhase.NOT_RUN, None
            elif record.mode != RunMode.NODEIDS and test.outcome is not None:
                # Considered and not selected: nothing it depends on changed.
                test.phase = TestPhase.UP_TO_DATE
                saved += test.duration or 0.0
        if record.mode == RunMode.AFFECTED:
            record.time_saved = saved
            self.time_saved += saved
        self.progress_total, self.progress_done = len(event.selected), 0
        self.version += 1

    def _forget(self, removed: Iterable[str]) -> None:
        """Tests (or whole files) that no longer exist leave the tree and the counts."""
        for gone in removed:
            for nodeid in [n for n in self.tests if n == gone or n.startswith(gone + "::")]:
                del self.tests[nodeid]

    def _replace_errors(
        self, mode: RunMode, selected: list[str], errors: list[CollectionError]
    ) -> None:
        """A whole-suite run's errors replace all; a run of node ids only its files' errors."""
        kept: dict[str, CollectionError] = {}
        if mode == RunMode.NODEIDS:
            targeted = {split_nodeid(n)[0] for n in selected} | {error_file(e) for e in errors}
            kept = {
                k: e for k, e in self.collection_errors.items() if error_file(e) not in targeted
            }
        kept.update((e.nodeid, e) for e in errors)
        self.collection_errors = kept

    def _test_started(self, event: TestStarted) -> None:
        self._test(event.nodeid).phase = TestPhase.RUNNING
        record = self._run_for(event.run_id)
        if record is not None:
            record.test_started(event.nodeid)

    def _test_finished(self, event: TestFinished) -> list[Flip]:
        test = self._test(event.nodeid)
        old = test.outcome
        test.outcome, test.phase, test.result = event.outcome, TestPhase.FINISHED, event
        test.duration, test.ran_for = event.duration, None
        record = self._run_for(event.run_id)
        if record is not None:
            record.test_finished(event.nodeid, event.outcome, event.duration)
        trigger = record.trigger if record is not None else ""
        test.history.append((trigger, event.outcome))
        self.progress_done += 1
        if old is None or old.failing == event.outcome.failing:
            return []
        mode = record.mode if record is not None else RunMode.AFFECTED
        if record is not None:
            record.flipped.append((event.nodeid, old, event.outcome))
        if mode in CHANGE_FREE_MODES or all(r.change_free for r in test.reasons):
            test.flaky = True
        return [Flip(event.nodeid, old, event.outcome)]

    def _run_finished(self, event: RunFinished) -> list[Flip]:
        """Every test the run still owed a result gets the run model's phase for it."""
        flips: list[Flip] = []
        crashed = self.tests.get(event.crashed) if event.crashed else None
        if crashed is not None and crashed.phase.active:
            # No result came for the test that crashed or timed out: it has one now.
            timed_out = event.exitstatus == WorkerExit.TIMEOUT
            outcome = Outcome.TIMEOUT if timed_out else Outcome.CRASHED
            ran = event.stopped_after if event.stopped == crashed.nodeid else None
            flips = self._test_finished(
                TestFinished(event.run_id, crashed.nodeid, outcome, ran or 0.0)
            )
            crashed.duration = ran
        record = self._run_for(event.run_id)
        left = (
            TestPhase.CANCELLED if isinstance(event.exitstatus, WorkerExit) else TestPhase.NOT_RUN
        )
        if record is not None:
            record.finish(event.exitstatus, event.crashed, event.stopped, event.stopped_after)
            for nodeid, status in record.tests.items():
                test = self.tests.get(nodeid)
                if test is not None and status.phase in (TestPhase.CANCELLED, TestPhase.NOT_RUN):
                    test.phase = status.phase
                    test.ran_for = status.duration if nodeid == event.stopped else None
        for test in self.tests.values():
            if test.phase.active:  # owed by a run this state did not follow from its start
                test.phase, test.ran_for = left, None
        if self.worker_state is WorkerState.RUNNING:
            self.worker_state = WorkerState.WARM
        self.version += 1
        return flips

    def _run_done(self, event: RunDone) -> None:
        record = self._run_for(event.run_id)
        if (
            record is not None
            and record.trigger not in MANUAL_TRIGGERS
            and not record.trigger.startswith("key")
        ):
            timing = event.timing
            latency = timing.get("first_result")
            if latency is None:
                latency = timing.get("done")
            if latency is not None:
                record.latency = latency
                self.latencies.append(latency)
        if self.current is record:
            self.current = None
