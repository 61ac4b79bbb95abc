"""The headless printer: a block per run, failures with their traceback, a line of counts."""

from __future__ import annotations

import io

from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.reasons import Reason
from testmon_watch.core.runs import Run, WorkerExit
from testmon_watch.headless import HeadlessPrinter
from testmon_watch.session import RunDone, RunRequested, SessionEvent
from testmon_watch.wire.worker_protocol import (
    Notice,
    RunFinished,
    RunStarted,
    SelectedTest,
    TestFinished,
    TestStarted,
)

IDS = ["t.py::ok", "t.py::bad", "t.py::hangs"]
TIMING: dict[str, float | None] = {"selection": 0.05, "first_result": 0.08, "done": 0.1}


def run_events(end: RunFinished, results: dict[str, Outcome]) -> list[SessionEvent]:
    """A run as the session delivers it, with its run model fed the same events."""
    model = Run("r1", RunMode.AFFECTED, "calc.py")
    events: list[SessionEvent] = [
        RunRequested("r1", RunMode.AFFECTED, "calc.py"),
        RunStarted("r1", "calc.py", [], [SelectedTest(i, [Reason.new()]) for i in IDS], 4),
    ]
    model.start(IDS, 4)
    for nodeid, outcome in results.items():
        events.append(TestStarted("r1", nodeid))
        model.test_started(nodeid)
        longrepr = "E   assert 1 == 2" if outcome.failing else ""
        events.append(TestFinished("r1", nodeid, outcome, 0.012, longrepr=longrepr))
        model.test_finished(nodeid, outcome, 0.012)
    model.finish(end.exitstatus, end.crashed)
    events += [end, RunDone("r1", "calc.py", end, {}, TIMING, model)]
    return events


def printed(events: list[SessionEvent], verbose: bool = False) -> list[str]:
    out = io.StringIO()
    printer = HeadlessPrinter(out, colour=False, verbose=verbose)
    for event in events:
        printer(event)
    return out.getvalue().splitlines()


def test_a_run_prints_failures_and_counts() -> None:
    end = RunFinished("r1", 1, {Outcome.PASSED: 1, Outcome.FAILED: 1})
    lines = printed(run_events(end, {IDS[0]: Outcome.PASSED, IDS[1]: Outcome.FAILED}))
    assert lines[0].startswith("── calc.py ──")
    assert lines[1:] == [
        "selected 3, deselected 4",
        "✗ t.py::bad 12 ms",
        "    E   assert 1 == 2",
        "1 passed, 1 failed, 1 not run · change→selection 50 ms · first result 80 ms · done 100 ms",
    ]


def test_verbose_prints_every_test_and_why() -> None:
    end = RunFinished("r1", 0, {Outcome.PASSED: 1})
    lines = printed(run_events(end, {IDS[0]: Outcome.PASSED}), verbose=True)
    assert "  t.py::ok: it is new" in lines
    assert "✓ t.py::ok 12 ms" in lines


def test_a_run_the_worker_ended_says_how() -> None:
    end = RunFinished("r1", WorkerExit.TIMEOUT, {Outcome.TIMEOUT: 1}, crashed=IDS[2])
    lines = printed(
        [
            *run_events(end, {IDS[0]: Outcome.PASSED, IDS[2]: Outcome.TIMEOUT}),
            Notice(text="worker died; restarted"),
        ]
    )
    assert "T t.py::hangs 12 ms" in lines
    assert lines[-2] == (
        "1 passed, 1 timeout, 1 cancelled (timeout) · change→selection 50 ms · first result 80 ms"
        " · done 100 ms"
    )
    assert lines[-1] == "testmon-watch: worker died; restarted"
