"""2,000 tests streamed from another thread: applied in a few batches, keys still answer."""

from __future__ import annotations

import threading
from pathlib import Path

from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.reasons import Reason
from testmon_watch.session import RunRequested
from testmon_watch.ui.widgets.results import ResultsTree
from testmon_watch.wire.worker_protocol import RunFinished, RunStarted, SelectedTest, TestFinished

from .conftest import SIZE, feed, make_app

N = 2000


async def test_two_thousand_tests_in_batches(project: Path) -> None:
    app = make_app(project)
    ids = [f"tests/test_{i % 40}.py::test_{i}" for i in range(N)]
    async with app.run_test(size=SIZE) as pilot:
        listener = app.pump.listener

        def stream() -> None:  # the session's reader thread
            listener(RunRequested("run-1", RunMode.AFFECTED, "start"))
            listener(
                RunStarted("run-1", "start", [], [SelectedTest(i, [Reason.new()]) for i in ids], 0)
            )
            for i, nodeid in enumerate(ids):
                outcome = Outcome.FAILED if i % 100 == 0 else Outcome.PASSED
                listener(TestFinished("run-1", nodeid, outcome, 0.001))
            listener(RunFinished("run-1", 1, {}))

        thread = threading.Thread(target=stream)
        thread.start()
        await pilot.press("w")  # keys answer while the flood arrives
        thread.join()
        await feed(pilot, [])
        assert app.state.paused
        assert len(app.state.tests) == N and app.state.counts()[Outcome.FAILED] == N // 100
        assert app.flushes < N // 10  # coalesced: far fewer redraws than events
        await pilot.press("n")
        cursor = app.query_one("#results", ResultsTree).cursor_test
        assert cursor is not None
        assert app.state.tests[cursor].failing
