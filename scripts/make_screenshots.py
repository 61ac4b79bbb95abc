"""Regenerate screenshots/*.svg from the real app on a scratch copy of examples/shop.

    .venv/bin/python scripts/make_screenshots.py [--out screenshots]

The app runs headless (`App.run_test`) at 140x40 on a real `WatchSession`: a real
warm worker runs the real tests and the real watcher sees the edits. A Pilot
drives it through the main states and saves one SVG per state:

    first-run.svg         the first run, every test passed, a test selected
    failure.svg           bulk_price() broken: the failing test selected, with its
                          traceback and why it ran
    filter.svg            the name filter "bulk" typed in
    coverage.svg          the coverage view: shop/pricing.py, the cursor on a line of
                          bulk_price() and the tests that executed it
    help.svg              the help screen (`?`)

Durations and latencies are real, so two runs differ in those figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual.pilot import Pilot  # noqa: E402
from textual.widgets import DataTable  # noqa: E402

from testmon_watch.config import WatchConfig  # noqa: E402
from testmon_watch.session import Listener, WatchSession  # noqa: E402
from testmon_watch.ui.app import TestmonWatchApp  # noqa: E402
from testmon_watch.ui.screens.coverage import CoverageScreen  # noqa: E402
from testmon_watch.ui.screens.help import HelpScreen  # noqa: E402
from testmon_watch.ui.widgets.results import ResultsTree  # noqa: E402

SHOP = ROOT / "examples" / "shop"
SIZE = (140, 40)
WAIT = 90.0  # seconds per step
GOOD = "total = total * BULK_FACTOR"
BAD = "total = total * BULK_FACTOR * 2"  # 5% off becomes 90% on
BROKEN_TEST = "tests/test_pricing.py::test_bulk_price_at_threshold_gets_discount"
FIRST_SELECTED = "tests/test_pricing.py::test_bulk_price_below_threshold"
COVERAGE_FILE = "shop/pricing.py"
TITLE = "testmon-watch"


async def until(pilot: Pilot[int], condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"make_screenshots: timed out waiting for {what}")
        await pilot.pause(0.05)
    await pilot.pause()


def save(app: TestmonWatchApp, out: Path, name: str) -> None:
    path = out / f"{name}.svg"
    path.write_text(app.export_screenshot(title=TITLE), encoding="utf-8")
    print(f"  wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def finished_runs(app: TestmonWatchApp) -> int:
    return sum(1 for run in app.state.runs if run.done)


def idle(app: TestmonWatchApp, runs: int) -> Callable[[], bool]:
    """True once more than `runs` runs have finished and nothing is queued or applying."""
    return lambda: (
        finished_runs(app) > runs
        and not app.state.running
        and not app.pump._pending
        and app._flush_timer is None
    )


async def drive(root: Path, out: Path) -> None:
    def make_session(listener: Listener) -> WatchSession:
        return WatchSession(root, listener, WatchConfig(debounce_ms=50))

    app = TestmonWatchApp(root, make_session)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        tree = app.query_one(ResultsTree)

        # 1. First run: nothing recorded yet, every test runs and passes.
        await until(pilot, idle(app, 0), "the first run")
        await until(pilot, lambda: app.session.watched_files > 0, "the watcher")
        await until(pilot, lambda: FIRST_SELECTED in tree.leaves, "the results tree")
        tree.move_to(FIRST_SELECTED)
        tree.scroll_home(animate=False)
        await pilot.pause(0.2)
        app.clear_notifications()
        await pilot.pause()
        save(app, out, "first-run")

        # 2. Break bulk_price(): only the tests that executed it run; select the failure.
        pricing = root / "shop" / "pricing.py"
        source = pricing.read_text(encoding="utf-8")
        if GOOD not in source:
            raise SystemExit(f"make_screenshots: {GOOD!r} not found in {pricing}")
        runs = finished_runs(app)
        pricing.write_text(source.replace(GOOD, BAD), encoding="utf-8")
        await until(pilot, idle(app, runs), "the run after breaking bulk_price()")
        test = app.state.tests.get(BROKEN_TEST)
        if test is None or not test.failing:
            raise SystemExit(f"make_screenshots: {BROKEN_TEST} did not fail")
        tree.move_to(BROKEN_TEST)  # `n` picks the first failure in tree order
        tree.scroll_home(animate=False)
        await pilot.pause(0.5)  # the app's own "now fails" toasts stay up for a few seconds
        save(app, out, "failure")
        app.clear_notifications()

        # 3. Filter by name, live as you type.
        await pilot.press("slash", *"bulk")
        await pilot.pause(0.3)
        save(app, out, "filter")
        await pilot.press("escape")

        # 4. Fix it again, then the coverage view of shop/pricing.py.
        runs = finished_runs(app)
        pricing.write_text(source, encoding="utf-8")
        await until(pilot, idle(app, runs), "the run after fixing bulk_price()")
        app.clear_notifications()
        await pilot.press("v")
        await until(
            pilot,
            lambda: isinstance(app.screen, CoverageScreen) and app.screen.data is not None,
            "the coverage data",
        )
        screen = app.screen
        assert isinstance(screen, CoverageScreen)
        files = screen.query_one("#coverage-files", DataTable)
        rows = [key.value for key in files.rows]
        if COVERAGE_FILE not in rows:
            raise SystemExit(f"make_screenshots: {COVERAGE_FILE} not in the coverage table")
        files.move_cursor(row=rows.index(COVERAGE_FILE))
        await until(
            pilot,
            lambda: screen.file is not None and screen.file.path == COVERAGE_FILE,
            "the source of " + COVERAGE_FILE,
        )
        lines = pricing.read_text(encoding="utf-8").splitlines()
        target = next(i for i, line in enumerate(lines, 1) if GOOD in line)
        source_table = screen.query_one("#coverage-source", DataTable)
        source_table.focus()
        source_table.move_cursor(row=target - 1)
        await pilot.pause(0.3)
        save(app, out, "coverage")
        await pilot.press("escape")
        await pilot.pause()

        # 5. The help screen.
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        await pilot.pause(0.3)
        save(app, out, "help")
        await pilot.press("escape")
        await pilot.press("q")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "screenshots",
        help="folder for the SVGs (default: screenshots/)",
    )
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.pop("TESTMON_DATAFILE", None)
    with tempfile.TemporaryDirectory(prefix="testmon-watch-shots-") as scratch:
        root = Path(scratch, "shop")
        shutil.copytree(
            SHOP,
            root,
            ignore=shutil.ignore_patterns(
                ".testmondata*", ".coverage*", "__pycache__", ".pytest_cache"
            ),
        )
        asyncio.run(drive(root.resolve(), out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
