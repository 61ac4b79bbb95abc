"""The real app on a real WatchSession with a real warm worker and watcher, on a sample project."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from testmon_watch.config import WatchConfig
from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.runs import TestPhase, WorkerState
from testmon_watch.session import WatchSession
from testmon_watch.ui.app import TestmonWatchApp
from testmon_watch.ui.state import Status
from testmon_watch.ui.widgets.results import ResultsTree

from .conftest import SIZE

WAIT = 90  # seconds; generous for a busy machine, the loop ends as soon as it holds

pytestmark = pytest.mark.slow


async def until(pilot: Pilot[int], condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def status(app: TestmonWatchApp, nodeid: str) -> Status | None:
    test = app.state.tests.get(nodeid)
    return test.status if test is not None else None


def done_runs(app: TestmonWatchApp) -> int:
    return sum(1 for r in app.state.runs if r.done)


async def test_break_fix_cancel_and_quit(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTMON_DATAFILE", raising=False)

    def make_session(listener: object) -> WatchSession:
        return WatchSession(project, listener, WatchConfig(debounce_ms=50))  # type: ignore[arg-type]

    app = TestmonWatchApp(project, make_session)
    mul = "test_calc.py::test_mul"
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: done_runs(app) >= 1, "the first run")
        assert status(app, mul) is Outcome.PASSED
        assert app.state.worker_state is WorkerState.WARM
        await until(pilot, lambda: app.session.watched_files > 0, "the watcher")

        calc = project / "calc.py"
        calc.write_text(calc.read_text().replace("return a * b", "return a * b + 1"))
        await until(pilot, lambda: status(app, mul) is Outcome.FAILED, "test_mul to fail")
        # The run's end comes in two events: pytest's (the run is done) and then the
        # session's, with its timing; wait for the second, not just the first.
        await until(pilot, lambda: app.state.current is None, "the run to end")
        assert status(app, "test_calc.py::test_add") is TestPhase.UP_TO_DATE
        assert app.query_one(ResultsTree).shown[0] == mul
        assert "1 now fails: test_mul" in app.toasts
        assert app.state.last_latency is not None
        test = app.state.tests[mul]
        assert any(reason.file == "calc.py" for reason in test.reasons)

        calc.write_text(calc.read_text().replace("return a * b + 1", "return a * b"))
        await until(pilot, lambda: status(app, mul) is Outcome.PASSED, "test_mul to pass again")
        await until(pilot, lambda: app.state.current is None, "the run to end")

        runs = done_runs(app)
        await pilot.press("a")
        await until(pilot, lambda: done_runs(app) > runs, "the full run")
        assert app.state.runs[-1].mode is RunMode.ALL and app.state.runs[-1].selected == 3

        worker_pid = app.session.worker.worker_pid
        assert worker_pid is not None
        await pilot.press("q")
    assert app.session.worker.state is WorkerState.STOPPED
    for _ in range(100):  # reaped by stop(); give the kernel a moment
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail(f"the worker (pid {worker_pid}) still exists after stop()")
