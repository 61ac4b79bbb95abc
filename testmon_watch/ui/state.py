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
from typing import Literal

from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.reasons import Reason
from testmon_watch.core.runs import Run, TestPhase, TestStatus, WorkerExit, WorkerState
from testmon_watch.session import ChangesSeen, KnownTest, RunDone, RunRequested, SessionNotice
from testmon_watch.wire.worker_protocol import (
    Notice,
    RunFinished,
    RunStarted,
    TestFinished,
    TestStarted,
    WorkerReady,
    WorkerRecycling,
    trigger_text,
)
from testmon_watch.wording import OUTCOME_MARKS

# What a test's mark shows: its outcome, or its phase while the run in flight owes it a
# result, or (up to date and passing) that phase. UNKNOWN: no result and nothing going
# on, e.g. a run stopped before it ran (issue #12 shows the model's phases instead).
UNKNOWN: Literal["unknown"] = "unknown"
Status = Outcome | TestPhase | Literal["unknown"]

# Display order: failures first, then what is going on, then the rest.
STATUS_ORDER: dict[Status, int] = {
    Outcome.CRASHED: 0,
    Outcome.TIMEOUT: 1,
    Outcome.ERROR: 2,
    Outcome.FAILED: 3,
    Outcome.XPASSED: 4,
    TestPhase.RUNNING: 5,
    TestPhase.QUEUED: 6,
    Outcome.PASSED: 7,
    Outcome.XFAILED: 8,
    Outcome.SKIPPED: 9,
    TestPhase.UP_TO_DATE: 10,
    UNKNOWN: 11,
}
PHASE_MARKS: dict[Status, str] = {
    TestPhase.RUNNING: "▶",
    TestPhase.QUEUED: "…",
    TestPhase.UP_TO_DATE: "·",
    UNKNOWN: "?",
}
MARKS: dict[Status, str] = dict(PHASE_MARKS)
MARKS.update((outcome, mark) for outcome, mark in OUTCOME_MARKS.items())
STATUS_LABEL: dict[Status, str] = {TestPhase.UP_TO_DATE: "up to date", Outcome.TIMEOUT: "timed out"}
# Runs that change nothing by themselves: a flip in one of them is a flaky suspect.
CHANGE_FREE_MODES = frozenset({RunMode.ALL, RunMode.FAILED})
MANUAL_TRIGGERS = ("start", "manual")


def label(status: Status) -> str:
    """The word for a status on screen."""
    return STATUS_LABEL.get(status, str(status))


def split_nodeid(nodeid: str) -> tuple[str, str | None, str]:
    """'tests/t.py::C::test[a::b]' -> ('tests/t.py', 'C', 'test[a::b]')."""
    head, bracket, param = nodeid.partition("[")
    parts = head.split("::")
    name = parts[-1] + bracket + param
    if len(parts) == 1:
        return "", None, name
    cls = "::".join(parts[1:-1]) or None
    return parts[0], cls, name


@dataclass
class TestState(TestStatus):
    """One test as the UI shows it: the run model's phase and last outcome, and its details."""

    __test__ = False
    # Not queued or running: what is known stands (it shows its last outcome).
    phase: TestPhase = TestPhase.UP_TO_DATE
    result: TestFinished | None = None  # the latest TestFinished
    reasons: list[Reason] = field(default_factory=list)
    history: list[tuple[str, Outcome]] = field(default_factory=list)  # (trigger, outcome)
    flaky: bool = False

    @property
    def status(self) -> Status:
        if self.phase.active:
            return self.phase
        if self.outcome is None:
            return UNKNOWN
        if self.phase is TestPhase.UP_TO_DATE and not self.outcome.failing:
            return TestPhase.UP_TO_DATE
        return self.outcome

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
        self.tests: dict[str, TestState] = {}
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
        self.progress_total = 0
        self.progress_done = 0
        self.version = 0  # bumped when the set of tests or their order may change

    # -- reading ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.current is not None and not self.current.done

    @property
    def last_latency(self) -> float | None:
        return self.latencies[-1] if self.latencies else None

    @property
    def median_latency(self) -> float | None:
        return statistics.median(self.latencies) if self.latencies else None

    def counts(self) -> dict[Status, int]:
        result: dict[Status, int] = {}
        for test in self.tests.values():
            result[test.status] = result.get(test.status, 0) + 1
        return result

    @property
    def flaky_suspects(self) -> list[TestState]:
        return [t for t in self.tests.values() if t.flaky]

    def failures(self, names: Iterable[str] | None = None) -> list[str]:
        tests = self.tests.values() if names is None else (self.tests[n] for n in names)
        return [t.nodeid for t in tests if t.failing]

    def grouped(
        self, name_filter: str = "", file_filter: str = ""
    ) -> list[tuple[str, list[tuple[str | None, list[TestState]]]]]:
        """Files, then classes, then tests, failures first at each level."""
        needle, file_needle = name_filter.lower(), file_filter.lower()
        files: dict[str, dict[str | None, list[TestState]]] = {}
        for test in self.tests.values():
            path, cls, _name = split_nodeid(test.nodeid)
            if needle and needle not in test.nodeid.lower():
                continue
            if file_needle and file_needle not in path.lower():
                continue
            files.setdefault(path, {}).setdefault(cls, []).append(test)

        def rank(tests: list[TestState]) -> int:
            return min(STATUS_ORDER.get(t.status, 99) for t in tests)

        result = []
        for path, classes in files.items():
            groups = []
            for cls, tests in classes.items():
                tests.sort(key=lambda t: (STATUS_ORDER.get(t.status, 99), t.nodeid))
                groups.append((cls, tests))
            groups.sort(key=lambda g: (rank(g[1]), g[0] is not None, g[0] or ""))
            result.append((path, groups))
        result.sort(key=lambda f: (min(rank(g[1]) for g in f[1]), f[0]))
        return result

    # -- loading ------------------------------------------------------------------------

    def load_known(self, known: Iterable[KnownTest]) -> None:
        """Tests recorded by earlier runs, shown up to date with their last outcome."""
        for row in known:
            test = self.tests.setdefault(row.nodeid, TestState(row.nodeid))
            if test.outcome is None:
                test.outcome, test.duration = row.outcome, row.duration
                if not test.phase.active:  # a run that started first owes it a result
                    test.phase = TestPhase.UP_TO_DATE
        self.version += 1

    # -- folding events -------------------------------------------------------------------

    def apply(self, event: object) -> list[Flip]:
        if isinstance(event, TestFinished):
            return self._test_finished(event)
        if isinstance(event, TestStarted):
            self._test_started(event)
        elif isinstance(event, RunRequested):
            self._run_requested(event)
        elif isinstance(event, RunStarted):
            self._run_started(event)
        elif isinstance(event, RunFinished):
            self._run_finished(event)
        elif isinstance(event, RunDone):
            self._run_done(event)
        elif isinstance(event, WorkerReady):
            self.worker_state, self.worker_detail = WorkerState.WARM, ""
        elif isinstance(event, WorkerRecycling):
            self.worker_state, self.worker_detail = WorkerState.RECYCLING, event.reason
        elif isinstance(event, ChangesSeen):
            self.last_trigger = ", ".join(event.paths[:3])
        elif isinstance(event, (Notice, SessionNotice)):
            self.notices.append(event.text)
        return []

    def _test(self, nodeid: str) -> TestState:
        test = self.tests.get(nodeid)
        if test is None:
            test = self.tests[nodeid] = TestState(nodeid)
            self.version += 1
        return test

    def _run_for(self, run_id: str) -> RunRecord | None:
        for record in reversed(self.runs):
            if record.run_id == run_id:
                return record
        return None

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
        record.start((item.nodeid for item in event.selected), event.deselected)
        self.worker_state, self.worker_detail = WorkerState.RUNNING, ""
        for item in event.selected:
            test = self._test(item.nodeid)
            test.phase, test.reasons = TestPhase.QUEUED, list(item.reasons)
        if record.mode != RunMode.NODEIDS:
            # Every other test was considered and not selected: its last result stands.
            saved = 0.0
            for test in self.tests.values():
                if test.nodeid not in record.tests:
                    test.phase = TestPhase.UP_TO_DATE
                    saved += test.duration or 0.0
            if record.mode == RunMode.AFFECTED:
                record.time_saved = saved
                self.time_saved += saved
        self.progress_total, self.progress_done = len(event.selected), 0
        self.version += 1

    def _test_started(self, event: TestStarted) -> None:
        self._test(event.nodeid).phase = TestPhase.RUNNING
        record = self._run_for(event.run_id)
        if record is not None:
            record.test_started(event.nodeid)

    def _test_finished(self, event: TestFinished) -> list[Flip]:
        test = self._test(event.nodeid)
        old = test.outcome
        test.outcome, test.phase, test.result = event.outcome, TestPhase.FINISHED, event
        test.duration = event.duration
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

    def _run_finished(self, event: RunFinished) -> None:
        record = self._run_for(event.run_id)
        if record is not None:
            record.finish(event.exitstatus, event.crashed)
        if event.crashed and event.crashed in self.tests:
            test = self.tests[event.crashed]
            if test.phase.active:
                timed_out = event.exitstatus == WorkerExit.TIMEOUT
                test.outcome = Outcome.TIMEOUT if timed_out else Outcome.CRASHED
                test.phase = TestPhase.FINISHED
        for test in self.tests.values():
            if test.phase.active:  # the run stopped before it ran: its last result stands
                test.phase = TestPhase.CANCELLED
        if self.worker_state is WorkerState.RUNNING:
            self.worker_state = WorkerState.WARM
        self.version += 1

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
