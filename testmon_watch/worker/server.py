"""The warm worker process: preloads pytest and third-party imports, forks a child per run.

`python -m testmon_watch.worker.server --root R` reads commands on stdin and
writes events on stdout (JSON lines, see protocol.py). It imports pytest, the
pytest plugins and the third-party modules the tests imported last time, never a
project module, so a child forked from it starts warm and imports project code
fresh. One selector loop watches stdin, the child's event pipe and output pipe,
and SIGCHLD, so the server answers `cancel` at any time and outlives whatever a
test does (segfault, os._exit, hang, a flood of output).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from testmon_watch.measure.project_files import ProjectFiles
from testmon_watch.paths import ProjectPaths
from testmon_watch.worker.child import register_stack_dump, run_child, run_standby
from testmon_watch.worker.fingerprint import Fingerprint, cache_installed_packages
from testmon_watch.worker.protocol import (
    EXIT_CANCELLED,
    EXIT_CRASHED,
    EXIT_TIMEOUT,
    CancelCommand,
    ChildStarted,
    Message,
    Notice,
    ProtocolError,
    RunCommand,
    RunFinished,
    RunStarted,
    ShutdownCommand,
    StandbyReady,
    StatusCommand,
    TestFinished,
    TestStarted,
    WorkerReady,
    WorkerRecycling,
    WorkerStatus,
    decode,
    encode,
)
from testmon_watch.worker.standby import STALE_EXIT, UNUSED_EXIT, encode_release, standby_matches

NO_FORK_ENV = "TESTMON_WATCH_NO_FORK"
NO_STANDBY_ENV = "TESTMON_WATCH_NO_STANDBY"  # fork each run's child only when it is asked for
OUTPUT_TAIL = 16 * 1024  # bytes of the child's own stdout/stderr kept for crash reports
DUMP_GRACE = 0.5  # seconds a timed-out child gets to dump its stack before SIGKILL
CANCEL_GRACE = 1.0  # seconds between SIGINT (pytest saves what finished) and SIGKILL
POLL_SECONDS = 0.5  # safety net in case a SIGCHLD wake-up is missed


def preload_path_for(root: Path) -> Path:
    """`.testmondata-preload.json` next to the data file (see testmon_watch.paths)."""
    return ProjectPaths.of(root).preload_list


def read_preload_list(path: Path) -> tuple[list[str], list[str]]:
    """(module names, conftest paths) saved by the last run's child; empty when unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        modules = [m for m in data.get("modules", []) if isinstance(m, str)]
        conftests = [c for c in data.get("conftests", []) if isinstance(c, str)]
    except (OSError, ValueError, AttributeError):
        return [], []
    return modules, conftests


def _engine_modules() -> list[str]:
    """What every run imports anyway: pytest's built-in plugins and our recording stack."""
    from _pytest.config import default_plugins

    names = [f"_pytest.{name}" for name in default_plugins if "." not in name]
    names += [
        "coverage",
        "coverage.tracer",
        "sqlite3",
        "testmon_watch.measure.recorder",
        "testmon_watch.measure.children",
        "testmon_watch.measure.coverage_export",
        "testmon_watch.pytest_plugin.plugin",
        "testmon_watch.worker.streamer",
    ]
    return names


def fork_available() -> bool:
    return hasattr(os, "fork") and not os.environ.get(NO_FORK_ENV)


def standby_enabled() -> bool:
    return fork_available() and not os.environ.get(NO_STANDBY_ENV)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {-code} ({name})"
    return f"exited with status {code}"


def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


@dataclass
class ActiveRun:
    """The run whose child is alive (or just died and is being reported)."""

    cmd: RunCommand
    t0: float
    pid: int
    event_fd: int | None
    output_fd: int | None
    proc: subprocess.Popen[bytes] | None = None  # fresh-process fallback only
    events: bytearray = field(default_factory=bytearray)
    output_tail: bytearray = field(default_factory=bytearray)
    current: str | None = None
    test_deadline: float | None = None
    timed_out: str | None = None
    kill_at: float | None = None  # escalate to SIGKILL of the group at this time
    cancelled: bool = False
    run_started: bool = False
    finished: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    first_result: float | None = None
    exit_code: int | None = None
    final_line: bytes | None = None
    from_standby: bool = False


@dataclass
class Standby:
    """The next run's child, forked ahead and waiting at its gate (see standby.py)."""

    pid: int
    args: list[str]
    control_fd: int  # the gate's pipe: the release line goes here
    event_fd: int
    output_fd: int
    ready: bool = False
    buffer: bytearray = field(default_factory=bytearray)

    def close(self) -> None:
        for fd in (self.control_fd, self.event_fd, self.output_fd):
            try:
                os.close(fd)
            except OSError:
                pass


class WorkerServer:
    """The selector loop: commands in, events out, one child at a time."""

    def __init__(self, root: Path, argv: list[str], resume: dict[str, Any]) -> None:
        self.root = root
        self.argv = argv
        self.preload_path = preload_path_for(root)
        self.files = ProjectFiles(root)
        # The protocol owns the original stdout; fd 1 goes to stderr so that a module
        # printing at import time cannot corrupt the event stream.
        self.out_fd = os.dup(1)
        os.dup2(2, 1)
        self.selector = selectors.DefaultSelector()
        self.stdin_buf = bytearray(str(resume.get("partial", "")).encode())
        self.pending_lines: list[bytes] = [line.encode() for line in resume.get("lines", [])]
        self.run: ActiveRun | None = None
        self.running = True
        self.preloaded: set[str] = set()
        self.fingerprint: Fingerprint | None = None
        self.standby: Standby | None = None
        self.last_args: list[str] | None = None  # of the last run: what a standby prepares
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    # -- output ----------------------------------------------------------------------

    def emit(self, message: Message) -> None:
        self.emit_raw(encode(message))

    def emit_raw(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.out_fd, view) :]

    def notice(self, text: str) -> None:
        self.emit(Notice(text=text))

    # -- start-up -----------------------------------------------------------------------

    def preload(self) -> None:
        start = time.perf_counter()
        import pytest  # noqa: F401  (the point: imported once, inherited by every child)

        failures: list[str] = []
        for ep in entry_points(group="pytest11"):
            try:
                ep.load()
            except BaseException as exc:  # a broken plugin must not stop the worker
                failures.append(f"{ep.name} ({type(exc).__name__}: {exc})")
        failures += self.import_third_party(_engine_modules())
        modules, conftests = read_preload_list(self.preload_path)
        failures += self.import_third_party(modules)
        cache_installed_packages()
        if failures:
            self.notice(
                "worker could not preload: "
                + ", ".join(failures[:5])
                + (f" and {len(failures) - 5} more" if len(failures) > 5 else "")
            )
        self.fingerprint = Fingerprint(self.root)
        self.fingerprint.refresh(conftests)
        if threading.active_count() > 1:
            self.notice("a preloaded module started a thread; forking the worker may deadlock")
        self.emit(
            WorkerReady(
                pid=os.getpid(),
                python=sys.version.split()[0],
                preloaded=len(sys.modules),
                import_seconds=round(time.perf_counter() - start, 6),
            )
        )

    def import_third_party(self, names: list[str]) -> list[str]:
        """Import the non-project modules among `names`; returns what failed."""
        failures = []
        for name in names:
            if name in sys.modules or name in self.preloaded:
                continue
            self.preloaded.add(name)  # tried once per process, whatever happens
            try:
                spec = importlib.util.find_spec(name)
            except BaseException:
                continue
            if spec is None:
                continue  # uninstalled since: nothing to warm
            origin = spec.origin or next(iter(spec.submodule_search_locations or ()), None)
            if origin and self.files.relative(origin) is not None:
                continue  # the project's own module (or one shadowing a package): never here
            try:
                importlib.import_module(name)
            except BaseException as exc:
                failures.append(f"{name} ({type(exc).__name__})")
        for name in self.project_modules():
            # Imported as a side effect of a third-party import: drop it so children
            # import it fresh (they would see a stale copy otherwise).
            sys.modules.pop(name, None)
        return failures

    def project_modules(self) -> list[str]:
        found = []
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if isinstance(path, str) and self.files.relative(path) is not None:
                found.append(name)
        return sorted(found)

    # -- the loop ----------------------------------------------------------------------

    def serve(self) -> int:
        signal.set_wakeup_fd(self.wake_w)
        # A Python-level handler is what makes the C handler write to the wake-up fd.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.signal(signal.SIGTERM, lambda signum, frame: self._stop_soon())
        os.set_blocking(0, False)
        self.selector.register(0, selectors.EVENT_READ, "stdin")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.preload()
        self._handle_lines()
        while self.running:
            for key, _ in self.selector.select(self._timeout()):
                if key.data == "stdin":
                    self._read_stdin()
                elif key.data == "wake":
                    self._drain_wake()
                elif key.data == "events":
                    self._read_events()
                elif key.data == "output":
                    self._read_output()
                elif key.data == "standby":
                    self._read_standby()
            self._check_child()
            self._check_standby()
            self._check_deadlines()
            self._handle_lines()
        if self.run is not None:
            self._kill(self.run)
        self._drop_standby()
        return 0

    def _stop_soon(self) -> None:
        self.running = False

    def _timeout(self) -> float | None:
        if self.run is None:
            return None
        deadlines = [d for d in (self.run.test_deadline, self.run.kill_at) if d is not None]
        wait = POLL_SECONDS
        if deadlines:
            wait = min(wait, max(0.0, min(deadlines) - time.monotonic()))
        return wait

    def _drain_wake(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _read_stdin(self) -> None:
        try:
            data = os.read(0, 65536)
        except BlockingIOError:
            return
        if not data:
            self.running = False  # the client is gone
            self.selector.unregister(0)
            return
        self.stdin_buf += data
        while b"\n" in self.stdin_buf:
            line, _, rest = bytes(self.stdin_buf).partition(b"\n")
            self.stdin_buf = bytearray(rest)
            if line.strip():
                self.pending_lines.append(line)

    def _handle_lines(self) -> None:
        while self.pending_lines and self.running:
            line = self.pending_lines.pop(0)
            try:
                command = decode(line)
            except ProtocolError as exc:
                self.notice(f"worker ignored a command: {exc}")
                continue
            self._handle(command)

    def _handle(self, command: Message) -> None:
        if isinstance(command, RunCommand):
            self._start_run(command)
        elif isinstance(command, CancelCommand):
            if (
                self.run is not None
                and not self.run.finished
                and (not command.run_id or command.run_id == self.run.cmd.run_id)
            ):
                self._cancel(self.run)
        elif isinstance(command, ShutdownCommand):
            self.running = False
        elif isinstance(command, StatusCommand):
            self.emit(
                WorkerStatus(
                    pid=os.getpid(),
                    modules=sorted(sys.modules),
                    project_modules=self.project_modules(),
                )
            )
        else:
            self.notice(f"worker ignored a {type(command).TYPE} message (not a command)")

    # -- runs -----------------------------------------------------------------------------

    def _start_run(self, cmd: RunCommand) -> None:
        t0 = time.time()
        if self.run is not None:
            self.notice(f"worker busy with run {self.run.cmd.run_id}; run {cmd.run_id} rejected")
            return
        if cmd.mode not in ("affected", "all", "failed", "nodeids"):
            self.notice(f"worker: unknown run mode {cmd.mode!r}; run {cmd.run_id} rejected")
            return
        assert self.fingerprint is not None
        reason = self.fingerprint.changed()
        if reason is not None:
            self._recycle(reason, [encode(cmd).decode().strip()])
            return
        self.last_args = list(cmd.args)
        standby, self.standby = self.standby, None
        if standby is not None:
            if standby_matches(standby.args, cmd) and self._release(standby, cmd, t0):
                return
            self._drop_standby(standby)
        self._launch(cmd, t0)

    def _launch(self, cmd: RunCommand, t0: float) -> None:
        """Start a fresh child (forked, or a new process without fork) for `cmd`."""
        proc = None
        if fork_available():
            pid, event_r, output_r = self._fork(
                lambda event_w: run_child(cmd, event_w, self.root, self.preload_path, t0)
            )
        else:
            event_r, event_w = os.pipe()
            output_r, output_w = os.pipe()
            proc = self._spawn(cmd, t0, event_w, output_w)
            pid = proc.pid
            os.close(event_w)
            os.close(output_w)
            for fd in (event_r, output_r):
                os.set_blocking(fd, False)
        self._begin(
            ActiveRun(cmd=cmd, t0=t0, pid=pid, event_fd=event_r, output_fd=output_r, proc=proc)
        )

    def _begin(self, run: ActiveRun) -> None:
        assert run.event_fd is not None and run.output_fd is not None
        self.run = run
        self.selector.register(run.event_fd, selectors.EVENT_READ, "events")
        self.selector.register(run.output_fd, selectors.EVENT_READ, "output")
        self.emit(ChildStarted(run_id=run.cmd.run_id, pid=run.pid))

    def _fork(
        self, body: Callable[[int], int], close_in_child: tuple[int, ...] = ()
    ) -> tuple[int, int, int]:
        """Fork a child that runs `body(event_fd)`; returns (pid, event fd, output fd)."""
        event_r, event_w = os.pipe()
        output_r, output_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        # The preloaded heap goes to the permanent generation: the child's collections
        # (pytest runs gc.collect five times at exit) skip it, and its pages stay shared.
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            self._child(body, (event_r, output_r, *close_in_child), event_w, output_w)
        try:
            os.setpgid(pid, pid)  # also in the parent: no window before the child does it
        except OSError:
            pass  # the child did it first, or is already gone
        os.close(event_w)
        os.close(output_w)
        for fd in (event_r, output_r):
            os.set_blocking(fd, False)
        return pid, event_r, output_r

    # -- the standby child ------------------------------------------------------------------

    def _start_standby(self) -> None:
        """Fork the next run's child now, so that a save finds it configured and waiting."""
        if (
            not standby_enabled()
            or self.last_args is None
            or self.standby is not None
            or self.run is not None
            or not self.running
        ):
            return
        args = list(self.last_args)
        control_r, control_w = os.pipe()
        pid, event_r, output_r = self._fork(
            lambda event_w: run_standby(args, control_r, event_w, self.root, self.preload_path),
            close_in_child=(control_w,),
        )
        os.close(control_r)
        self.standby = Standby(
            pid=pid, args=args, control_fd=control_w, event_fd=event_r, output_fd=output_r
        )
        self.selector.register(event_r, selectors.EVENT_READ, "standby")

    def _read_standby(self) -> None:
        """Before its release a standby sends one line: standby_ready, when at the gate."""
        standby = self.standby
        if standby is None:
            return
        try:
            data = os.read(standby.event_fd, 4096)
        except BlockingIOError:
            return
        if not data:  # it died; _check_standby reaps it
            self.selector.unregister(standby.event_fd)
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

    def _release(self, standby: Standby, cmd: RunCommand, t0: float) -> bool:
        """Hand `cmd` to the waiting standby; False when it is gone (a fresh child runs)."""
        if self._reap(standby.pid) is not None:
            self._unregister(standby.event_fd)
            standby.close()
            return False
        try:
            data = encode_release(cmd, t0)
            while data:
                data = data[os.write(standby.control_fd, data) :]
        except OSError:  # it died just now
            self._drop_standby(standby)
            return False
        os.close(standby.control_fd)
        self._unregister(standby.event_fd)
        self._begin(
            ActiveRun(
                cmd=cmd,
                t0=t0,
                pid=standby.pid,
                event_fd=standby.event_fd,
                output_fd=standby.output_fd,
                from_standby=True,
            )
        )
        return True

    def _reap(self, pid: int) -> int | None:
        """The exit code of `pid` if it has ended (reaping it), else None."""
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0  # reaped already
        return None if done == 0 else os.waitstatus_to_exitcode(status)

    def _unregister(self, fd: int) -> None:
        try:
            self.selector.unregister(fd)
        except (KeyError, ValueError):
            pass  # not registered (any more)

    def _check_standby(self) -> None:
        standby = self.standby
        if standby is not None and self._reap(standby.pid) is not None:
            # It ended before its run (a conftest raising at import, a usage error): the
            # next run gets a fresh child, which reports the error. No new standby until
            # then, or a broken conftest would fork one after another.
            self.standby = None
            self._unregister(standby.event_fd)
            standby.close()

    def _drop_standby(self, standby: Standby | None = None) -> None:
        if standby is None:
            standby, self.standby = self.standby, None
        if standby is None:
            return
        _kill_group(standby.pid)
        try:
            os.waitpid(standby.pid, 0)
        except ChildProcessError:
            pass
        self._unregister(standby.event_fd)
        standby.close()

    def _child(
        self, body: Callable[[int], int], close: tuple[int, ...], event_w: int, output_w: int
    ) -> None:
        """In the forked child: detach from the server's fds and signals, run, _exit."""
        code = 70
        try:
            os.setpgid(0, 0)
            signal.set_wakeup_fd(-1)
            self.selector.close()
            if self.standby is not None:
                close += (self.standby.control_fd, self.standby.event_fd, self.standby.output_fd)
            for fd in (*close, self.out_fd, self.wake_r, self.wake_w):
                os.close(fd)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.close(devnull)
            os.set_blocking(0, True)
            os.dup2(output_w, 1)
            os.dup2(output_w, 2)
            os.close(output_w)
            os.set_blocking(event_w, True)
            register_stack_dump()
            code = body(event_w)
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _spawn(
        self, cmd: RunCommand, t0: float, event_w: int, output_w: int
    ) -> subprocess.Popen[bytes]:
        """Fresh-process fallback for platforms (or tests) without fork."""
        env = dict(os.environ)
        extra = [p for p in sys.path if p and p not in _startup_path()]
        if extra:
            env["PYTHONPATH"] = os.pathsep.join(extra + [env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            )
        args = [
            sys.executable,
            "-m",
            "testmon_watch.worker.child",
            "--event-fd",
            str(event_w),
            "--root",
            str(self.root),
            "--preload-path",
            str(self.preload_path),
            "--t0",
            repr(t0),
            "--command",
            encode(cmd).decode().strip(),
        ]
        return subprocess.Popen(
            args,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=output_w,
            stderr=output_w,
            pass_fds=(event_w,),
            env=env,
            start_new_session=True,
        )

    def _read_events(self) -> None:
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
        if run.finished:
            return  # a grandchild still running pytest hooks; the run is over
        try:
            event = decode(line)
        except ProtocolError as exc:
            self.notice(f"worker child sent a bad event: {exc}")
            return
        if isinstance(event, TestStarted):
            run.current = event.nodeid
            if run.cmd.timeout:
                run.test_deadline = time.monotonic() + run.cmd.timeout
        elif isinstance(event, TestFinished):
            run.current = None
            run.test_deadline = None
            if run.first_result is None:
                run.first_result = round(time.time() - run.t0, 6)
            run.counts[event.outcome] = run.counts.get(event.outcome, 0) + 1
        elif isinstance(event, RunStarted):
            run.run_started = True
        elif isinstance(event, RunFinished):
            run.finished = True
            if run.cancelled:
                event.exitstatus = EXIT_CANCELLED
                line = encode(event)
            # Held until the child has exited and its process group is gone, so that
            # run_finished means: nothing of this run is still running or writing.
            run.final_line = line
            return
        self.emit_raw(line)

    def _tail_line(self, run: ActiveRun) -> str:
        lines = [ln for ln in run.output_tail.decode("utf-8", "replace").splitlines() if ln.strip()]
        # pytest ends a usage error with its rootdir line: the error line says more.
        errors = [ln for ln in lines if "error:" in ln.lower()]
        return (errors or lines or ["no output"])[-1].strip()

    def _read_output(self) -> None:
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

    def _check_child(self) -> None:
        run = self.run
        if run is None or run.exit_code is not None:
            return
        if run.proc is not None:
            code = run.proc.poll()
            if code is None:
                return
        else:
            code = self._reap(run.pid)
            if code is None:
                return
        run.exit_code = code
        self._read_events()  # whatever it wrote before dying comes first
        self._read_output()
        self._end_run(run)

    def _check_deadlines(self) -> None:
        run = self.run
        if run is None or run.exit_code is not None:
            return
        now = time.monotonic()
        if run.kill_at is not None and now >= run.kill_at:
            run.kill_at = None
            _kill_group(run.pid)
        if run.test_deadline is not None and now >= run.test_deadline:
            run.test_deadline = None
            run.timed_out = run.current
            # Ask for a stack dump first (where it hangs is what the user needs), then kill.
            try:
                os.kill(run.pid, signal.SIGUSR1)
            except (ProcessLookupError, AttributeError):
                pass
            run.kill_at = now + DUMP_GRACE

    def _cancel(self, run: ActiveRun) -> None:
        run.cancelled = True
        try:
            os.kill(run.pid, signal.SIGINT)  # pytest stops cleanly and saves what finished
        except ProcessLookupError:
            pass
        if run.kill_at is None:
            run.kill_at = time.monotonic() + CANCEL_GRACE

    def _kill(self, run: ActiveRun) -> None:
        _kill_group(run.pid)
        if run.proc is not None:
            run.proc.wait()
        else:
            try:
                os.waitpid(run.pid, 0)
            except ChildProcessError:
                pass

    def _end_run(self, run: ActiveRun) -> None:
        _kill_group(run.pid)  # stray grandchildren die with the run
        if run.event_fd is not None:
            self.selector.unregister(run.event_fd)
            os.close(run.event_fd)
            run.event_fd = None
        self._close_output(run)
        self.run = None
        if (
            run.from_standby
            and run.exit_code in (STALE_EXIT, UNUSED_EXIT)
            and not run.run_started
            and run.final_line is None
            and not run.cancelled
        ):
            # The standby found its early work out of date and sent nothing: the same
            # command, with the same start time, runs in a fresh child.
            self._launch(run.cmd, run.t0)
            return
        # Warm up for next time: modules the tests needed that this process lacks.
        modules, conftests = read_preload_list(self.preload_path)
        if any(m not in sys.modules and m not in self.preloaded for m in modules):
            failures = self.import_third_party(modules)
            if failures:
                self.notice("worker could not preload: " + ", ".join(failures[:5]))
        assert self.fingerprint is not None
        stale = self.fingerprint.changed()
        if stale is None:
            self.fingerprint.refresh(conftests)  # cover what was just imported
        # else: stale already; the next run command recycles with that reason
        # The run is reported over only now: a configuration edit made after the
        # client hears run_finished must not fall into the refresh above.
        if run.final_line is None:
            self._report_unfinished(run)
        else:
            if not run.run_started and run.exit_code not in (0, 1, 5):
                self.notice("pytest stopped before running tests: " + self._tail_line(run))
            self.emit_raw(run.final_line)
        if stale is None:
            self._start_standby()  # else the next run command recycles the worker first

    def _report_unfinished(self, run: ActiveRun) -> None:
        code = run.exit_code if run.exit_code is not None else -9
        tail = run.output_tail.decode("utf-8", "replace")
        crashed = run.timed_out or run.current
        if run.cancelled:
            status: int | str = EXIT_CANCELLED
            crashed = None
        elif run.timed_out is not None:
            status = EXIT_TIMEOUT
            text = (
                f"timed out: no result after {run.cmd.timeout:g} s; the worker killed the "
                f"run's processes.\n\nLast output of the run (stack dump included):\n{tail}"
            )
            self._synth_finished(run, run.timed_out, "timeout", text)
        else:
            status = EXIT_CRASHED
            text = f"the test process {_describe_exit(code)} while running this test"
            if crashed is None:
                text = f"the test process {_describe_exit(code)} outside of any test"
            text += f".\n\nLast output of the run:\n{tail}"
            if crashed is not None:
                self._synth_finished(run, crashed, "crashed", text)
            else:
                self.notice(text.splitlines()[0])
        total = time.time() - run.t0
        self.emit(
            RunFinished(
                run_id=run.cmd.run_id,
                exitstatus=status,
                counts=dict(run.counts),
                timing={
                    "spawn": None,
                    "collect": None,
                    "first_result": run.first_result,
                    "total": round(total, 6),
                },
                crashed=crashed,
            )
        )

    def _synth_finished(self, run: ActiveRun, nodeid: str, outcome: str, text: str) -> None:
        run.counts[outcome] = run.counts.get(outcome, 0) + 1
        path, _, name = nodeid.partition("::")
        self.emit(
            TestFinished(
                run_id=run.cmd.run_id,
                nodeid=nodeid,
                outcome=outcome,
                duration=0.0,
                longrepr=text,
                location=[path, None, name],
            )
        )

    # -- recycling ---------------------------------------------------------------------------

    def _recycle(self, reason: str, first: list[str]) -> None:
        """Re-exec this process; unhandled commands (the run first) are carried over."""
        self.emit(WorkerRecycling(reason=reason))
        self._drop_standby()
        lines = first + [line.decode() for line in self.pending_lines]
        # A partial line stays partial: its remainder is still in the stdin pipe.
        resume = {"lines": lines, "partial": bytes(self.stdin_buf).decode("utf-8", "replace")}
        argv = list(self.argv)
        os.dup2(self.out_fd, 1)
        os.set_blocking(0, True)
        signal.set_wakeup_fd(-1)
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "testmon_watch.worker.server",
                *argv,
                "--resume",
                json.dumps(resume),
            ],
        )


_STARTUP_PATH: list[str] = list(sys.path)


def _startup_path() -> list[str]:
    return _STARTUP_PATH


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m testmon_watch.worker.server")
    parser.add_argument("--root", required=True)
    parser.add_argument(
        "--python-path", action="append", default=[], help="prepend to sys.path (repeatable)"
    )
    parser.add_argument("--resume", default=None, help=argparse.SUPPRESS)
    ns = parser.parse_args(args)
    for entry in reversed(ns.python_path):
        sys.path.insert(0, entry)
    root = Path(ns.root).resolve()
    os.chdir(root)
    # Carried-over commands are for this process only; a later recycle passes its own.
    keep: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--resume":
            skip = True
        elif not arg.startswith("--resume="):
            keep.append(arg)
    resume: dict[str, Any] = json.loads(ns.resume) if ns.resume else {}
    server = WorkerServer(root, keep, resume)
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
