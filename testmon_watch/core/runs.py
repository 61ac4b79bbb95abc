"""The one model of a run and of each test in it, for the worker, the session and the front ends.

Pure Python with no I/O, like `outcomes`: the warm worker's server and client,
the watch session, the headless printer and the app all follow a run with the
same `Run`, fed by the same protocol events, instead of each keeping its own
copy of "which test is running", "what counts so far" and "how did it end".

    RunState      requested -> running -> finished | cancelled | crashed | timed out
    TestPhase     where one test stands: queued, running, finished (with an
                  Outcome), cancelled, not run, removed, up to date
    WorkerState   the warm worker: starting, warm, running, recycling, stopped
    WorkerExit    how a run ended when pytest did not end it (the exit status
                  besides pytest's own code)

Counts are never kept beside the tests: `Run.counts()` and `Run.phase_counts()`
count the tests' states, so they always add up to the tests of the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import ClassVar

from testmon_watch.core.outcomes import Outcome, RunMode


class WorkerState(str, Enum):
    """The warm worker as its client sees it."""

    STARTING = "starting"  # the server process is importing; no command is sent yet
    WARM = "warm"  # ready, no run in flight
    RUNNING = "running"  # a run is in flight
    RECYCLING = "recycling"  # re-executing itself with fresh imports
    STOPPED = "stopped"  # shut down, or given up after repeated failed starts

    def __str__(self) -> str:
        return self.value


class WorkerExit(str, Enum):
    """How a run ended when pytest did not end it (`RunFinished.exitstatus` besides an int)."""

    CRASHED = "crashed"  # the test process died (a signal, os._exit) or the worker did
    TIMEOUT = "timeout"  # a test ran past the per-test limit; the worker killed the run
    CANCELLED = "cancelled"  # the user stopped the run

    def __str__(self) -> str:
        return self.value


class PytestExit(IntEnum):
    """pytest's own exit codes (`pytest.ExitCode`, repeated here so no front end imports pytest)."""

    OK = 0
    TESTS_FAILED = 1
    INTERRUPTED = 2
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4
    NO_TESTS_COLLECTED = 5


# A run's exit status: pytest's exit code (any int a plugin or conftest chose), or how
# the worker ended it.
ExitStatus = int | WorkerExit


class RunState(str, Enum):
    """Where a run stands."""

    REQUESTED = "requested"  # asked of the worker; nothing selected yet
    RUNNING = "running"  # collected and selected; tests are running
    FINISHED = "finished"  # pytest ended it (its exit code says how the tests did)
    CANCELLED = "cancelled"
    CRASHED = "crashed"
    TIMED_OUT = "timed_out"

    def __str__(self) -> str:
        return self.value

    @property
    def over(self) -> bool:
        return self not in (RunState.REQUESTED, RunState.RUNNING)

    @classmethod
    def ended_by(cls, exitstatus: ExitStatus) -> RunState:
        """The final state of a run that ended with `exitstatus`."""
        if isinstance(exitstatus, WorkerExit):
            return _ENDED_BY[exitstatus]
        return cls.FINISHED


_ENDED_BY = {
    WorkerExit.CANCELLED: RunState.CANCELLED,
    WorkerExit.CRASHED: RunState.CRASHED,
    WorkerExit.TIMEOUT: RunState.TIMED_OUT,
}


class TestPhase(str, Enum):
    """Where one test stands: in a run, or in a front end's list of every known test."""

    QUEUED = "queued"  # selected; not started yet
    RUNNING = "running"
    FINISHED = "finished"  # a run finished it: `outcome` is that run's
    CANCELLED = "cancelled"  # selected, but the run stopped before it finished
    NOT_RUN = "not_run"  # its module failed to import or collect
    REMOVED = "removed"  # it no longer exists
    UP_TO_DATE = "up_to_date"  # not selected: nothing it depends on changed; `outcome` stands

    def __str__(self) -> str:
        return self.value

    @property
    def active(self) -> bool:
        """Queued or running: the run in flight still owes this test a result."""
        return self in (TestPhase.QUEUED, TestPhase.RUNNING)


# Not a pytest test class, though its name says Test (set outside the body, which would
# make it a member).
setattr(TestPhase, "__test__", False)  # noqa: B010


@dataclass
class TestStatus:
    """One test's phase and the last outcome known for it."""

    __test__: ClassVar[bool] = False

    nodeid: str
    phase: TestPhase = TestPhase.QUEUED
    # FINISHED: this run's outcome; otherwise the last one known to whoever keeps this
    # record (inside a `Run` that is nothing before the test finishes).
    outcome: Outcome | None = None
    duration: float | None = None

    @property
    def failing(self) -> bool:
        return self.outcome is not None and self.outcome.failing


@dataclass
class Run:
    """One run: what was asked, where it stands, and every test in it.

    Fed with the protocol's events in order: `start` (run_started), `test_started`,
    `test_finished`, `finish` (run_finished). A test the run had not selected (a
    module that failed to collect is reported under its path) joins it when it
    starts or finishes.
    """

    run_id: str
    mode: RunMode = RunMode.AFFECTED
    trigger: str = ""
    state: RunState = RunState.REQUESTED
    tests: dict[str, TestStatus] = field(default_factory=dict)  # selection order
    selected: int = 0  # tests selected at the start (`tests` may gain collection errors)
    deselected: int = 0
    current: str | None = None  # the test running now
    exitstatus: ExitStatus | None = None
    crashed: str | None = None  # the test that crashed or timed out
    # Collectors (test modules, classes) that failed to import or collect: node id ->
    # what pytest printed. pytest runs none of their tests.
    collection_errors: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)  # tests that no longer exist
    started: bool = False  # selection was done (run_started), whatever came after
    cancel_requested: bool = False  # asked to stop; it ends when its process is gone
    timed_out: str | None = None  # the test the worker stopped for running too long

    # -- reading ---------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.state.over

    def counts(self) -> dict[Outcome, int]:
        """Finished tests by outcome."""
        result: dict[Outcome, int] = {}
        for test in self.tests.values():
            if test.phase is TestPhase.FINISHED and test.outcome is not None:
                result[test.outcome] = result.get(test.outcome, 0) + 1
        return result

    def phase_counts(self) -> dict[TestPhase, int]:
        """Tests by phase; the values add up to `len(self.tests)`."""
        result: dict[TestPhase, int] = {}
        for test in self.tests.values():
            result[test.phase] = result.get(test.phase, 0) + 1
        return result

    # -- following the events --------------------------------------------------------

    def _test(self, nodeid: str) -> TestStatus:
        test = self.tests.get(nodeid)
        if test is None:
            test = self.tests[nodeid] = TestStatus(nodeid)
        return test

    def start(
        self,
        nodeids: Iterable[str],
        deselected: int = 0,
        collection_errors: dict[str, str] | None = None,
        removed: Iterable[str] = (),
    ) -> None:
        """Selection is done: tests queued, collectors that failed, tests that are gone."""
        self.state, self.started = RunState.RUNNING, True
        for nodeid in nodeids:
            self._test(nodeid)
        self.selected = len(self.tests)
        self.deselected = deselected
        self.collection_errors = dict(collection_errors or {})
        self.removed = list(removed)

    def test_started(self, nodeid: str) -> None:
        self._test(nodeid).phase = TestPhase.RUNNING
        self.current = nodeid

    def test_finished(self, nodeid: str, outcome: Outcome, duration: float | None = None) -> None:
        test = self._test(nodeid)
        test.phase, test.outcome, test.duration = TestPhase.FINISHED, outcome, duration
        if self.current == nodeid:
            self.current = None

    def not_run(self, nodeids: Iterable[str]) -> None:
        """These tests cannot run: their module failed to import or collect."""
        for nodeid in nodeids:
            test = self._test(nodeid)
            test.phase, test.outcome = TestPhase.NOT_RUN, None

    def remove(self, nodeids: Iterable[str]) -> None:
        """These tests no longer exist (their function, class or file is gone)."""
        for nodeid in nodeids:
            test = self._test(nodeid)
            test.phase, test.outcome = TestPhase.REMOVED, None

    def cancel(self) -> None:
        """Stop was asked; `finish` says when the run is really over."""
        self.cancel_requested = True

    def time_out(self) -> str | None:
        """The running test ran too long: the worker ends the run. Returns that test."""
        self.timed_out = self.current
        return self.timed_out

    def finish(
        self,
        exitstatus: ExitStatus,
        crashed: str | None = None,
        stopped: str | None = None,
        stopped_after: float | None = None,
    ) -> None:
        """The run is over; every test it still owed a result gets a phase that says why.

        The test that crashed or timed out finishes with that outcome. When the
        worker ended the run (cancel, crash, timeout) the rest are cancelled; the
        one that was running (`stopped`) keeps how long it ran. When pytest ended
        it (collection errors, -x, pytest.exit) they were never run.
        """
        self.state = RunState.ended_by(exitstatus)
        self.exitstatus = exitstatus
        self.crashed = crashed
        self.current = None
        if crashed is not None and crashed in self.tests and self.tests[crashed].phase.active:
            timed_out = exitstatus is WorkerExit.TIMEOUT
            self.test_finished(crashed, Outcome.TIMEOUT if timed_out else Outcome.CRASHED)
        left = TestPhase.CANCELLED if isinstance(exitstatus, WorkerExit) else TestPhase.NOT_RUN
        for test in self.tests.values():
            if test.phase.active:
                test.phase = left
                test.outcome = None
        if stopped is not None and stopped in self.tests and stopped_after is not None:
            self.tests[stopped].duration = stopped_after
