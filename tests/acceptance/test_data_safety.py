"""Interrupted runs, foreign, old and corrupt databases: nothing lost, nothing deleted."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys

import pytest

CALC = """
    def add(a, b):
        return a + b


    def mul(a, b):
        return a * b
"""


def make_project(project) -> None:
    project.write("calc.py", CALC)
    project.write(
        "test_fast.py",
        """
        from calc import add, mul


        def test_add():
            assert add(1, 2) == 3


        def test_mul():
            assert mul(2, 3) == 6
    """,
    )
    project.write(
        "test_slow.py",
        """
        import os
        import sys
        import time

        from calc import mul


        def test_waits_when_asked():
            assert mul(1, 1) == 1
            if os.environ.get("BLOCK_IN_TEST"):
                print("READY", file=sys.__stdout__, flush=True)
                time.sleep(3600)  # until the runner kills us


        def test_after():
            assert mul(2, 2) == 4
    """,
    )


def _default_sigint() -> None:
    """In the child before exec: SIGINT as a terminal's Ctrl-C would find it.

    A suite started with SIGINT ignored (`make test &` in a script, some CI
    runners) passes that on through exec, and Python then installs no
    KeyboardInterrupt handler: the run would sleep on through the SIGINT below.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_blocking_run(project) -> subprocess.Popen[str]:
    """A `pytest --testmon` run blocked inside test_waits_when_asked (returns once it is)."""
    env = dict(__import__("os").environ, BLOCK_IN_TEST="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--testmon", "-p", "no:cacheprovider", "-s", "-q"],
        cwd=project.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_default_sigint,  # noqa: PLW1509 - no other way to undo an inherited SIG_IGN
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "READY" in line:
            return proc
    raise AssertionError(f"the run ended before blocking (exit {proc.wait()})")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_run_leaves_a_usable_database_and_unfinished_tests_selected(
    project, how: signal.Signals
) -> None:
    make_project(project)
    project.first_run()
    project.replace("calc.py", "return a * b", "return b * a")
    proc = start_blocking_run(project)
    proc.send_signal(how)
    proc.communicate(timeout=120)
    run = project.run()
    assert "moved it to" not in run.text  # the database opened fine
    # test_after never ran, test_waits_when_asked never finished: both still affected.
    assert {"test_slow.py::test_waits_when_asked", "test_slow.py::test_after"} <= run.ran
    assert run.ret == 0
    assert project.run().ran == set()


def test_pytest_testmon_database_is_moved_aside_and_rebuilt(project) -> None:
    make_project(project)
    datafile = project.path / ".testmondata"
    conn = sqlite3.connect(datafile)
    conn.execute("CREATE TABLE metadata (dataid TEXT PRIMARY KEY, data TEXT)")
    conn.execute("CREATE TABLE test_execution (id INTEGER PRIMARY KEY, test_name TEXT)")
    conn.execute("INSERT INTO test_execution (test_name) VALUES ('theirs')")
    conn.commit()
    conn.close()
    run = project.run()
    assert run.ret == 0
    assert "it is a pytest-testmon database; moved it to .testmondata.broken-" in run.text
    moved = list(project.path.glob(".testmondata.broken-*"))
    assert len(moved) == 1
    kept = sqlite3.connect(moved[0]).execute("SELECT test_name FROM test_execution").fetchall()
    assert kept == [("theirs",)]
    assert len(run.ran) == 4
    assert project.run().ran == set()


@pytest.mark.parametrize("content", [b"this is not a database" * 100, b""])
def test_corrupt_database_is_moved_aside(project, content: bytes) -> None:
    make_project(project)
    project.first_run()
    datafile = project.path / ".testmondata"
    if content:
        datafile.write_bytes(content)
    else:  # a truncated database: the header survives, the pages do not
        data = datafile.read_bytes()
        for suffix in ("-wal", "-shm"):
            (project.path / f".testmondata{suffix}").unlink(missing_ok=True)
        datafile.write_bytes(data[:200])
    run = project.run()
    assert run.ret == 0
    assert "moved it to .testmondata.broken-" in run.text
    assert "Traceback" not in run.text
    assert len(run.ran) == 4
    assert project.run().ran == set()


def test_older_schema_is_moved_aside(project) -> None:
    make_project(project)
    conn = sqlite3.connect(project.path / ".testmondata")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('tool', 'testmon-watch'), ('schema_version', '0')")
    conn.commit()
    conn.close()
    run = project.run()
    assert "older schema version 0" in run.text
    assert len(run.ran) == 4
