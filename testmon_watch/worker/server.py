"""The warm worker process: a selector loop that runs commands in children and recycles itself.

`python -m testmon_watch.worker.server --root R` reads commands on stdin and
writes events on stdout (JSON lines, `wire.worker_protocol`; its arguments are
`wire.server_args`). It imports pytest, the pytest plugins and the third-party
modules the tests imported last time (preload.py), never a project module, so
a child forked from it starts warm and imports project code fresh. One selector
loop watches stdin, the children's pipes (supervisor.py) and SIGCHLD, so the
server answers `cancel` at any time and outlives whatever a test does
(segfault, os._exit, hang, a flood of output). When its imports may be stale
(fingerprint.py) it re-executes itself, carrying over the commands it has not
handled yet.
"""

from __future__ import annotations

import os
import selectors
import signal
import sys
import threading
import time
from pathlib import Path

from testmon_watch.core.distributions import current_index
from testmon_watch.core.runs import WorkerState
from testmon_watch.paths import ProjectPaths
from testmon_watch.wire.server_args import (
    ArgsError,
    Resume,
    ServerArgs,
    decode_server,
    server_command,
)
from testmon_watch.wire.worker_protocol import (
    CancelCommand,
    Message,
    Notice,
    PrepareCommand,
    ProtocolError,
    RunCommand,
    ShutdownCommand,
    StatusCommand,
    WorkerReady,
    WorkerRecycling,
    WorkerStatus,
    decode,
    encode,
)
from testmon_watch.worker.code_cache import use_code_caches
from testmon_watch.worker.fingerprint import Fingerprint, cache_installed_packages
from testmon_watch.worker.preload import Preloader
from testmon_watch.worker.supervisor import ActiveRun, ChildSupervisor

PRELOAD_FAILURES_SHOWN = 5


class WorkerServer:
    """The selector loop: commands in, events out, one run at a time."""

    def __init__(self, root: Path, args: ServerArgs) -> None:
        self.root = root
        self.args = args
        self.preload_path = ProjectPaths.of(root).preload_list
        self.preloader = Preloader(root, self.preload_path)
        # The protocol owns the original stdout; fd 1 goes to stderr so that a module
        # printing at import time cannot corrupt the event stream.
        self.out_fd = os.dup(1)
        os.dup2(2, 1)
        self.selector = selectors.DefaultSelector()
        resume = args.resume or Resume()
        self.stdin_buf = bytearray(resume.partial.encode())
        self.pending_lines: list[bytes] = [line.encode() for line in resume.lines]
        self.state = WorkerState.STARTING
        self.fingerprint: Fingerprint | None = None
        self.last_args: list[str] | None = None  # of the last run: what a standby prepares
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.children = ChildSupervisor(
            root,
            self.preload_path,
            self.selector,
            self.emit_raw,
            server_fds=(self.out_fd, self.wake_r, self.wake_w),
        )

    @property
    def running(self) -> bool:
        """The loop goes on until shutdown, SIGTERM or the client's end of stdin."""
        return self.state is not WorkerState.STOPPED

    def _become(self, state: WorkerState) -> None:
        if self.running:  # stopped is final: a SIGTERM may land at any moment
            self.state = state

    # -- output ----------------------------------------------------------------------

    def emit(self, message: Message) -> None:
        self.emit_raw(encode(message))

    def emit_raw(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.out_fd, view) :]

    def notice(self, text: str) -> None:
        self.emit(Notice(text=text))

    def notice_preload_failures(self, failures: list[str], total: bool = False) -> None:
        if not failures:
            return
        shown = failures[:PRELOAD_FAILURES_SHOWN]
        more = len(failures) - len(shown)
        extra = f" and {more} more" if total and more > 0 else ""
        self.notice("worker could not preload: " + ", ".join(shown) + extra)

    # -- start-up -----------------------------------------------------------------------

    def preload(self) -> None:
        start = time.perf_counter()
        failures, saved = self.preloader.warm_up()
        cache_installed_packages()
        # Which distribution owns which module: read from every RECORD (tens of
        # milliseconds), once here rather than in every child that records.
        current_index(self.root)
        use_code_caches(self.root)
        self.notice_preload_failures(failures, total=True)
        self.fingerprint = Fingerprint(self.root)
        self.fingerprint.refresh(list(saved.conftests))
        if threading.active_count() > 1:
            self.notice("a preloaded module started a thread; forking the worker may deadlock")
        self._become(WorkerState.WARM)
        self.emit(
            WorkerReady(
                pid=os.getpid(),
                python=sys.version.split()[0],
                preloaded=len(sys.modules),
                import_seconds=round(time.perf_counter() - start, 6),
            )
        )

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
        children = self.children
        while self.running:
            for key, _ in self.selector.select(children.timeout()):
                if key.data == "stdin":
                    self._read_stdin()
                elif key.data == "wake":
                    self._drain_wake()
                elif key.data == "events":
                    children.read_events()
                elif key.data == "output":
                    children.read_output()
                elif key.data == "standby":
                    children.read_standby()
            ended = children.check_child()
            if ended is not None:
                self._after_run(ended)
            children.check_standby()
            children.check_deadlines()
            self._handle_lines()
        children.kill_all()
        return 0

    def _stop_soon(self) -> None:
        self.state = WorkerState.STOPPED

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
            self.state = WorkerState.STOPPED  # the client is gone
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
        elif isinstance(command, PrepareCommand):
            self.children.prepare(command.paths)
        elif isinstance(command, CancelCommand):
            self.children.cancel(command.run_id)
        elif isinstance(command, ShutdownCommand):
            self.state = WorkerState.STOPPED
        elif isinstance(command, StatusCommand):
            self.emit(
                WorkerStatus(
                    pid=os.getpid(),
                    modules=sorted(sys.modules),
                    project_modules=self.preloader.project_modules(),
                )
            )
        else:
            self.notice(f"worker ignored a {type(command).TYPE} message (not a command)")

    # -- runs -----------------------------------------------------------------------------

    def _start_run(self, cmd: RunCommand) -> None:
        t0 = time.time()
        busy = self.children.run
        if busy is not None:
            self.notice(f"worker busy with run {busy.cmd.run_id}; run {cmd.run_id} rejected")
            return
        assert self.fingerprint is not None
        reason = self.fingerprint.changed()
        if reason is not None:
            self._recycle(reason, [encode(cmd).decode().strip()])
            return
        self.last_args = list(cmd.args)
        self._become(WorkerState.RUNNING)
        self.children.start(cmd, t0)

    def _after_run(self, run: ActiveRun) -> None:
        """Warm up for next time, then report the run, then fork the next standby."""
        self._become(WorkerState.WARM)
        # Modules the tests needed that this process lacks.
        failures, saved = self.preloader.catch_up()
        self.notice_preload_failures(failures)
        assert self.fingerprint is not None
        stale = self.fingerprint.changed()
        if stale is None:
            self.fingerprint.refresh(list(saved.conftests))  # cover what was just imported
        # else: stale already; the next run command recycles with that reason
        # The run is reported over only now: a configuration edit made after the
        # client hears run_finished must not fall into the refresh above.
        self.children.report(run)
        if stale is None and self.last_args is not None and self.running:
            self.children.start_standby(self.last_args)
        # else the next run command recycles the worker first

    # -- recycling ---------------------------------------------------------------------------

    def _recycle(self, reason: str, first: list[str]) -> None:
        """Re-exec this process; unhandled commands (the run first) are carried over."""
        self._become(WorkerState.RECYCLING)
        self.emit(WorkerRecycling(reason=reason))
        self.children.drop_standby()
        lines = first + [line.decode() for line in self.pending_lines]
        # A partial line stays partial: its remainder is still in the stdin pipe.
        partial = bytes(self.stdin_buf).decode("utf-8", "replace")
        args = ServerArgs(self.args.root, self.args.python_path, Resume(tuple(lines), partial))
        os.dup2(self.out_fd, 1)
        os.set_blocking(0, True)
        signal.set_wakeup_fd(-1)
        command = server_command(sys.executable, args)
        os.execv(command[0], command)


def main(argv: list[str] | None = None) -> int:
    try:
        args = decode_server(list(sys.argv[1:] if argv is None else argv))
    except ArgsError as exc:
        print(f"testmon-watch worker: {exc}", file=sys.stderr)
        return 2
    for entry in reversed(args.python_path):
        sys.path.insert(0, entry)
    root = args.root.resolve()
    os.chdir(root)
    # Carried-over commands are for this process only; a later recycle passes its own.
    return WorkerServer(root, args).serve()


if __name__ == "__main__":
    sys.exit(main())
