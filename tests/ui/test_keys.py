"""Pilot tests: every key and every pane, on the real app and an unstarted real session.

The session is real but never started: pressing a run key goes through
`WatchSession.run`, which emits `RunRequested` back to the app like a live one;
results are fed as the session would deliver them (the app's input).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from textual import events
from textual.widgets import DataTable, Input, ProgressBar, Static

from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.reasons import Reason
from testmon_watch.core.runs import WorkerState
from testmon_watch.ui.app import TestmonWatchApp
from testmon_watch.ui.config import UiConfig
from testmon_watch.ui.screens.coverage import CoverageScreen
from testmon_watch.ui.screens.help import HelpScreen
from testmon_watch.ui.widgets.detail import DetailPane
from testmon_watch.ui.widgets.results import ResultsTree
from testmon_watch.ui.widgets.status import StatusBar
from testmon_watch.wire.worker_protocol import RunStarted, SelectedTest, TestFinished, TestStarted

from .conftest import SIZE, feed, first_run, make_app


def tree(app: TestmonWatchApp) -> ResultsTree:
    return app.query_one(ResultsTree)


def plain(widget: Static) -> str:
    """The text a Static shows, rendered without styles."""
    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def detail_text(app: TestmonWatchApp) -> str:
    return plain(app.query_one(DetailPane).query_one("#detail-body", Static))


def requested(app: TestmonWatchApp) -> list[tuple[RunMode, str]]:
    return [(r.mode, r.trigger) for r in app.state.runs]


# Read through calls, like tree(): mypy would keep what an assert narrowed on
# `app.state.paused` or the filter box's `display` across the key that changes it.


def pause_shown(app: TestmonWatchApp) -> tuple[bool, bool]:
    """Whether the app is paused, and whether its status bar says so."""
    return app.state.paused, "paused" in str(app.query_one(StatusBar).render())


def filter_box(app: TestmonWatchApp) -> Input:
    return app.query_one("#filter", Input)


async def test_first_run_fills_tree_status_and_detail(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        assert "waiting for the first run" in detail_text(app)
        await feed(pilot, first_run())
        assert tree(app).shown[0] == "test_calc.py::test_mul"  # failures first
        status = str(app.query_one(StatusBar).render())
        assert "selected 3, deselected 0" in status and "worker warm" in status
        summary = str(app.query_one("#summary", Static).render())
        assert "1 failed" in summary and "2 passed" in summary


async def test_progress_bar_while_running(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        events = first_run()
        await feed(pilot, events[:4])  # started, one test finished
        bar = app.query_one("#progress", ProgressBar)
        assert bar.display and bar.total == 3 and bar.progress == 1
        await feed(pilot, [TestStarted("run-1", "test_calc.py::test_mul")])
        assert "▶" in str(tree(app).leaves["test_calc.py::test_mul"].label)
        await feed(pilot, events[4:])
        assert not bar.display


async def test_navigation_and_failure_jumps(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, first_run())
        await pilot.press("n")
        assert tree(app).cursor_test == "test_calc.py::test_mul"
        text = detail_text(app)
        assert "assert 5 == 6" in text and "computing 2 * 3" in text and "it is new" in text
        await pilot.press("j")
        assert tree(app).cursor_test != "test_calc.py::test_mul"
        await pilot.press("k")
        assert tree(app).cursor_test == "test_calc.py::test_mul"
        await pilot.press("down", "up")
        assert tree(app).cursor_test == "test_calc.py::test_mul"
        await pilot.press("N")
        assert tree(app).cursor_test == "test_calc.py::test_mul"  # the only failure


async def test_run_keys_call_the_session(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, first_run())
        await pilot.press("r")
        await pilot.press("enter")
        await pilot.press("a")
        await pilot.press("f")
        await feed(pilot, [])
        assert requested(app)[1:] == [(RunMode.AFFECTED, "key: run affected")] * 2 + [
            (RunMode.ALL, "key: run all"),
            (RunMode.FAILED, "key: run failed"),
        ]
        await pilot.press("n", "t")
        await pilot.press("space")
        await feed(pilot, [])
        assert requested(app)[-2:] == [(RunMode.NODEIDS, "key: run test_calc.py::test_mul")] * 2
        tree(app).move_cursor(tree(app).root.children[0])
        await pilot.press("t")
        await feed(pilot, [])
        assert requested(app)[-1] == (RunMode.NODEIDS, "key: run test_calc.py")


async def test_cancel_pause_and_notifications(project: Path) -> None:
    app = make_app(project, UiConfig(bell=True))
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, first_run(failing=False))
        await pilot.press("x")
        assert app.toasts[-1] == "no run to cancel"
        await pilot.press("w")
        assert pause_shown(app) == (True, True)
        await pilot.press("w")
        assert pause_shown(app) == (False, False)
        before = len(app.toasts)
        # the same run again with test_mul failing: one notification for the flip
        await feed(pilot, first_run("run-2")[1:])
        assert app.toasts[before:] == ["1 now fails: test_mul"]
        assert [n.message for n in app._notifications] == ["1 now fails: test_mul"]


async def test_filter_by_name_and_file(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, first_run())
        await pilot.press("slash")
        assert filter_box(app).display and filter_box(app).has_focus
        await pilot.press("z", "e", "r")
        assert tree(app).shown == ["test_calc.py::TestMore::test_add_zero"]
        assert requested(app) == [(RunMode.AFFECTED, "start")]  # typing ran nothing
        await pilot.press("escape")
        assert len(tree(app).shown) == 3 and not filter_box(app).display and tree(app).has_focus
        await pilot.press("p")
        await pilot.press("n", "o", "p", "e")
        assert tree(app).shown == []
        await pilot.press("enter")
        assert tree(app).has_focus and app.file_filter == "nope"
        await pilot.press("escape")
        assert len(tree(app).shown) == 3


async def test_help_screen(project: Path) -> None:
    app = make_app(project, UiConfig(keys={"run_all": "A"}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        text = " ".join(plain(s) for s in help_screen.query(Static))
        assert "Run all" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("A")
        await feed(pilot, [])
        assert requested(app) == [(RunMode.ALL, "key: run all")]


async def test_configured_key_replaces_default(project: Path) -> None:
    app = make_app(project, UiConfig(keys={"run_all": "A"}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await feed(pilot, [])
        assert requested(app) == []


async def test_history_steps_through_runs(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, first_run(failing=False))
        await feed(pilot, first_run("run-2")[1:])
        await pilot.press("comma")
        assert "Run 2 of 2" in detail_text(app) and "passed → failed" in detail_text(app)
        await pilot.press("comma")
        assert "Run 1 of 2" in detail_text(app) and "No test flipped" in detail_text(app)
        await pilot.press("full_stop")
        assert "Run 2 of 2" in detail_text(app)


async def test_flaky_suspect_is_marked(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, first_run())
        await feed(
            pilot,
            [
                RunStarted(
                    "run-2",
                    "x",
                    [],
                    [SelectedTest("test_calc.py::test_mul", [Reason.failed()])],
                    2,
                ),
                TestFinished("run-2", "test_calc.py::test_mul", Outcome.PASSED, 0.01),
            ],
        )
        assert "flaky?" in str(tree(app).leaves["test_calc.py::test_mul"].label)
        assert "flaky?" in str(app.query_one(StatusBar).render())


async def test_open_in_editor_at_the_failure_line(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "opened.txt"
    script = f"import sys; open({str(out)!r}, 'w').write(' '.join(sys.argv[1:]))"
    editor = f'{sys.executable} -c "{script}" {{file}} {{line}}'
    app = make_app(project, UiConfig(editor=editor))
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, first_run())
        await pilot.press("n", "o")
        assert out.read_text() == f"{project / 'test_calc.py'} 10"


async def test_coverage_view_and_export(project: Path) -> None:
    import subprocess

    subprocess.run(  # noqa: ASYNC221 - before the app starts: nothing else to run meanwhile
        [sys.executable, "-m", "pytest", "-q", "--testmon", "-p", "no:cacheprovider"],
        cwd=project,
        check=True,
        capture_output=True,
    )
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("v")
        screen = app.screen
        assert isinstance(screen, CoverageScreen)
        await app.workers.wait_for_complete()  # the coverage job, a child process
        await pilot.pause()
        assert screen.data is not None
        files = screen.query_one("#coverage-files", DataTable)
        assert files.row_count == 2
        assert screen.file is not None and screen.file.path == "calc.py"
        source = screen.query_one("#coverage-source", DataTable)
        source.focus()
        await pilot.press("j")
        who = str(screen.query_one("#coverage-who", Static).render())
        assert "calc.py:2 executed by 2 test(s)" in who and "test_add" in who
        await pilot.press("escape")
        assert not isinstance(app.screen, CoverageScreen)
        await pilot.press("c")
        await app.workers.wait_for_complete()  # the export job, a child process
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("coverage export not available" in m or m.startswith("wrote ") for m in messages)


async def test_command_palette_lists_every_action(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in (
            "Run affected",
            "Run all",
            "Run failed",
            "Filter",
            "Coverage",
            "Export .coverage",
            "Open in editor",
            "Pause/resume",
            "Cancel",
        ):
            assert title in titles
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Run all")
        command.callback()
        await feed(pilot, [])
        assert requested(app) == [(RunMode.ALL, "key: run all")]


async def test_quit_key(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code in (0, None)
    assert app.session.worker.state is WorkerState.STOPPED


async def test_keys_typed_in_one_burst_after_the_slash_go_to_the_filter(project: Path) -> None:
    # A fast typist or a paste: the terminal delivers "/zer" at once, and the keys after
    # the slash are on their way to the tree before the slash has moved the focus.
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, first_run())
        for char, key in (("/", "slash"), ("z", "z"), ("e", "e"), ("r", "r")):
            app.post_message(events.Key(key, char))
        await pilot.pause()
        await pilot.pause()
        box = app.query_one("#filter", Input)
        assert box.has_focus and box.value == "zer"
        assert tree(app).shown == ["test_calc.py::TestMore::test_add_zero"]
        assert requested(app) == [(RunMode.AFFECTED, "start")]  # no key reached the tree's bindings
        # In the box, the slash and the file-filter key are text: "p" filters by file elsewhere.
        await pilot.press("slash", "p")
        assert box.value == "zer/p" and app.filter_kind == "name"
        # On another screen the filter keys do nothing.
        await pilot.press("escape", "question_mark", "slash")
        assert isinstance(app.screen, HelpScreen) and not box.display
