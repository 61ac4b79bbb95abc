"""The watch loop: file changes -> one run at a time in the warm worker -> events for a front end.

Front ends (the headless printer, the Textual app) subscribe with a listener
and receive the worker's protocol messages plus the session's own events
below; they never talk to the watcher, the worker or the data file directly
(`known_tests` reads the last recorded results for them). Listeners are
called from background threads (the watcher's and the worker reader's).
Each run is followed with the one run model, `core.runs.Run`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testmon_watch.config import OnChange, WatchConfig
from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.runs import Run
from testmon_watch.paths import datafile_path
from testmon_watch.watch.filters import PathFilter
from testmon_watch.watch.observer import ChangeBatch, ChangeWatcher
from testmon_watch.wire.worker_protocol import (
    Message,
    RunFinished,
    RunStarted,
    TestFinished,
    TestStarted,
)
from testmon_watch.worker.client import WorkerClient


@dataclass(frozen=True)
class ChangesSeen:
    """The watcher delivered a batch of changed files."""

    paths: tuple[str, ...]
    queued: bool  # a run is going on: this batch waits for it (or restarts it)


@dataclass(frozen=True)
class RunRequested:
    """A run was asked of the worker: by a change, on start, or by a key."""

    run_id: str
    mode: RunMode
    trigger: str


@dataclass(frozen=True)
class RunDone:
    """A run ended; `timing` is measured from the first file event of its trigger."""

    run_id: str
    trigger: str
    finished: RunFinished
    results: dict[str, TestFinished]
    timing: dict[str, float | None]
    run: Run  # the run as the session followed it: every test's state, the counts


@dataclass(frozen=True)
class KnownTest:
    """A test recorded by earlier runs, with its last outcome."""

    __test__ = False
    nodeid: str
    outcome: Outcome
    duration: float


@dataclass(frozen=True)
class SessionNotice:
    text: str


SessionEvent = Any  # a worker Message or one of the dataclasses above
Listener = Callable[[SessionEvent], None]


@dataclass
class _RunRecord:
    """A run of the session: the run model, the results as sent, and when things happened."""

    run: Run
    event_at: float  # time.monotonic() of the first file event, or of the request
    requested_at: float
    selected_at: float | None = None
    first_result_at: float | None = None
    results: dict[str, TestFinished] = field(default_factory=dict)


class WatchSession:
    """Coalesces changes into runs: never two at once, never a change lost."""

    def __init__(
        self,
        root: Path,
        listener: Listener,
        config: WatchConfig,
        pytest_args: Sequence[str] = (),
        on_change: OnChange | str = OnChange.QUEUE,
        timeout: float | None = None,
        watch: bool = True,
        python: str | None = None,
    ) -> None:
        if on_change not in {mode.value for mode in OnChange}:
            choices = ", ".join(mode.value for mode in OnChange)
            raise ValueError(f"--on-change must be one of {choices}")
        self.root = root.resolve()
        self.listener = listener
        self.on_change = OnChange(on_change)
        self.timeout = timeout
        self._lock = threading.RLock()
        self._runs: dict[str, _RunRecord] = {}
        self._current: str | None = None
        self._waiting: list[ChangeBatch] = []
        self._restart_pending = False
        self._idle = threading.Event()
        self._idle.set()
        self.last_done: RunDone | None = None
        client_kwargs: dict[str, Any] = {"python": python} if python else {}
        self.worker = WorkerClient(
            self.root, pytest_args, on_event=self._on_worker_event, **client_kwargs
        )
        self.watcher: ChangeWatcher | None = None
        if watch:
            path_filter = PathFilter(self.root, include=config.include, ignore=config.ignore)
            self.watcher = ChangeWatcher(
                self.root,
                self._on_batch,
                path_filter,
                debounce=config.debounce_ms / 1000,
                poll=config.poll,
                on_notice=lambda text: self._emit(SessionNotice(text)),
                on_writing=lambda path: self.worker.prepare([path]),
            )

    # -- lifecycle -----------------------------------------------------------------

    def start(self, run_on_start: bool = True) -> None:
        self.worker.start()
        if self.watcher is not None:
            self.watcher.start()
        if run_on_start:
            self.run(RunMode.AFFECTED, trigger="start")

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.worker.stop()

    @property
    def watched_files(self) -> int:
        return self.watcher.watched_count if self.watcher is not None else 0

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no run is going on or waiting (for --once and tests)."""
        return self._idle.wait(timeout)

    def known_tests(self) -> list[KnownTest]:
        """The tests earlier runs recorded, with their last outcome; none without a data file."""
        path = datafile_path(self.root)
        if not path.exists():
            return []
        # Imported here, not at the top: the front end reads the data file only for this,
        # and the UI's import graph never holds the database layer.
        from testmon_watch.core.db import Database, DatabaseError
        from testmon_watch.core.defaults import DEFAULT_ENVIRONMENT

        try:
            db, _ = Database.open(path, readonly=True)
        except DatabaseError:
            return []
        try:
            env = db.environment(DEFAULT_ENVIRONMENT)
            if env is None:
                return []
            return [KnownTest(t.nodeid, t.outcome, t.duration) for t in db.tests(env.id)]
        finally:
            db.close()

    # -- commands --------------------------------------------------------------------

    def run(
        self,
        mode: RunMode = RunMode.AFFECTED,
        nodeids: Iterable[str] = (),
        trigger: str = "manual",
        event_at: float | None = None,
    ) -> str:
        mode = RunMode(mode)
        with self._lock:
            now = time.monotonic()
            run_id = self.worker.run(
                mode=mode, nodeids=list(nodeids), trigger=trigger, timeout=self.timeout
            )
            self._runs[run_id] = _RunRecord(Run(run_id, mode, trigger), event_at or now, now)
            if self._current is None:
                self._current = run_id
            self._idle.clear()
        self._emit(RunRequested(run_id, mode, trigger))
        return run_id

    def cancel(self) -> None:
        with self._lock:
            self._waiting.clear()
        self.worker.cancel()

    def pause(self) -> None:
        if self.watcher is not None:
            self.watcher.pause()

    def resume(self) -> None:
        if self.watcher is not None:
            self.watcher.resume()

    # -- the watcher's side ----------------------------------------------------------

    def _on_batch(self, batch: ChangeBatch) -> None:
        with self._lock:
            busy = self._current is not None
            if busy:
                self._waiting.append(batch)
                if self.on_change is OnChange.RESTART and not self._restart_pending:
                    self._restart_pending = True
                    self.worker.cancel()
        self._emit(ChangesSeen(tuple(sorted(batch.paths)), queued=busy))
        if not busy:
            self._start_for([batch])

    def _start_for(self, batches: list[ChangeBatch]) -> None:
        paths = sorted({p for b in batches for p in b.paths})
        trigger = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        self.run(RunMode.AFFECTED, trigger=trigger, event_at=min(b.first_event_at for b in batches))

    # -- the worker's side -----------------------------------------------------------

    def _on_worker_event(self, message: Message) -> None:
        now = time.monotonic()
        done: RunDone | None = None
        start_next: list[ChangeBatch] = []
        with self._lock:
            record = self._runs.get(getattr(message, "run_id", "") or "")
            if isinstance(message, RunStarted) and record is not None:
                record.selected_at = now
                message.start(record.run)
                self._current = message.run_id
            elif isinstance(message, TestStarted) and record is not None:
                record.run.test_started(message.nodeid)
            elif isinstance(message, TestFinished) and record is not None:
                if record.first_result_at is None:
                    record.first_result_at = now
                record.run.test_finished(message.nodeid, message.outcome, message.duration)
                record.results[message.nodeid] = message
            elif isinstance(message, RunFinished) and record is not None:
                message.finish(record.run)
                done = self._finish(record, message, now)
                if message.written and self.watcher is not None:
                    # What the tests wrote is no edit: drop it now and when it arrives.
                    self.watcher.ignore_writes(message.written)
                    written = set(message.written)
                    self._waiting = [
                        ChangeBatch(b.paths - written, b.first_event_at, b.last_event_at)
                        for b in self._waiting
                        if b.paths - written
                    ]
                if self._waiting:
                    start_next, self._waiting = self._waiting, []
                self._restart_pending = False
        self._emit(message)
        if done is not None:
            self.last_done = done
            self._emit(done)
            if start_next:
                self._start_for(start_next)
            elif self._current is None:
                self._idle.set()

    def _finish(self, record: _RunRecord, message: RunFinished, now: float) -> RunDone:
        run = record.run
        self._runs.pop(run.run_id, None)
        self._current = next(iter(self._runs), None)

        def since(at: float | None) -> float | None:
            return None if at is None else at - record.event_at

        timing = {
            "selection": since(record.selected_at),
            "first_result": since(record.first_result_at),
            "done": now - record.event_at,
        }
        return RunDone(run.run_id, run.trigger, message, dict(record.results), timing, run)

    def _emit(self, event: SessionEvent) -> None:
        try:
            self.listener(event)
        except Exception as exc:  # noqa: BLE001 - a front-end bug must not stop the loop
            if not isinstance(event, SessionNotice):
                self._emit(SessionNotice(f"front end failed on {type(event).__name__}: {exc}"))
