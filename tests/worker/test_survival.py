"""The worker outlives whatever a test does: crashes, hangs, floods, cancels, its own death."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from worker_helpers import (
    Events,
    alive,
    finished,
    group_alive,
    make_client,
    run_end,
    write,
)

from testmon_watch.wire.worker_protocol import (
    ChildStarted,
    Notice,
    RunFinished,
    TestStarted,
    WorkerReady,
    WorkerRecycling,
)
from testmon_watch.worker.client import WorkerClient

CALC_TESTS = {"test_calc.py::test_add", "test_calc.py::test_mul", "test_calc.py::test_fraction"}

HANG = """\
    import os, subprocess, sys, time

    def test_hang(tmp_path_factory):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        with open(os.environ["PID_FILE"] + ".tmp", "w") as f:
            f.write(str(child.pid))
        os.replace(os.environ["PID_FILE"] + ".tmp", os.environ["PID_FILE"])
        time.sleep(3600)
"""


def run(client: WorkerClient, events: Events, **fields: Any) -> list[object]:
    run_id = client.run(**fields)
    return list(events.until_finished(run_id))


def eventually(condition: object, timeout: float = 30.0) -> bool:
    """Poll `condition()` until true or `timeout` (for process exit, which sends no event)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def assert_next_run_works(client: WorkerClient, events: Events) -> None:
    stream = run(client, events, mode="nodeids", nodeids=["test_calc.py"])
    assert set(finished(stream)) == CALC_TESTS
    assert run_end(stream).exitstatus == 0


def test_segfault_is_reported_as_crashed_with_the_signal(
    client: WorkerClient, events: Events, project: Path
) -> None:
    write(
        project,
        "test_crash.py",
        """\
        import ctypes

        def test_before():
            pass

        def test_segfault():
            ctypes.string_at(0)
    """,
    )
    stream = run(client, events, mode="nodeids", nodeids=["test_crash.py"])
    results = finished(stream)
    assert results["test_crash.py::test_before"].outcome == "passed"
    crashed = results["test_crash.py::test_segfault"]
    assert crashed.outcome == "crashed"
    assert crashed.duration > 0  # measured from its test_started, not 0
    assert "SIGSEGV" in crashed.longrepr
    assert "Fatal Python error" in crashed.longrepr  # pytest's faulthandler dump, kept
    end = run_end(stream)
    assert end.exitstatus == "crashed" and end.crashed == "test_crash.py::test_segfault"
    assert end.counts == {"passed": 1, "crashed": 1}
    assert_next_run_works(client, events)


def test_os_exit_is_reported_as_crashed(
    client: WorkerClient, events: Events, project: Path
) -> None:
    write(
        project,
        "test_exit.py",
        """\
        import os

        def test_exit():
            os._exit(3)
    """,
    )
    stream = run(client, events, mode="nodeids", nodeids=["test_exit.py"])
    result = finished(stream)["test_exit.py::test_exit"]
    assert result.outcome == "crashed" and "exited with status 3" in result.longrepr
    assert run_end(stream).crashed == "test_exit.py::test_exit"
    assert_next_run_works(client, events)


@pytest.fixture
def hang_client(project: Path, events: Events, tmp_path: Path) -> Iterator[WorkerClient]:
    """A worker whose runs know where test_hang.py writes its grandchild's pid."""
    write(project, "test_hang.py", HANG)
    client = make_client(project, events, env={"PID_FILE": str(tmp_path / "hang.pid")})
    client.start()
    yield client
    client.stop()


def test_a_hanging_test_times_out_with_its_stack_and_the_next_run_works(
    hang_client: WorkerClient, events: Events, tmp_path: Path
) -> None:
    client = hang_client
    stream = run(client, events, mode="nodeids", nodeids=["test_hang.py"], timeout=2)
    result = finished(stream)["test_hang.py::test_hang"]
    assert result.outcome == "timeout"
    # The time it really ran, measured from its test_started: at least the limit.
    assert result.duration >= 2
    assert "timed out" in result.longrepr
    assert "test_hang.py" in result.longrepr and "line 8" in result.longrepr  # where it hung
    end = run_end(stream)
    assert end.exitstatus == "timeout" and end.crashed == "test_hang.py::test_hang"
    grandchild = int((tmp_path / "hang.pid").read_text())
    assert eventually(lambda: not alive(grandchild))  # killed with the run's process group
    assert_next_run_works(client, events)


def test_fifty_megabytes_of_output_are_truncated(
    client: WorkerClient, events: Events, project: Path
) -> None:
    write(
        project,
        "test_flood.py",
        """\
        import os, sys

        def test_flood():
            sys.stdout.write("x" * 50_000_000)
            os.write(2, b"y" * 1_000_000)
            assert False, "flooded"
    """,
    )
    stream = run(client, events, mode="nodeids", nodeids=["test_flood.py"])
    result = finished(stream)["test_flood.py::test_flood"]
    assert result.outcome == "failed" and "flooded" in result.longrepr
    sections = dict(result.sections)
    stdout = sections["Captured stdout call"]
    assert len(stdout) < 70_000 and "characters cut" in stdout
    assert run_end(stream).exitstatus == 1
    assert_next_run_works(client, events)


def test_cancel_during_a_hanging_test_leaves_no_process(
    hang_client: WorkerClient, events: Events, tmp_path: Path
) -> None:
    client = hang_client
    pid_file = tmp_path / "hang.pid"
    run_id = client.run(mode="nodeids", nodeids=["test_hang.py"])
    child = events.wait_for(ChildStarted, run_id=run_id).pid
    events.wait_for(TestStarted, nodeid="test_hang.py::test_hang")
    assert eventually(pid_file.exists)
    grandchild = int(pid_file.read_text())
    client.cancel()
    end = events.wait_for(RunFinished, run_id=run_id)
    assert end.exitstatus == "cancelled"
    # The test that was running, and how long it had run (it had started: we waited).
    assert end.stopped == "test_hang.py::test_hang"
    assert end.stopped_after is not None and end.stopped_after > 0
    # run_finished is sent once the run's process group was killed (SIGKILL takes effect
    # asynchronously, hence the short poll).
    assert eventually(lambda: not group_alive(child))
    assert eventually(lambda: not alive(grandchild))
    assert client.state == "warm"
    assert_next_run_works(client, events)


def test_config_change_recycles_the_worker_and_the_run_goes_on(
    client: WorkerClient, events: Events, project: Path
) -> None:
    first = events.wait_for(WorkerReady)
    assert_next_run_works(client, events)
    ini = project / "pytest.ini"
    ini.write_text("[pytest]\n# more configuration\n")
    run_id = client.run(mode="nodeids", nodeids=["test_calc.py"])
    recycling = events.wait_for(WorkerRecycling)
    assert recycling.reason == "pytest.ini changed"
    assert client.state in ("recycling", "running")
    ready = events.wait_for(WorkerReady)
    assert ready.pid == first.pid  # re-exec keeps the pid, and fresh imports
    stream = events.until_finished(run_id)
    assert set(finished(stream)) == CALC_TESTS
    (project / "pyproject.toml").write_text("[tool.other]\n")
    run_id = client.run(mode="nodeids", nodeids=["test_calc.py::test_add"])
    assert events.wait_for(WorkerRecycling).reason == "pyproject.toml appeared"
    assert run_end(events.until_finished(run_id)).counts == {"passed": 1}


def test_a_killed_worker_is_restarted_and_the_run_in_flight_is_answered(
    hang_client: WorkerClient, events: Events, tmp_path: Path
) -> None:
    client = hang_client
    first = events.wait_for(WorkerReady)
    run_id = client.run(mode="nodeids", nodeids=["test_hang.py"])
    child = events.wait_for(ChildStarted, run_id=run_id).pid
    events.wait_for(TestStarted, nodeid="test_hang.py::test_hang")
    assert eventually((tmp_path / "hang.pid").exists)
    grandchild = int((tmp_path / "hang.pid").read_text())
    assert client.worker_pid == first.pid
    os.kill(first.pid, signal.SIGKILL)
    end = events.wait_for(RunFinished, run_id=run_id)
    assert end.exitstatus == "crashed" and end.crashed == "test_hang.py::test_hang"
    notice = events.wait_for(Notice)
    assert notice.text == "worker died (signal 9, SIGKILL); restarted"
    events.wait_for(WorkerReady)
    # The orphaned child and its own child are killed by the client.
    assert eventually(lambda: not group_alive(child))
    assert eventually(lambda: not alive(grandchild))
    assert_next_run_works(client, events)
