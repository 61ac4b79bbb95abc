"""The warm worker's children from fork to report: the run in progress, the standby, crashes.

`ChildSupervisor` starts each run's child (a fork of the server, a released
standby, or a fresh process where fork does not exist), forwards its events,
keeps the tail of its output, enforces the per-test timeout and cancels. When
the child has ended it reports the run: the child's own `run_finished`, held
until then, or a report the server writes for it when the child died or was
stopped (`unfinished_report`). Between runs it keeps the next run's child
waiting at its gate (the standby, see standby.py). The server's selector loop
calls in here; which run to start and what to do after one is the server's.
"""

from __future__ import annotations

import os
import selectors
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.runs import ExitStatus, PytestExit, Run, WorkerExit
from testmon_watch.wire import standby as standby_wire
from testmon_watch.wire.server_args import ChildArgs, child_command
from testmon_watch.wire.standby import Prepare, Release, StandbyExit
from testmon_watch.wire.worker_protocol import (
    ChildStarted,
    Message,
    Notice,
    ProtocolError,
    RunCommand,
    RunFinished,
    RunStarted,
    StandbyReady,
    TestFinished,
    TestStarted,
    decode,
    encode,
    trigger_text,
)
from testmon_watch.worker.child import register_stack_dump, run_child, run_standby
from testmon_watch.worker.processes import (
    Child,
    ProcessExit,
    close_fds,
    fork_available,
    fork_child,
    kill_group,
    spawn_child,
)

NO_STANDBY_ENV = "TESTMON_WATCH_NO_STANDBY"  # fork each run's child only when it is asked for
OUTPUT_TAIL = 16 * 1024  # bytes of the child's own stdout/stderr kept for crash reports
DUMP_GRACE = 0.5  # seconds a timed-out child gets to dump its stack before SIGKILL
CANCEL_GRACE = 1.0  # seconds between SIGINT (pytest saves what finished) and SIGKILL
POLL_SECONDS = 0.5  # safety net in case a SIGCHLD wake-up is missed
# Prepare lines a standby is sent before its release: far below a pipe's 64 KiB, so
# writing one never blocks the server even if the standby reads none of them.
PREPARE_BYTES = 16 * 1024
PREPARE_PATHS = 32  # per line: a save touches one file; a checkout, many (no hint helps)
# Python files saved lately whose current content the next standby parses while it
# waits (RunGate's `parse_ahead`), so that the next save's parse reuses the bodies
# it did not change.
RECENT_SAVES = 4
# pytest's exit codes that mean it got as far as running tests (or found none to run).
RAN_TESTS = (PytestExit.OK, PytestExit.TESTS_FAILED, PytestExit.NO_TESTS_COLLECTED)

# The server's sys.path before --python-path entries: a fresh child is given the rest.
_STARTUP_PATH: list[str] = list(sys.path)


def standby_enabled() -> bool:
    return fork_available() and not os.environ.get(NO_STANDBY_ENV)


def standby_matches(standby_args: list[str], cmd: RunCommand) -> bool:
    """Whether a standby started for `standby_args` can run `cmd` (affected tests only)."""
    return cmd.mode is RunMode.AFFECTED and list(cmd.args) == list(standby_args)


@dataclass
class ActiveRun:
    """The run whose child is alive (or just died and is being reported)."""

    cmd: RunCommand
    t0: float  # time.time() when the command arrived
    child: Child
    model: Run  # the run's state: its tests, the one running, cancel and timeout
    from_standby: bool = False
    event_fd: int | None = None  # open read ends of the child's pipes
    output_fd: int | None = None
    events: bytearray = field(default_factory=bytearray)
    output_tail: bytearray = field(default_factory=bytearray)
    test_deadline: float | None = None
    test_started_at: float | None = None  # time.monotonic() of the running test's test_started
    kill_at: float | None = None  # escalate to SIGKILL of the group at this time
    first_result: float | None = None
    exit_code: int | None = None
    final_line: bytes | None = None  # the child's run_finished, sent once it has exited

    def __post_init__(self) -> None:
        self.event_fd, self.output_fd = self.child.event_fd, self.child.output_fd

    @property
    def pid(self) -> int:
        return self.child.pid

    def running_for(self) -> float | None:
        """Seconds since the running test's test_started; None when no test runs."""
        if self.test_started_at is None or self.model.current is None:
            return None
        return round(time.monotonic() - self.test_started_at, 6)

    def tail_line(self) -> str:
        """The line of the child's output that best says why it stopped."""
        text = self.output_tail.decode("utf-8", "replace")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        # pytest ends a usage error with its rootdir line: the error line says more.
        errors = [ln for ln in lines if "error:" in ln.lower()]
        return (errors or lines or ["no output"])[-1].strip()


@dataclass
class Standby:
    """The next run's child, forked ahead and waiting at its gate (see standby.py)."""

    child: Child
    args: list[str]
    control_fd: int  # the gate's pipe: the release line goes here
    ready: bool = False
    buffer: bytearray = field(default_factory=bytearray)
    prepared: int = 0  # bytes of prepare lines written to control_fd

    @property
    def fds(self) -> tuple[int, int, int]:
        return (self.control_fd, self.child.event_fd, self.child.output_fd)

    def close(self) -> None:
        close_fds(self.fds)


def unfinished_report(run: ActiveRun) -> list[Message]:
    """What the server says for a run whose child ended without run_finished.

    Cancelled: nothing but the end. Timed out: the test that ran too long, with
    the output (and stack dump) it left. Crashed: the test that was running, or a
    notice when none was. Then run_finished with the counts of every result.
    """
    model = run.model
    tail = run.output_tail.decode("utf-8", "replace")
    crashed = model.timed_out or model.current
    messages: list[Message] = []
    status: ExitStatus
    stopped: str | None = None
    if model.cancel_requested:
        status, crashed, stopped = WorkerExit.CANCELLED, None, model.current
    elif model.timed_out is not None:
        status = WorkerExit.TIMEOUT
        text = (
            f"timed out: no result after {run.cmd.timeout:g} s; the worker killed the "
            f"run's processes.\n\nLast output of the run (stack dump included):\n{tail}"
        )
        messages.append(_crash_result(run, model.timed_out, Outcome.TIMEOUT, text))
    else:
        status = WorkerExit.CRASHED
        how = ProcessExit(run.exit_code if run.exit_code is not None else -9)
        text = f"the test process {how} while running this test"
        if crashed is None:
            text = f"the test process {how} outside of any test"
        text += f".\n\nLast output of the run:\n{tail}"
        if crashed is not None:
            messages.append(_crash_result(run, crashed, Outcome.CRASHED, text))
        else:
            messages.append(Notice(text=text.splitlines()[0]))
    counts = model.counts()
    stopped_after = run.running_for() if stopped is not None else None
    model.finish(status, crashed, stopped, stopped_after)
    messages.append(
        RunFinished(
            run_id=run.cmd.run_id,
            exitstatus=status,
            counts=counts,
            timing={
                "spawn": None,
                "collect": None,
                "first_result": run.first_result,
                "total": round(time.time() - run.t0, 6),
            },
            crashed=crashed,
            stopped=stopped,
            stopped_after=stopped_after,
        )
    )
    return messages


def _crash_result(run: ActiveRun, nodeid: str, outcome: Outcome, text: str) -> TestFinished:
    # The time it really ran, from the test_started we saw: a timeout shows the limit
    # it reached, a crash how far it got.
    duration = run.running_for() or 0.0
    run.model.test_finished(nodeid, outcome, duration)
    path, _, name = nodeid.partition("::")
    return TestFinished(
        run_id=run.cmd.run_id,
        nodeid=nodeid,
        outcome=outcome,
        duration=duration,
        longrepr=text,
        location=[path, None, name],
    )


def _child_environment() -> dict[str, str]:
    """A fresh child's environment: the server's, with its --python-path entries."""
    env = dict(os.environ)
    extra = [p for p in sys.path if p and p not in _STARTUP_PATH]
    if extra:
        env["PYTHONPATH"] = os.pathsep.join([*extra, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


class ChildSupervisor:
    """The server's children: at most one run and one standby at a time."""

    def __init__(
        self,
        root: Path,
        preload_path: Path,
        selector: selectors.BaseSelector,
        emit_raw: Callable[[bytes], None],
        server_fds: tuple[int, ...],
    ) -> None:
        self.root = root
        self.preload_path = preload_path
        self.selector = selector
        self.emit_raw = emit_raw
        self.server_fds = server_fds  # the server's own fds: no child keeps them
        self.run: ActiveRun | None = None
        self.standby: Standby | None = None
        # Once a standby went stale, later ones wait before the initial conftests.
        self.early_gate = False
        self.recent_saves: list[str] = []  # relative paths, the latest last

    def emit(self, message: Message) -> None:
        self.emit_raw(encode(message))

    def _fork(self, body: Callable[[int], int], close_in_child: tuple[int, ...] = ()) -> Child:
        standby_fds = self.standby.fds if self.standby is not None else ()
        return fork_child(
            body, (*close_in_child, *standby_fds, *self.server_fds), detach=self.selector.close
        )

    def _unregister(self, fd: int | None) -> None:
        if fd is None:
            return
        try:
            self.selector.unregister(fd)
        except (KeyError, ValueError):
            pass  # not registered (any more)

    # -- starting a run ---------------------------------------------------------------

    def start(self, cmd: RunCommand, t0: float) -> None:
        """Run `cmd`: in the waiting standby when it fits, else in a fresh child."""
        standby, self.standby = self.standby, None
        if standby is not None:
            if standby_matches(standby.args, cmd) and self._release(standby, cmd, t0):
                return
            self.drop_standby(standby)
        self.launch(cmd, t0)

    def launch(self, cmd: RunCommand, t0: float) -> None:
        """Start a fresh child (forked, or a new process without fork) for `cmd`."""
        root, preload_path = self.root, self.preload_path
        if fork_available():

            def body(event_w: int) -> int:
                register_stack_dump()
                return run_child(cmd, event_w, root, preload_path, t0)

            child = self._fork(body)
        else:
            child = spawn_child(
                lambda event_w: child_command(
                    sys.executable, ChildArgs(event_w, root, preload_path, t0, cmd)
                ),
                cwd=root,
                env=_child_environment(),
            )
        self._begin(ActiveRun(cmd, t0, child, self._model(cmd)))

    def _model(self, cmd: RunCommand) -> Run:
        return Run(cmd.run_id, cmd.mode, trigger_text(cmd.trigger))

    def _begin(self, run: ActiveRun) -> None:
        assert run.event_fd is not None and run.output_fd is not None
        self.run = run
        self.selector.register(run.event_fd, selectors.EVENT_READ, "events")
        self.selector.register(run.output_fd, selectors.EVENT_READ, "output")
        self.emit(ChildStarted(run_id=run.cmd.run_id, pid=run.pid))

    def cancel(self, run_id: str) -> None:
        """Stop the run in progress (if `run_id` is it, or empty): SIGINT, later SIGKILL."""
        run = self.run
        if run is None or run.model.done or (run_id and run_id != run.cmd.run_id):
            return
        run.model.cancel()
        try:
            os.kill(run.pid, signal.SIGINT)  # pytest stops cleanly and saves what finished
        except ProcessLookupError:
            pass
        if run.kill_at is None:
            run.kill_at = time.monotonic() + CANCEL_GRACE

    # -- while it runs ----------------------------------------------------------------

    def timeout(self) -> float | None:
        """How long the selector may wait: forever with no run, else until a deadline."""
        run = self.run
        if run is None:
            return None
        deadlines = [d for d in (run.test_deadline, run.kill_at) if d is not None]
        wait = POLL_SECONDS
        if deadlines:
            wait = min(wait, max(0.0, min(deadlines) - time.monotonic()))
        return wait

    def read_events(self) -> None:
        run = self.run
        if run is None or run.event_fd is None:
            return
        while True:
            try:
                data = os.read(run.event_fd, 1 << 16)
            except BlockingIOError:
                break
            if not data:
                self.selector.unregister(run.event_fd)
                os.close(run.event_fd)
                run.event_fd = None
                break
            run.events += data
        while b"\n" in run.events:
            line, _, rest = bytes(run.events).partition(b"\n")
            run.events = bytearray(rest)
            self._forward(run, line + b"\n")

    def _forward(self, run: ActiveRun, line: bytes) -> None:
        model = run.model
        if model.done:
            return  # a grandchild still running pytest hooks; the run is over
        try:
            event = decode(line)
        except ProtocolError as exc:
            self.emit(Notice(text=f"worker child sent a bad event: {exc}"))
            return
        if isinstance(event, TestStarted):
            model.test_started(event.nodeid)
            run.test_started_at = time.monotonic()
            if run.cmd.timeout:
                run.test_deadline = run.test_started_at + run.cmd.timeout
        elif isinstance(event, TestFinished):
            model.test_finished(event.nodeid, event.outcome, event.duration)
            run.test_deadline = run.test_started_at = None
            if run.first_result is None:
                run.first_result = round(time.time() - run.t0, 6)
        elif isinstance(event, RunStarted):
            event.start(model)
        elif isinstance(event, RunFinished):
            if model.cancel_requested:
                # pytest stopped the test it was running (SIGINT) and sent no result
                # for it: say which one, and how long it had run.
                event.exitstatus = WorkerExit.CANCELLED
                event.stopped = model.current
                event.stopped_after = run.running_for()
                line = encode(event)
            event.finish(model)
            # Held until the child has exited and its process group is gone, so that
            # run_finished means: nothing of this run is still running or writing.
            run.final_line = line
            return
        self.emit_raw(line)

    def read_output(self) -> None:
        run = self.run
        if run is None or run.output_fd is None:
            return
        while True:
            try:
                data = os.read(run.output_fd, 1 << 16)
            except BlockingIOError:
                return
            if not data:
                self._close_output(run)
                return
            run.output_tail += data
            if len(run.output_tail) > OUTPUT_TAIL:
                del run.output_tail[:-OUTPUT_TAIL]

    def _close_output(self, run: ActiveRun) -> None:
        if run.output_fd is not None:
            self.selector.unregister(run.output_fd)
            os.close(run.output_fd)
            run.output_fd = None

    def check_deadlines(self) -> None:
        run = self.run
        if run is None or run.exit_code is not None:
            return
        now = time.monotonic()
        if run.kill_at is not None and now >= run.kill_at:
            run.kill_at = None
            kill_group(run.pid)
        if run.test_deadline is not None and now >= run.test_deadline:
            run.test_deadline = None
            run.model.time_out()
            # Ask for a stack dump first (where it hangs is what the user needs), then kill.
            try:
                os.kill(run.pid, signal.SIGUSR1)
            except (ProcessLookupError, AttributeError):
                pass
            run.kill_at = now + DUMP_GRACE

    # -- the end of a run ---------------------------------------------------------------

    def check_child(self) -> ActiveRun | None:
        """The run whose child has just ended, closed and ready to report; else None.

        A standby that found its early work stale ends without a word: its command
        runs again in a fresh child, and None is returned.
        """
        run = self.run
        if run is None or run.exit_code is not None:
            return None
        code = run.child.exit_code()
        if code is None:
            return None
        run.exit_code = code
        self.read_events()  # whatever it wrote before dying comes first
        self.read_output()
        kill_group(run.pid)  # stray grandchildren die with the run
        if run.event_fd is not None:
            self.selector.unregister(run.event_fd)
            os.close(run.event_fd)
            run.event_fd = None
        self._close_output(run)
        self.run = None
        if (
            run.from_standby
            and run.exit_code in (StandbyExit.STALE, StandbyExit.UNUSED)
            and not run.model.started
            and run.final_line is None
            and not run.model.cancel_requested
        ):
            # The standby found its early work out of date and sent nothing: the same
            # command, with the same start time, runs in a fresh child. The next ones
            # wait before the conftests (see standby.py): they imported what was edited.
            if run.exit_code == StandbyExit.STALE:
                self.early_gate = True
            self.launch(run.cmd, run.t0)
            return None
        return run

    def report(self, run: ActiveRun) -> None:
        """Say the run is over: the child's run_finished, or the server's report for it."""
        if run.final_line is None:
            for message in unfinished_report(run):
                self.emit(message)
            return
        if not run.model.started and run.exit_code not in RAN_TESTS:
            self.emit(Notice(text="pytest stopped before running tests: " + run.tail_line()))
        self.emit_raw(run.final_line)

    def kill_all(self) -> None:
        """The server stops: the run's process group and the standby die with it."""
        run = self.run
        if run is not None:
            kill_group(run.pid)
            run.child.wait()
        self.drop_standby()

    # -- the standby child ------------------------------------------------------------------

    def start_standby(self, args: list[str]) -> None:
        """Fork the next run's child now, so that a save finds it configured and waiting."""
        if not standby_enabled() or self.standby is not None or self.run is not None:
            return
        args = list(args)
        root, preload_path = self.root, self.preload_path
        control_r, control_w = os.pipe()

        early = self.early_gate
        recent = tuple(reversed(self.recent_saves))

        def body(event_w: int) -> int:
            register_stack_dump()
            return run_standby(args, control_r, event_w, root, preload_path, early, recent)

        child = self._fork(body, close_in_child=(control_w,))
        os.close(control_r)
        self.standby = Standby(child=child, args=args, control_fd=control_w)
        self.selector.register(child.event_fd, selectors.EVENT_READ, "standby")

    def read_standby(self) -> None:
        """Before its release a standby sends one line: standby_ready, when at the gate."""
        standby = self.standby
        if standby is None:
            return
        try:
            data = os.read(standby.child.event_fd, 4096)
        except BlockingIOError:
            return
        if not data:  # it died; check_standby reaps it
            self.selector.unregister(standby.child.event_fd)
            return
        standby.buffer += data
        if b"\n" in standby.buffer and not standby.ready:
            line = bytes(standby.buffer).partition(b"\n")[0]
            try:
                event = decode(line)
            except ProtocolError:
                return
            if isinstance(event, StandbyReady):
                standby.ready = True
                self.emit(event)

    def check_standby(self) -> None:
        standby = self.standby
        if standby is not None and standby.child.exit_code() is not None:
            # It ended before its run (a conftest raising at import, a usage error): the
            # next run gets a fresh child, which reports the error. No new standby until
            # then, or a broken conftest would fork one after another.
            self.standby = None
            self._unregister(standby.child.event_fd)
            standby.close()

    def drop_standby(self, standby: Standby | None = None) -> None:
        if standby is None:
            standby, self.standby = self.standby, None
        if standby is None:
            return
        kill_group(standby.child.pid)
        standby.child.wait()
        self._unregister(standby.child.event_fd)
        standby.close()

    def prepare(self, paths: list[str]) -> None:
        """Files being saved: the waiting standby may parse them before its release.

        Only a hint: dropped when there is no standby, a run is going on, or the
        standby has not read what it was sent (a pipe that fills up would block
        the server). The standby parses and compiles them (worker/standby.py);
        the server does not compile them too: the two would share the cores
        with the app while the release waits for the server (more-itertools,
        5,000 lines: the release 36 -> 25 ms after the save). The Python files
        are also remembered for the standbys forked later, which parse them as
        they are while they wait.
        """
        python = [p for p in paths if p.endswith(".py")]
        for path in python:
            if path in self.recent_saves:
                self.recent_saves.remove(path)
            self.recent_saves.append(path)
        del self.recent_saves[:-RECENT_SAVES]
        standby = self.standby
        if standby is None or self.run is not None or not paths:
            return
        data = standby_wire.encode_prepare(Prepare(tuple(paths[:PREPARE_PATHS])))
        if standby.prepared + len(data) > PREPARE_BYTES:
            return
        try:
            while data:
                written = os.write(standby.control_fd, data)
                standby.prepared += written
                data = data[written:]
        except OSError:  # it died just now; check_standby reaps it
            return

    def _release(self, standby: Standby, cmd: RunCommand, t0: float) -> bool:
        """Hand `cmd` to the waiting standby; False when it is gone (a fresh child runs)."""
        if standby.child.exit_code() is not None:
            self._unregister(standby.child.event_fd)
            standby.close()
            return False
        try:
            data = standby_wire.encode(Release(cmd, t0))
            while data:
                data = data[os.write(standby.control_fd, data) :]
        except OSError:  # it died just now
            self.drop_standby(standby)
            return False
        os.close(standby.control_fd)
        self._unregister(standby.child.event_fd)
        self._begin(ActiveRun(cmd, t0, standby.child, self._model(cmd), from_standby=True))
        return True
