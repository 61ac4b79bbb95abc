"""Parse project files in a second process while the tests run.

A first run must compute the code blocks of every project file it executes:
an `ast.parse` and a walk per file, a large share of what recording costs on
a small project. Those files are known early (pytest imports them while it
collects) and their state is a pure function of their content, so a helper
interpreter parses them on another core meanwhile.

The parent takes a helper's result only while the file still has the size
and mtime the helper saw (the trust the stat check gets everywhere else), and
computes anything missing, late or odd itself, exactly as without a helper.
The helper is started on the first request, so a run with nothing new to
parse never starts one (nor does a machine with one core), and it ends with
the parent's session or, failing that, when its input pipe closes.

The lines between the two are `testmon_watch.wire.parse_helper`'s. The store
(core/store.py) sees only its `ParseAhead` side: request, take.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import weakref
from pathlib import Path

from testmon_watch.core.changes import read_state
from testmon_watch.core.db import FileRow
from testmon_watch.wire import parse_helper as wire

# Variables that would make the helper a recorded child or a coverage subject.
_DROPPED_ENV_PREFIXES = ("TESTMON_WATCH_", "COV_CORE_", "COVERAGE_")


class ParseHelper:
    """Parent side: requests, results, and the helper process's life."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pid: int | None = None
        self._requests: int | None = None  # write end of the helper's stdin
        self._results: int | None = None  # read end of the helper's stdout
        self._buffer = b""
        self._asked: set[str] = set()
        self._done: dict[str, FileRow] = {}
        # With one core the helper would only compete with the tests for it.
        self._lock = threading.Lock()
        self._broken = not hasattr(os, "posix_spawn") or not sys.executable or _cores() < 2

    def request(self, relpath: str, kind: str) -> None:
        """Parse this file ahead; never raises, never blocks."""
        # Imports in other threads ask too: one helper, one writer at a time.
        with self._lock:
            self._request(relpath, kind)

    def _request(self, relpath: str, kind: str) -> None:
        if self._broken or relpath in self._asked:
            return
        line = wire.encode_request(wire.ParseRequest(kind, relpath))
        if line is None:
            return
        if self._pid is None and not self._spawn():
            return
        assert self._requests is not None
        try:
            os.write(self._requests, line)
        except BlockingIOError:
            return  # the helper is far behind: this one the parent does itself
        except OSError:
            self._close()
            return
        self._asked.add(relpath)

    @property
    def started(self) -> bool:
        return self._pid is not None

    def fileno(self) -> int:
        """The helper's result pipe, for `select` (-1 once closed)."""
        return -1 if self._results is None else self._results

    def ready(self, relpath: str) -> bool:
        """True when the helper's answer for this file has arrived."""
        with self._lock:
            self._drain()
            return relpath in self._done

    def owes(self) -> bool:
        """True while files asked for have no answer yet (and the helper still runs)."""
        with self._lock:
            self._drain()
            return not self._broken and any(path not in self._done for path in self._asked)

    def take(self, relpath: str) -> FileRow | None:
        """The helper's state of a requested file if it is ready, else None."""
        with self._lock:
            if relpath not in self._asked:
                return None
            self._drain()
            self._asked.discard(relpath)
            return self._done.pop(relpath, None)

    def close(self) -> None:
        """End the helper and reap it; idempotent."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        self._broken = True
        _running.discard(self)
        self._close_pipes()
        if self._pid is not None:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.waitpid(self._pid, 0)
            except OSError:
                pass
            self._pid = None

    # -- internals -------------------------------------------------------------

    def _spawn(self) -> bool:
        package_parent = str(Path(__file__).resolve().parent.parent.parent)
        # -S: no site-packages .pth files (coverage hooks, editable finders); our
        # package's directory is appended to sys.path so it shadows nothing.
        code = (
            f"import sys; sys.path.append({package_parent!r}); "
            "from testmon_watch.measure.parse_helper import main; main()"
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(_DROPPED_ENV_PREFIXES) and k != "PYTHONPATH"
        }
        fds: list[int] = []
        try:
            requests_r, requests_w = os.pipe()
            fds += [requests_r, requests_w]
            results_r, results_w = os.pipe()
            fds += [results_r, results_w]
            self._pid = os.posix_spawn(
                sys.executable,
                [sys.executable, "-S", "-c", code, str(self.root), str(wire.VERSION)],
                env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, requests_r, 0),
                    (os.POSIX_SPAWN_DUP2, results_w, 1),
                    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                ],
            )
        except (OSError, ValueError):
            for fd in fds:
                os.close(fd)
            self._broken = True
            return False
        os.close(requests_r)
        os.close(results_w)
        os.set_blocking(requests_w, False)
        os.set_blocking(results_r, False)
        self._requests, self._results = requests_w, results_r
        _running.add(self)
        _forget_helpers_when_forked()
        return True

    def _forget(self) -> None:
        """In a forked child: not its helper to use or end; just close the copies."""
        self._close_pipes()
        self._pid = None
        self._broken = True

    def _close_pipes(self) -> None:
        for fd in (self._requests, self._results):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._requests = self._results = None

    def _drain(self) -> None:
        """Read every result the helper has written so far, without waiting."""
        if self._results is None:
            return
        chunks = [self._buffer]
        while True:
            try:
                chunk = os.read(self._results, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:  # the helper is gone: keep what arrived, ask no more
                self._close()
                break
            chunks.append(chunk)
        data = b"".join(chunks)
        *lines, self._buffer = data.split(b"\n")
        for line in lines:
            try:
                row = _file_row(wire.decode_answer(line))
            except ValueError:
                continue  # the parent parses this one itself
            self._done[row.path] = row


# Helpers of this process. A process forked by a test (a daemon that outlives
# the session) must not keep a helper's input open: the helper ends at EOF.
_running: weakref.WeakSet[ParseHelper] = weakref.WeakSet()
_fork_hook_installed = False


def _forget_helpers_when_forked() -> None:
    global _fork_hook_installed
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        _fork_hook_installed = True
        os.register_at_fork(after_in_child=_forget_all)


def _forget_all() -> None:
    for helper in list(_running):
        helper._forget()
    _running.clear()


def _cores() -> int:
    """CPUs this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _file_row(parsed: wire.ParsedFile) -> FileRow:
    return FileRow(
        parsed.path,
        parsed.kind,
        parsed.mtime_ns,
        parsed.size,
        parsed.digest,
        parsed.blocks,
        parsed.imports,
        parsed.error,
    )


def _parsed_file(row: FileRow) -> wire.ParsedFile:
    return wire.ParsedFile(
        row.path, row.kind, row.mtime_ns, row.size, row.digest, row.blocks, row.imports, row.error
    )


def main() -> None:
    """The helper: parse each requested file, answer in request order, until EOF."""
    root = Path(sys.argv[1])
    try:
        wire.check_version(sys.argv[2] if len(sys.argv) > 2 else "")
    except ValueError as exc:
        sys.exit(str(exc))  # the parent reads EOF and parses everything itself
    requests, results = sys.stdin.buffer, sys.stdout.buffer
    while True:
        line = requests.readline()
        if not line:
            return
        try:
            request = wire.decode_request(line)
            state, _ = read_state(root, request.relpath, request.kind)
        except Exception:  # noqa: BLE001 - the parent parses this one itself
            continue
        if state.missing or state.mtime_ns < 0:
            continue
        results.write(wire.encode_answer(_parsed_file(state)))
        results.flush()
