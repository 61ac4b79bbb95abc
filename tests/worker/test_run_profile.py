"""TESTMON_WATCH_PROFILE_DIR: each run's child leaves a cProfile of the run."""

from __future__ import annotations

import pstats
from pathlib import Path

from worker_helpers import Events, make_client, run_end

from testmon_watch.worker.child import PROFILE_ENV


def test_each_run_leaves_a_profile_that_pstats_reads(
    project: Path, events: Events, tmp_path: Path
) -> None:
    folder = tmp_path / "profiles"
    client = make_client(project, events, env={PROFILE_ENV: str(folder)})
    client.start()
    try:
        for mode in ("all", "affected"):  # a fresh child, then a released standby
            run_id = client.run(mode=mode)
            assert run_end(list(events.until_finished(run_id))).exitstatus in (0, 5)
    finally:
        client.stop()
    profiles = sorted(folder.glob("child-*.prof"))
    assert len(profiles) == 2
    for profile in profiles:
        functions = {name for (_file, _line, name) in pstats.Stats(str(profile)).stats}  # type: ignore[attr-defined]
        assert "pytest_collection" in functions  # the run itself, not just the profiler's start
