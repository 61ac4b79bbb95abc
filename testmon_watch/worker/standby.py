"""The standby child: a forked pytest run that waits, configured, until told what to run.

Most of a run's start-up does not depend on the edit that triggers it: pytest's
configuration, plugin registration, the fixture manager, conftest.py files and
what they import. The server forks the next run's child as soon as a run ends;
that child gets this far and stops at a gate, just before selection. When a run
command comes, the server writes it to the gate's pipe and the run goes on from
there: selection, collection and the tests, with nothing left to start. The
release line and the standby's exit codes are `wire.standby`.

Early work is only worth keeping if it is still what a fresh child would do. At
the gate the child checks every project file it imported or opened (and every
place an initial conftest.py could have appeared since): if one was written
after the fork, it exits with `StandbyExit.STALE` before sending a single event, and
the server forks a fresh child for the same command. A standby that ends before
the gate (a conftest raising, a usage error) is dropped the same way, silently:
the fresh child reports the error.

When a conftest.py imports the project itself (`from mypkg import ...`, common),
almost every edit touches a module the standby holds, so it would step aside on
every save and each run would pay pytest's whole start-up. After a standby went
stale, the server asks the next ones for an *early* gate: before pytest loads
the initial conftest.py files (`pytest_load_initial_conftests`), after its own
start-up (plugins, arguments, ini files). Such a standby is seldom stale (only
when pytest's configuration files change) and still saves that start-up.

Before it says it waits, and while it waits, the standby does work keyed by
content, which can never be stale: it loads the code of the project modules the
last run imported into memory (the preload list), parses the files saved lately
as they are now (so that the next save's parse reuses the function bodies it did
not change), and parses and compiles the files the watcher names as they are
saved. The loading and the parsing ahead stop at the server's first line.
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from testmon_watch.core.changes import prepare
from testmon_watch.measure.file_reads import unobserved
from testmon_watch.measure.loaded import loaded_modules
from testmon_watch.measure.project_files import ProjectFiles
from testmon_watch.pytest_plugin.names import GATE_PLUGIN
from testmon_watch.wire import standby as standby_wire
from testmon_watch.wire.standby import Release, ReleaseError, StandbyExit
from testmon_watch.worker.code_cache import compile_ahead, load_ahead
from testmon_watch.worker.preload import read_preload_list

# File times come from a coarse kernel clock: a write just after the fork may carry
# a time slightly before it. Anything this close to the fork counts as after it.
CLOCK_SLACK_NS = 50_000_000


class RunGate:
    """pytest plugin that holds the run before selection until the server releases it."""

    def __init__(
        self,
        control_fd: int,
        root: Path,
        announce: Callable[[], None],
        on_release: Callable[[Release], None],
        early: bool = False,
        preload_path: Path | None = None,
        recent_saves: tuple[str, ...] = (),
    ) -> None:
        self.__name__ = GATE_PLUGIN  # the name pluggy registers us under
        self.control_fd = control_fd
        self._received = bytearray()  # read from the control pipe, not yet a whole line
        self.announce = announce  # tells the server we wait (before any run event)
        self.files = ProjectFiles(root)
        self.on_release = on_release  # called with the release (command and t0)
        self.fork_ns = time.time_ns()
        self.opened: set[str] = set()
        self.watching_opens = True
        self.config: pytest.Config | None = None
        self.early = early  # wait before the initial conftests, not before selection
        self.released = False
        self.released_ns: int | None = None  # when the run began: the release's arrival
        self.preload_path = preload_path  # names the project code the last run imported
        self.jobs: list[Callable[[], None]] = []  # run while waiting (work_ahead)
        self.recent_saves = recent_saves  # parsed while waiting (_parse_ahead)
        sys.addaudithook(self._on_audit)

    def _on_audit(self, event: str, args: tuple[Any, ...]) -> None:
        # Audit hooks cannot be removed: after the gate this is one comparison per event.
        if not self.watching_opens or event != "open" or not args:
            return
        path = args[0]
        if isinstance(path, str) and self.files.relative(path) is not None:
            self.opened.add(os.path.abspath(path))

    # -- hooks: the gate is the first of these to run ------------------------------------

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_load_initial_conftests(
        self, early_config: pytest.Config
    ) -> Generator[None, Any, None]:
        if self.early:
            self.config = early_config
            self.wait()
        yield

    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_header(self, config: pytest.Config) -> None:
        self.wait()

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> Generator[None, Any, None]:
        self.wait()
        yield

    # -- the gate ------------------------------------------------------------------------

    def work_ahead(self, job: Callable[[], None]) -> None:
        """Have `job` run while the gate waits, before its release (not if already released).

        For the session's plugins: selection reads the data file's rows this way.
        """
        if self.released_ns is None:
            self.jobs.append(job)

    def wait(self) -> None:
        """Block until the server sends a command; exit if it never will or we are stale."""
        if self.released:
            return
        # Nothing imports or opens a project file while this process waits (the
        # preparing is unobserved): the set is taken now, off the release's path.
        loaded = self.loaded_files()
        self._load_code_ahead(loaded)
        for job in self.jobs:
            if not self._server_wrote():  # else the run does it after the release, as it would
                job()
        self._parse_ahead()
        self.announce()
        while True:
            line = self._read_line()
            if not line:
                os._exit(0)  # the server dropped this standby (or died)
            try:
                message = standby_wire.decode(line)
            except ReleaseError as exc:
                print(f"testmon-watch standby: bad release line ({exc})", file=sys.stderr)
                os._exit(StandbyExit.STALE)
            if isinstance(message, Release):
                release = message
                break
            self._prepare(message.paths)
        self.released_ns = time.time_ns()
        self.watching_opens = False
        reason = self.stale_reason(loaded)
        if reason is not None:
            print(f"testmon-watch standby: {reason}; a fresh child runs instead", file=sys.stderr)
            os._exit(StandbyExit.STALE)
        self.released = True
        self.on_release(release)

    def _prepare(self, paths: tuple[str, ...]) -> None:
        """Parse and compile files being saved while the save settles.

        The parse is the engine's (core.changes.prepare), the bytecode the code
        cache's (worker.code_cache.compile_ahead): both keyed by content.

        Reading them is not this standby's early work: not an open that makes
        it stale, and no test's dependency.
        """
        root = Path(self.files.root)
        with self._not_early_work():
            for relpath in self._in_project(paths):
                prepare(root, relpath)
                if relpath.endswith(".py"):
                    compile_ahead(str(root / relpath))

    def _load_code_ahead(self, loaded: set[str]) -> None:
        """Load the code of the project modules the last run imported, and this one has
        not, into memory (code_cache.load_ahead); stop as soon as the server writes.

        Like `_prepare`, not this standby's early work: the code is keyed by content.
        """
        if self.preload_path is None:
            return
        saved = read_preload_list(self.preload_path)
        with self._not_early_work():
            load_ahead(
                [p for p in saved.rewritten if p not in loaded],
                [p for p in saved.compiled if p not in loaded],
                self.config,
                self._server_wrote,
            )

    def _parse_ahead(self) -> None:
        """Parse the files saved lately as they are now; stop as soon as the server writes.

        The next save of one of them usually changes one function: its parse then
        reuses every other function body's checksum from this one (core.blocks'
        memo), which halves the parse of a large module on the way to the result.
        Like `_prepare`, not this standby's early work.
        """
        root = Path(self.files.root)
        with self._not_early_work():
            for relpath in self._in_project(self.recent_saves):
                if self._server_wrote():
                    return
                prepare(root, relpath)

    def _in_project(self, paths: tuple[str, ...]) -> Iterator[str]:
        """The relative paths among `paths` that name a file of the project, as given."""
        root = Path(self.files.root)
        for relpath in paths:
            if self.files.relative_path(str(root / relpath)) == relpath:
                yield relpath

    @contextmanager
    def _not_early_work(self) -> Iterator[None]:
        """Files read here neither make this standby stale nor are a test's dependency."""
        watching, self.watching_opens = self.watching_opens, False
        try:
            with unobserved():
                yield
        finally:
            self.watching_opens = watching

    def _server_wrote(self) -> bool:
        """Whether a line (or the pipe's end) waits on the control pipe."""
        try:
            return bool(select.select([self.control_fd], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def _read_line(self) -> bytes:
        """The next line from the server; b"" when the pipe closed first."""
        while b"\n" not in self._received:
            try:
                chunk = os.read(self.control_fd, 65536)
            except InterruptedError:
                continue
            if not chunk:
                return b""
            self._received += chunk
        line, _, rest = bytes(self._received).partition(b"\n")
        self._received = bytearray(rest)
        return line + b"\n"

    def loaded_files(self) -> set[str]:
        """Project files this process has imported or opened since the fork."""
        paths = set(self.opened)
        for module in loaded_modules().values():
            path = getattr(module, "__file__", None)
            if isinstance(path, str) and self.files.relative(path) is not None:
                paths.add(os.path.abspath(path))
        return paths

    def stale_reason(self, loaded: set[str]) -> str | None:
        """Why this standby's early work may differ from a fresh child's, or None.

        `loaded`: `loaded_files()`, taken since this process last ran anything.
        """
        missing = self._unloaded_conftest(loaded)
        if missing is not None:
            return f"{self._show(missing)} appeared"
        limit = self.fork_ns - CLOCK_SLACK_NS
        for path in sorted(loaded):
            try:
                st = os.stat(path)
            except OSError:
                return f"{self._show(path)} vanished"
            if max(st.st_mtime_ns, st.st_ctime_ns) >= limit:
                return f"{self._show(path)} changed after the standby started"
        return None

    def _unloaded_conftest(self, loaded: set[str]) -> str | None:
        """A conftest.py pytest would load at start-up now but did not: created since."""
        pm = self.config.pluginmanager if self.config is not None else None
        scanned = getattr(pm, "_dirpath2confmods", None)
        if not isinstance(scanned, dict):
            return "conftest.py (pytest's conftest bookkeeping is unknown)"
        root = Path(self.files.root)
        directories: set[Path] = set()
        for scanned_dir in list(scanned):
            directory = Path(scanned_dir)
            # pytest looked in the directory and its parents (up to the rootdir, its
            # default confcutdir) and, for a start-up anchor, in its test* subfolders.
            directories.add(directory)
            directories.update(p for p in directory.parents if p == root or root in p.parents)
            try:
                directories.update(x for x in directory.glob("test*") if x.is_dir())
            except OSError:
                pass
        for directory in sorted(directories):
            candidate = directory / "conftest.py"
            if candidate.is_file() and os.path.abspath(candidate) not in loaded:
                return str(candidate)
        return None

    def _show(self, path: str) -> str:
        rel = self.files.relative(path)
        return rel if rel is not None else path
