"""Turn raw file-system events into one ChangeBatch per save or burst of content changes.

Two threads meet here. The watchdog observer thread only translates each event
into project-relative candidates and queues them (cheap, never blocks, never
raises). The watcher's own thread ("coalescer") collects candidates until no
relevant event has arrived for `debounce` seconds, or `max_wait` seconds after
the first one, so a continuous stream still yields batches. It then compares
each candidate's content digest with the one it remembers and delivers the
paths whose content really changed (created, modified or deleted) to
`on_batch`, **on the coalescer thread**.

Comparing digests rather than trusting event types is what makes every editor
look alike: whether it writes in place, writes a temp file and renames it over
the target, or renames the original to a backup first, what remains after the
quiet period is one file with new content. A touch, a save without changes, or
a delete-and-recreate with the same content changes no digest and yields
nothing. Editor temporaries (`4913`, `file~`, `.file.swp`) are ignored by the
`PathFilter` and do not even extend the quiet period.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import queue
import stat
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserverVFS

from testmon_watch.watch.filters import PathFilter

log = logging.getLogger(__name__)


def _silence_watchdog_bookkeeping() -> None:
    """Drop watchdog's "Callback with id ... already exists for watch" RuntimeWarning.

    Its inotify emitter warns when a directory created and seen twice in quick
    succession (pytest's .pytest_cache/v/cache) gets its watch callback again:
    its own bookkeeping, nothing for the user to do, and with --no-tui it would
    be printed into the results. Installed on every start (an identical filter
    replaces the old one), so a caller's `warnings.catch_warnings()` that ended
    meanwhile cannot have removed it.
    """
    warnings.filterwarnings(
        "ignore",
        message="Callback with id .* already exists for watch",
        category=RuntimeWarning,
        module="watchdog",
    )


POLL_INTERVAL = 0.5
# Quiet period after a single file's writer closed it (the usual editor save): a
# third of the debounce, at least this. Long enough for the events of the same save
# that follow a close (a backup's removal, a chmod), and for a burst's second file
# to arrive (a checkout, a stash): the thread that delivers events can wait out a
# few GIL switch intervals (5 ms each) on a loaded machine, and a burst split after
# its first file would run on a half-written tree. Far shorter than the debounce,
# which waits for the end of bursts (a burst has several files and waits in full).
# 5 ms was tried (#13): 10 ms less per save, bursts split under load.
CLOSED_DEBOUNCE = 0.015
CLOSED_FRACTION = 3
# Files above this size are compared by (size, mtime) instead of being read and
# hashed on every event: a dataset or a log in the tree must not stall the loop.
DIGEST_LIMIT = 8 * 1024 * 1024

# Opened/closed-without-write/attribute events say nothing about content; not
# asking for them also spares the kernel queue while tests read thousands of files.
WATCHED_EVENT_TYPES: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]

ObserverFactory = Callable[[], BaseObserver]
_T = TypeVar("_T")


@dataclass(frozen=True)
class ChangeBatch:
    """Files whose content changed, gathered over one quiet-period window."""

    paths: frozenset[str]  # project-relative '/'-paths: content changed, created or deleted
    first_event_at: float  # time.monotonic() of the first raw event of the batch
    last_event_at: float  # time.monotonic() of the last raw event of the batch


def file_digest(path: str) -> str | None:
    """Content fingerprint of a regular file, or None when there is no regular file."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    if info.st_size > DIGEST_LIMIT:
        return f"stat:{info.st_size}:{info.st_mtime_ns}"
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except OSError:
        # exists but unreadable (permissions, gone between stat and open)
        return f"stat:{info.st_size}:{info.st_mtime_ns}"
    return hashlib.blake2b(content, digest_size=16).hexdigest()


# What the observer thread hands the coalescer.
#   path:   a file that may have changed
#   dir:    a directory that appeared (created or moved in): its files are candidates
#   gone:   a directory that vanished (deleted or moved away): its known files are candidates
#   rescan: the filter's inputs changed (.gitignore, pyvenv.cfg): re-walk the tree
#   resume/stop: control messages from the public methods
RawKind = Literal["path", "dir", "gone", "rescan", "resume", "stop"]


@dataclass(frozen=True)
class _Raw:
    kind: RawKind
    relpath: str = ""
    at: float = 0.0
    closed: bool = False  # the writer closed the file (inotify IN_CLOSE_WRITE)
    # Its content is whole: closed by its writer, moved into place, or seen by polling.
    settled: bool = False


@dataclass
class _Window:
    """Candidates collected since the last flush."""

    paths: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    rescan: bool = False
    named: set[str] = field(default_factory=set)  # given to on_writing
    first_at: float | None = None
    last_at: float = 0.0
    closed: bool = False

    def add(self, raw: _Raw) -> None:
        if raw.kind == "path":
            self.paths.add(raw.relpath)
        elif raw.kind == "dir":
            self.dirs.add(raw.relpath)
        elif raw.kind == "gone":
            self.gone.add(raw.relpath)
        elif raw.kind == "rescan":
            self.rescan = True
        if self.first_at is None:
            self.first_at = raw.at
        self.last_at = max(self.last_at, raw.at)
        self.closed = raw.closed

    def written_and_closed(self) -> bool:
        """One file, and the last event says its writer closed it: the save is complete.

        Editors end a save by closing the file they wrote (in place), or by
        renaming a closed temp file over it (a move, which does not count here).
        A burst touches several files and always waits the full quiet period.
        """
        return self.closed and len(self.paths) == 1 and not (self.dirs or self.gone or self.rescan)


class _EventSink(FileSystemEventHandler):
    """Watchdog handler: forwards every event to the watcher, never raising into watchdog."""

    def __init__(self, receive: Callable[[FileSystemEvent], None]) -> None:
        super().__init__()
        self._receive = receive

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self._receive(event)
        except Exception:  # an exception here would kill the observer thread
            log.exception("testmon-watch: dropping file event %r", event)


def _describe_start_failure(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "inotify watch limit reached, see fs.inotify.max_user_watches"
    if isinstance(exc, OSError) and exc.errno == errno.EMFILE:
        return "inotify instance limit reached, see fs.inotify.max_user_instances"
    return f"{type(exc).__name__}: {exc}"


class ChangeWatcher:
    """Watch `root` recursively and report content changes in coalesced batches.

    `on_batch` and `on_notice` are called on the watcher's own thread (never on
    the caller's, never on watchdog's). An exception from `on_batch` is caught
    and reported through `on_notice` (or logged), and watching goes on.

    During a test run, call `pause()`; afterwards `ignore_writes(files the tests
    wrote)` and `resume()`: edits made during the run arrive as one batch, and
    the tests' own writes do not trigger a rerun.
    """

    def __init__(
        self,
        root: Path,
        on_batch: Callable[[ChangeBatch], None],
        path_filter: PathFilter,
        debounce: float = 0.05,
        poll: bool = False,
        on_notice: Callable[[str], None] | None = None,
        *,
        max_wait: float = 1.0,
        on_held: Callable[[frozenset[str]], None] | None = None,
        on_writing: Callable[[str], None] | None = None,
        observer_factory: ObserverFactory | None = None,
    ) -> None:
        """`max_wait` caps how long a continuous stream of events can delay a batch.

        `on_held` is called (on the watcher thread) with every path held so far
        each time paused watching holds new changes: the front end can say
        "changes waiting" during a run.

        `on_writing` is called (on the watcher thread) with a Python file's path
        the first time a window sees its writer close it (or it moved into place;
        with polling, seen changed), before the quiet period ends: a batch naming
        it will likely follow, and work that depends only on its content can
        start early. Whether it really changed is decided later.

        `observer_factory` builds the native observer (default: watchdog's
        platform `Observer`); it exists so tests can simulate a platform where
        native events cannot start.
        """
        self.root = Path(os.path.abspath(root))
        self._root_str = str(self.root)
        self._root_prefix = self._root_str.rstrip(os.sep) + os.sep
        self._on_batch = on_batch
        self._on_notice = on_notice
        self._on_held = on_held
        self._on_writing = on_writing
        self._filter = path_filter
        self._debounce = debounce
        self._max_wait = max(max_wait, 0.0)
        self._poll = poll
        self._observer_factory: ObserverFactory = observer_factory or Observer
        self._queue: queue.Queue[_Raw] = queue.Queue()
        # Guards _known, _held, _held_span and _paused: touched by the coalescer
        # (flush) and by the caller's thread (pause/resume/ignore_writes).
        self._lock = threading.RLock()
        self._known: dict[str, str] = {}  # relpath -> digest of every watched file
        self._paused = False
        self._held: dict[str, str | None] = {}  # relpath -> digest before the held change
        self._held_span: tuple[float, float] | None = None
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None
        self._sink = _EventSink(self._on_raw_event)
        self.polling = poll  # True once running on the polling observer, asked for or not

    # -- public API --------------------------------------------------------------------------

    def start(self) -> None:
        """Start observing, snapshot every watched file's digest, then start delivering.

        Returns once changes are being watched. The observer starts before the
        snapshot so that an edit made while the snapshot runs is not lost; its
        events wait in the queue until the coalescer starts.
        """
        if self._thread is not None:
            raise RuntimeError("ChangeWatcher.start() called twice")
        _silence_watchdog_bookkeeping()
        self._observer = self._start_observer()
        with self._lock:
            self._known = self._snapshot()
        self._thread = threading.Thread(
            target=self._run, name="testmon-watch-coalescer", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop observing; events not yet delivered are dropped."""
        if self._observer is not None:
            self._observer.stop()
            if self._observer.is_alive():
                self._observer.join(timeout=5)
            self._observer = None
        if self._thread is not None:
            self._queue.put(_Raw("stop"))
            if self._thread is not threading.current_thread():
                self._thread.join(timeout=5)

    def pause(self) -> None:
        """Hold batches: changes keep being collected and are delivered by `resume()`."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        """Deliver what was held while paused, as one batch, if any content changed."""
        with self._lock:
            self._paused = False
        # delivery happens on the coalescer thread, like every other batch
        self._queue.put(_Raw("resume"))

    def ignore_writes(self, relpaths: Iterable[str]) -> None:
        """Accept the current content of these files as known, so their events yield nothing.

        Paths are project-relative ('/' or os.sep) or absolute under the root.

        For the files the tests wrote during a run: their pending or future events
        compare equal to the digest taken now and are dropped, until someone
        changes the content again. A held change on such a file is dropped too
        (an edit made to the very same file during the run is lost with it).
        """
        with self._lock:
            for relpath in relpaths:
                # absolute paths under the root are accepted too: tests report them so
                rel = self._rel(relpath) if os.path.isabs(relpath) else relpath
                if rel is None:
                    continue  # outside the project: never watched anyway
                rel = rel.replace(os.sep, "/")
                if self._filter.ignored(rel):
                    continue
                digest = file_digest(os.path.join(self._root_str, rel))
                if digest is None:
                    self._known.pop(rel, None)
                else:
                    self._known[rel] = digest
                self._held.pop(rel, None)

    @property
    def watched_count(self) -> int:
        """Number of watched (non-ignored) files under the root."""
        with self._lock:
            return len(self._known)

    # -- start-up ----------------------------------------------------------------------------

    def _start_observer(self) -> BaseObserver:
        if not self._poll:
            observer: BaseObserver | None = None
            try:
                observer = self._observer_factory()
                self._schedule(observer)
                observer.start()
                return observer
            except Exception as exc:  # noqa: BLE001 - any native failure means: poll instead
                if observer is not None:
                    self._discard(observer)
                reason = _describe_start_failure(exc)
                self._notice(
                    f"native file events unavailable ({reason}); polling every {POLL_INTERVAL} s"
                )
        self.polling = True
        observer = PollingObserverVFS(
            stat=os.stat, listdir=self._scandir_unpruned, polling_interval=POLL_INTERVAL
        )
        self._schedule(observer)
        observer.start()
        return observer

    def _schedule(self, observer: BaseObserver) -> None:
        observer.schedule(
            self._sink, self._root_str, recursive=True, event_filter=WATCHED_EVENT_TYPES
        )

    @staticmethod
    def _discard(observer: BaseObserver) -> None:
        try:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)
        except Exception:  # best effort on an observer that already failed
            log.debug("testmon-watch: stopping the failed observer", exc_info=True)

    def _scandir_unpruned(self, path: str | None) -> Iterator[os.DirEntry[str]]:
        """os.scandir for the polling observer, minus ignored directories.

        Without this, every poll would stat every file of `.venv` and `.git`.
        """
        directory = os.fsdecode(path or self._root_str)
        rel_dir = self._rel(directory) or ""
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if is_dir and self._filter.is_dir_ignored(rel):
                    continue
                yield entry

    def _snapshot(self) -> dict[str, str]:
        known: dict[str, str] = {}
        for rel in self._filter.walk():
            digest = file_digest(os.path.join(self._root_str, rel))
            if digest is not None:
                known[rel] = digest
        return known

    # -- observer thread ---------------------------------------------------------------------

    def _rel(self, path: str | bytes) -> str | None:
        text = os.fsdecode(path)
        if text == self._root_str:
            return ""
        if not text.startswith(self._root_prefix):
            return None
        rel = text[len(self._root_prefix) :]
        return rel.replace(os.sep, "/") if os.sep != "/" else rel

    def _on_raw_event(self, event: FileSystemEvent) -> None:
        """Runs on the watchdog thread: queue the event's candidates, nothing slow."""
        now = time.monotonic()
        moved = event.event_type == "moved"
        src = self._rel(event.src_path)
        dest = self._rel(event.dest_path) if moved else None
        if event.is_directory:
            if event.event_type in ("deleted", "moved") and src:
                self._queue_dir("gone", src, now)
            if event.event_type == "created" and src:
                self._queue_dir("dir", src, now)
            if moved and dest:
                self._queue_dir("dir", dest, now)
            return  # a directory's own modified events only echo its files' events
        if event.event_type not in ("created", "modified", "deleted", "moved", "closed"):
            return
        for rel in (src, dest):
            if not rel:
                continue
            if PathFilter.affects_decisions(rel):
                self._filter.invalidate()
                self._queue.put(_Raw("rescan", rel, now))
            if not self._filter.ignored(rel):
                closed = event.event_type == "closed"
                settled = closed or (moved and rel == dest) or self.polling
                self._queue.put(_Raw("path", rel, now, closed=closed, settled=settled))

    def _queue_dir(self, kind: RawKind, rel: str, now: float) -> None:
        if not self._filter.is_dir_ignored(rel):
            self._queue.put(_Raw(kind, rel, now))

    # -- coalescer thread --------------------------------------------------------------------

    def _run(self) -> None:
        window = _Window()
        while True:
            timeout: float | None = None
            if window.first_at is not None:
                quiet = self._debounce
                if window.written_and_closed():
                    quiet = min(quiet, max(CLOSED_DEBOUNCE, quiet / CLOSED_FRACTION))
                deadline = min(window.last_at + quiet, window.first_at + self._max_wait)
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    self._flush(window)
                    window = _Window()
                    continue
            try:
                raw = self._queue.get(timeout=timeout)
            except queue.Empty:
                continue  # the deadline has passed: flushed at the top of the loop
            if raw.kind == "stop":
                return
            if raw.kind == "resume":
                if window.first_at is None:
                    self._flush(window)  # delivers what was held, if anything
                # else: the held changes join the window's batch when it flushes
                continue
            if (
                self._on_writing is not None
                and raw.kind == "path"
                and raw.settled
                and raw.relpath.endswith(".py")
                and raw.relpath not in window.named
            ):
                # Named once its content is whole: the work done on it ahead (the
                # standby parses and compiles it) is keyed by content, and a name at
                # the first write would have it read a half-written file in vain.
                window.named.add(raw.relpath)
                self._call("on_writing", self._on_writing, raw.relpath)
            window.add(raw)

    def _flush(self, window: _Window) -> None:
        try:
            batch = self._evaluate(window)
        except Exception as exc:  # keep watching whatever went wrong
            log.exception("testmon-watch: evaluating changes failed")
            self._notice(f"checking changed files failed: {type(exc).__name__}: {exc}")
            return
        if isinstance(batch, ChangeBatch):
            self._call("on_batch", self._on_batch, batch)
        elif batch is not None and self._on_held is not None:
            self._call("on_held", self._on_held, batch)

    def _call(self, name: str, callback: Callable[[_T], None], argument: _T) -> None:
        try:
            callback(argument)
        except Exception as exc:  # the callback must not end the watcher
            log.exception("testmon-watch: %s failed", name)
            self._notice(f"change handler failed: {type(exc).__name__}: {exc}")

    def _evaluate(self, window: _Window) -> ChangeBatch | frozenset[str] | None:
        """Digest the window's candidates: the batch to deliver now, if any.

        While paused: the paths now held when this window added some, else None.
        """
        with self._lock:
            candidates = set(window.paths)
            for directory in window.dirs:
                candidates.update(self._filter.walk(directory))
            for directory in window.gone:
                prefix = directory + "/"
                candidates.update(p for p in self._known if p.startswith(prefix))
            if window.rescan:
                self._rescan(candidates)
            changed: dict[str, str | None] = {}  # relpath -> digest before this window
            for rel in candidates:
                if self._filter.ignored(rel):
                    continue
                new = file_digest(os.path.join(self._root_str, rel))
                old = self._known.get(rel)
                if new == old:
                    continue
                if new is None:
                    del self._known[rel]
                else:
                    self._known[rel] = new
                changed[rel] = old
            if window.first_at is not None and changed:
                span = (window.first_at, window.last_at)
            else:
                span = None
            if self._paused:
                for rel, old in changed.items():
                    self._held.setdefault(rel, old)
                self._held_span = _union(self._held_span, span)
                return frozenset(self._held) if changed else None
            # a held change that was undone before resume() is no change
            paths = {rel for rel, old in self._held.items() if self._known.get(rel) != old}
            if paths:
                span = _union(self._held_span, span)
            paths.update(changed)
            self._held.clear()
            self._held_span = None
            if not paths or span is None:
                return None
            return ChangeBatch(frozenset(paths), span[0], span[1])

    def _rescan(self, candidates: set[str]) -> None:
        """The filter changed: adopt newly watched files, forget newly ignored ones.

        Files that were merely hidden before are taken as they are (their content
        did not change by being un-ignored); candidates of this window are left
        to the normal digest comparison.
        """
        present = set(self._filter.walk())
        for rel in list(self._known):
            if rel not in present and self._filter.ignored(rel):
                del self._known[rel]
        for rel in present - self._known.keys() - candidates:
            digest = file_digest(os.path.join(self._root_str, rel))
            if digest is not None:
                self._known[rel] = digest

    def _notice(self, message: str) -> None:
        if self._on_notice is None:
            log.warning("testmon-watch: %s", message)
            return
        try:
            self._on_notice(message)
        except Exception:  # a broken notice sink must not stop watching
            log.exception("testmon-watch: on_notice failed for %r", message)


def _union(
    a: tuple[float, float] | None, b: tuple[float, float] | None
) -> tuple[float, float] | None:
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]))
