"""Issue #12 at the state level: a mark is only what a finished run produced; counts add up."""

from __future__ import annotations

import re
from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st

from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.runs import ExitStatus, TestPhase, WorkerExit
from testmon_watch.session import KnownTest, RunRequested
from testmon_watch.ui.display import MARKS, display_status
from testmon_watch.ui.notes import flips_text, run_toast
from testmon_watch.ui.state import WatchState
from testmon_watch.ui.summary import HEADER_ORDER
from testmon_watch.ui.widgets.status import status_text, summary_text
from testmon_watch.wire.worker_protocol import (
    CollectionError,
    RunFinished,
    RunStarted,
    SelectedTest,
    TestFinished,
    TestStarted,
)

IDS = [f"tests/test_{m}.py::test_{i}" for m in "ab" for i in range(3)]
BROKEN_A = CollectionError("tests/test_a.py", "tests/test_a.py", "E   SyntaxError: bad")


def start(
    state: WatchState,
    run_id: str,
    selected: list[str],
    mode: RunMode = RunMode.AFFECTED,
    errors: list[CollectionError] | None = None,
    removed: list[str] | None = None,
) -> None:
    state.apply(RunRequested(run_id, mode, "x"))
    state.apply(
        RunStarted(
            run_id,
            "x",
            [],
            [SelectedTest(n, []) for n in selected],
            0,
            collection_errors=errors or [],
            removed=removed or [],
        )
    )


def all_pass(state: WatchState, run_id: str = "r0") -> None:
    start(state, run_id, IDS)
    for nodeid in IDS:
        state.apply(TestFinished(run_id, nodeid, Outcome.PASSED, 0.01))
    state.apply(RunFinished(run_id, 0, {}))


def header_total(state: WatchState) -> int:
    """The sum of the test counts the header shows (files that failed to import apart)."""
    text = summary_text(state).plain
    text = re.sub(r"\d+ modules? failed to import", "", text)
    return sum(int(n) for n in re.findall(r"(\d+) ", text))


def test_cancel_shows_cancelled_not_the_previous_pass() -> None:
    state = WatchState()
    all_pass(state)
    start(state, "r1", IDS)
    state.apply(TestStarted("r1", IDS[0]))
    state.apply(TestFinished("r1", IDS[0], Outcome.PASSED, 0.01))
    state.apply(TestStarted("r1", IDS[1]))  # hangs; the user presses x
    state.apply(RunFinished("r1", WorkerExit.CANCELLED, {}, stopped=IDS[1], stopped_after=3.001))
    statuses = [state.tests[n].status for n in IDS]
    assert statuses == [Outcome.PASSED] + [TestPhase.CANCELLED] * 5
    hung = state.tests[IDS[1]]
    assert hung.shown_duration == 3.001 and state.tests[IDS[2]].shown_duration is None
    assert summary_text(state).plain == "1 passed  5 cancelled"


def test_a_timed_out_test_shows_t_with_its_real_duration() -> None:
    state = WatchState()
    start(state, "r1", IDS[:2])
    state.apply(TestStarted("r1", IDS[0]))
    state.apply(TestFinished("r1", IDS[0], Outcome.TIMEOUT, 30.2))
    state.apply(RunFinished("r1", WorkerExit.TIMEOUT, {}, crashed=IDS[0]))
    test = state.tests[IDS[0]]
    assert (MARKS[test.status], test.shown_duration) == ("T", 30.2)
    assert state.tests[IDS[1]].status is TestPhase.CANCELLED


def test_a_module_that_fails_to_import_is_one_file_in_error_and_its_tests_not_run() -> None:
    state = WatchState()
    all_pass(state)
    # test_a.py breaks: pytest runs nothing (exit 2); test_b's selected tests are not run.
    start(state, "r1", IDS[3:4], errors=[BROKEN_A])
    state.apply(RunFinished("r1", 2, {}))
    assert list(state.error_files) == ["tests/test_a.py"]
    assert [state.tests[n].status for n in IDS[:4]] == [TestPhase.NOT_RUN] * 4
    assert summary_text(state).plain == "4 not run  2 up to date  1 module failed to import"
    assert header_total(state) == len(state.tests) == 6
    assert state.grouped()[0][0] == "tests/test_a.py"  # the file in error comes first
    # A run of node ids elsewhere leaves the error; the next whole-suite run replaces it.
    start(state, "r2", IDS[3:4], mode=RunMode.NODEIDS)
    state.apply(RunFinished("r2", 0, {}))
    assert list(state.error_files) == ["tests/test_a.py"]
    start(state, "r3", IDS[:3], mode=RunMode.AFFECTED)
    assert state.collection_errors == {}


def test_a_run_of_the_broken_file_clears_its_error_when_it_imports() -> None:
    state = WatchState()
    all_pass(state)
    broken_b = CollectionError("tests/test_b.py", "tests/test_b.py", "E   ImportError")
    start(state, "r1", [], errors=[BROKEN_A, broken_b])
    state.apply(RunFinished("r1", 2, {}))
    start(state, "r2", IDS[:3], mode=RunMode.NODEIDS)  # `t` on tests/test_a.py: imports now
    assert list(state.error_files) == ["tests/test_b.py"]


def test_a_new_broken_test_file_has_a_row_without_tests() -> None:
    state = WatchState()
    new = CollectionError("tests/test_new.py", "tests/test_new.py", "E   NameError")
    start(state, "r1", [], errors=[new])
    assert state.grouped() == [("tests/test_new.py", [])]
    assert state.counts() == {}


def test_removed_tests_and_files_leave_the_tree_and_the_counts() -> None:
    state = WatchState()
    all_pass(state)
    start(state, "r1", [], removed=[IDS[0], "tests/test_b.py"])
    assert sorted(state.tests) == IDS[1:3]
    assert header_total(state) == 2


def test_up_to_date_shows_its_last_result_as_such() -> None:
    state = WatchState()
    state.load_known(
        [KnownTest(IDS[0], Outcome.PASSED, 0.1), KnownTest(IDS[1], Outcome.FAILED, 0.1)]
    )
    start(state, "r1", [])
    assert state.tests[IDS[0]].status is TestPhase.UP_TO_DATE
    assert state.tests[IDS[1]].status is Outcome.FAILED  # a failure that stands stays red


def test_the_header_lists_every_status_a_test_can_show() -> None:
    shown = set(Outcome) | {
        p for p in TestPhase if p not in (TestPhase.FINISHED, TestPhase.REMOVED)
    }
    assert set(HEADER_ORDER) == shown
    assert set(MARKS) == shown


def test_flips_are_one_line_with_grammar() -> None:
    p, f = Outcome.PASSED, Outcome.FAILED
    one = [("a.py::test_x", p, f)]
    assert flips_text(one) == "1 now fails: test_x"
    many = [(f"a.py::C::test_{i}", p, f) for i in range(3)] + [("b.py::test_y", f, p)]
    assert flips_text(many) == "3 now fail, 1 now passes: test_0, test_1, test_2, …"
    assert flips_text([("a.py::t", f, p), ("a.py::u", f, p)]) == "2 now pass: t, u"
    assert run_toast([], ["worker restarted", "preload failed"]) == "preload failed (+1 more)"


def test_the_status_bar_fits_80_columns_with_a_long_trigger() -> None:
    state = WatchState()
    state.watched_files = 1
    all_pass(state)
    state.last_trigger = ", ".join(f"src/package/module_{i}.py" for i in range(3))
    state.latencies = [0.08]
    full = status_text(state).plain
    assert "watching 1 file ·" in full and len(full) > 78
    fitted = status_text(state, 78).plain  # 80 columns less the bar's padding
    assert len(fitted) <= 78
    assert "last: 3 files" in fitted and "latency 80 ms" in fitted and "worker" in fitted


# -- random event sequences: the header's counts always add up ---------------------------

EVENT = st.one_of(
    st.tuples(
        st.just("start"),
        st.sampled_from(list(RunMode)),
        st.lists(st.sampled_from(IDS), unique=True),
        st.booleans(),
        st.lists(st.sampled_from(IDS), max_size=2),
    ),
    st.tuples(st.just("started"), st.sampled_from(IDS)),
    st.tuples(st.just("finished"), st.sampled_from(IDS), st.sampled_from(list(Outcome))),
    st.tuples(
        st.just("end"), st.sampled_from([0, 1, 2, *WorkerExit]), st.sampled_from([None, *IDS])
    ),
    st.tuples(st.just("known"), st.sampled_from(IDS), st.sampled_from(list(Outcome))),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(EVENT, max_size=25))
def test_header_counts_add_up_to_the_tests_that_exist(events: list[tuple[object, ...]]) -> None:
    state = WatchState()
    run = 0
    for event in events:
        kind = event[0]
        if kind == "start":
            run += 1
            _, mode, selected, broken, removed = event
            errors = [BROKEN_A] if broken else []
            chosen, gone = cast("list[str]", selected), cast("list[str]", removed)
            start(state, f"r{run}", chosen, cast(RunMode, mode), errors, gone)
        elif kind == "started":
            state.apply(TestStarted(f"r{run}", str(event[1])))
        elif kind == "finished":
            state.apply(TestFinished(f"r{run}", str(event[1]), event[2], 0.1))  # type: ignore[arg-type]
        elif kind == "end":
            status, crashed = cast(ExitStatus, event[1]), cast("str | None", event[2])
            finished = RunFinished(f"r{run}", status, {}, crashed=crashed, stopped=crashed)
            finished.stopped_after = 1.0
            state.apply(finished)
        else:
            state.load_known([KnownTest(str(event[1]), event[2], 0.1)])  # type: ignore[arg-type]
        assert sum(state.counts().values()) == len(state.tests)
        assert header_total(state) == len(state.tests)
        for test in state.tests.values():
            assert display_status(test) in HEADER_ORDER
            if test.phase in (TestPhase.CANCELLED, TestPhase.NOT_RUN):
                assert test.status is test.phase  # never an earlier outcome
