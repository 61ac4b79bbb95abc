"""Snapshots of the main states (pytest-textual-snapshot); update with --snapshot-update.

Deterministic: a fixed terminal size, events with fixed durations and timings,
and nothing that shows the temporary project's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from testmon_watch.ui.coverage_model import build_coverage
from testmon_watch.ui.screens.coverage import CoverageScreen

from .conftest import SIZE, feed, first_run, make_app


def test_first_run(project: Path, snap_compare: Any) -> None:
    async def before(pilot: Pilot[int]) -> None:
        await feed(pilot, first_run(failing=False))

    assert snap_compare(make_app(project), terminal_size=SIZE, run_before=before)


def test_failure_selected(project: Path, snap_compare: Any) -> None:
    async def before(pilot: Pilot[int]) -> None:
        await feed(pilot, first_run())
        await pilot.press("n")

    assert snap_compare(make_app(project), terminal_size=SIZE, run_before=before)


def test_filter_active(project: Path, snap_compare: Any) -> None:
    async def before(pilot: Pilot[int]) -> None:
        await feed(pilot, first_run())
        await pilot.press("slash", "a", "d", "d")

    assert snap_compare(make_app(project), terminal_size=SIZE, run_before=before)


def test_coverage_view(project: Path, snap_compare: Any) -> None:
    executed = {
        "calc.py": {
            1: {"(import:calc)"},
            2: {"test_calc.py::test_add", "test_calc.py::TestMore::test_add_zero"},
            5: {"(import:calc)"},
        },
        "test_calc.py": {
            1: {"(import:test_calc)"},
            4: {"(import:test_calc)"},
            5: {"test_calc.py::test_add"},
        },
    }

    async def before(pilot: Pilot[int]) -> None:
        await pilot.app.push_screen(CoverageScreen(project, build_coverage(project, executed)))
        await pilot.pause()
        pilot.app.screen.query_one("#coverage-source").focus()
        await pilot.press("j")

    assert snap_compare(make_app(project), terminal_size=SIZE, run_before=before)


def test_help_screen(project: Path, snap_compare: Any) -> None:
    assert snap_compare(make_app(project), terminal_size=SIZE, press=["question_mark"])
