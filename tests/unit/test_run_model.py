"""core.runs: one run and its tests through every state, with counts that always add up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.runs import (
    PytestExit,
    Run,
    RunState,
    TestPhase,
    WorkerExit,
    WorkerState,
)

IDS = ["t.py::a", "t.py::b", "t.py::c"]


def started(**fields: object) -> Run:
    run = Run("r1", **fields)  # type: ignore[arg-type]
    assert run.state is RunState.REQUESTED and not run.started and not run.done
    run.start(IDS, deselected=4)
    return run


def assert_adds_up(run: Run) -> None:
    assert sum(run.phase_counts().values()) == len(run.tests)
    finished = run.phase_counts().get(TestPhase.FINISHED, 0)
    assert sum(run.counts().values()) == finished


def test_a_run_that_finishes() -> None:
    run = started(mode=RunMode.ALL, trigger="calc.py")
    # States as tuples, here and below: mypy would keep what an `is` narrowed across the
    # calls that change them, and call the later checks unreachable.
    assert (run.state, run.started) == (RunState.RUNNING, True)
    assert (run.selected, run.deselected) == (3, 4)
    assert run.phase_counts() == {TestPhase.QUEUED: 3}
    run.test_started("t.py::a")
    assert (run.current, run.tests["t.py::a"].phase) == ("t.py::a", TestPhase.RUNNING)
    run.test_finished("t.py::a", Outcome.PASSED, 0.5)
    assert run.current is None
    for nodeid, outcome in (("t.py::b", Outcome.FAILED), ("t.py::c", Outcome.SKIPPED)):
        run.test_started(nodeid)
        run.test_finished(nodeid, outcome)
    assert_adds_up(run)
    run.finish(PytestExit.TESTS_FAILED)
    assert run.state is RunState.FINISHED and run.done and run.exitstatus == 1
    assert run.counts() == {Outcome.PASSED: 1, Outcome.FAILED: 1, Outcome.SKIPPED: 1}
    assert run.tests["t.py::b"].failing and not run.tests["t.py::a"].failing
    assert run.tests["t.py::a"].duration == 0.5
    assert_adds_up(run)


def test_cancelled_tests_are_cancelled_not_passed() -> None:
    run = started()
    run.test_started("t.py::a")
    run.test_finished("t.py::a", Outcome.PASSED)
    run.test_started("t.py::b")
    run.cancel()
    assert run.cancel_requested and not run.done
    run.finish(WorkerExit.CANCELLED, stopped="t.py::b", stopped_after=2.5)
    assert run.state is RunState.CANCELLED
    assert run.phase_counts() == {TestPhase.FINISHED: 1, TestPhase.CANCELLED: 2}
    assert run.counts() == {Outcome.PASSED: 1}
    # The test that was running keeps the time it really ran, and no outcome.
    assert run.tests["t.py::b"].duration == 2.5 and run.tests["t.py::b"].outcome is None
    assert run.tests["t.py::c"].duration is None
    assert_adds_up(run)


def test_a_run_that_ends_before_selection_never_started() -> None:
    run = Run("r1")  # a usage error: pytest stops before collecting
    run.finish(PytestExit.USAGE_ERROR)
    assert run.done and not run.started and run.tests == {}


def test_pytest_stopping_early_leaves_the_rest_not_run() -> None:
    run = started()  # pytest -x: the first failure ends the run
    run.test_started("t.py::a")
    run.test_finished("t.py::a", Outcome.FAILED)
    run.finish(PytestExit.TESTS_FAILED)
    assert run.state is RunState.FINISHED
    assert run.tests["t.py::c"].phase is TestPhase.NOT_RUN
    assert_adds_up(run)


def test_collection_errors_stop_pytest_before_any_test() -> None:
    run = Run("r1")
    run.start(
        ["t.py::a", "t.py::b"],
        deselected=4,
        collection_errors={"t_broken.py": "E   SyntaxError"},
        removed=["t_gone.py::x"],
    )
    run.finish(PytestExit.INTERRUPTED)
    assert run.phase_counts() == {TestPhase.NOT_RUN: 2}
    assert run.collection_errors == {"t_broken.py": "E   SyntaxError"}
    assert run.removed == ["t_gone.py::x"] and run.deselected == 4
    assert run.counts() == {}


@pytest.mark.parametrize(
    ("end", "state", "outcome"),
    [
        (WorkerExit.CRASHED, RunState.CRASHED, Outcome.CRASHED),
        (WorkerExit.TIMEOUT, RunState.TIMED_OUT, Outcome.TIMEOUT),
    ],
)
def test_the_test_that_crashed_or_timed_out(
    end: WorkerExit, state: RunState, outcome: Outcome
) -> None:
    run = started()
    run.test_started("t.py::b")
    if end is WorkerExit.TIMEOUT:
        assert run.time_out() == "t.py::b" and run.timed_out == "t.py::b"
    run.finish(end, crashed="t.py::b")
    assert run.state is state and run.crashed == "t.py::b"
    assert run.tests["t.py::b"].outcome is outcome
    assert run.counts() == {outcome: 1}
    assert run.phase_counts() == {TestPhase.FINISHED: 1, TestPhase.CANCELLED: 2}


def test_a_collection_error_joins_the_run() -> None:
    run = started()
    run.test_started("t_broken.py")
    run.test_finished("t_broken.py", Outcome.ERROR)
    assert run.selected == 3 and len(run.tests) == 4
    assert run.counts() == {Outcome.ERROR: 1}


def test_not_run_and_removed_tests() -> None:
    run = started()
    run.not_run(["t.py::a", "t.py::b"])
    run.remove(["t.py::c"])
    assert run.phase_counts() == {TestPhase.NOT_RUN: 2, TestPhase.REMOVED: 1}
    assert run.counts() == {}
    run.finish(PytestExit.INTERRUPTED)
    assert run.phase_counts() == {TestPhase.NOT_RUN: 2, TestPhase.REMOVED: 1}
    assert_adds_up(run)


def test_ended_by_and_the_words() -> None:
    assert RunState.ended_by(0) is RunState.FINISHED
    assert RunState.ended_by(PytestExit.USAGE_ERROR) is RunState.FINISHED
    assert RunState.ended_by(WorkerExit.CANCELLED) is RunState.CANCELLED
    assert all(state.over for state in RunState) is False
    assert {s for s in RunState if not s.over} == {RunState.REQUESTED, RunState.RUNNING}
    assert {p for p in TestPhase if p.active} == {TestPhase.QUEUED, TestPhase.RUNNING}
    assert f"{WorkerState.WARM} {WorkerExit.TIMEOUT} {TestPhase.UP_TO_DATE}" == (
        "warm timeout up_to_date"
    )
    # The word on the wire, and equal to it as a str (mypy does not model the str mixin).
    assert WorkerExit.CRASHED == "crashed"  # type: ignore[comparison-overlap]


def test_the_model_is_light() -> None:
    """Front ends import it: no sqlite, no pytest."""
    code = (
        "import sys, testmon_watch.core.runs; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlite3', 'pytest', '_pytest'))"
        " or m == 'testmon_watch.core.db'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
