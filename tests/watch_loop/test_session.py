"""The real watch loop on a sample project: watchdog observer, warm worker, pytest --testmon."""

from __future__ import annotations

import os
import queue
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from testmon_watch.config import WatchConfig
from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.runs import RunState, TestPhase
from testmon_watch.session import ChangesSeen, KnownTest, RunDone, WatchSession
from testmon_watch.wire.worker_protocol import TestStarted

WAIT = 60  # seconds: generous for a busy 2-core machine; never a sleep


class Loop:
    """A started WatchSession whose events land in a queue the test awaits."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.events: queue.Queue[object] = queue.Queue()
        self.session = WatchSession(root, self.events.put, WatchConfig(debounce_ms=100))

    def write(self, relpath: str, text: str) -> None:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))

    def replace(self, relpath: str, old: str, new: str) -> None:
        path = self.root / relpath
        content = path.read_text()
        assert old in content
        path.write_text(content.replace(old, new, 1))

    def next(self, kind: type, match: object = None) -> object:
        """The next event of `kind` (others are skipped)."""
        while True:
            event = self.events.get(timeout=WAIT)
            if isinstance(event, kind) and (match is None or match(event)):  # type: ignore[operator]
                return event

    def next_run(self) -> RunDone:
        done = self.next(RunDone)
        assert isinstance(done, RunDone)
        return done


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    root = tmp_path / "proj"
    root.mkdir()
    result = Loop(root)
    result.write("pytest.ini", "[pytest]\npythonpath = .\n")
    result.write(
        "calc.py",
        """
        def add(a, b):
            return a + b


        def mul(a, b):
            return a * b
    """,
    )
    result.write(
        "test_calc.py",
        """
        from calc import add, mul


        def test_add():
            assert add(1, 2) == 3


        def test_mul():
            assert mul(2, 3) == 6
    """,
    )
    yield result
    result.session.stop()


def ran(done: RunDone) -> set[str]:
    return set(done.results)


def test_save_runs_the_affected_tests(loop: Loop) -> None:
    assert loop.session.known_tests() == []  # no data file yet
    loop.session.start()
    first = loop.next_run()
    assert ran(first) == {"test_calc.py::test_add", "test_calc.py::test_mul"}
    assert first.run.state is RunState.FINISHED and first.run.counts() == {Outcome.PASSED: 2}
    assert first.run.phase_counts() == {TestPhase.FINISHED: 2}
    # What the app shows on its next start, read through the session.
    known = {t.nodeid: t for t in loop.session.known_tests()}
    assert set(known) == {"test_calc.py::test_add", "test_calc.py::test_mul"}
    assert all(isinstance(t, KnownTest) and t.outcome is Outcome.PASSED for t in known.values())
    loop.replace("calc.py", "return a * b", "return b * a")
    done = loop.next_run()
    assert ran(done) == {"test_calc.py::test_mul"}
    assert "calc.py" in done.trigger
    assert done.finished.counts == {"passed": 1}
    timing = done.timing
    to_selection, to_first, to_done = timing["selection"], timing["first_result"], timing["done"]
    assert to_selection is not None and to_first is not None and to_done is not None
    assert to_selection <= to_first <= to_done


def test_vim_style_save_runs_once(loop: Loop) -> None:
    loop.session.start()
    loop.next_run()
    # vim with backupcopy=no: probe file, rename the original to a backup, write, delete backup.
    calc = loop.root / "calc.py"
    (loop.root / "4913").write_text("")
    (loop.root / "4913").unlink()
    os.rename(calc, loop.root / "calc.py~")
    calc.write_text((loop.root / "calc.py~").read_text().replace("return a + b", "return b + a"))
    (loop.root / "calc.py~").unlink()
    done = loop.next_run()
    assert ran(done) == {"test_calc.py::test_add"}
    # Proof that the save produced one run only: the next run is for the next edit.
    loop.replace("calc.py", "return a * b", "return b * a")
    assert ran(loop.next_run()) == {"test_calc.py::test_mul"}


def test_rename_over_save_runs_once(loop: Loop) -> None:
    loop.session.start()
    loop.next_run()
    tmp = loop.root / "calc.py.tmp"
    tmp.write_text((loop.root / "calc.py").read_text().replace("return a + b", "return b + a"))
    os.replace(tmp, loop.root / "calc.py")
    assert ran(loop.next_run()) == {"test_calc.py::test_add"}
    loop.replace("calc.py", "return a * b", "return b * a")
    assert ran(loop.next_run()) == {"test_calc.py::test_mul"}


def test_a_burst_of_changes_is_one_run(loop: Loop) -> None:
    loop.session.start()
    loop.next_run()
    for i in range(200):
        loop.write(f"data/file{i}.txt", f"{i}\n")
    loop.replace("calc.py", "return a + b", "return b + a")
    done = loop.next_run()
    assert ran(done) == {"test_calc.py::test_add"}
    loop.replace("calc.py", "return a * b", "return b * a")
    assert ran(loop.next_run()) == {"test_calc.py::test_mul"}


def test_a_change_during_a_run_is_queued_and_runs_next(loop: Loop) -> None:
    loop.session.start()
    loop.next_run()
    gate = loop.root.parent / "gate"
    loop.write(
        "test_slow.py",
        f"""
        import os
        import time

        from calc import add


        def test_waits_for_the_gate():
            while not os.path.exists({str(gate)!r}):
                time.sleep(0.01)  # the thing under test is a long-running test
            assert add(1, 1) == 2
    """,
    )
    loop.next(TestStarted, lambda e: e.nodeid.endswith("test_waits_for_the_gate"))
    loop.replace("calc.py", "return a * b", "return b * a")
    seen = loop.next(ChangesSeen, lambda e: "calc.py" in e.paths)
    assert isinstance(seen, ChangesSeen) and seen.queued
    gate.write_text("open")
    first = loop.next_run()
    assert ran(first) == {"test_slow.py::test_waits_for_the_gate"}
    second = loop.next_run()
    # test_mul for the edit; the slow test again, since calc.py changed while it ran
    # (what it executed may be either version, so it is not trusted).
    assert ran(second) == {"test_calc.py::test_mul", "test_slow.py::test_waits_for_the_gate"}
    assert "calc.py" in second.trigger


def test_a_crashing_test_is_reported_and_the_loop_survives(loop: Loop) -> None:
    loop.write(
        "test_crash.py",
        """
        import os

        from calc import mul


        def test_crashes():
            if mul(1, 1) == 1:
                os._exit(3)
    """,
    )
    loop.session.start()
    first = loop.next_run()
    assert first.results["test_crash.py::test_crashes"].outcome is Outcome.CRASHED
    assert (
        first.run.state is RunState.CRASHED and first.run.crashed == "test_crash.py::test_crashes"
    )
    loop.replace("test_crash.py", "os._exit(3)", "pass")
    done = loop.next_run()
    assert done.results["test_crash.py::test_crashes"].outcome is Outcome.PASSED


def test_files_the_tests_write_do_not_trigger_runs(loop: Loop) -> None:
    loop.write(
        "test_writer.py",
        """
        from pathlib import Path


        def test_writes_a_snapshot():
            Path(__file__).with_name("snapshot.txt").write_text("output")
    """,
    )
    loop.session.start()
    first = loop.next_run()
    assert "test_writer.py::test_writes_a_snapshot" in ran(first)
    assert (loop.root / "snapshot.txt").exists()
    # The snapshot written during the run is no edit: the next run is for the next edit.
    loop.replace("calc.py", "return a * b", "return b * a")
    done = loop.next_run()
    assert ran(done) == {"test_calc.py::test_mul"}
    assert "snapshot.txt" not in done.trigger
