"""The parent side of the warm worker: starts the server, sends runs, streams its events.

`WorkerClient` runs in the UI (or headless) process, which must never import
pytest or the project: it talks to `python -m testmon_watch.worker.server` over
JSON lines only. A reader thread decodes events and hands them to `on_event`
(from that thread). Runs asked for while one is in flight are queued here and
sent when the server reports `run_finished`. If the server dies, the in-flight
run is answered with `run_finished` (crashed), a `notice` says so, and a new
server is started.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from testmon_watch.paths import ProjectPaths
from testmon_watch.worker.protocol import (
    EXIT_CRASHED,
    ChildStarted,
    Message,
    Notice,
    ProtocolError,
    RunCommand,
    RunFinished,
    RunStarted,
    ShutdownCommand,
    StatusCommand,
    TestFinished,
    TestStarted,
    WorkerReady,
    WorkerRecycling,
    decode,
    encode,
)
from testmon_watch.worker.protocol import CancelCommand as _Cancel

LOG_LIMIT = 1 << 20  # the server's stderr log starts over when larger than this
# A server that dies this many times in a row without becoming ready is not restarted.
MAX_FAILED_STARTS = 3


def _signal_text(returncode: int | None) -> str:
    if returncode is None:
        return "unknown status"
    if returncode < 0:
        try:
            return f"signal {-returncode}, {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def _kill_group(pgid: int | None) -> None:
    if pgid is None or not hasattr(os, "killpg"):
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class WorkerClient:
    """Spawns and supervises the worker server; one run at a time, the rest queued."""

    def __init__(
        self,
        root: Path | str,
        pytest_args: Sequence[str] = (),
        on_event: Callable[[Message], None] | None = None,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        python_path: Sequence[str] = (),
    ) -> None:
        self.root = Path(root).resolve()
        self.pytest_args = list(pytest_args)
        self.on_event = on_event or (lambda message: None)
        self.python = python
        self.env = env
        self.python_path = list(python_path)
        self.log_path = log_path or ProjectPaths.of(self.root).worker_log
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._state = "stopped"
        self._queue: deque[RunCommand] = deque()
        self._inflight: RunCommand | None = None
        self._current_test: str | None = None
        self._child_pid: int | None = None
        self._stopping = False
        self._failed_starts = 0
        self._ids = itertools.count(1)
        self.worker_pid: int | None = None  # the server's pid, once ready

    # -- public API ----------------------------------------------------------------------

    @property
    def state(self) -> str:
        """'starting' | 'warm' | 'running' | 'recycling' | 'stopped'."""
        return self._state

    @property
    def child_pid(self) -> int | None:
        """pid (= process group) of the child running the current run, if any."""
        return self._child_pid

    def start(self) -> None:
        """Spawn the server; events arrive through `on_event` from now on."""
        with self._lock:
            self._stopping = False
            self._spawn()

    def run(self, cmd: RunCommand | None = None, **fields: Any) -> str:
        """Queue a run (sent at once when the worker is idle); returns its run_id.

        Pass a `RunCommand`, or its fields as keywords (`mode="all"`, `timeout=5`).
        The client's `pytest_args` go before the command's own `args`.
        """
        cmd = dataclasses.replace(cmd) if cmd is not None else RunCommand(**fields)
        with self._lock:
            if not cmd.run_id:
                cmd.run_id = f"run-{next(self._ids)}"
            cmd.args = [*self.pytest_args, *cmd.args]
            self._queue.append(cmd)
            self._send_next()
            return cmd.run_id

    def cancel(self, run_id: str | None = None) -> None:
        """Cancel the run in flight (or the given run) and drop queued runs."""
        with self._lock:
            if run_id is None:
                self._queue.clear()
            else:
                self._queue = deque(c for c in self._queue if c.run_id != run_id)
            inflight = self._inflight
            if inflight is not None and run_id in (None, inflight.run_id):
                self._send(_Cancel(run_id=inflight.run_id))

    def request_status(self) -> None:
        """Ask the server which modules it has imported (answer: a `worker_status` event)."""
        self._send(StatusCommand())

    def stop(self, grace: float = 3.0) -> None:
        """Shut the server down; kill it (and any child) if it does not exit in `grace` s."""
        with self._lock:
            self._stopping = True
            proc = self._proc
            child = self._child_pid
            self._queue.clear()
        if proc is not None:
            self._send(ShutdownCommand())
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            _kill_group(proc.pid)  # anything still in the server's own group
            if proc.stdin is not None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
        _kill_group(child)
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(5.0)
        with self._lock:
            self._state = "stopped"
            self._proc = None
            self._child_pid = None
            self._inflight = None

    # -- internals -----------------------------------------------------------------------

    def _spawn(self) -> None:
        self._state = "starting"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = "ab" if self.log_path.stat().st_size < LOG_LIMIT else "wb"
        except OSError:
            mode = "wb"
        argv = [self.python, "-m", "testmon_watch.worker.server", "--root", str(self.root)]
        for entry in self.python_path:
            argv += ["--python-path", entry]
        with open(self.log_path, mode) as log:
            # A session of its own: a Ctrl-C in the terminal reaches the front end only,
            # and stop() can kill the server's whole group.
            self._proc = subprocess.Popen(
                argv,
                cwd=self.root,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env,
                start_new_session=True,
            )
        assert self._proc.stdout is not None
        self._reader = threading.Thread(
            target=self._read,
            args=(self._proc, self._proc.stdout),
            name="testmon-watch worker reader",
            daemon=True,
        )
        self._reader.start()

    def _send(self, message: Message) -> None:
        with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None:
                return
            try:
                proc.stdin.write(encode(message))
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass  # the server died; the reader thread notices and restarts it

    def _send_next(self) -> None:
        if self._inflight is not None or self._state not in ("warm",) or not self._queue:
            return
        self._inflight = self._queue.popleft()
        self._current_test = None
        self._state = "running"
        self._send(self._inflight)

    def _deliver(self, message: Message) -> None:
        try:
            self.on_event(message)
        except Exception as exc:  # a broken callback must not kill the reader
            print(f"testmon-watch: on_event failed: {exc!r}", file=sys.stderr)

    def _read(self, proc: subprocess.Popen[bytes], stream: IO[bytes]) -> None:
        for line in stream:
            try:
                message = decode(line)
            except ProtocolError as exc:
                self._deliver(Notice(text=f"worker sent a bad line: {exc}"))
                continue
            with self._lock:
                self._track(message)
            self._deliver(message)
            with self._lock:
                self._send_next()
        proc.wait()
        self._died(proc)

    def _track(self, message: Message) -> None:
        """Follow the worker's state from its events (called with the lock held)."""
        if isinstance(message, WorkerReady):
            self._failed_starts = 0
            self.worker_pid = message.pid
            # After a recycle the server carries the in-flight run over by itself.
            self._state = "running" if self._inflight is not None else "warm"
        elif isinstance(message, WorkerRecycling):
            self._state = "recycling"
        elif isinstance(message, ChildStarted):
            self._child_pid = message.pid
            self._state = "running"
        elif isinstance(message, TestStarted):
            self._current_test = message.nodeid
        elif isinstance(message, TestFinished):
            self._current_test = None
        elif isinstance(message, RunStarted):
            self._state = "running"
        elif isinstance(message, RunFinished):
            if self._inflight is not None and message.run_id == self._inflight.run_id:
                self._inflight = None
                self._child_pid = None
                self._state = "warm"

    def _died(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            if proc is not self._proc:
                return
            if self._stopping:
                self._state = "stopped"
                return
            _kill_group(self._child_pid)  # orphaned by the server's death
            _kill_group(proc.pid)
            inflight, current = self._inflight, self._current_test
            self._inflight = None
            self._child_pid = None
            self._current_test = None
            was_ready = self._state not in ("starting", "recycling")
            self._failed_starts = 0 if was_ready else self._failed_starts + 1
            give_up = self._failed_starts >= MAX_FAILED_STARTS
        why = _signal_text(proc.returncode)
        if inflight is not None:
            text = f"the worker process died ({why}) during this test"
            if current is not None:
                path, _, name = current.partition("::")
                self._deliver(
                    TestFinished(
                        run_id=inflight.run_id,
                        nodeid=current,
                        outcome="crashed",
                        longrepr=text,
                        location=[path, None, name],
                    )
                )
            self._deliver(
                RunFinished(
                    run_id=inflight.run_id,
                    exitstatus=EXIT_CRASHED,
                    crashed=current,
                    timing={"total": None},
                )
            )
        if give_up:
            with self._lock:
                self._state = "stopped"
            self._deliver(
                Notice(
                    text=f"worker died ({why}) {self._failed_starts} times while "
                    f"starting; not restarted (see {self.log_path})"
                )
            )
            return
        self._deliver(Notice(text=f"worker died ({why}); restarted"))
        with self._lock:
            if not self._stopping:
                time.sleep(0.2 * self._failed_starts)  # back off when it keeps failing
                self._spawn()
