"""The standby child: the next run's child waits configured; stale early work is never used.

Each test lets a standby reach its gate (the server says so with standby_ready),
then edits the project the way a developer would, and checks that the run sees
the edit: through the standby when its early work is still valid, through a
fresh child when the edit touched something the standby had already imported
or read.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from worker_helpers import CALC, Events, alive, finished, make_client, run_end, write

from testmon_watch.wire.worker_protocol import ChildStarted, RunStarted, StandbyReady, WorkerReady
from testmon_watch.worker.client import WorkerClient
from testmon_watch.worker.preload import read_preload_list

CONFTEST_WITH_HELPER = """\
import json
import pathlib

import pytest

from helper import FACTOR

SETTINGS = json.loads((pathlib.Path(__file__).parent.parent / "settings.json").read_text())


@pytest.fixture
def factor():
    return FACTOR


@pytest.fixture
def offset():
    return SETTINGS["offset"]
"""

TEST_WITH_FIXTURES = """\
def test_factor(factor):
    assert factor == 2


def test_offset(offset):
    assert offset == 10


def test_plain():
    assert 1 + 1 == 2
"""


def _run(client: WorkerClient, events: Events, **fields: Any) -> tuple[list[object], int]:
    """The run's events and the pid of the child that ran it."""
    run_id = client.run(**fields)
    stream = list(events.until_finished(run_id))
    pids = [m.pid for m in stream if isinstance(m, ChildStarted)]
    return stream, pids[-1]


def _first_standby(client: WorkerClient, events: Events) -> int:
    """Run everything once on the started client; the pid of the standby that follows."""
    events.wait_for(WorkerReady)
    _run(client, events, trigger="startup")
    pid: int = events.wait_for(StandbyReady).pid
    return pid


def _selected(stream: list[object]) -> list[str]:
    started = next(m for m in stream if isinstance(m, RunStarted))
    return sorted(s.nodeid for s in started.selected)


def _outcomes(stream: list[object]) -> dict[str, str]:
    return {nodeid: m.outcome for nodeid, m in finished(stream).items()}


def _project_with_conftest(root: Path) -> None:
    write(root, "pytest.ini", "[pytest]\npythonpath = .\n")
    write(root, "helper.py", "FACTOR = 2\n")
    write(root, "settings.json", '{"offset": 10}\n')
    write(root, "tests/conftest.py", CONFTEST_WITH_HELPER)
    write(root, "tests/test_fixtures.py", TEST_WITH_FIXTURES)


@pytest.fixture
def conftest_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    _project_with_conftest(root)
    return root


StartWithStandby = Callable[[Path], tuple[WorkerClient, int]]


@pytest.fixture
def start_with_standby(events: Events) -> Iterator[StartWithStandby]:
    """Start a worker on a project, run everything once, wait for the standby; stopped after."""
    clients: list[WorkerClient] = []

    def start(project: Path) -> tuple[WorkerClient, int]:
        client = make_client(project, events)
        clients.append(client)
        client.start()
        events.wait_for(WorkerReady)
        first, _ = _run(client, events, trigger="startup")
        assert run_end(first).exitstatus == 0
        return client, events.wait_for(StandbyReady).pid

    yield start
    for client in clients:
        client.stop()


def test_an_edit_runs_in_the_waiting_standby_and_sees_the_new_code(
    client: WorkerClient, events: Events, project: Path
) -> None:
    standby = _first_standby(client, events)

    calc = project / "calc.py"
    calc.write_text(calc.read_text().replace("return a * b", "return a * b + 1"))
    stream, pid = _run(client, events, trigger="calc.py")

    assert pid == standby  # no fork on the critical path: the waiting child ran it
    assert _selected(stream) == ["test_calc.py::test_mul"]
    assert _outcomes(stream) == {"test_calc.py::test_mul": "failed"}  # the new code ran

    # The run's end starts the next standby, and it serves the next edit too.
    standby = events.wait_for(StandbyReady).pid
    calc.write_text(calc.read_text().replace("return a * b + 1", "return a * b"))
    stream, pid = _run(client, events, trigger="calc.py")
    assert pid == standby
    assert _outcomes(stream) == {"test_calc.py::test_mul": "passed"}


def test_code_the_standby_loaded_ahead_is_not_run_after_its_file_changed(
    client: WorkerClient, events: Events, project: Path
) -> None:
    # The standby has loaded the code the first run imported (calc.py, test_calc.py)
    # before it said it waits; both change now, keeping their sizes and times.
    standby = _first_standby(client, events)
    preload = read_preload_list(project / ".testmondata-preload.json")
    assert str(project / "test_calc.py") in preload.rewritten
    assert str(project / "calc.py") in preload.compiled

    for name, old, new in [
        ("calc.py", "return a + b", "return a - b"),
        ("test_calc.py", "mul(2, 3) == 6", "mul(2, 3) == 7"),
    ]:
        path = project / name
        stat = path.stat()
        path.write_text(path.read_text().replace(old, new))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    stream, pid = _run(client, events, trigger="calc.py")

    assert pid == standby
    assert _outcomes(stream) == {
        "test_calc.py::test_add": "failed",
        "test_calc.py::test_mul": "failed",
        "test_calc.py::test_fraction": "failed",
    }


def test_rows_the_standby_read_ahead_are_not_used_after_another_process_wrote(
    client: WorkerClient, events: Events, project: Path
) -> None:
    # The standby read the data file's rows while it waited. Then a test module is
    # added and a `pytest --testmon` in another terminal records it: the file knows
    # it, so the worker's next run has nothing left to select.
    standby = _first_standby(client, events)
    write(project, "test_extra.py", "def test_extra():\n    assert True\n")
    env = {k: v for k, v in os.environ.items() if k not in ("TESTMON_DATAFILE", "PYTEST_ADDOPTS")}
    other = subprocess.run(
        [sys.executable, "-m", "pytest", "--testmon", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert other.returncode == 0, other.stdout + other.stderr
    assert "1 passed" in other.stdout  # test_extra, recorded by the other process

    stream, pid = _run(client, events, trigger="test_extra.py")
    assert pid == standby
    assert _selected(stream) == []  # not test_extra again: the rows read ahead were dropped


def test_a_file_being_saved_is_parsed_while_the_standby_waits(
    client: WorkerClient, events: Events, project: Path
) -> None:
    standby = _first_standby(client, events)

    # The watcher names the file at its first write; the save then goes on, to other
    # content of the same size. Whenever the standby parses it, the run sees the last.
    calc = project / "calc.py"
    calc.write_text(CALC.replace("return a * b", "return a * b + 1"))
    client.prepare(["calc.py", "../outside.py", "missing.py", "pytest.ini"])
    calc.write_text(CALC.replace("return a + b", "return a + b + 1"))
    stream, pid = _run(client, events, trigger="calc.py")

    assert pid == standby  # reading it ahead did not make the standby's early work stale
    adding = ["test_calc.py::test_add", "test_calc.py::test_fraction"]
    assert _selected(stream) == adding  # not test_mul
    assert _outcomes(stream) == dict.fromkeys(adding, "failed")


def test_saves_after_the_standby_parsed_the_last_ones_select_what_they_changed(
    client: WorkerClient, events: Events, project: Path
) -> None:
    # Each standby parses the files saved lately while it waits, and the next save's
    # parse reuses the bodies that did not change. Every save below changes one body
    # (or the same body back): the run selects the tests of exactly that body.
    standby = _first_standby(client, events)
    adding = ["test_calc.py::test_add", "test_calc.py::test_fraction"]
    saves = [
        ("return a + b", "return a + b + 0", adding),
        ("return a * b", "return a * b * 1", ["test_calc.py::test_mul"]),
        ("return a + b + 0", "return a + b", adding),
        ("return a * b * 1", "return b * a", ["test_calc.py::test_mul"]),
    ]
    calc = project / "calc.py"
    for old, new, expected in saves:
        calc.write_text(calc.read_text().replace(old, new))
        client.prepare(["calc.py"])
        stream, pid = _run(client, events, trigger="calc.py")
        assert pid == standby
        assert _selected(stream) == expected
        assert set(_outcomes(stream).values()) == {"passed"}
        standby = events.wait_for(StandbyReady).pid


PARSE_AHEAD_SCRIPT = """
import json, os, sys
from pathlib import Path
from testmon_watch.core import blocks, changes
from testmon_watch.worker.standby import RunGate

root = Path(sys.argv[1])
(root / "mod.py").write_text("def f():\\n    return 1\\n")
saves = ("mod.py", "../outside.py", "missing.py", "data.json")

def gate_for():
    control_r, control_w = os.pipe()
    gate = RunGate(control_r, root, lambda: None, lambda release: None, recent_saves=saves)
    return gate, control_w

waiting, _ = gate_for()
waiting._parse_ahead()
parsed = sorted(key[0] for key in changes._PREPARED)
remembered = sorted(key[0] for key in blocks._BODY_MEMO.entries)
opened = sorted(waiting.opened)

changes._PREPARED.clear()
blocks._BODY_MEMO = blocks._BodyMemo()
told, control_w = gate_for()
os.write(control_w, b"x")  # the server wrote (a release): the run parses what it needs
told._parse_ahead()
waiting.watching_opens = told.watching_opens = False
print(json.dumps({"parsed": parsed, "remembered": remembered, "opened": opened,
                  "parsed_when_told": sorted(key[0] for key in changes._PREPARED)}))
"""


def test_the_gate_parses_the_files_saved_lately_until_the_server_writes(tmp_path: Path) -> None:
    import json

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", PARSE_AHEAD_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "parsed": ["mod.py"],  # not outside the project, not missing, not a data file
        "remembered": ["f"],
        "opened": [],  # not early work: reading it does not make the standby stale
        "parsed_when_told": [],
    }


def test_a_module_the_conftest_imported_changed_so_a_fresh_child_runs(
    conftest_project: Path, events: Events, start_with_standby: StartWithStandby
) -> None:
    client, standby = start_with_standby(conftest_project)
    write(conftest_project, "helper.py", "FACTOR = 3\n")
    stream, pid = _run(client, events, trigger="helper.py")
    assert pid != standby
    assert not alive(standby)
    assert _outcomes(stream)["tests/test_fixtures.py::test_factor"] == "failed"


def test_after_a_stale_standby_the_next_ones_wait_before_the_conftests(
    conftest_project: Path, events: Events, start_with_standby: StartWithStandby
) -> None:
    client, standby = start_with_standby(conftest_project)
    write(conftest_project, "helper.py", "FACTOR = 3\n")
    stream, pid = _run(client, events, trigger="helper.py")
    assert pid != standby  # stale: the conftest had imported helper.py
    assert _outcomes(stream)["tests/test_fixtures.py::test_factor"] == "failed"

    # The next standby stops before importing the conftest, so the same kind of edit
    # now runs in it, and the conftest (and helper.py) are imported fresh.
    for factor, outcome in (("2", "passed"), ("4", "failed"), ("2", "passed")):
        standby = events.wait_for(StandbyReady).pid
        write(conftest_project, "helper.py", f"FACTOR = {factor}\n")
        stream, pid = _run(client, events, trigger="helper.py")
        assert pid == standby
        assert _outcomes(stream)["tests/test_fixtures.py::test_factor"] == outcome
        assert "tests/test_fixtures.py::test_factor" in _selected(stream)


def test_a_data_file_the_conftest_read_changed_so_a_fresh_child_runs(
    conftest_project: Path, events: Events, start_with_standby: StartWithStandby
) -> None:
    client, standby = start_with_standby(conftest_project)
    write(conftest_project, "settings.json", '{"offset": 11}\n')
    stream, pid = _run(client, events, trigger="settings.json")
    assert pid != standby
    assert _outcomes(stream)["tests/test_fixtures.py::test_offset"] == "failed"


def test_a_conftest_created_where_pytest_found_none_at_start_up_is_loaded(
    tmp_path: Path, events: Events, start_with_standby: StartWithStandby
) -> None:
    project = tmp_path / "proj"
    write(project, "pytest.ini", "[pytest]\n")
    write(project, "tests/test_value.py", "def test_value():\n    pass\n")
    client, standby = start_with_standby(project)
    # pytest looked for tests/conftest.py while the standby started and remembers
    # there was none: only a fresh child loads it.
    write(
        project,
        "tests/conftest.py",
        "import pytest\n\n\n@pytest.fixture(autouse=True)\ndef boom():\n"
        "    raise RuntimeError('new conftest')\n",
    )
    stream, pid = _run(client, events, trigger="tests/conftest.py")
    assert pid != standby
    result = finished(stream)["tests/test_value.py::test_value"]
    assert result.outcome == "error" and "new conftest" in result.longrepr


def test_a_run_of_another_mode_drops_the_standby_and_a_new_one_follows(
    client: WorkerClient, events: Events
) -> None:
    events.wait_for(WorkerReady)
    _run(client, events, trigger="startup")
    standby = events.wait_for(StandbyReady).pid
    stream, pid = _run(client, events, mode="all")
    assert pid != standby and not alive(standby)
    assert set(_outcomes(stream).values()) == {"passed"}
    assert events.wait_for(StandbyReady).pid not in (standby, pid)


def test_a_standby_that_cannot_start_is_dropped_and_the_error_is_reported(
    conftest_project: Path, events: Events, start_with_standby: StartWithStandby
) -> None:
    client, standby = start_with_standby(conftest_project)
    write(conftest_project, "helper.py", "raise ImportError('helper is broken')\n")
    stream, pid = _run(client, events, trigger="helper.py")
    assert pid != standby
    end = run_end(stream)
    assert (
        end.exitstatus not in (0, 5)
        and _outcomes(stream).get("tests/test_fixtures.py::test_plain") != "passed"
    )
    # The standby forked after that run dies at its conftest import: dropped quietly,
    # and the run after the fix starts a fresh child that passes.
    write(conftest_project, "helper.py", "FACTOR = 2\n")
    stream, _ = _run(client, events, mode="all")
    assert set(_outcomes(stream).values()) == {"passed"}
    assert run_end(stream).exitstatus == 0


def test_stopping_the_worker_ends_its_standby(
    project: Path, start_with_standby: StartWithStandby
) -> None:
    client, standby = start_with_standby(project)
    assert alive(standby)
    client.stop()
    assert not alive(standby)
