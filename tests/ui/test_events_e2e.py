"""Issue #12, end to end: after every everyday event the screen tells the truth.

Each test drives the real app (`TestmonWatchApp`) on a real `WatchSession` (warm
worker, watchdog watcher) on a tiny project, makes one everyday edit, waits for
the run to end and then checks what the user reads (header counts, tree rows,
file rows, status bar) against a plain `pytest` run of the same tree
(`e2e_support.check_truth`): every test that exists is shown exactly once,
nothing shows a result that did not happen, the counts add up.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from textual.pilot import Pilot

from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.runs import TestPhase
from testmon_watch.ui.app import TestmonWatchApp

from .e2e_support import (
    Screen,
    check_truth,
    pytest_reference,
    running_app,
    settle,
    shapes_project,
    until,
    write,
)

pytestmark = pytest.mark.slow

AREA = ["test_area.py::test_area_square", "test_area.py::test_area_rect"]
PERIMETER = ["test_perimeter.py::test_perimeter_square"]
OTHER = ["test_other.py::test_alone"]


@pytest.fixture(autouse=True)
def _no_datafile_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTMON_DATAFILE", raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return shapes_project(tmp_path / "proj")


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    return tmp_path / "scratch"


def edit(path: Path, old: str, new: str) -> None:
    source = path.read_text()
    assert old in source, f"{old!r} not in {path}"
    path.write_text(source.replace(old, new))


# -- a syntax error in a module two test modules import, then its fix --------------------------


async def test_syntax_error_then_fix(project: Path, scratch: Path) -> None:
    """A syntax error in shapes.py: both test modules that import it fail to import.

    Their tests are "not run" (never "passed": they did not run), each module's
    row says there is an error, test_other.py keeps its result (up to date), and
    the header adds up to the 4 tests that exist. The fix clears the errors and
    every test shows pytest's outcome again.
    """
    async with running_app(project) as (app, pilot):
        check_truth(app, pytest_reference(project, scratch))

        runs = len(app.state.runs)
        edit(project / "shapes.py", "def area(w, h):", "def area(w, h:")
        await settle(pilot, app, runs, "the run after the syntax error")
        ref = pytest_reference(project, scratch)
        assert ref.broken_files == {"test_area.py", "test_perimeter.py"}, ref.output
        screen = check_truth(app, ref, also_exist=AREA + PERIMETER)
        counts = screen.header_counts()
        assert counts.get("not run") == 3, screen.header()
        assert "passed" not in counts, f"no test ran, yet the header says {screen.header()!r}"
        assert screen.mark(OTHER[0]) == "·", screen.row(OTHER[0])  # untouched: up to date

        runs = len(app.state.runs)
        edit(project / "shapes.py", "def area(w, h:", "def area(w, h):")
        await settle(pilot, app, runs, "the run after the fix")
        ref = pytest_reference(project, scratch)
        assert not ref.collection_errors, ref.output
        screen = check_truth(app, ref)
        for nodeid in AREA + PERIMETER:
            assert screen.mark(nodeid) == "✓", screen.row(nodeid)
        assert screen.header_counts() == {"passed": 3, "up to date": 1}, screen.header()


async def test_syntax_error_shown_on_its_module(project: Path, scratch: Path) -> None:
    """The row of a module that fails to import, selected, shows what broke, on screen.

    A demanding user selects `test_area.py` and reads the SyntaxError and the
    file it is in (shapes.py) without scrolling: the error pytest reports, not
    a screenful of import machinery first, and none of testmon-watch's own
    frames (plain pytest shows none).
    """
    async with running_app(project) as (app, pilot):
        runs = len(app.state.runs)
        edit(project / "shapes.py", "def area(w, h):", "def area(w, h:")
        await settle(pilot, app, runs, "the run after the syntax error")
        tree = Screen(app).tree()
        node = next(n for n in tree.root.children if n.data == "file:test_area.py")
        tree.move_cursor(node)
        await pilot.pause()
        await pilot.pause()
        text = Screen(app).text()
        assert "SyntaxError" in text and "shapes.py" in text, f"the error is not on screen:\n{text}"
        assert "testmon_watch/" not in text, f"testmon-watch's own frames are shown:\n{text}"


# -- cancel (x) during a run ---------------------------------------------------------------------

GATED = """
import os
import time

from shapes import area

GATE = {gate!r}


def test_before():
    assert area(1, 1) == 1


def test_gated():
    deadline = time.monotonic() + 120
    while not os.path.exists(GATE):
        assert time.monotonic() < deadline, "the gate never opened"
        time.sleep(0.01)
    assert area(2, 2) == 4


def test_after():
    assert area(3, 3) == 9
"""
GATE_TESTS = ["test_gate.py::test_before", "test_gate.py::test_gated", "test_gate.py::test_after"]


def running(app: object, nodeid: str) -> bool:
    test = app.state.tests.get(nodeid)  # type: ignore[attr-defined]
    return test is not None and test.phase is TestPhase.RUNNING


async def test_cancel_during_a_run(project: Path, scratch: Path, tmp_path: Path) -> None:
    """x while test_gated waits on a gate: it and the test queued after it show cancelled.

    Both passed in the first run; after the cancel neither shows ✓ (the run that
    was to tell did not finish), the tests that finished before the cancel show
    their result, and the header counts the cancelled tests among all 7. Then
    `r` (run affected) runs what the cancelled run left: they pass, none stays
    cancelled (a demanding user expects the affected set to include them).
    """
    gate = tmp_path / "gate"  # outside the project: the watcher does not see it
    gate.touch()
    write(project, "test_gate.py", GATED.format(gate=str(gate)))
    async with running_app(project) as (app, pilot):
        check_truth(app, pytest_reference(project, scratch))
        assert Screen(app).mark("test_gate.py::test_gated") == "✓"

        gate.unlink()
        runs = len(app.state.runs)
        edit(project / "shapes.py", "return w * h", "return h * w")
        await until(pilot, lambda: running(app, GATE_TESTS[1]), "test_gated to be running")
        await pilot.pause()
        # Mid-run, too: the running test shows so, the counts add up to the 7 tests.
        screen = Screen(app)
        assert screen.mark(GATE_TESTS[1]) == "▶", screen.row(GATE_TESTS[1])
        assert screen.header_counts().get("running") == 1, screen.header()
        assert sum(screen.header_counts().values()) == 7, screen.header()
        assert "worker running" in screen.status_bar(), screen.status_bar()
        await pilot.press("x")
        await settle(pilot, app, runs, "the cancelled run to end")
        gate.touch()
        # The run's order is the engine's; what the worker finished before the cancel
        # must show its result, the rest (test_gated and test_after at least) cancelled.
        run = app.state.runs[-1]
        unfinished = [n for n, t in run.tests.items() if t.phase is not TestPhase.FINISHED]
        assert set(GATE_TESTS[1:]) <= set(unfinished), {n: t.phase for n, t in run.tests.items()}
        screen = check_truth(app, pytest_reference(project, scratch), cancelled=unfinished)
        assert screen.header_counts().get("cancelled") == len(unfinished), screen.header()

        # r (run affected): what the cancelled run did not finish runs now and passes.
        runs = len(app.state.runs)
        await pilot.press("r")
        await settle(pilot, app, runs, "the run after r")
        screen = check_truth(app, pytest_reference(project, scratch))
        for nodeid in unfinished:
            assert screen.mark(nodeid) == "✓", screen.row(nodeid)


# -- cancel of a hung test, and a per-test timeout -----------------------------------------------

HANGING = """
import time

from flags import HANG


def test_hangs():
    if HANG:
        time.sleep(999)


def test_next():
    assert True
"""
HANGS, NEXT = "test_hang.py::test_hangs", "test_hang.py::test_next"
DURATION = re.compile(r"(\d+(?:\.\d+)?) (ms|s)\b")


def hang_project(project: Path) -> None:
    write(project, "flags.py", "HANG = False\n")
    write(project, "test_hang.py", HANGING)


def detail_line(screen: Screen, nodeid: str) -> str:
    """The detail pane's head line for `nodeid` (the cursor is on it)."""
    for line in screen.text().splitlines():
        if nodeid in line:
            return line[line.index(nodeid) :]
    return ""


def seconds_shown(line: str) -> float | None:
    found = DURATION.search(line.split("  ", 1)[-1])
    if found is None:
        return None
    value = float(found[1])
    return value / 1000 if found[2] == "ms" else value


async def after_the_hang(
    app: TestmonWatchApp, pilot: Pilot[int], project: Path, scratch: Path
) -> None:
    """The hang undone: the worker, still warm, runs both tests again and they pass."""
    runs = len(app.state.runs)
    edit(project / "flags.py", "HANG = True", "HANG = False")
    await settle(pilot, app, runs, "the run after the hang was undone")
    screen = check_truth(app, pytest_reference(project, scratch))
    for nodeid in (HANGS, NEXT):
        assert screen.mark(nodeid) == "✓", screen.row(nodeid)


async def test_cancel_a_hung_test(project: Path, scratch: Path) -> None:
    """x on a test stuck in time.sleep(999): it shows cancelled and how long it actually ran.

    It passed in ~0 s before; after running ≥ 0.5 s and being cancelled, its row
    has no ✓, and the detail pane shows "cancelled" with a time ≥ 0.5 s, not the
    earlier run's duration. Undoing the hang, both tests run again and pass.
    """
    hang_project(project)
    async with running_app(project) as (app, pilot):
        check_truth(app, pytest_reference(project, scratch))
        before = app.state.tests[HANGS].duration
        assert before is not None and before < 0.5

        runs = len(app.state.runs)
        edit(project / "flags.py", "HANG = False", "HANG = True")
        await until(pilot, lambda: running(app, HANGS), "test_hangs to be running")
        await pilot.pause(0.6)  # let it run for a measurable time
        await pilot.press("x")
        await settle(pilot, app, runs, "the cancelled run to end")
        ref = pytest_reference(project, scratch, deselect=[HANGS])
        screen = check_truth(app, ref, cancelled=[HANGS, NEXT])
        assert screen.tree().move_to(HANGS)
        await pilot.pause()
        await pilot.pause()
        line = detail_line(Screen(app), HANGS)
        assert "cancelled" in line, line
        shown = seconds_shown(line)
        assert shown is not None and shown >= 0.5, f"the time it ran is not shown: {line!r}"
        # before < 0.5: a time of at least 0.5 s is this run's, not the earlier one.

        await after_the_hang(app, pilot, project, scratch)


async def test_timeout_of_a_hung_test(project: Path, scratch: Path) -> None:
    """A 1 s per-test timeout stops test_sleep(999): it shows a timeout of at least 1 s.

    The test after it either ran (and shows pytest's result) or shows cancelled;
    it never keeps the ✓ of the run before as if this run had passed it. Undoing
    the hang, both tests run again and pass.
    """
    hang_project(project)
    async with running_app(project, timeout=1.0) as (app, pilot):
        check_truth(app, pytest_reference(project, scratch))

        runs = len(app.state.runs)
        edit(project / "flags.py", "HANG = False", "HANG = True")
        await settle(pilot, app, runs, "the run with the hung test to time out")
        assert app.state.tests[HANGS].status is Outcome.TIMEOUT
        ref = pytest_reference(project, scratch, deselect=[HANGS])
        run = app.state.runs[-1]
        next_ran = NEXT in run.tests and run.tests[NEXT].phase is TestPhase.FINISHED
        screen = check_truth(app, ref, cancelled=[] if next_ran else [NEXT])
        assert screen.header_counts().get("timeout") == 1, screen.header()
        assert screen.mark(HANGS) not in ("✓", "·"), screen.row(HANGS)
        assert screen.tree().move_to(HANGS)
        await pilot.pause()
        await pilot.pause()
        line = detail_line(Screen(app), HANGS)
        assert "time" in line, line  # "timed out" / "timeout"
        shown = seconds_shown(line)
        assert shown is not None and shown >= 1.0, f"the time it ran is not shown: {line!r}"
        duration = app.state.tests[HANGS].duration
        assert duration is not None and duration >= 1.0

        await after_the_hang(app, pilot, project, scratch)


# -- tests that come and go ----------------------------------------------------------------------


async def test_deleted_test_file(project: Path, scratch: Path) -> None:
    """test_perimeter.py deleted: its test and its file row leave the screen; 3 tests remain."""
    async with running_app(project) as (app, pilot):
        runs = len(app.state.runs)
        (project / "test_perimeter.py").unlink()
        await settle(pilot, app, runs, "the run after the deletion")
        screen = check_truth(app, pytest_reference(project, scratch))
        assert "test_perimeter.py" not in screen.file_rows(), screen.file_rows()
        assert "test_perimeter_square" not in screen.text()
        assert sum(screen.header_counts().values()) == 3, screen.header()


async def test_renamed_test_function(project: Path, scratch: Path) -> None:
    """test_area_rect renamed test_area_rectangle: the new name shows ✓, the old one is gone."""
    async with running_app(project) as (app, pilot):
        runs = len(app.state.runs)
        edit(project / "test_area.py", "def test_area_rect():", "def test_area_rectangle():")
        await settle(pilot, app, runs, "the run after the rename")
        screen = check_truth(app, pytest_reference(project, scratch))
        assert "test_area.py::test_area_rect" not in screen.shown()
        assert screen.mark("test_area.py::test_area_rectangle") == "✓"
        assert sum(screen.header_counts().values()) == 4, screen.header()


async def test_new_test_file(project: Path, scratch: Path) -> None:
    """A new test file: its two tests appear, one ✓ and one ✗, and the header counts 6."""
    async with running_app(project) as (app, pilot):
        runs = len(app.state.runs)
        write(
            project,
            "test_new.py",
            """
            from shapes import area


            def test_new_passes():
                assert area(1, 2) == 2


            def test_new_fails():
                assert area(1, 2) == 3
            """,
        )
        await settle(pilot, app, runs, "the run after the new file")
        screen = check_truth(app, pytest_reference(project, scratch))
        assert screen.mark("test_new.py::test_new_passes") == "✓"
        assert screen.mark("test_new.py::test_new_fails") == "✗"
        assert screen.header_counts().get("failed") == 1, screen.header()
        assert sum(screen.header_counts().values()) == 6, screen.header()


async def test_renamed_test_file(project: Path, scratch: Path) -> None:
    """test_other.py renamed test_misc.py (as `git mv`): its test moves, the old row is gone."""
    async with running_app(project) as (app, pilot):
        runs = len(app.state.runs)
        (project / "test_other.py").rename(project / "test_misc.py")
        await settle(pilot, app, runs, "the run after the rename")
        screen = check_truth(app, pytest_reference(project, scratch))
        assert "test_other.py" not in screen.file_rows(), screen.file_rows()
        assert screen.mark("test_misc.py::test_alone") == "✓", screen.row(
            "test_misc.py::test_alone"
        )


async def test_syntax_error_in_a_test_file_then_fix(project: Path, scratch: Path) -> None:
    """A syntax error in test_area.py itself: its 2 tests are not run, the rest keep results.

    The fix clears the error and both tests show ✓ again.
    """
    async with running_app(project) as (app, pilot):
        runs = len(app.state.runs)
        edit(project / "test_area.py", "def test_area_rect():", "def test_area_rect(:")
        await settle(pilot, app, runs, "the run after the syntax error")
        ref = pytest_reference(project, scratch)
        assert ref.broken_files == {"test_area.py"}, ref.output
        screen = check_truth(app, ref, also_exist=AREA)
        assert screen.header_counts().get("not run") == 2, screen.header()

        runs = len(app.state.runs)
        edit(project / "test_area.py", "def test_area_rect(:", "def test_area_rect():")
        await settle(pilot, app, runs, "the run after the fix")
        screen = check_truth(app, pytest_reference(project, scratch))
        for nodeid in AREA:
            assert screen.mark(nodeid) == "✓", screen.row(nodeid)


async def test_import_error_cleared_by_a_new_module(project: Path, scratch: Path) -> None:
    """test_helpers.py imports helpers.py, which does not exist yet: collection error.

    Creating helpers.py (a file no test has ever depended on) must clear the
    error: the module imports now, its test runs and shows ✓.
    """
    async with running_app(project) as (app, pilot):
        runs = len(app.state.runs)
        write(
            project,
            "test_helpers.py",
            "from helpers import double\n\n\ndef test_double():\n    assert double(2) == 4\n",
        )
        await settle(pilot, app, runs, "the run after the new test file")
        ref = pytest_reference(project, scratch)
        assert ref.broken_files == {"test_helpers.py"}, ref.output
        screen = check_truth(app, ref)
        row = screen.file_rows().get("test_helpers.py", "")
        assert "error" in row.lower() or "import" in row.lower(), screen.file_rows()

        runs = len(app.state.runs)
        write(project, "helpers.py", "def double(x):\n    return 2 * x\n")
        await settle(pilot, app, runs, "the run after helpers.py appeared")
        screen = check_truth(app, pytest_reference(project, scratch))
        assert screen.mark("test_helpers.py::test_double") == "✓", screen.file_rows()


# -- a stash-like burst ---------------------------------------------------------------------------


async def test_stash_like_burst(project: Path, scratch: Path) -> None:
    """Three files rewritten within a few ms (as `git stash` does: unlink, write) -> one run.

    shapes.py breaks both area tests, test_other.py now fails and test_perimeter.py
    gains a passing test: three tests flip at once. A demanding user wants one
    run and at most one toast for one stash, not a toast per test.
    """
    async with running_app(project) as (app, pilot):
        app.clear_notifications()  # count only what the burst brings
        runs = len(app.state.runs)
        new = {
            "shapes.py": SHAPES_BROKEN,
            "test_other.py": "def test_alone():\n    assert 1 + 1 == 3\n",
            "test_perimeter.py": textwrap.dedent(PERIMETER_MORE).lstrip(),
        }
        for name, source in new.items():
            (project / name).unlink()
            (project / name).write_text(source)
        await settle(pilot, app, runs, "the run after the burst")
        screen = check_truth(app, pytest_reference(project, scratch))
        triggered = app.state.runs[runs:]
        assert len(triggered) == 1, [run.trigger for run in triggered]
        toasts = [n.message for n in app._notifications]
        assert len(toasts) <= 1, f"{len(toasts)} toasts on screen: {toasts}"
        assert screen.header_counts().get("failed") == 3, screen.header()


SHAPES_BROKEN = """\
def area(w, h):
    return w * h + 1


def perimeter(w, h):
    return 2 * (w + h)
"""
PERIMETER_MORE = """
from shapes import perimeter


def test_perimeter_square():
    assert perimeter(1, 1) == 4


def test_perimeter_rect():
    assert perimeter(1, 2) == 6
"""


# -- no tests at all ------------------------------------------------------------------------------


async def test_empty_folder(tmp_path: Path, scratch: Path) -> None:
    """A project whose testpaths folder is empty: the screen says no tests were found, and where.

    "No tests yet: waiting for the first run" is not the truth once the run is
    over: the screen must say that pytest found no tests and name the folder it
    looked in (specs). A test file added later appears and runs.
    """
    project = tmp_path / "empty"
    (project / "specs").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\npythonpath = .\ntestpaths = specs\n")
    async with running_app(project, wait_watcher=False) as (app, pilot):
        ref = pytest_reference(project, scratch)
        assert ref.collected == [] and ref.exitstatus == 5, ref.output
        screen = Screen(app)
        text = screen.text()
        assert screen.shown() == [], screen.shown()
        assert sum(screen.header_counts().values()) == 0, screen.header()
        assert re.search(r"no tests\b(?! yet)", text, re.IGNORECASE), text
        assert "waiting for the first run" not in text, text
        assert "specs" in text, f"the screen does not say where pytest looked:\n{text}"

        runs = len(app.state.runs)
        write(project, "specs/test_first.py", "def test_first():\n    assert True\n")
        await settle(pilot, app, runs, "the run after the first test file")
        screen = check_truth(app, pytest_reference(project, scratch))
        assert screen.mark("specs/test_first.py::test_first") == "✓"


# -- a narrow terminal ----------------------------------------------------------------------------

LONG_DIR = "a_package_with_a_rather_long_name/and_a_subpackage_with_another_long_name"
LONG_MODULE = f"{LONG_DIR}/module_whose_name_goes_on_and_on_and_on.py"


async def test_status_bar_at_80x24_with_a_long_trigger(project: Path, scratch: Path) -> None:
    """80x24, a change to a file with a 100-character path: latency and worker state stay visible.

    The status bar's text on screen (what fits in 80 columns) still shows the
    latency and "worker warm" once the run is over, however long the trigger.
    """
    write(project, LONG_MODULE, "def value():\n    return 1\n")
    for part in (LONG_DIR.split("/")[0], LONG_DIR):
        (project / part / "__init__.py").touch()
    module = LONG_MODULE[:-3].replace("/", ".")
    write(
        project,
        "test_long.py",
        f"from {module} import value\n\n\ndef test_value():\n    assert value() == 1\n",
    )
    async with running_app(project, size=(80, 24)) as (app, pilot):
        runs = len(app.state.runs)
        edit(project / LONG_MODULE, "return 1", "return 0 + 1")
        await settle(pilot, app, runs, "the run after the edit")
        assert LONG_MODULE in app.state.last_trigger
        screen = Screen(app)
        check_truth(app, pytest_reference(project, scratch))
        bar = app.query_one("#status")
        lines = screen.text().splitlines()
        visible = "\n".join(lines[bar.region.y : bar.region.y + bar.region.height])
        assert bar.region.height >= 1 and visible.strip(), screen.text()
        assert re.search(r"latency \d+(\.\d+)? m?s", visible), f"no latency in {visible!r}"
        assert "worker warm" in visible, f"no worker state in {visible!r}"
