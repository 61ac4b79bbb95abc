"""Issue #12, end to end: after every everyday event the screen tells the truth.

Each test drives the real app (`TestmonWatchApp`) on a real `WatchSession` (warm
worker, watchdog watcher) on a tiny project, makes one everyday edit, waits for
the run to end and then checks what the user reads (header counts, tree rows,
file rows, status bar) against a plain `pytest` run of the same tree
(`e2e_support.check_truth`): every test that exists is shown exactly once,
nothing shows a result that did not happen, the counts add up.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.runs import TestPhase

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
