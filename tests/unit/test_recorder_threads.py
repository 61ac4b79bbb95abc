"""Recorder: the lines of threads other than pytest's go to their owner test, never the session.

A real `Recorder` over a temporary project, with contexts pushed and popped by
hand as the pytest plugin does. Every step a thread takes is made to happen
inside one context with events, so the expected attribution is exact.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from testmon_watch.core.keys import SESSION, ContextKey
from testmon_watch.core.records import Execution
from testmon_watch.measure import recorder as recorder_mod
from testmon_watch.measure import tracer as tracer_mod
from testmon_watch.measure.project_files import ProjectFiles
from testmon_watch.measure.recorder import Recorder

_counter = itertools.count()

WORKER = """
import queue
import threading

jobs = queue.Queue()


def serve():
    while True:
        job, done = jobs.get()
        if job is None:
            return
        job()
        done.set()


def start():
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def start_nested():
    # A thread started by a thread: it belongs to whoever owns the first one.
    threads = []
    starter = threading.Thread(target=lambda: threads.append(start()))
    starter.start()
    starter.join()
    return threads[0]


def one():
    return 1  # one


def two():
    return 2  # two


def three():
    return 3  # three
"""


class Worker:
    """The module above, and a way to make its thread run a function now."""

    def __init__(self, module: ModuleType, path: Path) -> None:
        self.module = module
        self.path = path

    def run(self, name: str) -> None:
        done = threading.Event()
        self.module.jobs.put((getattr(self.module, name), done))
        assert done.wait(30)

    def stop(self, thread: threading.Thread) -> None:
        self.module.jobs.put((None, None))
        thread.join(30)

    def lines(self, *markers: str) -> set[int]:
        text = self.path.read_text().splitlines()
        return {n for n, line in enumerate(text, 1) for m in markers if line.endswith(f"# {m}")}


# Every tracer this interpreter has: sys.monitoring, or coverage's CTracer and pure settrace.
TRACERS: list[Any] = [pytest.param(None, id="default")]
if sys.version_info < (3, 12):
    TRACERS.append(pytest.param(tracer_mod.SettraceTracer, id="settrace"))


@pytest.fixture(params=TRACERS)
def recorder(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Recorder]:
    if request.param is not None:
        monkeypatch.setattr(recorder_mod, "make_tracer", request.param)
    root = tmp_path / "proj"
    root.mkdir()
    recorder = Recorder(ProjectFiles(root))
    recorder.start()
    try:
        yield recorder
    finally:
        recorder.stop()


@pytest.fixture
def worker(recorder: Recorder) -> Worker:
    path = Path(recorder.files.root) / "worker.py"
    path.write_text(textwrap.dedent(WORKER))
    name = f"_recorder_threads_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return Worker(module, path)


def run_test(recorder: Recorder, nodeid: str, body: Callable[[], object]) -> Execution:
    recorder.push(ContextKey.test(nodeid))
    body()
    return recorder.pop()


def lines_in(execution: Execution) -> set[int]:
    return execution.lines.get("worker.py", set())


def late(recorder: Recorder) -> dict[str, set[int]]:
    return {
        str(execution.key): execution.lines.get("worker.py", set())
        for execution in recorder.late_executions()
    }


def test_a_thread_is_credited_to_the_test_that_started_it(
    recorder: Recorder, worker: Worker
) -> None:
    threads: list[threading.Thread] = []

    def test_a() -> None:
        threads.append(worker.module.start())
        worker.run("one")

    a = run_test(recorder, "t.py::test_a", test_a)
    b = run_test(recorder, "t.py::test_b", lambda: worker.run("two"))
    worker.run("three")  # between tests: the session context is current
    c = run_test(recorder, "t.py::test_c", lambda: None)
    session = recorder.session()
    later = late(recorder)
    worker.stop(threads[0])

    assert worker.lines("one") <= lines_in(a)
    # two() ran while test_b ran: test_b saw it run.
    assert worker.lines("two") <= lines_in(b)
    assert not worker.lines("one", "three") & lines_in(b)
    # three() ran in no test: only the owner gets it, never the session.
    assert not worker.lines("one", "two", "three") & lines_in(c)
    assert not lines_in(session)
    # test_a had been handed over: the rest is merged into it at the end.
    assert set(later) == {"test:t.py::test_a"}
    assert worker.lines("two", "three") <= later["test:t.py::test_a"]
    assert not worker.lines("one") & later["test:t.py::test_a"]


def test_a_thread_started_by_a_thread_has_the_same_owner(
    recorder: Recorder, worker: Worker
) -> None:
    threads: list[threading.Thread] = []
    run_test(recorder, "t.py::test_a", lambda: threads.append(worker.module.start_nested()))
    b = run_test(recorder, "t.py::test_b", lambda: worker.run("two"))
    recorder.session()
    later = late(recorder)
    worker.stop(threads[0])

    assert worker.lines("two") <= lines_in(b)
    assert worker.lines("two") <= later["test:t.py::test_a"]


@pytest.mark.parametrize("started_in", ["session", "fixture"])
def test_a_thread_no_test_started_goes_to_the_running_test_or_the_next(
    recorder: Recorder, worker: Worker, started_in: str
) -> None:
    if started_in == "fixture":
        key = ContextKey.fixture("session", "", "", "server")
        recorder.push(ContextKey.test("t.py::test_a"))
        recorder.push(key)
        thread = worker.module.start()
        worker.run("one")
        fixture = recorder.pop()
        recorder.pop()
        # Run while the fixture was set up: the fixture's (its users depend on it).
        assert worker.lines("one") <= lines_in(fixture)
    else:
        thread = worker.module.start()  # by a hook, say: in the session context
        a = run_test(recorder, "t.py::test_a", lambda: worker.run("one"))
        assert worker.lines("one") <= lines_in(a)
    b = run_test(recorder, "t.py::test_b", lambda: worker.run("two"))
    worker.run("three")  # in no test
    c = run_test(recorder, "t.py::test_c", lambda: None)
    session = recorder.session()
    later = late(recorder)
    worker.stop(thread)

    assert worker.lines("two") <= lines_in(b)
    assert not worker.lines("three") & lines_in(b)
    # The next test to start: the first one that can see what the thread did.
    assert worker.lines("three") <= lines_in(c)
    assert not worker.lines("one", "two") & lines_in(c)
    assert not worker.lines("one", "two", "three") & lines_in(session)
    assert later == {}


def test_lines_of_pytests_own_thread_stay_with_the_current_context(
    recorder: Recorder, worker: Worker
) -> None:
    recorder.push(ContextKey.test("t.py::test_a"))
    worker.module.one()
    a = recorder.pop()
    worker.module.two()
    session = recorder.session()
    assert lines_in(a) == worker.lines("one")
    assert lines_in(session) == worker.lines("two")
    assert session.key == SESSION
