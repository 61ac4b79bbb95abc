"""WatchState: the pure model behind the panes."""

from __future__ import annotations

from testmon_watch.core.reasons import Reason, ReasonKind
from testmon_watch.session import RunDone, RunRequested
from testmon_watch.ui.state import WatchState, split_nodeid
from testmon_watch.worker.protocol import (
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
    outcomes: dict[str, str],
    mode: str = "affected",
    deselected: int = 0,
    done: float | None = 0.1,
) -> list[object]:
    flips: list[object] = []
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
    state.apply(RunDone(run_id, trigger, finished, {}, {"first_result": done, "done": done}))
    return flips


def test_split_nodeid() -> None:
    assert split_nodeid("t/a.py::C::test[x::y]") == ("t/a.py", "C", "test[x::y]")
    assert split_nodeid("t/a.py::test") == ("t/a.py", None, "test")
    assert split_nodeid("t/a.py::C::D::test") == ("t/a.py", "C::D", "test")


def test_statuses_through_a_run() -> None:
    state = WatchState()
    state.apply(WorkerReady())
    assert state.worker_state == "warm"
    state.apply(RunRequested("r1", "affected", "start"))
    state.apply(
        RunStarted(
            "r1",
            "start",
            [],
            [SelectedTest("a.py::t1", [Reason.new()]), SelectedTest("a.py::t2", [Reason.new()])],
            0,
        )
    )
    assert state.tests["a.py::t1"].status == "queued" and state.running
    assert state.worker_state == "running"
    state.apply(TestStarted("r1", "a.py::t1"))
    assert state.tests["a.py::t1"].status == "running"
    state.apply(TestFinished("r1", "a.py::t1", "failed", 0.2, longrepr="E boom"))
    assert state.tests["a.py::t1"].status == "failed"
    assert state.progress_done == 1 and state.progress_total == 2
    state.apply(RunFinished("r1", "cancelled", {}))  # t2 never ran
    assert state.tests["a.py::t2"].status == "unknown"
    assert state.worker_state == "warm"
    state.apply(WorkerRecycling(reason="pytest.ini changed"))
    assert (state.worker_state, state.worker_detail) == ("recycling", "pytest.ini changed")


def test_failures_first_in_groups() -> None:
    state = WatchState()
    run(
        state,
        "r1",
        "start",
        {"b.py::ok": [], "a.py::ok": [], "b.py::C::bad": []},
        {"b.py::ok": "passed", "a.py::ok": "passed", "b.py::C::bad": "failed"},
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
        {"a.py::t1": "passed", "a.py::t2": "passed"},
    )
    assert state.latencies == []  # the start run is not a save
    flips = run(
        state,
        "r2",
        "calc.py",
        {"a.py::t1": [Reason(ReasonKind.CHANGED, "calc.py", blocks=("add",))]},
        {"a.py::t1": "failed"},
        deselected=1,
        done=0.2,
    )
    assert [(f.nodeid, f.old, f.new) for f in flips] == [("a.py::t1", "passed", "failed")]
    assert state.tests["a.py::t2"].status == "deselected"
    assert state.time_saved == 0.5
    assert state.runs[-1].flipped == [("a.py::t1", "passed", "failed")]
    assert not state.tests["a.py::t1"].flaky  # a change explains it
    run(
        state,
        "r3",
        "calc.py",
        {"a.py::t1": [Reason(ReasonKind.CHANGED, "calc.py", blocks=("add",))]},
        {"a.py::t1": "passed"},
        deselected=1,
        done=0.4,
    )
    assert state.latencies == [0.2, 0.4]
    assert state.last_latency == 0.4 and abs(state.median_latency - 0.3) < 1e-9  # type: ignore[operator]
    assert state.time_saved == 1.0
    assert [outcome for _, outcome in state.tests["a.py::t1"].history] == [
        "passed",
        "failed",
        "passed",
    ]


def test_flaky_suspects() -> None:
    state = WatchState()
    run(
        state,
        "r1",
        "start",
        {"a.py::t": [], "a.py::u": []},
        {"a.py::t": "failed", "a.py::u": "passed"},
    )
    run(state, "r2", "x", {"a.py::t": [Reason.failed()]}, {"a.py::t": "passed"})
    assert state.tests["a.py::t"].flaky
    run(
        state,
        "r3",
        "key: run all",
        {"a.py::u": [Reason(ReasonKind.FULL_RUN)]},
        {"a.py::u": "failed"},
        mode="all",
    )
    assert state.tests["a.py::u"].flaky
    assert {t.nodeid for t in state.flaky_suspects} == {"a.py::t", "a.py::u"}


def test_crash_marks_the_test() -> None:
    state = WatchState()
    state.apply(RunRequested("r1", "affected", "x"))
    state.apply(RunStarted("r1", "x", [], [SelectedTest("a.py::t", [])], 0))
    state.apply(TestStarted("r1", "a.py::t"))
    state.apply(RunFinished("r1", "crashed", {}, crashed="a.py::t"))
    assert state.tests["a.py::t"].status == "crashed"


def test_known_tests_from_earlier_runs() -> None:
    state = WatchState()
    state.load_known([("a.py::t", "passed", 1.5), ("a.py::u", "failed", 0.1)])
    assert state.tests["a.py::t"].status == "deselected"
    assert state.tests["a.py::u"].status == "failed"
    run(
        state,
        "r1",
        "calc.py",
        {"a.py::u": [Reason.failed()]},
        {"a.py::u": "passed"},
        deselected=1,
    )
    assert state.time_saved == 1.5
