"""Snapshots of the main states (pytest-textual-snapshot); update with --snapshot-update.

Deterministic: a fixed terminal size, events with fixed durations and timings,
and nothing that shows the temporary project's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from testmon_watch.core.keys import ContextKey
from testmon_watch.ui.screens.coverage import CoverageScreen
from testmon_watch.wire.coverage_report import CoverageReport, FileCoverage, Totals

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
    add, add_zero = (
        ContextKey.test("test_calc.py::test_add"),
        ContextKey.test("test_calc.py::TestMore::test_add_zero"),
    )
    import_calc, import_tests = ContextKey.import_of("calc"), ContextKey.import_of("test_calc")
    report = CoverageReport(
        files=(
            FileCoverage(
                "calc.py",
                statements=frozenset({1, 2, 5, 6}),
                missing=frozenset({6}),
                percent="75",
                executed_by={1: (import_calc,), 2: (add, add_zero), 5: (import_calc,)},
            ),
            FileCoverage(
                "test_calc.py",
                statements=frozenset({1, 4, 5, 8, 9, 12, 13, 14}),
                missing=frozenset({8, 9, 12, 13, 14}),
                percent="38",
                executed_by={1: (import_tests,), 4: (import_tests,), 5: (add,)},
            ),
        ),
        totals=Totals(statements=12, missing=6, percent="50"),
    )

    async def before(pilot: Pilot[int]) -> None:
        await pilot.app.push_screen(CoverageScreen(project, report))
        await pilot.pause()
        pilot.app.screen.query_one("#coverage-source").focus()
        await pilot.press("j")

    assert snap_compare(make_app(project), terminal_size=SIZE, run_before=before)


def test_help_screen(project: Path, snap_compare: Any) -> None:
    assert snap_compare(make_app(project), terminal_size=SIZE, press=["question_mark"])


def test_failure_selected_80x24(project: Path, snap_compare: Any) -> None:
    async def before(pilot: Pilot[int]) -> None:
        await feed(pilot, first_run())
        await pilot.press("n")

    assert snap_compare(make_app(project), terminal_size=(80, 24), run_before=before)
