"""The coverage view and the export key through Pilot, on real projects and real coverage jobs."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from testmon_watch.coverage_client import CoverageJob
from testmon_watch.ui.app import TestmonWatchApp
from testmon_watch.ui.screens.coverage import CoverageScreen
from testmon_watch.wire.coverage_report import JobMode

from .conftest import SIZE, make_app

# 196 constants, `def pick`, `if x`, `return 1`, `return 2` (missed) + 3 in the test
# module: 203 statements, 1 missed. 202/203 is 99.5%: coverage.py shows 99 (it never
# rounds up to 100 while a line is missed); a plain `f"{x:.0f}"` shows 100.
BIG = "".join(f"V{i} = {i}\n" for i in range(196)) + (
    "\n\ndef pick(x):\n    if x:\n        return 1\n    return 2\n"
)
TEST_BIG = "from big import pick\n\n\ndef test_pick():\n    assert pick(1) == 1\n"


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "COVERAGE_", "TESTMON_"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.fixture(autouse=True)
def no_datafile_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's jobs inherit this process's environment: no data file named elsewhere."""
    monkeypatch.delenv("TESTMON_DATAFILE", raising=False)


def record(root: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--testmon", "-p", "no:cacheprovider"],
        cwd=root,
        check=True,
        env=clean_env(),
        capture_output=True,
        timeout=120,
    )


def coverage_total(root: Path) -> list[str]:
    """The TOTAL row of `coverage report` on the project's `.coverage`: stmts, miss, cover."""
    result = subprocess.run(
        [sys.executable, "-m", "coverage", "report"],
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (total,) = [line.split()[1:] for line in result.stdout.splitlines() if line.startswith("TOTAL")]
    return total


async def settle(pilot: Pilot[int]) -> None:
    """Wait for the app's and the screen's workers (the jobs) and what they hand back."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def title_of(app: TestmonWatchApp) -> str:
    return str(app.screen.query_one("#coverage-title", Static).render())


def notifications(app: TestmonWatchApp) -> list[str]:
    return [n.message for n in app._notifications]


def fake_python(tmp_path: Path, script: str) -> str:
    path = tmp_path / "fake-python"
    path.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def test_the_view_agrees_with_coverage_report_on_the_export(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    (root / "big.py").write_text(BIG)
    (root / "test_big.py").write_text(TEST_BIG)
    record(root)
    app = make_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        await settle(pilot)
        assert (root / ".coverage").is_file(), notifications(app)
        assert "wrote .coverage (2 files, 1 test)" in notifications(app)
        await pilot.press("v")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CoverageScreen) and screen.data is not None
        statements, missed, percent = coverage_total(root)
        assert (statements, missed, percent) == ("203", "1", "99%")
        assert title_of(app) == f"Coverage: {percent} of {statements} statements, {missed} missed"
        files = screen.query_one("#coverage-files", DataTable)
        big_row = [str(cell) for cell in files.get_row("big.py")]
        assert big_row == ["big.py", "200", "1", "99%"]


async def test_the_view_shows_who_executed_a_line(project: Path) -> None:
    record(project)
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("v")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CoverageScreen)
        assert title_of(app) == "Coverage: 100% of 12 statements, 0 missed"
        assert screen.file is not None and screen.file.path == "calc.py"
        screen.query_one("#coverage-source", DataTable).focus()
        who = screen.query_one("#coverage-who", Static)
        assert str(who.render()) == "calc.py:1 executed by 1 test(s):\n  (import:calc.py)"
        await pilot.press("j", "j", "j", "j", "j")
        assert str(who.render()) == ("calc.py:6 executed by 1 test(s):\n  test_calc.py::test_mul")
        await pilot.press("k")
        assert str(who.render()) == "calc.py:5 executed by 1 test(s):\n  (import:calc.py)"
        await pilot.press("k")
        assert str(who.render()) == "calc.py:4: not a statement"


async def test_no_data_file_is_the_views_title(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("v")
        await settle(pilot)
        assert title_of(app) == (
            "no coverage recorded yet: .testmondata does not exist (run some tests)"
        )
        screen = app.screen
        assert isinstance(screen, CoverageScreen) and screen.data is None
        assert screen.query_one("#coverage-files", DataTable).row_count == 0


async def test_a_corrupt_data_file_is_the_views_title(project: Path) -> None:
    (project / ".testmondata").write_bytes(b"not a database at all " * 50)
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("v")
        await settle(pilot)
        title = title_of(app)
        assert title.startswith("cannot read the recorded lines: cannot use ")
        assert "\n" not in title


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for python")
async def test_a_crashed_job_is_one_line(project: Path, tmp_path: Path) -> None:
    crash = fake_python(
        tmp_path,
        """\
        echo 'Traceback (most recent call last):' >&2
        echo 'RuntimeError: boom' >&2
        exit 1
        """,
    )
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(
            CoverageScreen(project, job=CoverageJob(project, JobMode.REPORT, python=crash))
        )
        await settle(pilot)
        assert title_of(app) == "the coverage job crashed (exit status 1: RuntimeError: boom)"
        await pilot.press("escape")
        app.export_coverage(CoverageJob(project, JobMode.EXPORT, python=crash))
        await settle(pilot)
        assert notifications(app) == [
            "coverage export: the coverage job crashed (exit status 1: RuntimeError: boom)"
        ]


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for python")
async def test_leaving_the_view_stops_its_job(project: Path, tmp_path: Path) -> None:
    hang = CoverageJob(project, JobMode.REPORT, python=fake_python(tmp_path, "exec sleep 600\n"))
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(CoverageScreen(project, job=hang))
        assert hang.started.wait(60)
        assert title_of(app) == "Coverage: reading the recorded lines…"
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, CoverageScreen)
        assert hang.cancelled and hang.returncode == -signal.SIGKILL


async def test_export_key_writes_what_coverage_reads(project: Path) -> None:
    record(project)
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        await settle(pilot)
        assert notifications(app) == ["wrote .coverage (2 files, 3 tests)"]
    result = subprocess.run(  # noqa: ASYNC221 - the app has ended: nothing else to run meanwhile
        [sys.executable, "-m", "coverage", "json", "-o", "-", "--show-contexts"],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    calc = json.loads(result.stdout)["files"]["calc.py"]
    assert calc["contexts"]["6"] == ["test_calc.py::test_mul"]
    assert coverage_total(project) == ["12", "0", "100%"]


async def test_export_key_with_nothing_recorded_says_so(project: Path) -> None:
    app = make_app(project)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        await settle(pilot)
        (message,) = notifications(app)
        assert message == (
            "coverage export: no coverage recorded yet: .testmondata does not exist "
            "(run some tests)"
        )
    assert not (project / ".coverage").exists()
