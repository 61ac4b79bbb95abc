"""When finished tests are saved: in batches, put off while the parse helper owes a file.

A real data file, a real store and a real parse helper process; the helper is
held on a named pipe, so "still parsing" lasts exactly as long as the test says.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testmon_watch.core.changes import file_kind, read_state
from testmon_watch.core.db import Database
from testmon_watch.core.keys import ContextKey
from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.records import Execution, TestRecord, TestRecording
from testmon_watch.core.store import RunStore
from testmon_watch.measure.parse_helper import ParseHelper
from testmon_watch.pytest_plugin import results
from testmon_watch.pytest_plugin.options import TestmonOptions
from testmon_watch.pytest_plugin.results import ResultHooks
from testmon_watch.pytest_plugin.session_state import SessionState

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")


class Run:
    """A recording session's saving side, on a real data file in `root`."""

    def __init__(self, root: Path, config: pytest.Config) -> None:
        (root / "test_shop.py").write_text("def test_a():\n    assert 1\n")
        os.mkfifo(root / "slow.py")  # the helper blocks reading it
        self.db, _ = Database.open(root / ".testmondata")
        with self.db.transaction():
            env_id = self.db.save_environment("default", "py", {})
            row, _ = read_state(root, "test_shop.py", file_kind("test_shop.py"))
            self.db.save_file(row)
        self.helper = ParseHelper(root)
        options = TestmonOptions(
            active=True,
            select=True,
            record=True,
            reorder=False,
            explain=False,
            verify=False,
            environment="default",
            datafile=root / ".testmondata",
        )
        self.state = SessionState(
            config=config,
            options=options,
            recorder=None,
            worker=False,
            controller=False,
            gate=None,
            started_at=time.time(),
            started_ns=time.time_ns(),
            db=self.db,
            store=RunStore(self.db, env_id, root, self.db.files(), helper=self.helper),
            helper=self.helper,
        )
        self.hooks = ResultHooks(self.state)
        self.finished = 0
        self.env_id = env_id

    def finish_tests(self, count: int) -> None:
        for _ in range(count):
            self.finished += 1
            nodeid = f"test_shop.py::test_{self.finished}"
            execution = Execution(ContextKey.test(nodeid), {"test_shop.py": {1, 2}})
            record = TestRecord(
                nodeid, "test_shop.py", Outcome.PASSED, 0.01, [], ["test_shop.py"], execution
            )
            self.hooks.receive_test(TestRecording(record))

    def saved(self) -> int:
        return len(self.db.tests(self.env_id))

    def unblock_helper(self, root: Path) -> None:
        with open(root / "slow.py", "w") as writer:
            writer.write("LIMIT = 10\n")
        while self.helper.owes():
            select.select([self.helper], [], [], 60)


@pytest.fixture
def run(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Run]:
    saving = Run(tmp_path, request.config)
    yield saving
    saving.helper.close()
    saving.db.close()


def test_a_batch_is_saved_when_full(run: Run) -> None:
    run.finish_tests(results.FLUSH_TESTS - 1)
    assert run.saved() == 0
    run.finish_tests(1)
    assert run.saved() == results.FLUSH_TESTS


def test_saving_waits_while_the_helper_owes_a_file(run: Run, tmp_path: Path) -> None:
    run.helper.request("slow.py", "python")
    run.finish_tests(results.FLUSH_TESTS + 10)
    assert run.saved() == 0  # saving now would parse slow.py here as well
    run.unblock_helper(tmp_path)
    run.finish_tests(1)
    assert run.saved() == results.FLUSH_TESTS + 11


def test_waiting_has_a_bound_in_tests(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "DEFER_TESTS", results.FLUSH_TESTS + 5)
    run.helper.request("slow.py", "python")
    run.finish_tests(results.FLUSH_TESTS + 4)
    assert run.saved() == 0
    run.finish_tests(1)
    assert run.saved() == results.FLUSH_TESTS + 5  # saved although the helper still owes


def test_waiting_has_a_bound_in_time(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    run.helper.request("slow.py", "python")
    run.finish_tests(results.FLUSH_TESTS)
    assert run.saved() == 0
    monkeypatch.setattr(results, "DEFER_SECONDS", 0.0)
    run.finish_tests(1)
    assert run.saved() == results.FLUSH_TESTS + 1
