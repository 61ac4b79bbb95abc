"""Record which lines of selected files execute, re-armed for every context.

`make_tracer(should_trace)` returns a `LineTracer`. Between two `take()` calls
it collects, per file, the set of executed line numbers; `take()` hands them
over and re-arms, so a line executed again in the next context is reported
again. That per-context re-arming is the point of this module: coverage.py's
`sysmon` core records a line once per process (coveragepy#2200), which loses
every test but the first that ran it.

Three implementations, picked by `make_tracer`:

- Python 3.12+: `sys.monitoring` (`MonitoringTracer`). Global PY_START and
  PY_RESUME events discover code objects; only code objects of traced files get
  local LINE events. Every callback returns DISABLE, so each code object is
  looked at once and each line fires once per context; `take()` re-arms only
  the code objects whose lines fired.
- Below 3.12 with coverage.py's C extension: coverage's `CTracer`
  (`CoverageCTracer`), driven the way coverage's own `Collector` drives it.
- Otherwise a pure-Python `sys.settrace` tracer (`SettraceTracer`).

Threads: `take_by_thread()` keeps apart the lines of the thread that called
start() (the *home* thread, where pytest runs) and, by thread id, those of
every other thread, so that the recorder can credit a background thread's
lines to the test that started it rather than to whatever context is current.
Below 3.12 every thread has a trace function of its own, so each writes its
own sets and the home thread's per-line cost does not change. sys.monitoring
has one callback for all threads: the LINE callback asks which thread it runs
in only while a thread announced by `thread_starting()` is alive (the recorder
announces every `threading.Thread.start`); otherwise all lines are the home
thread's, as before. Its DISABLE is not per thread either: a line that two
threads run between two take() calls is reported once, for the thread that
ran it first.

Limits: below 3.12 a frame already running when start() is called is not
traced (its remaining lines are missed; its callees are traced), as with
coverage.py itself; the recorder starts the tracer before any project code
runs. With several threads, a line executed in another thread during take()
may land in either context.

File names: `should_trace` receives the code object's `co_filename` made
absolute (relative to the current directory at first sight; names like
`<string>` are passed unchanged), and `take()` keys its result by that same
absolute name. `should_trace` is called at most once per `co_filename`.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any, Protocol

__all__ = ["LineTracer", "make_tracer", "MonitoringTracer", "SettraceTracer", "CoverageCTracer"]

ShouldTrace = Callable[[str], bool]
LineData = dict[str, set[int]]
# Lines of threads other than the home thread, by thread id (threading.get_ident()).
ThreadLines = dict[int, LineData]

# Tool ids tried in order. 0, 1 and 2 are what PEP 669 suggests for debuggers,
# coverage tools and profilers: 1 is coverage.py's, so never it; 3 and 4 are
# unassigned and the least likely to collide with anything.
TOOL_IDS = (3, 4, 2, 5)
TOOL_NAME = "testmon-watch"

# Lines fired since the last take(), per code object: id(code) -> (code, lines).
Fired = dict[int, tuple[CodeType, set[int]]]

_get_ident = threading.get_ident

# A plain bool rather than a sys.version_info test, so mypy checks every
# branch whatever version it targets.
HAS_MONITORING: bool = hasattr(sys, "monitoring")


class LineTracer(Protocol):
    """What the recorder needs from a tracer."""

    def start(self) -> None:
        """Begin tracing this thread and threads started later."""

    def stop(self) -> None:
        """Stop tracing and give back the tool id / trace function."""

    def take(self) -> LineData:
        """Lines executed since the previous take() (or start), by absolute file name."""

    def take_by_thread(self) -> tuple[LineData, ThreadLines]:
        """take(), split: the home thread's lines, and every other thread's by thread id."""

    def thread_starting(self, thread: threading.Thread) -> None:
        """`thread` is about to start: keep its lines apart from the home thread's.

        Needed where one callback serves every thread (sys.monitoring); below
        3.12 each thread gets a trace function of its own anyway.
        """

    def suspend(self) -> object:
        """Stop tracing this thread for a while (our own bookkeeping); returns a token.

        Only worth it where untraced code pays per call (settrace); the
        sys.monitoring tracer does nothing here and may record what runs.
        """

    def resume(self, token: object) -> None:
        """Undo the suspend() that returned `token`, from the same frame depth."""

    def quiet(self) -> object:
        """Trace this thread only inside windows until unquiet(token); returns the token.

        For stretches where only the test framework runs (pytest between a
        test's phases) and project code is reached through known doors, each
        of which opens a window. A no-op where untraced code costs nothing.
        """

    def unquiet(self, token: object) -> None:
        """Undo quiet(), from the frame that called it."""

    def open_window(self) -> object:
        """While quiet, trace what this frame calls until close_window(token)."""

    def close_window(self, token: object) -> None:
        """End the window open_window() opened, from the same frame."""


def absolute_filename(co_filename: str) -> str:
    """The name a code object's file is reported under."""
    # Pseudo file names (`<string>`, `<frozen importlib._bootstrap>`) are not
    # paths; abspath would invent a directory for them.
    if co_filename.startswith("<") or os.path.isabs(co_filename):
        return co_filename
    return os.path.abspath(co_filename)


class _FileFilter:
    """`should_trace`, asked once per co_filename; answers are cached."""

    def __init__(self, should_trace: ShouldTrace) -> None:
        self._should_trace = should_trace
        # co_filename -> absolute name if traced, else None.
        self.cache: dict[str, str | None] = {}

    def traced_name(self, co_filename: str) -> str | None:
        try:
            return self.cache[co_filename]
        except KeyError:
            pass
        # Placeholder first: should_trace is Python code, and running it sends
        # events for its own file; they must not ask again (and recurse).
        self.cache[co_filename] = None
        name = absolute_filename(co_filename)
        try:
            traced = bool(self._should_trace(name))
        except Exception:  # noqa: BLE001 - a broken filter must not break the test run
            traced = False
        result = name if traced else None
        self.cache[co_filename] = result
        return result


def _take_in_place(data: LineData) -> LineData:
    """Copy out and empty the per-file sets of `data` without replacing them.

    The pure-Python settrace tracer keeps a reference to each active frame's
    per-file set (its local trace function closes over `add`), so swapping
    `data` for a new dict would send the rest of every active frame's lines (a
    generator suspended across take(), the test function itself) into a set
    nobody looks at again. Emptying the same sets keeps them live. (The CTracer
    holds them too, in its data stack; CoverageCTracer._take_thread() tracks those.)
    """
    taken: LineData = {}
    # list() snapshots under the GIL: another thread may add a file meanwhile.
    for name, lines in list(data.items()):
        if not lines:
            continue
        snapshot = lines.copy()
        # difference_update, not clear(): a line another thread added after
        # the copy stays for the next take() instead of being lost.
        lines.difference_update(snapshot)
        taken[name] = snapshot
    return taken


# ---------------------------------------------------------------------------
# Python 3.12+: sys.monitoring
# ---------------------------------------------------------------------------


class MonitoringTracer:
    """`sys.monitoring` line recorder that re-arms its LINE events per take()."""

    def __init__(self, should_trace: ShouldTrace) -> None:
        self._filter = _FileFilter(should_trace)
        self._tool: int | None = None
        # Code objects given local LINE events, to take them back on stop(),
        # by id(): code objects compare equal by content, not file, so two
        # files' identical functions (generated code, copies) would count as
        # one in a set or as dict keys, and the second would never be armed.
        # Weak: a code object compiled by exec() should not live forever.
        self._armed: dict[int, weakref.ref[CodeType]] = {}
        # Lines fired since the last take(), per code object (by id, holding
        # the code object): take() must re-arm exactly these code objects.
        self._fired: Fired = {}
        self._rearm_locally = True
        # Threads: the home thread's id, the lines other threads fired (by
        # thread id), and the threads announced by thread_starting() that may
        # still run. While any may, LINE goes to _line_callback_any_thread().
        self._home = threading.get_ident()
        self._other_fired: dict[int, Fired] = {}
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()
        self._threaded = False

    @property
    def tool_id(self) -> int | None:
        return self._tool

    def start(self) -> None:
        if self._tool is not None:
            return
        mon = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
        self._tool = _claim_tool_id()
        events = mon.events
        self._rearm_locally = _local_rearm_works(self._tool)
        self._home = threading.get_ident()
        self._threaded = False
        mon.register_callback(self._tool, events.PY_START, self._on_code_start)
        mon.register_callback(self._tool, events.PY_RESUME, self._on_code_start)
        mon.register_callback(self._tool, events.LINE, self._on_line)
        mon.set_events(self._tool, events.PY_START | events.PY_RESUME)
        # Code objects seen by a previous start() may have PY_START disabled;
        # restarting is the documented way to see them again.
        mon.restart_events()
        # Frames already running (the module executing start(), frames of other
        # threads) will never send PY_START again: arm the traced ones now.
        for frame in _running_frames():
            self._arm(frame.f_code)

    def stop(self) -> None:
        if self._tool is None:
            return
        mon = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
        tool, self._tool = self._tool, None
        mon.set_events(tool, 0)
        # Local events outlive free_tool_id() on 3.12 and would fire for the
        # next owner of the id.
        for ref in list(self._armed.values()):
            code = ref()
            if code is not None:
                mon.set_local_events(tool, code, 0)
        self._armed = {}
        for event in (mon.events.PY_START, mon.events.PY_RESUME, mon.events.LINE):
            mon.register_callback(tool, event, None)
        mon.free_tool_id(tool)
        with self._threads_lock:
            self._threads = []
            self._threaded = False

    def take(self) -> LineData:
        home, others = self.take_by_thread()
        return _merged(home, others)

    def take_by_thread(self) -> tuple[LineData, ThreadLines]:
        fired, self._fired = self._fired, {}
        other_fired: dict[int, Fired] = {}
        if self._other_fired:
            other_fired, self._other_fired = self._other_fired, {}
        if self._threaded:
            self._forget_finished_threads()
        if self._tool is not None and (fired or other_fired):
            mon = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
            if self._rearm_locally:
                # Re-setting a code object's local events re-instruments it,
                # which re-enables its DISABLEd lines. Only the code objects
                # that fired pay; untraced code keeps PY_START disabled.
                line = mon.events.LINE
                codes = [code for code, _ in fired.values()]
                if other_fired:
                    unique = {id(code): code for code in codes}
                    for thread_fired in other_fired.values():
                        for code, _ in thread_fired.values():
                            unique[id(code)] = code
                    codes = list(unique.values())
                for code in codes:
                    mon.set_local_events(self._tool, code, 0)
                    mon.set_local_events(self._tool, code, line)
            else:
                # Documented but global: every code object sends PY_START once
                # more, untraced ones included.
                mon.restart_events()
        others = {ident: self._by_file(lines) for ident, lines in other_fired.items()}
        return self._by_file(fired), others

    def _by_file(self, fired: Fired) -> LineData:
        taken: LineData = {}
        names = self._filter.cache
        for code, lines in fired.values():
            name = names.get(code.co_filename) or absolute_filename(code.co_filename)
            existing = taken.get(name)
            if existing is None:
                taken[name] = lines
            else:
                existing.update(lines)
        return taken

    def thread_starting(self, thread: threading.Thread) -> None:
        """From now until `thread` ends, LINE events ask which thread they run in."""
        mon = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
        with self._threads_lock:
            tool = self._tool
            if tool is None:
                return
            self._threads.append(thread)
            if not self._threaded:
                self._threaded = True
                mon.register_callback(tool, mon.events.LINE, self._line_callback_any_thread())

    def _forget_finished_threads(self) -> None:
        """Back to the home thread's callback once every announced thread has ended."""
        with self._threads_lock:
            # ident None: announced, not started yet (its start() is under way).
            self._threads = [t for t in self._threads if t.ident is None or t.is_alive()]
            if self._threads or self._tool is None:
                return
            self._threaded = False
            mon = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
            mon.register_callback(self._tool, mon.events.LINE, self._on_line)

    def suspend(self) -> object:
        # Untraced code already runs without events (DISABLE): nothing to gain.
        return None

    def resume(self, token: object) -> None:
        return None

    def quiet(self) -> object:
        return None  # untraced code sends no events here: nothing to save

    def unquiet(self, token: object) -> None:
        return None

    def open_window(self) -> object:
        return None

    def close_window(self, token: object) -> None:
        return None

    def _arm(self, code: CodeType) -> None:
        if self._tool is None or self._filter.traced_name(code.co_filename) is None:
            return
        key = id(code)
        ref = self._armed.get(key)
        if ref is None or ref() is not code:
            mon = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
            mon.set_local_events(self._tool, code, mon.events.LINE)
            self._armed[key] = weakref.ref(code, self._forget(key))

    def _on_code_start(self, code: CodeType, offset: int) -> Any:
        # Called once per code object (and per generator resume point): after
        # DISABLE, untraced code runs at full speed until the next start().
        try:
            self._arm(code)
        except Exception:  # noqa: BLE001 - never break the code being traced
            pass
        return sys.monitoring.DISABLE  # type: ignore[attr-defined,unused-ignore]

    def _forget(self, key: int) -> Callable[[weakref.ref[CodeType]], None]:
        def forget(ref: weakref.ref[CodeType]) -> None:
            if self._armed.get(key) is ref:
                del self._armed[key]

        return forget

    def _on_line(self, code: CodeType, line: int) -> Any:
        # The hot path: only the home thread runs traced code (see thread_starting).
        entry = self._fired.get(id(code))
        if entry is None:
            self._fired[id(code)] = (code, {line})
        else:
            entry[1].add(line)
        return sys.monitoring.DISABLE  # type: ignore[attr-defined,unused-ignore]

    def _line_callback_any_thread(self) -> Callable[[CodeType, int], Any]:
        """_on_line for while other threads may run: the same, into the running thread's dict.

        A closure, so that what it looks up per event is mostly local: asking
        for the thread is the only cost the home thread pays on top.
        """
        tracer = self
        home = self._home
        get_ident = threading.get_ident
        disable = sys.monitoring.DISABLE  # type: ignore[attr-defined,unused-ignore]

        def on_line(code: CodeType, line: int) -> Any:
            ident = get_ident()
            if ident == home:
                fired = tracer._fired
            else:
                others = tracer._other_fired
                found = others.get(ident)
                fired = others.setdefault(ident, {}) if found is None else found
            entry = fired.get(id(code))
            if entry is None:
                fired[id(code)] = (code, {line})
            else:
                entry[1].add(line)
            return disable

        return on_line


def _claim_tool_id() -> int:
    mon = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
    for tool in TOOL_IDS:
        try:
            mon.use_tool_id(tool, TOOL_NAME)
        except ValueError:
            continue
        return tool
    owners = {tool: mon.get_tool(tool) for tool in TOOL_IDS}
    raise RuntimeError(
        "testmon-watch: no free sys.monitoring tool id; ids "
        + ", ".join(f"{tool} ({owner})" for tool, owner in owners.items())
        + " are all in use by other tools"
    )


def _probe() -> int:
    value = 1
    return value  # noqa: RET504 - two lines for the LINE probe below to see


def _local_rearm_works(tool: int) -> bool:
    """Does resetting local events re-enable DISABLEd lines on this interpreter?

    CPython 3.12 and 3.13 re-instrument a code object from scratch when its
    local events change, which drops DISABLE marks; nothing documents it, so
    check it once and fall back to restart_events() if it stops being true.
    """
    mon = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
    code = _probe.__code__
    seen: list[int] = []

    def on_line(code: CodeType, line: int) -> Any:
        seen.append(line)
        return mon.DISABLE

    mon.register_callback(tool, mon.events.LINE, on_line)
    try:
        mon.set_local_events(tool, code, mon.events.LINE)
        _probe()
        first = len(seen)
        _probe()
        disabled = len(seen) == first
        mon.set_local_events(tool, code, 0)
        mon.set_local_events(tool, code, mon.events.LINE)
        _probe()
        return first > 0 and disabled and len(seen) > first
    finally:
        mon.set_local_events(tool, code, 0)
        mon.register_callback(tool, mon.events.LINE, None)


def _running_frames() -> list[FrameType]:
    frames: list[FrameType] = []
    for top in sys._current_frames().values():
        frame: FrameType | None = top
        while frame is not None:
            frames.append(frame)
            frame = frame.f_back
    return frames


# ---------------------------------------------------------------------------
# Below 3.12: sys.settrace, with coverage.py's C tracer when available
# ---------------------------------------------------------------------------

TraceFunction = Callable[[FrameType, str, Any], Any]


class _ThreadData:
    """What one thread's trace functions write: its lines and the C tracers writing them."""

    __slots__ = ("ident", "data", "tracers", "shared")

    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.data: LineData = {}
        self.tracers: list[Any] = []  # CoverageCTracer: the CTracers whose `data` this is
        # CoverageCTracer: per-file sets of earlier `data` dicts a frame may still add to.
        self.shared: list[tuple[str, set[int]]] = []


class _SettraceBase:
    """Install/uninstall logic shared by the two settrace tracers.

    Coexistence: only one sys.settrace function exists per thread. When one is
    already set (a debugger, pytest-cov's coverage), we do what coverage's own
    Collector does when collectors nest: the newest one traces and the previous
    one is paused, then put back by stop(). The previous tracer misses what runs
    in between; on 3.12+ the sys.monitoring tracer avoids this entirely.
    """

    def __init__(self, should_trace: ShouldTrace) -> None:
        self._filter = _FileFilter(should_trace)
        # The home thread's lines (the thread that called start()), and those
        # of each thread started later, which installs a trace function of its
        # own (_install_in_thread), writing into a _ThreadData of its own.
        self._home = _ThreadData(threading.get_ident())
        self._threads: list[_ThreadData] = []
        self._started = False
        self._previous: Any = None
        self._previous_threading: Any = None
        self._lock = threading.Lock()
        # quiet(): the thread that went quiet and the trace function it had.
        self._quiet_thread: int | None = None
        self._quiet_token: Any = None

    def _install_here(self, thread: _ThreadData) -> TraceFunction:
        """Install a trace function on the calling thread, writing into `thread`; return it."""
        raise NotImplementedError

    def _take_thread(self, thread: _ThreadData) -> LineData:
        """The lines `thread` added since the last take, removed from it."""
        return _take_in_place(thread.data)

    def _stop_trace_functions(self) -> None:
        """Make every thread's trace function go quiet."""

    def start(self) -> None:
        if self._started:
            return
        self._previous = sys.gettrace()
        self._previous_threading = threading.gettrace()
        self._started = True
        self._home.ident = threading.get_ident()
        self._install_here(self._home)
        # threading has no hook for "a thread begins" except its trace
        # function: it installs our real tracer in the new thread.
        threading.settrace(self._install_in_thread)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._quiet_thread = self._quiet_token = None
        self._stop_trace_functions()
        sys.settrace(self._previous)
        threading.settrace(self._previous_threading)
        self._previous = self._previous_threading = None

    def take(self) -> LineData:
        home, others = self.take_by_thread()
        return _merged(home, others)

    def take_by_thread(self) -> tuple[LineData, ThreadLines]:
        self._reinstall_if_cleared()
        home = self._take_thread(self._home)
        with self._lock:
            threads = list(self._threads)
        if not threads:
            return home, {}
        # Before taking: a thread that has ended by now adds nothing after its take.
        # (Only threading's threads get here: threading.settrace installs us.
        # sys._current_frames() would also do, at 5x the cost of a whole take.)
        running = {thread.ident for thread in threading.enumerate()}
        others: ThreadLines = {}
        ended: list[_ThreadData] = []
        for thread in threads:
            taken = self._take_thread(thread)
            if taken:
                # One id, two _ThreadData: a thread that ended and one that got its id.
                existing = others.get(thread.ident)
                if existing is None:
                    others[thread.ident] = taken
                else:
                    for name, lines in taken.items():
                        _merge(existing, name, lines)
            if thread.ident not in running:
                ended.append(thread)
        if ended:
            gone = {id(thread) for thread in ended}
            with self._lock:
                self._threads = [t for t in self._threads if id(t) not in gone]
            for thread in ended:
                # A CTracer dropped while started calls PyEval_SetTrace(NULL) in the
                # thread that drops it: this one, whose tracing would silently end.
                for tracer in thread.tracers:
                    tracer.stop()
                thread.tracers = []
        return home, others

    def thread_starting(self, thread: threading.Thread) -> None:
        return None  # the thread installs a trace function of its own (_install_in_thread)

    def suspend(self) -> object:
        """Remove this thread's trace function; resume(token) puts it back.

        No trace events at all while suspended: calls made and finished in
        between are simply unseen. The frames that were running keep their
        data-stack entries, so suspend() and resume() must be called at the
        same depth below the frame that brackets them (a `with` block's
        __enter__ and __exit__), or CTracer's stack would drift: this frame
        gets a call event but no return event, resume()'s the opposite.
        """
        if not self._started:
            return None
        current = sys.gettrace()
        if current is None:
            return None
        sys.settrace(None)
        return current

    def resume(self, token: object) -> None:
        # The trace function goes back in this very frame (no helper call):
        # see suspend().
        if token is not None and self._started and sys.gettrace() is None:
            sys.settrace(token)  # type: ignore[arg-type]

    # -- quiet stretches and their windows ----------------------------------
    #
    # Below 3.12 a trace function makes every Python call and line of every
    # file slower, project or not: most of pytest's own per-test work is paid
    # for. quiet() removes it for such a stretch; open_window() traces the
    # doors into project code inside it (a test's setup, call and teardown, a
    # project-defined hook).

    def quiet(self) -> object:
        if not self._started or self._quiet_thread is not None:
            return None
        token = self.suspend()
        if token is None:
            return None  # not tracing here (another tool's trace function, pdb)
        self._quiet_thread = threading.get_ident()
        self._quiet_token = token
        return token

    def unquiet(self, token: object) -> None:
        if token is None or token is not self._quiet_token:
            return
        self._quiet_thread = None
        self._quiet_token = None
        self.resume(token)

    def open_window(self) -> object:
        if self._quiet_thread != threading.get_ident() or sys.gettrace() is not None:
            return None  # not quiet (or already inside a window): tracing goes on as it is
        return self._start_window()

    def close_window(self, token: object) -> None:
        if token is not None and sys.gettrace() is token:
            self._stop_window(token)

    def _start_window(self) -> Any:
        # The thread's own trace function: the pure-Python tracer keeps no
        # per-frame state that a window opened at another depth could upset.
        sys.settrace(self._quiet_token)
        return self._quiet_token

    def _stop_window(self, token: Any) -> None:
        sys.settrace(None)

    def _reinstall_if_cleared(self) -> None:
        if self._quiet_thread == threading.get_ident():
            return  # quiet on purpose
        if self._started and sys.gettrace() is None:
            # Someone cleared the trace function (pdb's `continue` does):
            # resume from here rather than record nothing for the rest of
            # the session.
            self._install_here(self._home)

    def _install_in_thread(self, frame: FrameType, event: str, arg: Any) -> Any:
        sys.settrace(None)
        if not self._started:
            return None
        thread = _ThreadData(threading.get_ident())
        with self._lock:
            self._threads.append(thread)
        trace = self._install_here(thread)
        # This call event is already under way: hand it to the real tracer
        # so the thread's first frame is not missed.
        return trace(frame, event, arg)


class SettraceTracer(_SettraceBase):
    """Pure-Python sys.settrace line recorder: the slow fallback."""

    def _install_here(self, thread: _ThreadData) -> TraceFunction:
        data = thread.data
        traced_name = self._filter.traced_name
        started = self._is_started

        def global_trace(frame: FrameType, event: str, arg: Any) -> Any:
            if event != "call" or not started():
                return None
            name = traced_name(frame.f_code.co_filename)
            if name is None:
                # None: no local tracing, untraced frames cost one call event.
                return None
            lines = data.get(name)
            if lines is None:
                lines = data.setdefault(name, set())
            add = lines.add

            def local_trace(frame: FrameType, event: str, arg: Any) -> Any:
                if event == "line":
                    add(frame.f_lineno)
                return local_trace

            return local_trace

        sys.settrace(global_trace)
        return global_trace

    def _is_started(self) -> bool:
        return self._started


class CoverageCTracer(_SettraceBase):
    """coverage.py's C tracer, configured the way coverage's Collector does it.

    Uses private coverage API: `coverage.tracer.CTracer` and `CFileDisposition`
    and the attributes Collector sets on them. Checked against coverage 7.x
    (7.17.5); `make_tracer` falls back to `SettraceTracer` if they are missing.
    """

    def __init__(self, should_trace: ShouldTrace) -> None:
        super().__init__(should_trace)
        tracer_module = _coverage_tracer_module()
        CTracer = tracer_module.CTracer  # noqa: N806 - the C types' own names
        CFileDisposition = tracer_module.CFileDisposition  # noqa: N806 - the C type's own name

        self._ctracer_class: Any = CTracer
        self._disposition_class: Any = CFileDisposition
        # co_filename -> disposition, shared by all threads' tracers; CTracer
        # fills it, so should_trace runs once per file name.
        self._disposition_cache: dict[str, Any] = {}
        self._file_tracers: dict[str, str] = {}
        # Separate from self._lock (the list of tracers): CTracer holds this
        # one while it adds a file to `data`.
        self._data_lock = threading.Lock()
        self._window_tracer: Any = None
        self._windows_opened = 0
        # Configure one now so that a coverage release whose CTracer lacks an
        # attribute we set fails here, where make_tracer can fall back.
        self._configured_ctracer(self._home)

    def _disposition(self, co_filename: str, frame: FrameType) -> Any:
        name = self._filter.traced_name(co_filename)
        disp = self._disposition_class()
        # The fields coverage.disposition.disposition_init sets.
        disp.original_filename = co_filename
        disp.canonical_filename = name or co_filename
        disp.source_filename = name
        disp.trace = name is not None
        disp.reason = "" if name is not None else "not a project file"
        disp.file_tracer = None
        disp.has_dynamic_filename = False
        return disp

    def _configured_ctracer(self, thread: _ThreadData) -> Any:
        tracer = self._ctracer_class()
        tracer.data = thread.data
        # lock_data/unlock_data guard the creation of a file's set in `data`
        # across threads; line additions to existing sets need no lock.
        tracer.lock_data = self._data_lock.acquire
        tracer.unlock_data = self._data_lock.release
        tracer.trace_arcs = False
        tracer.should_trace = self._disposition
        tracer.should_trace_cache = self._disposition_cache
        tracer.warn = _ignore_warning
        tracer.file_tracers = self._file_tracers
        if hasattr(tracer, "concur_id_func"):
            tracer.concur_id_func = None
        if hasattr(tracer, "check_include"):
            # Only asked for files with a dynamic name (plugins): none here.
            tracer.check_include = _never
        if hasattr(tracer, "should_start_context"):
            tracer.should_start_context = None
        if hasattr(tracer, "switch_context"):
            tracer.switch_context = None
        if hasattr(tracer, "disable_plugin"):
            tracer.disable_plugin = None
        return tracer

    def _take_thread(self, thread: _ThreadData) -> LineData:
        """Swap in a fresh `data` dict: the cost is O(files touched), not O(files seen).

        CTracer keeps, in each active frame's data-stack entry, an owned
        reference to the per-file set it found in `data` when the frame
        started. A frame running across take() (a module body importing
        another module, a test calling a project function that pushes a
        context) keeps adding to the old set: such sets are spotted by their
        reference count, emptied in place rather than handed over, and looked
        at again on each take() until nothing but us holds them.
        """
        with self._lock:
            old, thread.data = thread.data, {}
            for tracer in thread.tracers:
                tracer.data = thread.data
        taken: LineData = {}
        shared: list[tuple[str, set[int]]] = []
        for name, lines in thread.shared:
            if lines:
                _merge(taken, name, _drain(lines))
            if sys.getrefcount(lines) > _HELD_BY_SHARED:
                shared.append((name, lines))
        while old:
            name, lines = old.popitem()
            if sys.getrefcount(lines) > _HELD_BY_LOCAL:
                shared.append((name, lines))
                if lines:
                    _merge(taken, name, _drain(lines))
            elif lines:
                # Nobody else can add to it any more: hand it over as it is.
                _merge(taken, name, lines)
        thread.shared = shared
        return taken

    def _start_window(self) -> Any:
        """Start the window tracer: a CTracer of its own, never the thread's.

        CTracer keeps a stack of the frames it saw start. A window is opened
        in a frame it never saw start (a pytest hook wrapper) and closed after
        that frame was resumed, which it sees as a start: each window leaves
        one entry behind. Such entries belong to our own frames, so lines are
        never attributed to the wrong file; the thread's tracer keeps its own
        stack intact, and the window tracer is replaced now and then so the
        leftovers stay few.
        """
        tracer = self._window_tracer
        if tracer is None or self._windows_opened >= _WINDOWS_PER_TRACER:
            with self._lock:
                if tracer is not None:
                    tracer.stop()
                    self._home.tracers.remove(tracer)
                tracer = self._window_tracer = self._configured_ctracer(self._home)
                self._home.tracers.append(tracer)
            self._windows_opened = 0
        self._windows_opened += 1
        tracer.start()
        return tracer

    def _stop_window(self, token: Any) -> None:
        token.stop()
        sys.settrace(None)

    def _install_here(self, thread: _ThreadData) -> TraceFunction:
        # Under the lock: take() must not swap `data` between configuring
        # this tracer and listing it.
        with self._lock:
            tracer = self._configured_ctracer(thread)
            thread.tracers.append(tracer)
        # start() installs the C trace function on this thread itself
        # (PyEval_SetTrace), bypassing the slower sys.settrace trampoline.
        function: TraceFunction = tracer.start()
        return function

    def resume(self, token: object) -> None:
        # Like the base class, in this very frame (see suspend()).
        if token is None or not self._started or sys.gettrace() is not None:
            return
        if isinstance(token, self._ctracer_class):
            # start() again: PyEval_SetTrace with the same tracer and its
            # data stack, not sys.settrace's slower Python-level trampoline.
            token.start()
        else:
            sys.settrace(token)  # type: ignore[arg-type]

    def _stop_trace_functions(self) -> None:
        # CTracer.stop() only clears a flag; each thread's tracer uninstalls
        # itself at its next event.
        with self._lock:
            tracers = []
            for thread in (self._home, *self._threads):
                tracers.extend(thread.tracers)
                thread.tracers = []
            self._window_tracer = None
        for tracer in tracers:
            tracer.stop()
        # CTracer set itself as f_trace on every frame it saw start. When such
        # a frame later returns through the sys.settrace trampoline, a stopped
        # CTracer calls PyEval_SetTrace(NULL), which would silently remove the
        # previous trace function stop() is about to put back.
        frame: FrameType | None = sys._getframe()
        while frame is not None:
            if any(frame.f_trace is tracer for tracer in tracers):
                frame.f_trace = None
            frame = frame.f_back


# Windows one window tracer serves before a fresh one takes over (see
# CoverageCTracer._start_window): bounds its stack of leftover entries.
_WINDOWS_PER_TRACER = 1000


def _drain(lines: set[int]) -> set[int]:
    """Copy out and empty a set that a tracer may still add to."""
    snapshot = lines.copy()
    # difference_update, not clear(): a line another thread added after the
    # copy stays for the next take() instead of being lost.
    lines.difference_update(snapshot)
    return snapshot


def _merged(home: LineData, others: ThreadLines) -> LineData:
    """Every thread's lines in one dict (take() from take_by_thread())."""
    for lines_of_thread in others.values():
        for name, lines in lines_of_thread.items():
            _merge(home, name, lines)
    return home


def _merge(taken: LineData, name: str, lines: set[int]) -> None:
    existing = taken.get(name)
    if existing is None:
        taken[name] = lines
    else:
        existing.update(lines)


def _calibrate() -> tuple[int, int]:
    """sys.getrefcount of a set held only the way CoverageCTracer._take_thread holds it.

    Popped from a dict into a local variable, and in take()'s list of shared
    sets while its loop looks at it; measured rather than assumed, since the
    count of the call's own references varies between interpreters.
    """
    data: dict[str, set[int]] = {"probe": set()}
    _key, lines = data.popitem()
    held_by_local = sys.getrefcount(lines)
    del lines
    shared: list[tuple[str, set[int]]] = [("probe", set())]
    held_by_shared = 0
    for _name, lines in shared:
        held_by_shared = sys.getrefcount(lines)
    return held_by_local, held_by_shared


# References _take_thread() itself holds on a set popped from `data` (a local
# variable), and on one in its list of shared sets (the list's tuple and the
# loop variable), measured rather than assumed.
_HELD_BY_LOCAL, _HELD_BY_SHARED = _calibrate()


def _coverage_tracer_module() -> Any:
    """coverage.py's C extension `coverage.tracer`, without importing the coverage package.

    `import coverage.tracer` runs coverage/__init__.py first, which imports
    most of coverage.py (~50 ms, on every recorded run); the extension itself
    needs none of it. When coverage is already imported, its module is used.
    Otherwise the extension is loaded from its file, and handed to the import
    system when coverage itself is imported later (pytest-cov, our export):
    the extension refuses to be loaded twice in one process.
    """
    loaded = sys.modules.get("coverage.tracer")
    if loaded is not None:
        return loaded
    for finder in sys.meta_path:
        if isinstance(finder, _LoadedCoverageTracer):
            return finder.module
    import importlib.machinery
    import importlib.util

    package = importlib.util.find_spec("coverage")  # finds, does not run, the package
    if package is None or not package.submodule_search_locations:
        raise ImportError("coverage is not installed")
    for directory in package.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(directory, "tracer" + suffix)
            if not os.path.exists(path):
                continue
            loader = importlib.machinery.ExtensionFileLoader("coverage.tracer", path)
            spec = importlib.util.spec_from_file_location("coverage.tracer", path, loader=loader)
            assert spec is not None
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
            sys.meta_path.insert(0, _LoadedCoverageTracer(module))
            return module
    raise ImportError("coverage has no C tracer here")


class _LoadedCoverageTracer:
    """Import finder and loader that hands out the `coverage.tracer` loaded above, once.

    Through the import system rather than sys.modules: importing it as the
    package's submodule also sets the package's `tracer` attribute, which
    coverage.py reads.
    """

    def __init__(self, module: Any) -> None:
        self.module = module

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "coverage.tracer":
            return None
        import importlib.util

        # A loader by protocol (create_module, exec_module), not by importlib.abc class.
        loader: Any = self
        return importlib.util.spec_from_loader(name, loader, origin=self.module.__file__)

    def create_module(self, spec: Any) -> Any:
        return self.module

    def exec_module(self, module: Any) -> None:
        # Imported for good now (it is in sys.modules): nothing more to hand out.
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def _ignore_warning(msg: str, slug: str | None = None, once: bool = False) -> None:
    # CTracer warns only about plugin failures; we use no plugins.
    return None


def _never(filename: str, frame: FrameType) -> bool:
    return False


def make_tracer(should_trace: ShouldTrace) -> LineTracer:
    """The fastest line tracer this interpreter supports."""
    if HAS_MONITORING:
        return MonitoringTracer(should_trace)
    try:
        return CoverageCTracer(should_trace)
    except (ImportError, AttributeError, TypeError):
        # No C extension (pure-Python coverage install, PyPy) or a coverage
        # release whose private CTracer interface moved.
        return SettraceTracer(should_trace)
