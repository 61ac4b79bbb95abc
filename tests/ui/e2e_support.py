"""Helpers for the issue #12 acceptance tests: the real app on a tiny project, and pytest's word.

`running_app` starts `TestmonWatchApp` on a real `WatchSession` (warm worker,
watchdog watcher) and waits for the first run. `pytest_reference` runs plain
pytest on the same tree in a subprocess and returns its own outcome per node id
and its collection errors. `Screen` reads what the user sees: the header, the
tree rows, the status bar and the whole screen as text. `check_truth` compares
the two.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static

from testmon_watch.config import WatchConfig
from testmon_watch.core.runs import TestPhase
from testmon_watch.session import WatchSession
from testmon_watch.ui.app import TestmonWatchApp
from testmon_watch.ui.widgets.results import ResultsTree
from testmon_watch.ui.widgets.status import StatusBar

WAIT = 90.0  # seconds per awaited event; generous for a busy machine, polls end early
SIZE = (120, 40)

# -- the projects ----------------------------------------------------------------------------

PYTEST_INI = "[pytest]\npythonpath = .\n"
SHAPES = """
def area(w, h):
    return w * h


def perimeter(w, h):
    return 2 * (w + h)
"""
TEST_AREA = """
from shapes import area


def test_area_square():
    assert area(2, 2) == 4


def test_area_rect():
    assert area(2, 3) == 6
"""
TEST_PERIMETER = """
from shapes import perimeter


def test_perimeter_square():
    assert perimeter(1, 1) == 4
"""
TEST_OTHER = """
def test_alone():
    assert 1 + 1 == 2
"""


def write(root: Path, name: str, source: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def shapes_project(root: Path) -> Path:
    """shapes.py imported by test_area.py and test_perimeter.py; test_other.py imports nothing."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text(PYTEST_INI)
    write(root, "shapes.py", SHAPES)
    write(root, "test_area.py", TEST_AREA)
    write(root, "test_perimeter.py", TEST_PERIMETER)
    write(root, "test_other.py", TEST_OTHER)
    return root


# -- pytest's own word -----------------------------------------------------------------------

REPORTER = '''
"""Writes pytest's own outcome per node id and its collection errors as JSON."""
import json, os

_out = {"collected": [], "outcomes": {}, "collection_errors": {}, "exitstatus": None}
_deselected = []


def pytest_deselected(items):
    _deselected.extend(item.nodeid for item in items)


def pytest_collectreport(report):
    if report.failed:
        _out["collection_errors"][report.nodeid] = str(report.longrepr)


def pytest_collection_finish(session):
    _out["collected"] = [item.nodeid for item in session.items] + _deselected


def pytest_runtest_logreport(report):
    seen = _out["outcomes"].get(report.nodeid)
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed"
    elif report.failed:
        outcome = "failed" if report.when == "call" else "error"
    elif report.skipped:
        outcome = "skipped"
    elif report.when == "call":
        outcome = "passed"
    else:
        return
    if seen in (None, "passed") or outcome == "error":
        _out["outcomes"][report.nodeid] = outcome


def pytest_sessionfinish(session, exitstatus):
    _out["exitstatus"] = int(exitstatus)
    with open(os.environ["E2E_REFERENCE_OUT"], "w") as f:
        json.dump(_out, f)
'''


@dataclass
class Reference:
    """What plain pytest says about the tree: collected tests, outcomes, collection errors."""

    collected: list[str]  # every test that exists, deselected ones included
    outcomes: dict[str, str]
    collection_errors: dict[str, str]
    exitstatus: int
    output: str = ""

    @property
    def broken_files(self) -> set[str]:
        return {nodeid.split("::", 1)[0] for nodeid in self.collection_errors}


def pytest_reference(root: Path, scratch: Path, deselect: Iterable[str] = ()) -> Reference:
    """Run `python -m pytest` on `root` as a user would, with a reporting plugin.

    --continue-on-collection-errors: the tests of modules that import still run, so
    pytest says what each of them does (the app runs only the affected ones).
    Nothing is written into the project (no cache, no bytecode): the app's watcher
    must not see the reference run.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "e2e_reference_plugin.py").write_text(REPORTER)
    out = scratch / "reference.json"
    out.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("TESTMON_DATAFILE", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(scratch), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["E2E_REFERENCE_OUT"] = str(out)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "e2e_reference_plugin",
        "-q",
        "--continue-on-collection-errors",
        *(f"--deselect={nodeid}" for nodeid in deselect),
    ]
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    data = json.loads(out.read_text())
    return Reference(
        data["collected"],
        data["outcomes"],
        data["collection_errors"],
        data["exitstatus"],
        done.stdout + done.stderr,
    )


# -- the app -----------------------------------------------------------------------------------


async def until(pilot: Pilot[int], condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            screen = Screen(pilot.app).text()  # type: ignore[arg-type]
            raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{screen}")
        await pilot.pause(0.05)


def idle(app: TestmonWatchApp, after: int = 0) -> bool:
    """More than `after` runs were requested, every one of them is over and none waits."""
    state = app.state
    return (
        len(state.runs) > after
        and all(run.done for run in state.runs)
        and not state.running
        and app.session.wait_idle(0)
    )


async def settle(pilot: Pilot[int], app: TestmonWatchApp, after: int, what: str) -> None:
    """Wait for the runs after the `after`th to end, then for the screen to show it."""
    await until(pilot, lambda: idle(app, after), what)
    # A run that ended may still have a batch queued (the session starts it next).
    await pilot.pause(0.3)
    await until(pilot, lambda: idle(app, after), what)
    await pilot.pause()
    await pilot.pause()


@asynccontextmanager
async def running_app(
    root: Path,
    timeout: float | None = None,
    size: tuple[int, int] = SIZE,
    wait_watcher: bool = True,
) -> AsyncIterator[tuple[TestmonWatchApp, Pilot[int]]]:
    """The real app on a real session; yields once the first run is over and files are watched."""

    def make_session(listener: object) -> WatchSession:
        return WatchSession(root, listener, WatchConfig(debounce_ms=50), timeout=timeout)  # type: ignore[arg-type]

    app = TestmonWatchApp(root, make_session)
    async with app.run_test(size=size) as pilot:
        if wait_watcher:  # it counts the files it watches (none in an empty folder)
            await until(pilot, lambda: app.session.watched_files > 0, "the watcher")
        await settle(pilot, app, 0, "the first run")
        yield app, pilot


# -- what the user sees ------------------------------------------------------------------------

# The words the header may count tests with, and the state each names. Any other
# "N word" in the header (e.g. "1 collection error") is not a count of tests.
HEADER_WORDS = {
    "passed": "passed",
    "failed": "failed",
    "error": "error",
    "errors": "error",
    "crashed": "crashed",
    "timeout": "timeout",
    "timeouts": "timeout",
    "timed out": "timeout",
    "skipped": "skipped",
    "xfailed": "xfailed",
    "xpassed": "xpassed",
    "up to date": "up to date",
    "running": "running",
    "queued": "queued",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "not run": "not run",
}
HEADER_COUNT = re.compile(
    r"(\d+)\s+(not run|up to date|timed out|collection errors?|import errors?|[a-z]+)"
)
# Marks that claim a result: passed (✓) or up to date with a passing result (·).
PASS_MARKS = ("✓", "·")
OUTCOME_MARK_CHARS = "✓✗EsxX!T·"
# How a file row may say its module fails to import.
IMPORT_ERROR = re.compile(r"error|failed to import|does not import|cannot import", re.IGNORECASE)


def plain(renderable: object) -> str:
    text = getattr(renderable, "plain", None)
    return text if isinstance(text, str) else str(renderable)


@dataclass
class Screen:
    """What the user reads: header, tree rows, status bar, the whole screen."""

    app: TestmonWatchApp
    rows: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        """Every line on screen (toasts included), as the terminal would show them."""
        strips = self.app.screen._compositor.render_strips()
        return "\n".join(strip.text.rstrip() for strip in strips)

    def header(self) -> str:
        return plain(self.app.query_one("#summary", Static).render())

    def status_bar(self) -> str:
        return plain(self.app.query_one(StatusBar).render())

    def tree(self) -> ResultsTree:
        return self.app.query_one(ResultsTree)

    def shown(self) -> list[str]:
        return list(self.tree().shown)

    def row(self, nodeid: str) -> str:
        """The tree row of a test as text: its mark and name."""
        node = self.tree().leaves.get(nodeid)
        return plain(node.label) if node is not None else ""

    def mark(self, nodeid: str) -> str:
        row = self.row(nodeid).lstrip()
        return row[:1]

    def file_rows(self) -> dict[str, str]:
        """File rows of the tree: path -> the row's text."""
        result = {}
        for node in self.tree().root.children:
            data = node.data or ""
            if data.startswith("file:"):
                result[data[len("file:") :]] = plain(node.label)
        return result

    def header_counts(self) -> dict[str, int]:
        """'3 passed  1 not run' -> {'passed': 3, 'not run': 1} (test states only)."""
        counts: dict[str, int] = {}
        for number, word in HEADER_COUNT.findall(self.header().lower()):
            state = HEADER_WORDS.get(word)
            if state is not None:
                counts[state] = counts.get(state, 0) + int(number)
        return counts


def status_word(app: TestmonWatchApp, nodeid: str) -> str:
    """The header's word for the state a test is in (as the app's model has it)."""
    test = app.state.tests[nodeid]
    status = test.status
    word = str(status)
    return {
        "up_to_date": "up to date",
        "not_run": "not run",
        "timed out": "timeout",
    }.get(word, word)


def check_truth(
    app: TestmonWatchApp,
    ref: Reference,
    *,
    also_exist: Iterable[str] = (),
    passed_before: Iterable[str] = (),
    cancelled: Iterable[str] = (),
) -> Screen:
    """The screen matches plain pytest on the same tree; returns what was read.

    - every test pytest collects, and every test of a module that fails to import
      (`also_exist`), appears in the tree exactly once; nothing else does (removed
      tests are gone);
    - a test whose module fails to import is "not run" (no result mark) and its
      file row names the error;
    - a test shown with a result mark shows pytest's outcome for it; a pass mark
      (✓, or · up to date) only where pytest passes it, or where it passed in an
      earlier finished run and this tree cannot run it to the end (`passed_before`:
      tests that hang, deselected from the reference run);
    - `cancelled` tests show cancelled, not a result;
    - the header counts add up to the number of tests that exist, and each count
      is the number of rows in that state;
    - the status bar shows the worker warm (the run is over), and when nothing
      failed to import, selected + deselected = the tests pytest collects.
    """
    screen = Screen(app)
    shown = screen.shown()
    broken = ref.broken_files
    also = set(also_exist)
    exist = set(ref.collected) | also
    header, status_bar = screen.header(), screen.status_bar()
    context = (
        f"\nheader: {header!r}\nstatus bar: {status_bar!r}\nrows: "
        + "".join(f"\n  {n}: {screen.row(n)!r}" for n in shown)
        + f"\nfile rows: {screen.file_rows()}\npytest said:\n{ref.output[-1200:]}"
    )

    duplicates = sorted({n for n in shown if shown.count(n) > 1})
    assert not duplicates, f"tests shown more than once: {duplicates}{context}"
    assert set(shown) == exist, (
        f"the tree shows {sorted(set(shown) - exist)} that do not exist and misses "
        f"{sorted(exist - set(shown))}{context}"
    )

    cancelled = set(cancelled)
    passed_before = set(passed_before)
    for nodeid in shown:
        file = nodeid.split("::", 1)[0]
        mark = screen.mark(nodeid)
        if file in broken:
            assert app.state.tests[nodeid].phase is TestPhase.NOT_RUN, (
                f"{nodeid}: its module fails to import, yet its state is "
                f"{app.state.tests[nodeid].status}{context}"
            )
            assert mark not in OUTCOME_MARK_CHARS, (
                f"{nodeid} never ran (its module fails to import) but its row "
                f"shows a result: {screen.row(nodeid)!r}{context}"
            )
        elif nodeid in cancelled:
            assert status_word(app, nodeid) == "cancelled", (
                f"{nodeid} was cancelled; the app has it {app.state.tests[nodeid].status}{context}"
            )
            assert mark not in OUTCOME_MARK_CHARS, (
                f"{nodeid} was cancelled but its row shows a result: "
                f"{screen.row(nodeid)!r}{context}"
            )
        elif mark in PASS_MARKS:
            assert ref.outcomes.get(nodeid) == "passed" or nodeid in passed_before, (
                f"{nodeid} shows passed ({screen.row(nodeid)!r}) but pytest says "
                f"{ref.outcomes.get(nodeid)}{context}"
            )
        elif mark == "✗":
            assert ref.outcomes.get(nodeid) == "failed", (
                f"{nodeid} shows failed but pytest says {ref.outcomes.get(nodeid)}{context}"
            )
        elif nodeid in ref.outcomes:
            raise AssertionError(
                f"{nodeid}: pytest says {ref.outcomes[nodeid]}; the row shows "
                f"{screen.row(nodeid)!r}{context}"
            )

    for file in broken & {n.split("::", 1)[0] for n in exist}:
        row = screen.file_rows().get(file, "")
        assert IMPORT_ERROR.search(row), (
            f"{file} fails to import; its file row does not say so: {row!r}{context}"
        )
    for file, row in screen.file_rows().items():
        if file not in broken:
            assert not IMPORT_ERROR.search(row), (
                f"{file} imports fine, yet its row shows an error: {row!r}{context}"
            )

    counts = screen.header_counts()
    assert sum(counts.values()) == len(exist), (
        f"the header counts {counts} (sum {sum(counts.values())}), "
        f"{len(exist)} tests exist{context}"
    )
    by_word: dict[str, int] = {}
    for nodeid in shown:
        word = status_word(app, nodeid)
        by_word[word] = by_word.get(word, 0) + 1
    assert counts == by_word, f"header counts {counts}, rows are {by_word}{context}"

    assert "worker warm" in status_bar, f"the run is over; the status bar says{context}"
    if not ref.collection_errors:
        selection = re.search(r"selected (\d+), deselected (\d+)", status_bar)
        assert selection is not None, f"the status bar does not say what was selected{context}"
        total = int(selection[1]) + int(selection[2])
        assert total == len(ref.collected), (
            f"selected + deselected = {total}, pytest collects {len(ref.collected)}{context}"
        )
    return screen
