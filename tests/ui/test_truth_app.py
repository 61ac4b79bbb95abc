"""Issue #12 on the real app: toasts, file rows in error, the cursor after a filter, keys."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Footer, Static
from textual.widgets._toast import Toast

from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.runs import WorkerExit
from testmon_watch.session import RunRequested, SessionNotice
from testmon_watch.ui.app import TestmonWatchApp
from testmon_watch.ui.config import UiConfig
from testmon_watch.ui.display import LEGEND, MARKS, label
from testmon_watch.ui.screens.coverage import CoverageScreen
from testmon_watch.ui.screens.help import HelpScreen
from testmon_watch.ui.widgets.status import StatusBar
from testmon_watch.wire.coverage_report import CoverageReport, FileCoverage, Totals
from testmon_watch.wire.worker_protocol import (
    CollectionError,
    Notice,
    RunFinished,
    RunStarted,
    SelectedTest,
    TestFinished,
)

from .conftest import SIZE, feed, first_run, make_app
from .test_keys import detail_text, plain, requested, tree

SMALL = (80, 24)
MUL = "test_calc.py::test_mul"


def toasts_on_screen(app: TestmonWatchApp) -> list[Toast]:
    return list(app.screen.query(Toast))


async def test_one_toast_per_run_however_many_notices_and_flips(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        await feed(pilot, first_run(failing=False))
        events = first_run("run-2")[1:]
        # `git stash pop` of three files: notices arrive during the run, with a flip.
        notices: list[object] = [Notice(text=f"{name} changed during the run") for name in "abc"]
        await feed(pilot, events[:2] + notices + [SessionNotice("worker restarted")] + events[2:])
        await pilot.pause()
        assert len(toasts_on_screen(app)) == 1
        assert app.toasts[-1] == "1 now fails: test_mul\nworker restarted (+3 more)"
        # Notices between runs: one toast for the batch, replacing the one on screen.
        await feed(pilot, [Notice(text="one"), Notice(text="two")])
        await pilot.pause()
        assert len(toasts_on_screen(app)) == 1 and app.toasts[-1] == "two (+1 more)"


async def test_a_toast_never_covers_the_status_bar_or_the_footer(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        await feed(pilot, first_run(failing=False))
        await feed(pilot, first_run("run-2")[1:])
        await pilot.pause()
        (toast,) = toasts_on_screen(app)
        for below in (app.query_one(StatusBar), app.query_one(Footer)):
            assert not toast.region.overlaps(below.region), (toast.region, below.region)


async def test_toasts_can_be_turned_off(project: Path) -> None:
    app = make_app(project, UiConfig(notifications=False))
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        await feed(pilot, first_run(failing=False))
        await feed(pilot, first_run("run-2")[1:])
        await pilot.pause()
        assert toasts_on_screen(app) == []
        assert "1 now fails: test_mul" in str(app.query_one(StatusBar).render())


async def test_a_file_that_fails_to_import_shows_its_error_on_its_row(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=(120, 32)) as pilot:
        await feed(pilot, first_run(failing=False))
        error = CollectionError("test_calc.py", "test_calc.py", "E   SyntaxError: invalid syntax")
        await feed(
            pilot,
            [
                RunRequested("run-2", RunMode.AFFECTED, "calc.py"),
                RunStarted("run-2", "calc.py", [], [], 0, collection_errors=[error]),
                RunFinished("run-2", 2, {}),
            ],
        )
        file_row = tree(app).root.children[0]
        assert "failed to import" in str(file_row.label)
        assert "(no file)" not in [str(n.label) for n in tree(app).root.children]
        tree(app).move_cursor(file_row)
        await pilot.pause()
        assert "SyntaxError: invalid syntax" in detail_text(app)
        assert "3 not run  1 module failed to import" in plain(app.query_one("#summary"))  # type: ignore[arg-type]
        tree(app).move_cursor(tree(app).leaves[MUL])
        await pilot.pause()
        assert "not run" in detail_text(app) and "passed" not in detail_text(app).split("\n")[0]


async def test_after_a_filter_the_cursor_is_on_a_shown_row(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=(120, 32)) as pilot:
        await feed(pilot, first_run())
        last = tree(app).shown[-1]
        tree(app).move_to(last)
        await pilot.pause()
        await pilot.press("slash", "m", "u", "l", "enter")
        assert tree(app).shown == [MUL]
        assert tree(app).cursor_data == MUL
        assert detail_text(app).startswith(MUL)
        await pilot.press("k")  # up to the file row, and down again: the keys work
        assert tree(app).cursor_data == "file:test_calc.py"
        await pilot.press("j")
        assert tree(app).cursor_data == MUL
        await pilot.press("slash", "x", "y")  # nothing matches: no test in the pane
        await pilot.pause()
        assert tree(app).shown == [] and MUL not in detail_text(app)


async def test_run_failed_with_no_failures_starts_nothing(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SMALL) as pilot:
        await feed(pilot, first_run(failing=False))
        await pilot.press("f")
        await feed(pilot, [])
        assert app.toasts[-1] == "no failing tests"
        assert requested(app) == [(RunMode.AFFECTED, "start")]


async def test_an_empty_project_says_where_pytest_looked(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SMALL) as pilot:
        await feed(pilot, [])
        assert "waiting for the first run" in detail_text(app)
        await feed(
            pilot,
            [
                RunRequested("run-1", RunMode.AFFECTED, "start"),
                RunStarted("run-1", "start", [], [], 0, looked_in=["tests", "src"]),
                RunFinished("run-1", 5, {}),
            ],
        )
        assert "No tests found. pytest looked in: tests, src" in detail_text(app)
        assert plain(app.query_one("#summary")).strip() == "no tests found"  # type: ignore[arg-type]


async def test_a_cancelled_test_in_the_tree_is_not_a_pass(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SMALL) as pilot:
        await feed(pilot, first_run(failing=False))
        ids = list(app.state.tests)
        await feed(
            pilot,
            [
                RunRequested("run-2", RunMode.ALL, "key: run all"),
                RunStarted("run-2", "x", [], [SelectedTest(n, []) for n in ids], 0),
                TestFinished("run-2", ids[0], Outcome.PASSED, 0.01),
                RunFinished("run-2", WorkerExit.CANCELLED, {}, stopped=ids[1], stopped_after=3.001),
            ],
        )
        labels = [str(tree(app).leaves[n].label) for n in ids]
        assert [lbl[0] for lbl in labels] == ["✓", "⊘", "⊘"]
        tree(app).move_to(ids[1])
        await pilot.pause()
        assert "cancelled after 3001 ms" in detail_text(app)


async def test_help_lists_every_mark(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = "\n".join(plain(w) for w in app.screen.query(Static))
        for status in LEGEND:
            assert f"{MARKS[status]} {label(status)}" in text
        for word in ("cancelled", "not run", "xfailed", "xpassed", "flaky?"):
            assert word in text


async def test_tab_and_shift_tab_switch_the_coverage_panes(project: Path) -> None:
    report = CoverageReport(
        files=(FileCoverage("calc.py", frozenset({1}), frozenset(), percent="100"),),
        totals=Totals(statements=1000, missing=1, percent="99"),
    )
    app = make_app(project)
    async with app.run_test(size=SMALL) as pilot:
        await app.push_screen(CoverageScreen(project, report))
        await pilot.pause()
        files = app.screen.query_one("#coverage-files", DataTable)
        source = app.screen.query_one("#coverage-source", DataTable)
        assert files.has_focus
        await pilot.press("tab")
        assert source.has_focus
        await pilot.press("shift+tab")
        assert files.has_focus
        # coverage.py's own display of the total (99.9% shows as 99, never rounded up)
        title = str(app.screen.query_one("#coverage-title").render())
        assert title == "Coverage: 99% of 1000 statements, 1 missed"


async def test_events_that_land_while_quitting_are_dropped(project: Path) -> None:
    """The session's last events can arrive after the widgets are gone (seen on 3.13)."""
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, first_run())
    app.pump.listener(first_run("run-2")[1])
    app.flush_events()  # the widgets are gone: nothing to redraw, and no crash
    assert app.state.runs[-1].run_id == "run-2"
