"""Fixtures for the watcher tests: a small project tree and a started ChangeWatcher.

Nothing here sleeps to wait for events: batches, notices and held changes are
fed into queues by the watcher's callbacks, and tests block on `queue.get` with
a generous timeout. To show that an action produced *no* batch, a test makes a
second, real change (the sentinel) and asserts that the next batch holds only
that path.
"""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testmon_watch.watch import ChangeBatch, ChangeWatcher, PathFilter

# Upper bound for anything to arrive; only reached when a test fails.
TIMEOUT = 10.0
# Longer than the 50 ms default so a loaded CI machine does not split one scripted
# "save" into two batches; the logic does not depend on the value.
TEST_DEBOUNCE = 0.2

SENTINEL = "sentinel.txt"
_sentinel_counter = itertools.count()


class Watching:
    """A ChangeWatcher on `root` whose callbacks feed queues the test reads."""

    def __init__(
        self,
        root: Path,
        *,
        include: tuple[str, ...] = (),
        ignore: tuple[str, ...] = (),
        debounce: float = TEST_DEBOUNCE,
        poll: bool = False,
        **kwargs: Any,
    ) -> None:
        self.root = root
        self.batches: queue.Queue[ChangeBatch] = queue.Queue()
        self.notices: queue.Queue[str] = queue.Queue()
        self.held: queue.Queue[frozenset[str]] = queue.Queue()
        self.path_filter = PathFilter(root, include=include, ignore=ignore)
        self.watcher = ChangeWatcher(
            root,
            self.batches.put,
            self.path_filter,
            debounce=debounce,
            poll=poll,
            on_notice=self.notices.put,
            on_held=self.held.put,
            **kwargs,
        )

    def write(self, relpath: str, text: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def next_batch(self, timeout: float = TIMEOUT) -> ChangeBatch:
        return self.batches.get(timeout=timeout)

    def next_paths(self) -> set[str]:
        return set(self.next_batch().paths)

    def assert_no_batch_before_sentinel(self) -> None:
        """Prove that what happened before produced no batch: the next batch is the sentinel."""
        self.write(SENTINEL, f"sentinel {next(_sentinel_counter)}\n")
        assert self.next_paths() == {SENTINEL}


def make_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "app.py": "def f():\n    return 1\n",
        "pkg/__init__.py": "",
        "pkg/mod.py": "LIMIT = 10\n",
        "tests/test_app.py": "def test_f():\n    assert True\n",
        "data/fixture.json": '{"a": 1}\n',
        "bulk/.keep": "",
        ".gitignore": "build/\n*.log\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj")


@pytest.fixture(params=["native", "poll"])
def poll(request: pytest.FixtureRequest) -> bool:
    """Run a test with the platform's native observer and with the polling observer."""
    return bool(request.param == "poll")


@pytest.fixture
def watch(project: Path) -> Iterator[Callable[..., Watching]]:
    """Start a watcher on the project (keyword arguments go to `Watching`); stopped after."""
    started: list[Watching] = []

    def start(**kwargs: Any) -> Watching:
        watching = Watching(project, **kwargs)
        watching.watcher.start()
        started.append(watching)
        return watching

    yield start
    for watching in started:
        watching.watcher.stop()
