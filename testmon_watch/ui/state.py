"""The app's model of the world, built from session events: pure Python, no Textual import.

`WatchState.apply(event)` folds one session event (a worker protocol message or
a session dataclass) into: every known test with its status, latest result and
selection reasons; a run history keyed by trigger with the tests that flipped;
flaky suspects; counts; latency; time saved by deselection; the worker's state.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from testmon_watch.core.reasons import Reason
from testmon_watch.session import ChangesSeen, RunDone, RunRequested, SessionNotice
from testmon_watch.worker.protocol import (
    Notice,
    RunFinished,
    RunStarted,
    TestFinished,
    TestStarted,
    WorkerReady,
    WorkerRecycling,
)

FAILING = ("failed", "error", "crashed", "timeout", "xpassed")
PASSING = ("passed", "skipped", "xfailed")
# Display order: failures first, then what is going on, then the rest.
STATUS_ORDER = {
    "crashed": 0,
    "timeout": 1,
    "error": 2,
    "failed": 3,
    "xpassed": 4,
    "running": 5,
    "queued": 6,
    "passed": 7,
    "xfailed": 8,
    "skipped": 9,
    "deselected": 10,
    "unknown": 11,
}
MARKS = {
    "passed": "✓",
    "failed": "✗",
    "error": "E",
    "skipped": "s",
    "xfailed": "x",
    "xpassed": "X",
    "crashed": "!",
    "timeout": "T",
    "running": "▶",
    "queued": "…",
    "deselected": "·",
    "unknown": "?",
}
STATUS_LABEL = {"deselected": "up to date", "timeout": "timed out"}
# Runs that change nothing by themselves: a flip in one of them is a flaky suspect.
CHANGE_FREE_MODES = ("all", "failed")
MANUAL_TRIGGERS = ("start", "manual")


def split_nodeid(nodeid: str) -> tuple[str, str | None, str]:
    """'tests/t.py::C::test[a::b]' -> ('tests/t.py', 'C', 'test[a::b]')."""
    head, bracket, param = nodeid.partition("[")
    parts = head.split("::")
    name = parts[-1] + bracket + param
    if len(parts) == 1:
        return "", None, name
    cls = "::".join(parts[1:-1]) or None
    return parts[0], cls, name


def outcome_kind(outcome: str | None) -> str:
    if outcome in FAILING:
        return "fail"
    if outcome in PASSING:
        return "pass"
    return "none"


@dataclass
class TestState:
    """One test as the UI shows it."""

    __test__ = False
    nodeid: str
    outcome: str | None = None  # the last known outcome
    phase: str = ""  # "", "queued" or "running" in the current run
    up_to_date: bool = False  # not selected by the latest run: its last result stands
    result: TestFinished | None = None  # the latest TestFinished
    duration: float | None = None
    reasons: list[Reason] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)  # (trigger, outcome)
    flaky: bool = False

    @property
    def status(self) -> str:
        if self.phase:
            return self.phase
        if self.outcome is None:
            return "unknown"
        if self.up_to_date and self.outcome in PASSING:
            return "deselected"
        return self.outcome

    @property
    def failing(self) -> bool:
        return self.outcome in FAILING

    @property
    def file(self) -> str:
        return split_nodeid(self.nodeid)[0]


@dataclass
class RunRecord:
    """One run of the history, keyed by what triggered it."""

    run_id: str
    trigger: str
    mode: str
    selected: int = 0
    deselected: int = 0
    finished: bool = False
    exitstatus: int | str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    flipped: list[tuple[str, str, str]] = field(default_factory=list)  # nodeid, old, new
    latency: float | None = None
    time_saved: float = 0.0


@dataclass(frozen=True)
class Flip:
    """A test went from passing to failing or back (what the app notifies)."""

    nodeid: str
    old: str
    new: str


class WatchState:
    """Everything the panes show; `apply` returns the flips the event caused."""

    def __init__(self) -> None:
        self.tests: dict[str, TestState] = {}
        self.runs: list[RunRecord] = []
        self.current: RunRecord | None = None
        self.worker_state = "starting"
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
        return self.current is not None and not self.current.finished

    @property
    def last_latency(self) -> float | None:
        return self.latencies[-1] if self.latencies else None

    @property
    def median_latency(self) -> float | None:
        return statistics.median(self.latencies) if self.latencies else None

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
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
            path, cls, name = split_nodeid(test.nodeid)
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

    def load_known(self, known: Iterable[tuple[str, str, float]]) -> None:
        """Tests recorded by earlier runs: (nodeid, outcome, duration)."""
        for nodeid, outcome, duration in known:
            test = self.tests.setdefault(nodeid, TestState(nodeid))
            if test.outcome is None:
                test.outcome, test.duration, test.up_to_date = outcome or None, duration, True
        self.version += 1

    # -- folding events -------------------------------------------------------------------

    def apply(self, event: object) -> list[Flip]:
        if isinstance(event, TestFinished):
            return self._test_finished(event)
        if isinstance(event, TestStarted):
            self._test(event.nodeid).phase = "running"
        elif isinstance(event, RunRequested):
            self._run_requested(event)
        elif isinstance(event, RunStarted):
            self._run_started(event)
        elif isinstance(event, RunFinished):
            self._run_finished(event)
        elif isinstance(event, RunDone):
            self._run_done(event)
        elif isinstance(event, WorkerReady):
            self.worker_state, self.worker_detail = "warm", ""
        elif isinstance(event, WorkerRecycling):
            self.worker_state, self.worker_detail = "recycling", event.reason
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
        self.runs.append(RunRecord(event.run_id, event.trigger, event.mode))
        if event.trigger not in MANUAL_TRIGGERS and not event.trigger.startswith("key"):
            self.last_trigger = event.trigger

    def _run_started(self, event: RunStarted) -> None:
        record = self._run_for(event.run_id)
        if record is None:
            trigger = event.trigger if isinstance(event.trigger, str) else str(event.trigger or "")
            record = RunRecord(event.run_id, trigger, "affected")
            self.runs.append(record)
        self.current = record
        record.selected, record.deselected = len(event.selected), event.deselected
        self.worker_state, self.worker_detail = "running", ""
        selected = set()
        for item in event.selected:
            test = self._test(item.nodeid)
            test.phase, test.reasons, test.up_to_date = "queued", list(item.reasons), False
            selected.add(item.nodeid)
        if record.mode in ("affected", "all", "failed"):
            saved = 0.0
            for test in self.tests.values():
                if test.nodeid not in selected:
                    test.up_to_date = True
                    if test.phase:
                        test.phase = ""
                    saved += test.duration or 0.0
            if record.mode == "affected":
                record.time_saved = saved
                self.time_saved += saved
        self.progress_total, self.progress_done = len(event.selected), 0
        self.version += 1

    def _test_finished(self, event: TestFinished) -> list[Flip]:
        test = self._test(event.nodeid)
        old = test.outcome
        test.outcome, test.phase, test.result = event.outcome, "", event
        test.duration, test.up_to_date = event.duration, False
        record = self._run_for(event.run_id)
        trigger = record.trigger if record is not None else ""
        test.history.append((trigger, event.outcome))
        self.progress_done += 1
        if outcome_kind(old) == "none" or outcome_kind(old) == outcome_kind(event.outcome):
            return []
        mode = record.mode if record is not None else "affected"
        if record is not None:
            record.flipped.append((event.nodeid, old or "", event.outcome))
        if mode in CHANGE_FREE_MODES or all(r.change_free for r in test.reasons):
            test.flaky = True
        return [Flip(event.nodeid, old or "", event.outcome)]

    def _run_finished(self, event: RunFinished) -> None:
        record = self._run_for(event.run_id)
        if record is not None:
            record.finished, record.exitstatus = True, event.exitstatus
            record.counts = dict(event.counts)
        if event.crashed and event.crashed in self.tests:
            test = self.tests[event.crashed]
            if test.phase:
                test.outcome = "timeout" if event.exitstatus == "timeout" else "crashed"
        for test in self.tests.values():
            if test.phase:  # cancelled or crashed before it ran: its last result stands
                test.phase = ""
        self.worker_state = "warm" if self.worker_state == "running" else self.worker_state
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
