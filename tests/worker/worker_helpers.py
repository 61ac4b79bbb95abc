"""Helpers for worker tests: a sample project, an event recorder with timeouts, process checks."""

from __future__ import annotations

import os
import queue
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from testmon_watch.wire.worker_protocol import Message, RunFinished, TestFinished
from testmon_watch.worker.client import WorkerClient

WAIT = 60.0  # seconds; generous for a loaded CI machine, never reached when things work

CALC = """\
def add(a, b):
    return a + b


def mul(a, b):
    return a * b
"""

TEST_CALC = """\
import fractions

from calc import add, mul


def test_add():
    assert add(1, 2) == 3


def test_mul():
    print("hello from test_mul")
    assert mul(2, 3) == 6


def test_fraction():
    assert add(fractions.Fraction(1, 2), fractions.Fraction(1, 2)) == 1
"""


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


class Events:
    """Events from the client's reader thread, awaited with timeouts (never fixed sleeps)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Message] = queue.Queue()
        self.seen: list[Message] = []

    def __call__(self, message: Message) -> None:
        self.queue.put(message)

    def next(self, timeout: float = WAIT) -> Message:
        message = self.queue.get(timeout=timeout)
        self.seen.append(message)
        return message

    def wait_for(self, kind: type[Any], timeout: float = WAIT, **match: Any) -> Any:
        """Skip events until one of type `kind` with the given field values arrives."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no {kind.__name__} {match} within {timeout} s; "
                    f"seen: {[type(m).__name__ for m in self.seen[-20:]]}"
                )
            try:
                message = self.next(left)
            except queue.Empty:
                continue
            if isinstance(message, kind) and all(
                getattr(message, k) == v for k, v in match.items()
            ):
                return message

    def until_finished(self, run_id: str, timeout: float = WAIT) -> list[Message]:
        """Every event up to and including run_finished of `run_id`."""
        start = len(self.seen)
        self.wait_for(RunFinished, timeout, run_id=run_id)
        return self.seen[start:]


def finished(events: list[Message]) -> dict[str, TestFinished]:
    return {m.nodeid: m for m in events if isinstance(m, TestFinished)}


def run_end(events: list[Message]) -> RunFinished:
    last = events[-1]
    assert isinstance(last, RunFinished)
    return last


def make_client(project: Path, events: Events, **kwargs: Any) -> WorkerClient:
    env = dict(os.environ)
    env.pop("TESTMON_DATAFILE", None)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    env.update(kwargs.pop("env", {}))
    return WorkerClient(project, [], events, python=sys.executable, env=env, **kwargs)


def alive(pid: int) -> bool:
    """True when `pid` runs (a zombie waiting for a reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group_alive(pgid: int) -> bool:
    """True while a non-zombie process of group `pgid` remains."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
