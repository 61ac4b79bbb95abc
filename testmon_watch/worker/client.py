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
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.runs import Run, WorkerExit, WorkerState
from testmon_watch.paths import ProjectPaths
from testmon_watch.wire.server_args import ServerArgs, server_command
from testmon_watch.wire.worker_protocol import (
    CancelCommand,
    ChildStarted,
    Message,
    Notice,
    PrepareCommand,
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
    trigger_text,
)
from testmon_watch.worker.processes import ProcessExit, kill_group

LOG_LIMIT = 1 << 20  # the server's stderr log starts over when larger than this
# A server that dies this many times in a row without becoming ready is not restarted.
MAX_FAILED_STARTS = 3


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
        self._state = WorkerState.STOPPED
        self._queue: deque[RunCommand] = deque()
        self._inflight: Run | None = None  # the run sent to the server, followed by its events
        self._child_pid: int | None = None
        self._test_started_at: float | None = None  # time.monotonic() of the last test_started
        self._stopping = False
        self._failed_starts = 0
        self._ids = itertools.count(1)
        self.worker_pid: int | None = None  # the server's pid, once ready

    # -- public API ----------------------------------------------------------------------

    @property
    def state(self) -> WorkerState:
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
        cmd.mode = RunMode(cmd.mode)  # a plain word from a caller is checked here, not later
        with self._lock:
            if not cmd.run_id:
                cmd.run_id = f"run-{next(self._ids)}"
            cmd.args = [*self.pytest_args, *cmd.args]
            self._queue.append(cmd)
            self._send_next()
            return cmd.run_id

    def prepare(self, paths: list[str]) -> None:
        """Project files are being saved: let an idle worker's standby parse them ahead.

        A hint, sent only while nothing is queued or running (then the next
        run's child is a standby waiting at its gate); never waits.
        """
        with self._lock:
            if self._inflight is not None or self._queue or self._state is not WorkerState.WARM:
                return
            self._send(PrepareCommand(paths=list(paths)))

    def cancel(self, run_id: str | None = None) -> None:
        """Cancel the run in flight (or the given run) and drop queued runs."""
        with self._lock:
            if run_id is None:
                self._queue.clear()
            else:
                self._queue = deque(c for c in self._queue if c.run_id != run_id)
            inflight = self._inflight
            if inflight is not None and run_id in (None, inflight.run_id):
                self._send(CancelCommand(run_id=inflight.run_id))

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
            kill_group(proc.pid)  # anything still in the server's own group
            if proc.stdin is not None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
        kill_group(child)
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(5.0)
        with self._lock:
            self._state = WorkerState.STOPPED
            self._proc = None
            self._child_pid = None
            self._inflight = None

    # -- internals -----------------------------------------------------------------------

    def _spawn(self) -> None:
        self._state = WorkerState.STARTING
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = "ab" if self.log_path.stat().st_size < LOG_LIMIT else "wb"
        except OSError:
            mode = "wb"
        argv = server_command(self.python, ServerArgs(self.root, tuple(self.python_path)))
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
        if self._inflight is not None or self._state is not WorkerState.WARM or not self._queue:
            return
        cmd = self._queue.popleft()
        self._inflight = Run(cmd.run_id, cmd.mode, trigger_text(cmd.trigger))
        self._state = WorkerState.RUNNING
        self._send(cmd)

    def _deliver(self, message: Message) -> None:
        try:
            self.on_event(message)
        except Exception as exc:  # noqa: BLE001 - a broken callback must not kill the reader
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
        run = self._inflight
        if isinstance(message, WorkerReady):
            self._failed_starts = 0
            self.worker_pid = message.pid
            # After a recycle the server carries the in-flight run over by itself.
            self._state = WorkerState.RUNNING if run is not None else WorkerState.WARM
        elif isinstance(message, WorkerRecycling):
            self._state = WorkerState.RECYCLING
        elif isinstance(message, ChildStarted):
            self._child_pid = message.pid
            self._state = WorkerState.RUNNING
        elif run is None or getattr(message, "run_id", None) != run.run_id:
            return  # not about the run in flight
        elif isinstance(message, TestStarted):
            run.test_started(message.nodeid)
            self._test_started_at = time.monotonic()
        elif isinstance(message, TestFinished):
            run.test_finished(message.nodeid, message.outcome, message.duration)
        elif isinstance(message, RunStarted):
            message.start(run)
            self._state = WorkerState.RUNNING
        elif isinstance(message, RunFinished):
            message.finish(run)
            self._inflight = None
            self._child_pid = None
            self._state = WorkerState.WARM

    def _died(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            if proc is not self._proc:
                return
            if self._stopping:
                self._state = WorkerState.STOPPED
                return
            kill_group(self._child_pid)  # orphaned by the server's death
            kill_group(proc.pid)
            inflight = self._inflight
            self._inflight = None
            self._child_pid = None
            was_ready = self._state not in (WorkerState.STARTING, WorkerState.RECYCLING)
            self._failed_starts = 0 if was_ready else self._failed_starts + 1
            give_up = self._failed_starts >= MAX_FAILED_STARTS
        why = ProcessExit(proc.returncode).short
        if inflight is not None:
            ran_for = None
            if inflight.current is not None and self._test_started_at is not None:
                ran_for = round(time.monotonic() - self._test_started_at, 6)
            for message in _died_during(inflight, why, ran_for):
                self._deliver(message)
        if give_up:
            with self._lock:
                self._state = WorkerState.STOPPED
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


def _died_during(run: Run, why: str, ran_for: float | None = None) -> list[Message]:
    """The end of a run whose server died: the test it was running crashed.

    `ran_for`: seconds since that test's test_started, as the client saw it.
    """
    current = run.current
    messages: list[Message] = []
    if current is not None:
        path, _, name = current.partition("::")
        run.test_finished(current, Outcome.CRASHED, ran_for)
        messages.append(
            TestFinished(
                run_id=run.run_id,
                nodeid=current,
                outcome=Outcome.CRASHED,
                duration=ran_for or 0.0,
                longrepr=f"the worker process died ({why}) during this test",
                location=[path, None, name],
            )
        )
    counts = run.counts()
    run.finish(WorkerExit.CRASHED, current)
    messages.append(
        RunFinished(
            run_id=run.run_id,
            exitstatus=WorkerExit.CRASHED,
            counts=counts,
            crashed=current,
            timing={"total": None},
        )
    )
    return messages
