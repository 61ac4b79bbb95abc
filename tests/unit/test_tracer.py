"""Line tracer: real code imported from files, traced per context."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from testmon_watch.measure import tracer as tracer_mod
from testmon_watch.measure.tracer import LineTracer, make_tracer

Factory = Callable[[Callable[[str], bool]], LineTracer]

FACTORIES: list[Any] = [pytest.param(make_tracer, id="default")]
if sys.version_info < (3, 12):
    FACTORIES.append(pytest.param(tracer_mod.SettraceTracer, id="settrace"))

_counter = itertools.count()


class Project:
    """Modules written to a tmp directory; only files under it are traced."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, source: str) -> Path:
        path = self.root / f"{name}.py"
        path.write_text(textwrap.dedent(source).lstrip("\n"))
        return path

    def load(self, path: Path) -> ModuleType:
        module_name = f"_tracer_sample_{next(_counter)}_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module

    def should_trace(self, filename: str) -> bool:
        return filename.startswith(str(self.root))


def lines_of(path: Path, *markers: str) -> set[int]:
    """Line numbers of the lines containing each marker comment."""
    text = path.read_text().splitlines()
    found = {number for number, line in enumerate(text, 1) for m in markers if f"# {m}" in line}
    assert found, markers
    return found


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "proj")


@pytest.fixture(params=FACTORIES)
def tracing(request: pytest.FixtureRequest, project: Project) -> Iterator[LineTracer]:
    factory: Factory = request.param
    tracer = factory(project.should_trace)
    try:
        yield tracer
    finally:
        tracer.stop()


FUNCS = """
def add(a, b):
    total = a + b  # add
    return total  # add

def loop(n):
    acc = 0  # loop
    for i in range(n):  # loop
        acc += i  # loop
    return acc  # loop

def branches(x):
    try:  # try
        if x:  # try
            raise ValueError(x)  # raise
        return 0  # noraise
    except ValueError:  # handler
        try:  # handler
            return int("nope")  # inner
        except ValueError as exc:  # inner-handler
            return -1  # inner-handler
    finally:
        x = None  # finally
"""


def test_function_lines_are_reported(project: Project, tracing: LineTracer) -> None:
    path = project.write("funcs", FUNCS)
    module = project.load(path)
    tracing.start()
    module.add(1, 2)
    taken = tracing.take()
    tracing.stop()
    assert taken == {str(path): lines_of(path, "add")}


def test_take_rearms_so_each_context_sees_the_lines(project: Project, tracing: LineTracer) -> None:
    path = project.write("funcs", FUNCS)
    module = project.load(path)
    tracing.start()
    module.add(1, 2)
    context_a = tracing.take()
    module.add(3, 4)
    context_b = tracing.take()
    context_c = tracing.take()
    assert context_a[str(path)] == lines_of(path, "add")
    assert context_b[str(path)] == lines_of(path, "add")
    assert context_c == {}


def test_loop_lines_once_per_take(project: Project, tracing: LineTracer) -> None:
    path = project.write("funcs", FUNCS)
    module = project.load(path)
    tracing.start()
    for _ in range(3):
        assert module.loop(5) == 10
        taken = tracing.take()
        assert taken == {str(path): lines_of(path, "loop")}


def test_untraced_files_are_not_reported(
    project: Project, tmp_path: Path, tracing: LineTracer
) -> None:
    traced = project.write("funcs", FUNCS)
    elsewhere = Project(tmp_path / "other")
    other = elsewhere.load(elsewhere.write("other", FUNCS))
    module = project.load(traced)
    tracing.start()
    other.add(1, 2)
    other.loop(3)
    module.add(1, 2)
    assert set(tracing.take()) == {str(traced)}


def test_nested_try_except(project: Project, tracing: LineTracer) -> None:
    path = project.write("funcs", FUNCS)
    module = project.load(path)
    tracing.start()
    assert module.branches(1) == -1
    raised = tracing.take()[str(path)]
    assert module.branches(0) == 0
    clean = tracing.take()[str(path)]
    assert lines_of(path, "try", "raise", "handler", "inner", "inner-handler", "finally") <= raised
    assert not raised & lines_of(path, "noraise")
    assert lines_of(path, "try", "noraise", "finally") <= clean
    assert not clean & lines_of(path, "raise", "handler", "inner", "inner-handler")


def test_generator_suspended_across_take(project: Project, tracing: LineTracer) -> None:
    path = project.write(
        "gen",
        """
        def numbers():
            yield 1  # first
            yield 2  # second
            yield 3  # third
        """,
    )
    module = project.load(path)
    tracing.start()
    gen = module.numbers()
    assert next(gen) == 1
    first = tracing.take()[str(path)]
    assert next(gen) == 2
    second = tracing.take()[str(path)]
    assert lines_of(path, "first") <= first
    assert not first & lines_of(path, "second")
    assert lines_of(path, "second") <= second
    assert not second & lines_of(path, "first")


def test_generator_created_before_start(project: Project, tracing: LineTracer) -> None:
    path = project.write(
        "gen",
        """
        def numbers():
            yield 1  # first
            yield 2  # second
        """,
    )
    module = project.load(path)
    gen = module.numbers()
    assert next(gen) == 1
    tracing.start()
    assert next(gen) == 2
    assert lines_of(path, "second") <= tracing.take()[str(path)]


def test_lines_before_and_after_take_in_the_same_frame(
    project: Project, tracing: LineTracer
) -> None:
    path = project.write(
        "frame",
        """
        def work(switch):
            a = 1  # before
            switch()  # before
            b = 2  # after
            c = a + b  # after
            return c  # after
        """,
    )
    module = project.load(path)
    tracing.start()
    taken: list[dict[str, set[int]]] = []
    module.work(lambda: taken.append(tracing.take()))
    taken.append(tracing.take())
    before, after = taken
    assert before[str(path)] == lines_of(path, "before")
    assert after[str(path)] == lines_of(path, "after")


def test_thread_started_after_start_is_traced(project: Project, tracing: LineTracer) -> None:
    path = project.write("funcs", FUNCS)
    module = project.load(path)
    tracing.start()
    thread = threading.Thread(target=module.loop, args=(4,))
    thread.start()
    thread.join()
    assert tracing.take() == {str(path): lines_of(path, "loop")}


def test_take_by_thread_keeps_other_threads_apart(project: Project, tracing: LineTracer) -> None:
    path = project.write("funcs", FUNCS)
    module = project.load(path)
    tracing.start()
    thread = threading.Thread(target=module.loop, args=(4,))
    tracing.thread_starting(thread)  # what the recorder's Thread.start wrapper does
    thread.start()
    thread.join()
    module.add(1, 2)
    home, others = tracing.take_by_thread()
    assert home == {str(path): lines_of(path, "add")}
    assert others == {thread.ident: {str(path): lines_of(path, "loop")}}
    # The thread has ended: nothing of it is left, and the home thread is still traced.
    module.add(1, 2)
    assert tracing.take_by_thread() == ({str(path): lines_of(path, "add")}, {})


def test_a_thread_that_keeps_running_is_split_at_every_take(
    project: Project, tracing: LineTracer
) -> None:
    path = project.write("funcs", FUNCS)
    module = project.load(path)
    tracing.start()
    go, done = threading.Event(), threading.Event()
    calls: list[Callable[[], object]] = []

    def serve() -> None:
        while go.wait(30):
            go.clear()
            if not calls:
                return
            calls.pop()()
            done.set()

    def ask(call: Callable[[], object]) -> None:
        calls.append(call)
        done.clear()
        go.set()
        assert done.wait(30)

    thread = threading.Thread(target=serve)
    tracing.thread_starting(thread)
    thread.start()
    try:
        ask(lambda: module.add(1, 2))
        module.loop(2)
        first = tracing.take_by_thread()
        ask(lambda: module.add(3, 4))  # again: re-armed for the next context
        second = tracing.take_by_thread()
        module.add(5, 6)  # the home thread runs it: its own, not the thread's
        third = tracing.take_by_thread()
    finally:
        go.set()
        thread.join()
    assert first == (
        {str(path): lines_of(path, "loop")},
        {thread.ident: {str(path): lines_of(path, "add")}},
    )
    assert second == ({}, {thread.ident: {str(path): lines_of(path, "add")}})
    assert third == ({str(path): lines_of(path, "add")}, {})


def test_stop_then_start_again(project: Project, tracing: LineTracer) -> None:
    path = project.write("funcs", FUNCS)
    module = project.load(path)
    tracing.start()
    module.add(1, 2)
    assert tracing.take() == {str(path): lines_of(path, "add")}
    tracing.stop()
    module.loop(2)
    assert tracing.take() == {}
    tracing.start()
    module.add(1, 2)
    module.loop(2)
    assert tracing.take() == {str(path): lines_of(path, "add", "loop")}


def test_module_and_class_body_lines_on_import(project: Project, tracing: LineTracer) -> None:
    path = project.write(
        "bodies",
        """
        import os  # module

        LIMIT = 3  # module

        def decorate(func):
            return func  # decorator

        class Config:  # module
            retries = LIMIT  # class
            names = [n for n in "ab"]  # class

            @decorate  # class
            def method(self):
                return 1  # method
        """,
    )
    tracing.start()
    project.load(path)
    taken = tracing.take()[str(path)]
    assert lines_of(path, "module", "class", "decorator") <= taken
    assert not taken & lines_of(path, "method")


def test_should_trace_called_once_per_file(project: Project) -> None:
    path = project.write("funcs", FUNCS)
    module = project.load(path)
    asked: list[str] = []

    def should_trace(filename: str) -> bool:
        asked.append(filename)
        return project.should_trace(filename)

    tracer = make_tracer(should_trace)
    tracer.start()
    try:
        for _ in range(3):
            module.add(1, 2)
            module.loop(2)
            tracer.take()
    finally:
        tracer.stop()
    assert asked.count(str(path)) == 1
    assert len(asked) == len(set(asked))


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring only")
def test_frames_running_at_start_are_traced(project: Project) -> None:
    path = project.write(
        "running",
        """
        def work(start):
            a = 1  # before
            start()  # before
            b = 2  # after
            return a + b  # after
        """,
    )
    module = project.load(path)
    tracer = make_tracer(project.should_trace)
    try:
        module.work(tracer.start)
        assert lines_of(path, "after") <= tracer.take()[str(path)]
    finally:
        tracer.stop()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring only")
def test_all_tool_ids_taken_is_a_clear_error() -> None:
    mon = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
    claimed = []
    for tool in tracer_mod.TOOL_IDS:
        if mon.get_tool(tool) is None:
            mon.use_tool_id(tool, "squatter")
            claimed.append(tool)
    try:
        with pytest.raises(RuntimeError, match=r"no free sys\.monitoring tool id"):
            make_tracer(lambda filename: False).start()
    finally:
        for tool in claimed:
            mon.free_tool_id(tool)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring only")
def test_stop_gives_back_the_tool_id() -> None:
    mon = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
    tracer = tracer_mod.MonitoringTracer(lambda filename: False)
    tracer.start()
    tool = tracer.tool_id
    assert tool is not None and mon.get_tool(tool) == tracer_mod.TOOL_NAME
    tracer.stop()
    assert mon.get_tool(tool) is None


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="settrace tracers only")
@pytest.mark.parametrize("factory", FACTORIES)
def test_stop_restores_the_previous_trace_function(project: Project, factory: Factory) -> None:
    path = project.write("funcs", FUNCS)
    module = project.load(path)
    calls: list[str] = []

    def previous(frame: Any, event: str, arg: Any) -> Any:
        calls.append(event)
        return None

    original = sys.gettrace()
    sys.settrace(previous)
    try:
        tracer = factory(project.should_trace)
        tracer.start()
        module.add(1, 2)
        tracer.stop()
        assert sys.gettrace() is previous
        assert tracer.take() == {str(path): lines_of(path, "add")}
    finally:
        sys.settrace(original)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="settrace tracers only")
def test_take_reinstalls_a_cleared_trace_function(project: Project, tracing: LineTracer) -> None:
    path = project.write("funcs", FUNCS)
    module = project.load(path)
    tracing.start()
    sys.settrace(None)  # what pdb's `continue` does
    tracing.take()
    module.add(1, 2)
    assert tracing.take() == {str(path): lines_of(path, "add")}


def test_frames_running_across_many_takes_and_nested_calls(
    project: Project, tracing: LineTracer
) -> None:
    """A frame running across take() keeps reporting into later takes, then stops."""
    path = project.write(
        "outer",
        """
        def leaf(x):
            return x + 1  # leaf

        def outer(switch):
            a = leaf(1)  # first
            switch()  # first
            b = leaf(2)  # second
            switch()  # second
            c = a + b  # third
            return c  # third
        """,
    )
    module = project.load(path)
    tracing.start()
    taken: list[dict[str, set[int]]] = []
    module.outer(lambda: taken.append(tracing.take()))
    taken.append(tracing.take())
    for _ in range(3):
        module.leaf(0)
        taken.append(tracing.take())
    tracing.stop()
    leaf = lines_of(path, "leaf")
    assert taken[0][str(path)] == lines_of(path, "first") | leaf
    assert taken[1][str(path)] == lines_of(path, "second") | leaf
    assert taken[2][str(path)] == lines_of(path, "third")
    assert [t[str(path)] for t in taken[3:]] == [leaf] * 3
    shared = getattr(tracing, "_shared", [])
    assert len(shared) <= 1  # only stale data-stack entries may still hold a set


@contextmanager
def _suspended(tracer: LineTracer) -> Iterator[None]:
    # The shape Recorder.pause() has: suspend and resume from one generator.
    token = tracer.suspend()
    try:
        yield
    finally:
        tracer.resume(token)


def test_suspend_records_nothing_and_resume_keeps_the_frames_right(
    project: Project, tracing: LineTracer
) -> None:
    path = project.write(
        "susp",
        """
        def inner(x):
            return x * 2  # inner

        def hidden(x):
            return x - 1  # hidden

        def work(bracket, fail):
            a = inner(1)  # work-before
            try:  # work-before
                with bracket():  # work-before
                    hidden(a)  # inside
                    if fail:  # inside
                        raise KeyError(fail)  # raising
            except KeyError:  # handler
                a = 5  # handler
            b = inner(a)  # work-after
            return b  # work-after

        def caller(bracket, fail):
            r = work(bracket, fail)  # caller
            return inner(r)  # caller
        """,
    )
    module = project.load(path)
    tracing.start()
    for fail in ("", "boom"):
        tracing.take()
        module.caller(lambda: _suspended(tracing), fail)
        module.inner(3)
        taken = tracing.take()[str(path)]
        expected = lines_of(path, "inner", "work-before", "work-after", "caller")
        if isinstance(tracing, tracer_mod.MonitoringTracer):
            # suspend() is a no-op there
            expected |= lines_of(path, "hidden", "inside", *(["raising"] if fail else []))
        if fail:
            expected |= lines_of(path, "handler")
        assert taken == expected
    # Deeper and shallower calls after the bracket still land in the right file.
    module.hidden(1)
    assert tracing.take()[str(path)] == lines_of(path, "hidden")
    tracing.stop()


def test_identical_functions_in_two_files_are_told_apart(
    project: Project, tracing: LineTracer
) -> None:
    # Code objects compare equal by content, whatever their file: generated
    # modules (or copies) have identical functions that must not be merged.
    source = """
        def twin(x):
            y = x * 2  # twin
            return y  # twin
        """
    first, second = project.write("first", source), project.write("second", source)
    one, two = project.load(first), project.load(second)
    tracing.start()
    for _ in range(2):
        one.twin(1)
        assert tracing.take() == {str(first): lines_of(first, "twin")}
        two.twin(1)
        assert tracing.take() == {str(second): lines_of(second, "twin")}
    tracing.stop()


def _hook_wrapper_window(tracing: LineTracer) -> Iterator[None]:
    """Opens its window the way a pytest hook wrapper does: before a yield, closed after it."""
    token = tracing.open_window()
    try:
        yield
    finally:
        tracing.close_window(token)


def test_quiet_traces_only_inside_windows_and_many_windows_stay_exact(
    project: Project, tracing: LineTracer
) -> None:
    path = project.write(
        "quiet",
        """
        def outside(x):
            return x + 1  # outside

        def inside(x):
            return x * 2  # inside
        """,
    )
    module = project.load(path)
    monitoring = isinstance(tracing, tracer_mod.MonitoringTracer)
    tracing.start()
    tracing.take()
    token = tracing.quiet()
    # More windows than one window tracer serves, so a replacement is exercised.
    for _ in range(2 * getattr(tracer_mod, "_WINDOWS_PER_TRACER", 1000) + 10):
        window = _hook_wrapper_window(tracing)
        next(window)
        module.inside(1)
        with pytest.raises(StopIteration):
            next(window)
        module.outside(1)
        taken = tracing.take()
        expected = lines_of(path, "inside")
        if monitoring:  # quiet() is a no-op there
            expected |= lines_of(path, "outside")
        assert taken == {str(path): expected}
    tracing.unquiet(token)
    module.outside(2)
    assert tracing.take() == {str(path): lines_of(path, "outside")}
    tracing.stop()


def test_a_window_inside_a_window_and_a_suspend_inside_a_window(
    project: Project, tracing: LineTracer
) -> None:
    path = project.write(
        "nested",
        """
        def first(x):
            return x + 1  # first

        def second(x):
            return x * 2  # second

        def hidden(x):
            return x - 1  # hidden
        """,
    )
    module = project.load(path)
    tracing.start()
    token = tracing.quiet()
    outer = tracing.open_window()
    module.first(1)
    inner = tracing.open_window()  # already tracing: changes nothing
    module.second(1)
    tracing.close_window(inner)
    paused = tracing.suspend()
    module.hidden(1)
    tracing.resume(paused)
    module.second(2)
    tracing.close_window(outer)
    tracing.unquiet(token)
    taken = tracing.take()
    expected = lines_of(path, "first", "second")
    if isinstance(tracing, tracer_mod.MonitoringTracer):
        expected |= lines_of(path, "hidden")
    assert taken == {str(path): expected}
    tracing.stop()


COVERAGE_AFTER_US = """
import sys
from testmon_watch.measure import tracer

module = tracer._coverage_tracer_module()
assert "coverage" not in sys.modules, "the coverage package was imported"
import coverage
import coverage.tracer
from coverage.tracer import CTracer

assert coverage.tracer is module and CTracer is module.CTracer
cov = coverage.Coverage(data_file=None)
cov.start()
exec(compile("def f(x):\\n    return x + 1\\nf(1)\\n", PROBE, "exec"))
cov.stop()
print(cov._collector.tracer_name(), sorted(cov.get_data().lines(PROBE)))
"""


def test_the_c_tracer_loads_without_coverage_and_coverage_still_works_after(tmp_path) -> None:
    # A fresh interpreter: in this one, pytest-cov may have imported coverage already.
    import subprocess

    probe = tmp_path / "probe.py"
    script = f"PROBE = {str(probe)!r}\n" + COVERAGE_AFTER_US
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["CTracer", "[1,", "2,", "3]"]
