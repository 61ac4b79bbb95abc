"""Worker runs on a real sample project: selection, event order, results, preloading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from worker_helpers import Events, finished, make_client, run_end, write

from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.reasons import ChangedFile, Reason, ReasonKind
from testmon_watch.wire.worker_protocol import (
    ChildStarted,
    Notice,
    RunFinished,
    RunStarted,
    TestFinished,
    TestStarted,
    WorkerReady,
    WorkerStatus,
)
from testmon_watch.worker.client import WorkerClient
from testmon_watch.worker.preload import read_preload_list

ALL_CALC = {"test_calc.py::test_add", "test_calc.py::test_mul", "test_calc.py::test_fraction"}


def run(client: WorkerClient, events: Events, **fields: Any) -> list[object]:
    run_id = client.run(**fields)
    return list(events.until_finished(run_id))


def assert_well_ordered(stream: list[object]) -> None:
    """run_started first, each test started before it finished, run_finished last."""
    kinds = [
        m for m in stream if isinstance(m, (RunStarted, TestStarted, TestFinished, RunFinished))
    ]
    assert isinstance(kinds[0], RunStarted) and isinstance(kinds[-1], RunFinished)
    open_test = None
    for message in kinds[1:-1]:
        if isinstance(message, TestStarted):
            assert open_test is None, f"{message.nodeid} started inside {open_test}"
            open_test = message.nodeid
        elif isinstance(message, TestFinished):
            assert open_test == message.nodeid
            open_test = None
    assert open_test is None


def test_first_run_records_all_then_an_edit_runs_only_affected(
    client: WorkerClient, events: Events, project: Path
) -> None:
    ready = events.wait_for(WorkerReady)
    assert ready.pid > 0 and ready.preloaded > 0
    first = run(client, events, trigger="startup")
    assert_well_ordered(first)
    started = next(m for m in first if isinstance(m, RunStarted))
    assert {s.nodeid for s in started.selected} == ALL_CALC
    assert all(s.reasons == [Reason.new()] for s in started.selected)
    assert set(finished(first)) == ALL_CALC
    end = run_end(first)
    assert end.exitstatus == 0 and end.counts == {"passed": 3} and end.crashed is None
    assert set(end.timing) == {"spawn", "collect", "first_result", "total"}

    nothing = run(client, events)
    # The worker relays pytest's status; whether "all deselected" is 0 or 5 is the plugin's call.
    assert finished(nothing) == {} and run_end(nothing).exitstatus in (0, 5)
    assert next(m for m in nothing if isinstance(m, RunStarted)).deselected == 3

    calc = project / "calc.py"
    calc.write_text(calc.read_text().replace("return a * b", "return b * a"))
    second = run(client, events, trigger={"changed": ["calc.py"]})
    assert_well_ordered(second)
    started = next(m for m in second if isinstance(m, RunStarted))
    assert started.trigger == {"changed": ["calc.py"]}
    assert started.changed == [ChangedFile("calc.py", ("mul",))]
    assert [s.nodeid for s in started.selected] == ["test_calc.py::test_mul"]
    assert started.selected[0].reasons == [Reason(ReasonKind.CHANGED, "calc.py", blocks=("mul",))]
    assert started.deselected == 2
    result = finished(second)["test_calc.py::test_mul"]
    assert result.outcome == "passed"
    assert ["Captured stdout call", "hello from test_mul\n"] in result.sections
    assert result.location == ["test_calc.py", 10, "test_mul"]


def test_failing_test_reports_the_assertion_and_outcomes(
    client: WorkerClient, events: Events, project: Path
) -> None:
    write(
        project,
        "test_mixed.py",
        """\
        import pytest

        def test_bad():
            assert 2 + 2 == 5

        def test_skip():
            pytest.skip("not today")

        @pytest.mark.xfail(reason="known")
        def test_xfail():
            assert False

        @pytest.fixture
        def broken():
            raise RuntimeError("fixture broke")

        def test_error(broken):
            pass

        def test_exit():
            import sys
            sys.exit(3)
    """,
    )
    stream = run(client, events, mode="nodeids", nodeids=["test_mixed.py"])
    assert_well_ordered(stream)
    results = finished(stream)
    assert results["test_mixed.py::test_bad"].outcome == "failed"
    assert "assert (2 + 2) == 5" in results["test_mixed.py::test_bad"].longrepr
    assert results["test_mixed.py::test_skip"].outcome == "skipped"
    assert "not today" in results["test_mixed.py::test_skip"].longrepr
    assert results["test_mixed.py::test_xfail"].outcome == "xfailed"
    assert results["test_mixed.py::test_error"].outcome == "error"
    assert "fixture broke" in results["test_mixed.py::test_error"].longrepr
    assert results["test_mixed.py::test_exit"].outcome == "failed"  # sys.exit is a failure
    end = run_end(stream)
    assert end.exitstatus == 1
    assert end.counts == {"failed": 2, "skipped": 1, "xfailed": 1, "error": 1}
    selected = next(m for m in stream if isinstance(m, RunStarted)).selected
    assert all(s.reasons == [Reason.new()] for s in selected)

    # "failed" without ids: testmon's own record of what failed, nothing else.
    again = run(client, events, mode="failed")
    failing = {"test_mixed.py::test_bad", "test_mixed.py::test_error", "test_mixed.py::test_exit"}
    assert set(finished(again)) == failing
    selected = next(m for m in again if isinstance(m, RunStarted)).selected
    assert {s.nodeid: s.reasons for s in selected} == {
        "test_mixed.py::test_bad": [Reason.failed(Outcome.FAILED)],
        "test_mixed.py::test_exit": [Reason.failed(Outcome.FAILED)],
        "test_mixed.py::test_error": [Reason.failed(Outcome.ERROR)],
    }

    # Explicit ids of up-to-date tests: the reason is that they were asked for.
    explicit = run(client, events, mode="nodeids", nodeids=["test_mixed.py::test_skip"])
    selected = next(m for m in explicit if isinstance(m, RunStarted)).selected
    assert [(s.nodeid, s.reasons) for s in selected] == [
        ("test_mixed.py::test_skip", [Reason(ReasonKind.REQUESTED)])
    ]


def test_a_broken_import_shows_as_an_error_not_as_no_tests(
    client: WorkerClient, events: Events, project: Path
) -> None:
    run(client, events)
    calc = project / "calc.py"
    calc.write_text(calc.read_text() + "\nimport no_such_module_here\n")
    stream = run(client, events)
    started = next(m for m in stream if isinstance(m, RunStarted))
    # A collection error, with its file and what pytest printed; never a fake "test".
    [error] = started.collection_errors
    assert (error.nodeid, error.path) == ("test_calc.py", "test_calc.py")
    assert "no_such_module_here" in error.longrepr
    assert not [m for m in stream if isinstance(m, (TestStarted, TestFinished))]
    assert run_end(stream).exitstatus == 2


def test_a_project_that_makes_warnings_errors_still_runs(
    client: WorkerClient, events: Events, project: Path
) -> None:
    # The server preloaded pytest plugins, which pytest then warns it cannot
    # rewrite; `filterwarnings = error` must not turn that into "no tests ran".
    write(project, "pytest.ini", "[pytest]\nfilterwarnings = error\n")
    stream = run(client, events)
    assert {m.nodeid for m in stream if isinstance(m, TestFinished)} == ALL_CALC
    assert run_end(stream).exitstatus == 0
    assert not [m.text for m in stream if isinstance(m, Notice)]


def test_usage_error_is_reported(client: WorkerClient, events: Events) -> None:
    stream = run(client, events, args=["--no-such-option"])
    assert run_end(stream).exitstatus == 4
    notices = [m.text for m in stream if isinstance(m, Notice)]
    assert any("--no-such-option" in n for n in notices), notices


def test_the_server_never_imports_project_modules_but_preloads_third_party(
    client: WorkerClient, events: Events, project: Path
) -> None:
    write(project, "helpers/__init__.py", "VALUE = 1\n")
    write(
        project,
        "test_helpers.py",
        """\
        import helpers

        def test_value():
            assert helpers.VALUE == 1
    """,
    )
    for _ in range(3):
        assert run_end(run(client, events, mode="all")).exitstatus == 0
    preload = read_preload_list(project / ".testmondata-preload.json")
    assert "fractions" in preload.modules
    assert not {"calc", "helpers"} & set(preload.modules)
    # The project code it imported, for the next standby to load ahead (code_cache).
    assert {Path(p).relative_to(project).as_posix() for p in preload.rewritten} >= {
        "test_calc.py",
        "test_helpers.py",
    }
    assert {Path(p).relative_to(project).as_posix() for p in preload.compiled} == {
        "calc.py",
        "helpers/__init__.py",
    }
    client.request_status()
    status = events.wait_for(WorkerStatus)
    assert status.project_modules == []
    assert not {"calc", "helpers", "test_calc", "test_helpers", "conftest"} & set(status.modules)
    # Imported by the tests, so warmed up in the server after the first run.
    assert "fractions" in status.modules


def test_each_run_gets_a_fresh_child(client: WorkerClient, events: Events, project: Path) -> None:
    write(
        project,
        "test_state.py",
        """\
        import calc

        def test_fresh_module_state():
            assert not hasattr(calc, "touched")
            calc.touched = True
    """,
    )
    pids = set()
    for _ in range(2):
        stream = run(client, events, mode="nodeids", nodeids=["test_state.py"])
        assert run_end(stream).counts == {"passed": 1}
        pids.add(next(m for m in stream if isinstance(m, ChildStarted)).pid)
    assert len(pids) == 2


def test_runs_asked_for_during_a_run_are_queued(client: WorkerClient, events: Events) -> None:
    first = client.run(mode="all")
    second = client.run(mode="all")
    events.until_finished(first)
    stream = events.until_finished(second)
    assert set(finished(stream)) == ALL_CALC


@pytest.mark.parametrize("crash", ["segfault", "exit"])
def test_no_fork_fallback_runs_and_survives_crashes(
    project: Path, events: Events, crash: str
) -> None:
    write(
        project,
        "test_crash.py",
        f"""\
        import ctypes, os

        def test_crash():
            {"ctypes.string_at(0)" if crash == "segfault" else "os._exit(3)"}
    """,
    )
    client = make_client(project, events, env={"TESTMON_WATCH_NO_FORK": "1"})
    client.start()
    try:
        stream = run(client, events)
        assert run_end(stream).crashed == "test_crash.py::test_crash"
        again = run(client, events, mode="nodeids", nodeids=["test_calc.py"])
        assert set(finished(again)) == ALL_CALC
        assert run_end(again).exitstatus == 0
    finally:
        client.stop()


def test_the_server_preloads_every_module_of_ours_that_a_run_imports(
    client: WorkerClient, events: Events, project: Path, tmp_path: Path
) -> None:
    """Else a child imports it after its release: the time of every save (an early gate
    releases the child before pytest_configure, which imports the session's plugins)."""
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    write(
        copy,
        "conftest.py",
        """\
        import sys

        def pytest_unconfigure(config):
            ours = sorted(m for m in sys.modules if m.startswith("testmon_watch."))
            (config.rootpath / "ours.txt").write_text("\\n".join(ours))
    """,
    )
    for _ in range(2):  # recording from nothing, then selecting against the data file
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--testmon"],
            cwd=copy,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        imported = set((copy / "ours.txt").read_text().split())
        assert "testmon_watch.pytest_plugin.planning" in imported
        client.request_status()
        status = events.wait_for(WorkerStatus)
        # The fast path's modules: a standby never takes it (its plugins are given).
        wanted = {m for m in imported if ".fast_path" not in m or m.endswith("_reasons")}
        assert wanted <= set(status.modules), sorted(wanted - set(status.modules))
