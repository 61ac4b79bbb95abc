"""The front-end process, driven through a whole session, never loads the engine's modules.

tests/test_layout.py checks what importing each module pulls in; this runs the
real app with a real session (warm worker, watcher) in a fresh interpreter,
through a first run, the coverage view, the export key and a full run, and then
reads that interpreter's `sys.modules`: an import made lazily, inside a
function, is caught here too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import write_project

pytestmark = pytest.mark.slow

# Never in the front-end process: pytest, coverage.py, the recorder, the plugin, the
# worker's engine side (all run in the worker or the coverage job), nor SQLite for the app.
FORBIDDEN = (
    "pytest",
    "_pytest",
    "pluggy",
    "coverage",
    "testmon_watch.measure",
    "testmon_watch.pytest_plugin",
    "testmon_watch.worker.server",
    "testmon_watch.worker.supervisor",
    "testmon_watch.worker.streamer",
    "testmon_watch.worker.child",
)

DRIVE = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path

    from testmon_watch.config import WatchConfig
    from testmon_watch.session import WatchSession
    from testmon_watch.ui.app import TestmonWatchApp
    from testmon_watch.ui.screens.coverage import CoverageScreen

    root = Path(sys.argv[1])
    steps = []

    async def until(pilot, condition, what):
        deadline = time.monotonic() + 90
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            await pilot.pause(0.05)
        steps.append(what)

    async def main():
        def make_session(listener):
            return WatchSession(root, listener, WatchConfig())

        app = TestmonWatchApp(root, make_session)
        done = lambda n: sum(1 for r in app.state.runs if r.done) >= n
        async with app.run_test(size=(120, 32)) as pilot:
            await until(pilot, lambda: done(1), "the first run")
            await pilot.press("v")
            await until(pilot, lambda: isinstance(app.screen, CoverageScreen), "the view")
            await app.workers.wait_for_complete()
            await pilot.press("escape")
            await pilot.press("c")
            await app.workers.wait_for_complete()
            await until(pilot, lambda: (root / ".coverage").exists(), "the export")
            await pilot.press("a")
            await until(pilot, lambda: done(2), "a full run")
        print(json.dumps({"steps": steps, "modules": sorted(sys.modules)}))

    asyncio.run(main())
    """
)


def test_the_app_loads_no_engine_module_through_a_whole_session(tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj")
    env = {k: v for k, v in os.environ.items() if k != "TESTMON_DATAFILE"}
    result = subprocess.run(
        [sys.executable, "-c", DRIVE, str(project)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["steps"] == ["the first run", "the view", "the export", "a full run"]
    loaded = report["modules"]
    assert "testmon_watch.coverage_client" in loaded  # the view and the export did run
    bad = [m for m in loaded if any(m == p or m.startswith(p + ".") for p in FORBIDDEN)]
    assert not bad, f"the front-end process loaded {bad}"
