"""Attributes executed lines, file reads and imports to the execution context that caused them.

Threads. The home thread (where pytest runs) credits its lines to the context
on top of the stack. Another thread's lines go, by the tracer's split
(`LineTracer.take_by_thread`):

- to the context on top of the stack when they ran, unless that is the
  session (which every test depends on: between tests, at the start and end);
- and to the thread's *owner*, wherever they ran: the test whose own code
  (setup, call, teardown) started the thread, or the owner of the thread that
  started it. Lines run after the owner's recording was handed over are added
  to it at the end (`late_executions`, stored by `RunStore.merge_late`);
- a thread without an owner (started by a wider-scoped fixture, an import, a
  hook) that runs while no test runs: to the next test that starts, the first
  that can see what it did. After the last test: to nobody.

So editing code that only a test's background thread runs reruns that test
and the tests it ran during, never the whole suite, whatever the timing.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from testmon_watch.core.distributions import site_dirs
from testmon_watch.core.keys import SESSION, ContextKey, ContextKind
from testmon_watch.core.records import Execution
from testmon_watch.measure.children import (
    ChildRecording,
    become_forked_child,
    install_pool_hook,
    record_forks,
)
from testmon_watch.measure.file_reads import FileReadWatcher
from testmon_watch.measure.frames import called_by_importlib
from testmon_watch.measure.imports import ImportWatcher
from testmon_watch.measure.installed_use import InstalledUse
from testmon_watch.measure.patches import InstalledPatches, ModulePatches
from testmon_watch.measure.project_files import ProjectFiles
from testmon_watch.measure.tracer import LineData, LineTracer, ThreadLines, make_tracer


class Recorder:
    """A stack of contexts fed by the line tracer, the import watcher and the file-read hook."""

    def __init__(
        self,
        files: ProjectFiles,
        ignored_reads: Sequence[str] = (),
        on_import_done: Callable[[Execution], None] | None = None,
        children_dir: Path | None = None,
    ) -> None:
        self.files = files
        self.ignored_reads = {files.relative(p) for p in ignored_reads}
        self.stack: list[Execution] = [Execution(SESSION)]
        self.on_import_done = on_import_done
        # Told the relative path of every project module about to run its body
        # (the plugin has the parse helper start on it); must not raise.
        self.on_project_import: Callable[[str], None] | None = None
        self.finished_imports: list[Execution] = []
        self._tracer: LineTracer = make_tracer(files.is_project)
        self._imports = ImportWatcher(files.is_project, self._enter_import, self._exit_import)
        self._reads = FileReadWatcher(
            files.is_project, self._on_read, self._on_list, self._on_site_read, self._on_site_list
        )
        self._installed = InstalledUse(files.root, ())
        self.running = False
        self.paused = False
        self._import_windows: list[object] = []
        self._patches = ModulePatches(
            self._on_imported,
            self._on_missing,
            self._on_thread_start,
            self._on_thread_started,
        )
        self._installed_patches = InstalledPatches(
            self._on_import_statement, self._on_distribution_query
        )
        # Threads: the thread pytest runs in, each other thread's owner (a test
        # key, or None) by thread id, lines of threads without an owner run
        # while no test ran (the next test's), and lines of threads whose owner
        # was already handed over (merged into it at the end).
        self._home_thread = threading.get_ident()
        self._owner_of_thread: weakref.WeakKeyDictionary[threading.Thread, ContextKey | None] = (
            weakref.WeakKeyDictionary()
        )
        self._thread_owners: dict[int, ContextKey | None] = {}
        self._for_next_test: dict[str, set[int]] = {}
        self._late_threads: dict[ContextKey, Execution] = {}
        self.children = (
            ChildRecording(Path(files.root), children_dir) if children_dir is not None else None
        )

    # -- lifecycle -------------------------------------------------------

    def start(self, extra_loader_classes: Sequence[type] = ()) -> None:
        self._home_thread = threading.get_ident()
        self._imports.install(extra_loader_classes)
        self._reads.site_dirs = self._installed.site_dirs = site_dirs(self.files.root)
        self._reads.enable()
        self._tracer.start()
        self._patches.install()
        self._installed_patches.install()
        self.running = True
        if self.children is not None:
            self.children.install()
            self.children.set_context(self.current.key)
            record_forks(self._become_forked_child)
            install_pool_hook()

    def stop(self) -> None:
        if not self.running:
            return
        self._flush()
        self.running = False
        self._tracer.stop()
        self._reads.disable()
        self._imports.uninstall()
        self._patches.uninstall()
        self._installed_patches.uninstall()
        if self.children is not None:
            self.children.uninstall()

    # -- contexts --------------------------------------------------------

    @property
    def current(self) -> Execution:
        return self.stack[-1]

    def push(self, key: ContextKey) -> None:
        self._flush()
        execution = Execution(key)
        self.stack.append(execution)
        if key.kind is ContextKind.TEST and self._for_next_test:
            pending, self._for_next_test = self._for_next_test, {}
            for path, lines in pending.items():
                execution.lines.setdefault(path, set()).update(lines)
        if self.children is not None:
            self.children.set_context(key)

    def pop(self) -> Execution:
        self._flush()
        if len(self.stack) == 1:
            raise RuntimeError("the session context cannot be popped")
        done = self.stack.pop()
        if self.children is not None:
            self.children.set_context(self.current.key)
            self._merge_children(done)
        return done

    def _merge_children(self, execution: Execution) -> None:
        assert self.children is not None
        data = self.children.collect(execution.key)
        for path, lines in data.lines.items():
            execution.lines.setdefault(path, set()).update(lines)
        execution.reads |= data.reads
        execution.listings |= data.listings
        execution.distributions |= data.distributions
        execution.lists_distributions |= data.lists_distributions
        execution.incomplete_children += data.incomplete

    def late_executions(self) -> list[Execution]:
        """At the end: what ran for a context already handed over.

        Children that reported after their context closed (or never did), and
        lines that threads ran for their owner test after it finished.
        """
        self._flush()
        late = list(self._late_threads.values())
        self._late_threads = {}
        if self.children is None:
            return late
        for key, data in self.children.leftover_keys().items():
            late.append(
                Execution(
                    key,
                    data.lines,
                    data.reads,
                    data.listings,
                    set(),
                    data.incomplete,
                    data.distributions,
                    data.lists_distributions,
                )
            )
        return late

    def close_children(self) -> None:
        if self.children is not None:
            self.children.uninstall()
            self.children.cleanup()

    def session(self) -> Execution:
        self._flush()
        return self.stack[0]

    def _flush(self) -> None:
        if not self.running:
            return
        lines, other_threads = self._tracer.take_by_thread()
        if lines:
            self._add_lines(self.stack[-1].lines, lines)
        if other_threads:
            self._credit_threads(other_threads)

    def _add_lines(self, target: dict[str, set[int]], lines: LineData) -> None:
        for path, executed in lines.items():
            rel = self.files.relative(path)
            if rel is not None:
                target.setdefault(rel, set()).update(executed)

    def _credit_threads(self, other_threads: ThreadLines) -> None:
        """Lines of threads other than pytest's: see the module docstring for the rule."""
        current = self.stack[-1]
        for ident, lines in other_threads.items():
            owner = self._owner_by_ident(ident)
            if current.key.kind is not ContextKind.SESSION:
                self._add_lines(current.lines, lines)
            elif owner is None:
                self._add_lines(self._for_next_test, lines)
            if owner is not None and owner != current.key:
                self._add_lines(self._owner_execution(owner).lines, lines)

    def _owner_execution(self, owner: ContextKey) -> Execution:
        """The owner test's execution: still on the stack, or one merged into it at the end."""
        for execution in reversed(self.stack):
            if execution.key == owner:
                return execution
        late = self._late_threads.get(owner)
        if late is None:
            late = self._late_threads[owner] = Execution(owner)
        return late

    # -- callbacks -------------------------------------------------------

    def _enter_import(self, path: str) -> None:
        rel = self.files.relative(path)
        if rel is None:
            return
        if self.on_project_import is not None:
            try:
                self.on_project_import(rel)
            except Exception:  # noqa: BLE001 - never break the user's import
                pass
        if len(self.stack) > 1:  # in the session context, pytest is loading conftest.py files
            self.current.imported.add(rel)
        self.push(ContextKey.import_of(rel))
        # A module body is project code: traced even when pytest imports it in
        # a quiet stretch. (Opened here and closed in _exit_import: a window
        # may end in another frame than it began; see CoverageCTracer._start_window.)
        self._import_windows.append(self.open_window())

    def _exit_import(self, path: str) -> None:
        rel = self.files.relative(path)
        if rel is None:
            return
        if self._import_windows:
            self.close_window(self._import_windows.pop())
        key = self.current.key
        if key.kind is not ContextKind.IMPORT or key.target != rel:
            return
        done = self.pop()
        self.finished_imports.append(done)
        if self.on_import_done is not None:
            self.on_import_done(done)

    def _on_read(self, path: str) -> None:
        if self.paused or self._installed.resolving:
            return
        rel = self.files.relative_path(path)
        if rel is not None and rel not in self.ignored_reads:
            self.current.reads.add(rel)

    def _on_list(self, path: str) -> None:
        # pytest's own directory scans during collection happen in the session
        # context; a listing there is not a dependency of every test.
        if self.paused or self._installed.resolving or len(self.stack) == 1:
            return
        if called_by_importlib():
            return
        rel = self.files.relative(path)
        if rel is not None:
            self.current.listings.add(rel)

    # -- installed distributions (core/distributions.py has the rule) -------------

    def _records_distributions(self) -> bool:
        # The session context is pytest itself (plugins, conftest loading): what it
        # imports or asks is every test's dependency already (core/distributions.py).
        # While resolving, our own reads and imports are nobody's.
        return (
            self.running
            and not self.paused
            and not self._installed.resolving
            and len(self.stack) > 1
        )

    def _on_import_statement(self, name: str) -> None:
        if self._records_distributions():
            owners = self._installed.imported(name)
            if owners:
                self.stack[-1].distributions.update(owners)

    def _on_distribution_query(self, name: str | None) -> None:
        if not self._records_distributions():
            return
        if name is None:
            self.stack[-1].lists_distributions = True
        else:
            self.stack[-1].distributions.update(self._installed.asked(name))

    def _on_site_read(self, path: str) -> None:
        if self._records_distributions():
            self.stack[-1].distributions.update(self._installed.read(path))

    def _on_site_list(self, path: str) -> None:
        # importlib lists site-packages to find modules and distributions: the
        # import and the query are reported as such (above), not as a listing.
        if not self._records_distributions() or called_by_importlib(metadata=True):
            return
        if self._installed.lists_all(path):
            self.stack[-1].lists_distributions = True
        else:
            self.stack[-1].distributions.update(self._installed.read(path))

    def _on_imported(self, module: Any) -> None:
        """`importlib.import_module` returned a module: the current context uses it.

        A module already imported runs no line and triggers no import hook, so
        without this the second test that loads a module by name depends on nothing.
        """
        # In the session context this is pytest itself loading conftest.py files.
        if self.paused or len(self.stack) == 1:
            return
        rel = self.files.relative(getattr(module, "__file__", None) or "")
        if rel is not None:
            self.current.imported.add(rel)

    def _on_thread_start(self, thread: threading.Thread) -> None:
        """Before `thread` runs: note its owner; the tracer keeps its lines apart."""
        if not self.running:
            return
        if threading.get_ident() == self._home_thread:
            key = self.stack[-1].key
            owner = key if key.kind is ContextKind.TEST else None
        else:
            owner = self._owner_by_ident(threading.get_ident())
        # On the object: the thread may start one of its own before we learn its id.
        self._owner_of_thread[thread] = owner
        self._tracer.thread_starting(thread)

    def _on_thread_started(self, thread: threading.Thread) -> None:
        """`thread` runs: its id is known now (and stays known after it ends)."""
        ident = thread.ident
        if self.running and ident is not None:
            # An id of a thread that ended is given to the next one: always overwrite.
            self._thread_owners[ident] = self._owner_of_thread.get(thread)

    def _owner_by_ident(self, ident: int) -> ContextKey | None:
        try:
            return self._thread_owners[ident]
        except KeyError:
            pass
        # Not noted yet: a thread another thread started is still in its start(),
        # or a thread not started by threading.Thread.start while we recorded.
        owner = None
        for thread in threading.enumerate():
            if thread.ident == ident:
                owner = self._owner_of_thread.get(thread)
                break
        self._thread_owners[ident] = owner
        return owner

    def _on_missing(self, path: str) -> None:
        """A stat of a project path that does not exist: creating it later matters."""
        if self.paused or self._installed.resolving or len(self.stack) == 1:
            return
        rel = self.files.relative_path(path)
        if rel is not None and rel not in self.ignored_reads:
            self.current.reads.add(rel)

    @contextmanager
    def pause(self) -> Iterator[None]:
        """Our own file reads (change detection, saving results) are nobody's dependency."""
        previous, self.paused = self.paused, True
        # Nothing of the project runs in here: no trace events either. Called
        # from this generator on both sides, so at the same depth (see suspend).
        token = self._tracer.suspend() if self.running and not previous else None
        try:
            yield
        finally:
            self.paused = previous
            if token is not None:
                self._tracer.resume(token)

    # -- quiet stretches (see LineTracer.quiet) -------------------------------
    #
    # Each pair must be called from one frame: quiet()/unquiet() and
    # open_window()/close_window() in the same function or generator.

    def quiet(self) -> object:
        return self._tracer.quiet() if self.running else None

    def unquiet(self, token: object) -> None:
        self._tracer.unquiet(token)

    def open_window(self) -> object:
        return self._tracer.open_window() if self.running else None

    def close_window(self, token: object) -> None:
        self._tracer.close_window(token)

    def take_finished_imports(self) -> list[Execution]:
        done, self.finished_imports = self.finished_imports, []
        return done

    def _become_forked_child(self) -> None:
        """In a process forked from this one: record for the context current at the fork."""
        if not self.running or self.children is None:
            return
        self.running = False  # this copy of the pytest process records nothing else
        become_forked_child(
            self._tracer, self.current.key, Path(self.files.root), self.children.dir
        )
