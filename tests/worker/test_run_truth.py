"""Issue #12 in the warm worker: what run_started and run_finished say is what happened.

Collection errors travel as collection errors, tests that are gone are named and
leave the data file, "deselected" counts the tests that exist and do not run in
every mode, and a test that was stopped, timed out or crashed keeps the time it ran.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from worker_helpers import Events, finished, run_end, write

from testmon_watch.core.runs import Run, TestPhase
from testmon_watch.wire.worker_protocol import RunStarted, TestFinished, TestStarted
from testmon_watch.worker.client import WorkerClient

ALL_CALC = {"test_calc.py::test_add", "test_calc.py::test_mul", "test_calc.py::test_fraction"}


def run(client: WorkerClient, events: Events, **fields: Any) -> list[object]:
    run_id = client.run(**fields)
    return list(events.until_finished(run_id))


def started_of(stream: list[object]) -> RunStarted:
    return next(m for m in stream if isinstance(m, RunStarted))


def recorded(project: Path) -> set[str]:
    with sqlite3.connect(project / ".testmondata") as conn:
        return {row[0] for row in conn.execute("SELECT nodeid FROM test")}


def test_a_broken_source_module_gives_one_collection_error_per_test_module(
    client: WorkerClient, events: Events, project: Path
) -> None:
    write(
        project,
        "test_more.py",
        "from calc import add\n\n\ndef test_more():\n    assert add(1, 1) == 2\n",
    )
    run(client, events)
    (project / "calc.py").write_text("def add(a, b:\n    return a + b\n")
    stream = run(client, events)
    started = started_of(stream)
    assert {(e.nodeid, e.path) for e in started.collection_errors} == {
        ("test_calc.py", "test_calc.py"),
        ("test_more.py", "test_more.py"),
    }
    assert all("SyntaxError" in e.longrepr for e in started.collection_errors)
    assert not [m for m in stream if isinstance(m, (TestStarted, TestFinished))]
    end = run_end(stream)
    assert end.exitstatus == 2
    # The run model the front ends follow: errors by file, no test passed or failed.
    model = Run(started.run_id)
    started.start(model)
    end.finish(model)
    assert set(model.collection_errors) == {"test_calc.py", "test_more.py"}
    assert model.counts() == {}
    assert set(model.phase_counts()) <= {TestPhase.NOT_RUN}
    assert started.looked_in == ["."]


def test_removed_tests_are_named_and_leave_the_data_file(
    client: WorkerClient, events: Events, project: Path
) -> None:
    write(project, "test_gone.py", "def test_gone():\n    pass\n")
    write(
        project,
        "test_cls.py",
        "class TestOld:\n    def test_one(self):\n        pass\n\n\ndef test_kept():\n    pass\n",
    )
    run(client, events)
    assert {"test_gone.py::test_gone", "test_cls.py::TestOld::test_one"} <= recorded(project)
    (project / "test_gone.py").unlink()
    calc_tests = project / "test_calc.py"
    calc_tests.write_text(calc_tests.read_text().replace("def test_mul", "def test_times"))
    cls = project / "test_cls.py"
    cls.write_text(cls.read_text().replace("TestOld", "TestNew"))
    stream = run(client, events)
    started = started_of(stream)
    gone = {"test_gone.py::test_gone", "test_calc.py::test_mul", "test_cls.py::TestOld::test_one"}
    assert set(started.removed) == gone
    assert {"test_calc.py::test_times", "test_cls.py::TestNew::test_one"} <= set(finished(stream))
    # Gone means gone: the warm worker's affected run deleted them from the data file.
    assert not gone & recorded(project)
    assert started_of(run(client, events)).removed == []


def test_deselected_counts_the_tests_that_exist_and_do_not_run_in_every_mode(
    client: WorkerClient, events: Events, project: Path
) -> None:
    write(project, "test_other.py", "def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    write(project, "test_fails.py", "def test_bad():\n    assert False\n")
    total = len(ALL_CALC) + 3
    first = started_of(run(client, events))
    assert (len(first.selected), first.deselected) == (total, 0)
    affected = started_of(run(client, events))  # only the failed test runs again
    assert (len(affected.selected), affected.deselected) == (1, total - 1)
    everything = started_of(run(client, events, mode="all"))
    assert (len(everything.selected), everything.deselected) == (total, 0)
    failed = started_of(run(client, events, mode="failed"))
    assert [s.nodeid for s in failed.selected] == ["test_fails.py::test_bad"]
    assert failed.deselected == total - 1
    named = started_of(run(client, events, mode="nodeids", nodeids=["test_other.py::test_one"]))
    assert (len(named.selected), named.deselected) == (1, total - 1)


def test_looked_in_names_pytest_arguments_or_testpaths(
    client: WorkerClient, events: Events, project: Path
) -> None:
    write(project, "tests/test_here.py", "def test_here():\n    pass\n")
    started = started_of(run(client, events, args=["tests"]))
    assert started.looked_in == ["tests"]
    write(project, "pytest.ini", "[pytest]\ntestpaths = tests\n")
    # The configuration changed: the worker recycles, then runs.
    started = started_of(run(client, events))
    assert started.looked_in == ["tests"]
