"""Attributes executed lines, file reads and imports to the execution context that caused them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from testmon_watch.core.keys import SESSION, ContextKey, ContextKind
from testmon_watch.core.records import Execution
from testmon_watch.measure.children import (
    ChildRecording,
    become_forked_child,
    install_pool_hook,
    record_forks,
)
from testmon_watch.measure.file_reads import FileReadWatcher
from testmon_watch.measure.imports import ImportWatcher
from testmon_watch.measure.patches import ModulePatches
from testmon_watch.measure.project_files import ProjectFiles
from testmon_watch.measure.tracer import LineTracer, make_tracer


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
        self._reads = FileReadWatcher(files.is_project, self._on_read, self._on_list)
        self.running = False
        self.paused = False
        self._import_windows: list[object] = []
        self._patches = ModulePatches(self._on_imported, self._on_missing)
        self.children = (
            ChildRecording(Path(files.root), children_dir) if children_dir is not None else None
        )

    # -- lifecycle -------------------------------------------------------

    def start(self, extra_loader_classes: Sequence[type] = ()) -> None:
        self._imports.install(extra_loader_classes)
        self._reads.enable()
        self._tracer.start()
        self._patches.install()
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
        if self.children is not None:
            self.children.uninstall()

    # -- contexts --------------------------------------------------------

    @property
    def current(self) -> Execution:
        return self.stack[-1]

    def push(self, key: ContextKey) -> None:
        self._flush()
        self.stack.append(Execution(key))
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
        execution.incomplete_children += data.incomplete

    def late_children(self) -> list[Execution]:
        """At the end: children that reported after their context closed (or never did)."""
        if self.children is None:
            return []
        late = []
        for key, data in self.children.leftover_keys().items():
            late.append(
                Execution(key, data.lines, data.reads, data.listings, set(), data.incomplete)
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
        lines = self._tracer.take()
        if not lines:
            return
        target = self.stack[-1].lines
        for path, executed in lines.items():
            rel = self.files.relative(path)
            if rel is not None:
                target.setdefault(rel, set()).update(executed)

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
        if self.paused:
            return
        rel = self.files.relative_path(path)
        if rel is not None and rel not in self.ignored_reads:
            self.current.reads.add(rel)

    def _on_list(self, path: str) -> None:
        # pytest's own directory scans during collection happen in the session
        # context; a listing there is not a dependency of every test.
        if self.paused or len(self.stack) == 1 or _called_by_importlib():
            return
        rel = self.files.relative(path)
        if rel is not None:
            self.current.listings.add(rel)

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

    def _on_missing(self, path: str) -> None:
        """A stat of a project path that does not exist: creating it later matters."""
        if self.paused or len(self.stack) == 1:
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


def _called_by_importlib() -> bool:
    """True when the import system is listing a directory (its finder cache), not a test."""
    frame: FrameType | None = sys._getframe(2)
    for _ in range(12):
        if frame is None:
            return False
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False
