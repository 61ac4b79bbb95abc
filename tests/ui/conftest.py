"""Helpers for the UI tests: a sample project, the app on a real (unstarted) session, events."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from testmon_watch.config import WatchConfig
from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.reasons import Reason
from testmon_watch.core.runs import Run
from testmon_watch.session import RunDone, RunRequested, WatchSession
from testmon_watch.ui.app import TestmonWatchApp
from testmon_watch.ui.config import UiConfig
from testmon_watch.wire.worker_protocol import (
    RunFinished,
    RunStarted,
    SelectedTest,
    TestFinished,
    WorkerReady,
)

SIZE = (120, 32)

CALC = """
def add(a, b):
    return a + b


def mul(a, b):
    return a * b
"""
TEST_CALC = """
from calc import add, mul


def test_add():
    assert add(1, 2) == 3


def test_mul():
    assert mul(2, 3) == 6


class TestMore:
    def test_add_zero(self):
        assert add(0, 5) == 5
"""
FAILURE = """\
    def test_mul():
>       assert mul(2, 3) == 6
E       assert 5 == 6
E        +  where 5 = mul(2, 3)

test_calc.py:10: AssertionError"""


def write_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    (root / "calc.py").write_text(textwrap.dedent(CALC).lstrip())
    (root / "test_calc.py").write_text(textwrap.dedent(TEST_CALC).lstrip())
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "proj")


def make_app(root: Path, ui_config: UiConfig | None = None) -> TestmonWatchApp:
    """The real app on a real session that is never started: the tests feed its events."""

    def make_session(listener: object) -> WatchSession:
        return WatchSession(root, listener, WatchConfig(), watch=False)  # type: ignore[arg-type]

    return TestmonWatchApp(root, make_session, ui_config, start_session=False, load_known=False)


def first_run(run_id: str = "run-1", failing: bool = True) -> list[object]:
    """The events of a first run of test_calc.py: test_mul fails when `failing`."""
    ids = [
        "test_calc.py::test_add",
        "test_calc.py::test_mul",
        "test_calc.py::TestMore::test_add_zero",
    ]
    events: list[object] = [
        WorkerReady(pid=1, python="3.11.7", preloaded=600, import_seconds=0.5),
        RunRequested(run_id, RunMode.AFFECTED, "start"),
        RunStarted(run_id, "start", [], [SelectedTest(i, [Reason.new()]) for i in ids], 0),
    ]
    mul = (
        TestFinished(
            run_id,
            ids[1],
            Outcome.FAILED,
            0.012,
            longrepr=FAILURE,
            sections=[["Captured stdout call", "computing 2 * 3\n"]],
            location=["test_calc.py", 8, "test_mul"],
        )
        if failing
        else TestFinished(run_id, ids[1], Outcome.PASSED, 0.012)
    )
    events += [
        TestFinished(run_id, ids[0], Outcome.PASSED, 0.003),
        mul,
        TestFinished(run_id, ids[2], Outcome.PASSED, 0.002),
    ]
    counts = {Outcome.PASSED: 2, Outcome.FAILED: 1} if failing else {Outcome.PASSED: 3}
    finished = RunFinished(run_id, 1 if failing else 0, counts)
    timing: dict[str, float | None] = {"selection": 0.05, "first_result": 0.08, "done": 0.1}
    events += [finished, RunDone(run_id, "start", finished, {}, timing, Run(run_id))]
    return events


async def feed(pilot: Pilot[int], events: Iterable[object]) -> None:
    """Hand events to the app exactly as the session does, and wait until they are applied."""
    app = pilot.app
    assert isinstance(app, TestmonWatchApp)
    for event in events:
        app.pump.listener(event)
    for _ in range(200):
        await pilot.pause()
        if not app.pump._pending and app._flush_timer is None:
            break
        await pilot.pause(0.02)
    await pilot.pause()


def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests in a fresh event loop (no asyncio plugin needed)."""
    import asyncio
    import inspect

    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True
