"""WatchState: the pure model behind the panes."""

from __future__ import annotations

from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.reasons import Reason, ReasonKind
from testmon_watch.core.runs import Run, RunState, TestPhase, WorkerExit, WorkerState
from testmon_watch.session import KnownTest, RunDone, RunRequested
from testmon_watch.ui.state import Flip, WatchState, split_nodeid
from testmon_watch.wire.worker_protocol import (
    RunFinished,
    RunStarted,
    SelectedTest,
    TestFinished,
    TestStarted,
    WorkerReady,
    WorkerRecycling,
)


def run(
    state: WatchState,
    run_id: str,
    trigger: str,
    selected: dict[str, list[Reason]],
    outcomes: dict[str, Outcome],
    mode: RunMode = RunMode.AFFECTED,
    deselected: int = 0,
    done: float | None = 0.1,
) -> list[Flip]:
    flips: list[Flip] = []
    state.apply(RunRequested(run_id, mode, trigger))
    state.apply(
        RunStarted(
            run_id, trigger, [], [SelectedTest(n, r) for n, r in selected.items()], deselected
        )
    )
    for nodeid, outcome in outcomes.items():
        state.apply(TestStarted(run_id, nodeid))
        flips += state.apply(TestFinished(run_id, nodeid, outcome, 0.5))
    finished = RunFinished(run_id, 0, {})
    state.apply(finished)
    timing = {"first_result": done, "done": done}
    state.apply(RunDone(run_id, trigger, finished, {}, timing, Run(run_id)))
    return flips


def test_split_nodeid() -> None:
    assert split_nodeid("t/a.py::C::test[x::y]") == ("t/a.py", "C", "test[x::y]")
    assert split_nodeid("t/a.py::test") == ("t/a.py", None, "test")
    assert split_nodeid("t/a.py::C::D::test") == ("t/a.py", "C::D", "test")


def test_statuses_through_a_run() -> None:
    state = WatchState()
    state.apply(WorkerReady())
    # The worker's state as a pair, here and below: mypy keeps what an `is` narrowed
    # across state.apply() and would call the later checks unreachable.
    assert (state.worker_state, state.worker_detail) == (WorkerState.WARM, "")
    state.apply(RunRequested("r1", RunMode.AFFECTED, "start"))
    state.apply(
        RunStarted(
            "r1",
            "start",
            [],
            [SelectedTest("a.py::t1", [Reason.new()]), SelectedTest("a.py::t2", [Reason.new()])],
            0,
        )
    )
    assert (state.tests["a.py::t1"].status, state.running) == (TestPhase.QUEUED, True)
    assert (state.worker_state, state.worker_detail) == (WorkerState.RUNNING, "")
    state.apply(TestStarted("r1", "a.py::t1"))
    assert (state.tests["a.py::t1"].status, state.progress_done) == (TestPhase.RUNNING, 0)
    state.apply(TestFinished("r1", "a.py::t1", Outcome.FAILED, 0.2, longrepr="E boom"))
    assert state.tests["a.py::t1"].status is Outcome.FAILED
    assert state.progress_done == 1 and state.progress_total == 2
    state.apply(RunFinished("r1", WorkerExit.CANCELLED, {}))  # t2 never ran
    assert state.tests["a.py::t2"].phase is TestPhase.CANCELLED
    assert state.tests["a.py::t2"].status is TestPhase.CANCELLED
    record = state.runs[-1]
    assert record.state is RunState.CANCELLED and record.done
    assert record.counts() == {Outcome.FAILED: 1}
    assert record.phase_counts() == {TestPhase.FINISHED: 1, TestPhase.CANCELLED: 1}
    assert (state.worker_state, state.worker_detail) == (WorkerState.WARM, "")
    state.apply(WorkerRecycling(reason="pytest.ini changed"))
    assert (state.worker_state, state.worker_detail) == (
        WorkerState.RECYCLING,
        "pytest.ini changed",
    )


def test_failures_first_in_groups() -> None:
    state = WatchState()
    run(
        state,
        "r1",
        "start",
        {"b.py::ok": [], "a.py::ok": [], "b.py::C::bad": []},
        {"b.py::ok": Outcome.PASSED, "a.py::ok": Outcome.PASSED, "b.py::C::bad": Outcome.FAILED},
    )
    groups = state.grouped()
    assert [path for path, _ in groups] == ["b.py", "a.py"]
    assert groups[0][1][0][0] == "C"
    assert state.grouped(name_filter="OK")[0][0] == "a.py"
    assert [p for p, _ in state.grouped(file_filter="b.")] == ["b.py"]


def test_deselected_time_saved_latency_and_flips() -> None:
    state = WatchState()
    run(
        state,
        "r1",
        "start",
        {"a.py::t1": [], "a.py::t2": []},
        {"a.py::t1": Outcome.PASSED, "a.py::t2": Outcome.PASSED},
    )
    assert state.latencies == []  # the start run is not a save
    flips = run(
        state,
        "r2",
        "calc.py",
        {"a.py::t1": [Reason(ReasonKind.CHANGED, "calc.py", blocks=("add",))]},
        {"a.py::t1": Outcome.FAILED},
        deselected=1,
        done=0.2,
    )
    assert [(f.nodeid, f.old, f.new) for f in flips] == [
        ("a.py::t1", Outcome.PASSED, Outcome.FAILED)
    ]
    assert state.tests["a.py::t2"].status is TestPhase.UP_TO_DATE
    assert state.time_saved == 0.5
    assert state.runs[-1].flipped == [("a.py::t1", Outcome.PASSED, Outcome.FAILED)]
    assert not state.tests["a.py::t1"].flaky  # a change explains it
    run(
        state,
        "r3",
        "calc.py",
        {"a.py::t1": [Reason(ReasonKind.CHANGED, "calc.py", blocks=("add",))]},
        {"a.py::t1": Outcome.PASSED},
        deselected=1,
        done=0.4,
    )
    assert state.latencies == [0.2, 0.4]
    assert state.last_latency == 0.4 and abs(state.median_latency - 0.3) < 1e-9  # type: ignore[operator]
    assert state.time_saved == 1.0
    assert [outcome for _, outcome in state.tests["a.py::t1"].history] == [
        Outcome.PASSED,
        Outcome.FAILED,
        Outcome.PASSED,
    ]


def test_flaky_suspects() -> None:
    state = WatchState()
    run(
        state,
        "r1",
        "start",
        {"a.py::t": [], "a.py::u": []},
        {"a.py::t": Outcome.FAILED, "a.py::u": Outcome.PASSED},
    )
    run(state, "r2", "x", {"a.py::t": [Reason.failed()]}, {"a.py::t": Outcome.PASSED})
    assert state.tests["a.py::t"].flaky
    run(
        state,
        "r3",
        "key: run all",
        {"a.py::u": [Reason(ReasonKind.FULL_RUN)]},
        {"a.py::u": Outcome.FAILED},
        mode=RunMode.ALL,
    )
    assert state.tests["a.py::u"].flaky
    assert {t.nodeid for t in state.flaky_suspects} == {"a.py::t", "a.py::u"}


def test_crash_marks_the_test() -> None:
    state = WatchState()
    state.apply(RunRequested("r1", RunMode.AFFECTED, "x"))
    state.apply(RunStarted("r1", "x", [], [SelectedTest("a.py::t", [])], 0))
    state.apply(TestStarted("r1", "a.py::t"))
    state.apply(RunFinished("r1", WorkerExit.CRASHED, {}, crashed="a.py::t"))
    assert state.tests["a.py::t"].status is Outcome.CRASHED
    assert state.runs[-1].counts() == {Outcome.CRASHED: 1}


def test_timeout_marks_the_test() -> None:
    state = WatchState()
    state.apply(RunRequested("r1", RunMode.AFFECTED, "x"))
    state.apply(RunStarted("r1", "x", [], [SelectedTest("a.py::t", [])], 0))
    state.apply(TestStarted("r1", "a.py::t"))
    state.apply(RunFinished("r1", WorkerExit.TIMEOUT, {}, crashed="a.py::t"))
    assert state.tests["a.py::t"].status is Outcome.TIMEOUT
    assert state.runs[-1].state is RunState.TIMED_OUT


def test_known_tests_from_earlier_runs() -> None:
    state = WatchState()
    state.load_known(
        [KnownTest("a.py::t", Outcome.PASSED, 1.5), KnownTest("a.py::u", Outcome.FAILED, 0.1)]
    )
    assert state.tests["a.py::t"].status is TestPhase.UP_TO_DATE
    assert state.tests["a.py::u"].status is Outcome.FAILED
    run(
        state,
        "r1",
        "calc.py",
        {"a.py::u": [Reason.failed()]},
        {"a.py::u": Outcome.PASSED},
        deselected=1,
    )
    assert state.time_saved == 1.5
