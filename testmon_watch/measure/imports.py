"""Tell when the body of a project module starts and stops running.

A module body runs once per process, at its first import, and whatever it
executes (class bodies, decorators, `TABLE = build()`) belongs to an
`import:<path>` unit, not to the test that happened to trigger the import.
`ImportWatcher` wraps `exec_module` of the loaders that run project code
(`SourceFileLoader`, plus extra loader classes such as pytest's
`AssertionRewritingHook`, which loads test modules and conftest.py) and calls
`on_enter(path)` before and `on_exit(path)` after the body of every project
module. Imports made while a body runs nest naturally.

The callbacks must not raise: they run inside the user's import statement.
"""

from __future__ import annotations

import importlib.machinery
import os
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from testmon_watch.measure.frames import hide_own_frame, importlib_like

__all__ = ["ImportWatcher"]

ExecModule = Callable[[Any, ModuleType], Any]

_MARK = "__testmon_watch_wraps__"


class _Patch:
    """One class whose `exec_module` we replaced, and how to put it back."""

    def __init__(self, cls: type, own: ExecModule | None) -> None:
        self.cls = cls
        # The function found in the class's own __dict__, or None when
        # exec_module was inherited: then uninstall deletes our attribute
        # instead of pinning the inherited function onto the class.
        self.own = own


class ImportWatcher:
    """Calls `on_enter(path)` / `on_exit(path)` around project module bodies."""

    def __init__(
        self,
        is_project_file: Callable[[str], bool],
        on_enter: Callable[[str], None],
        on_exit: Callable[[str], None],
    ) -> None:
        self._is_project_file = is_project_file
        self._on_enter = on_enter
        self._on_exit = on_exit
        self._patches: list[_Patch] = []
        # Paths seen so far -> absolute path if a project file, else None.
        # Loaders call exec_module for every import of non-project modules
        # too (the stdlib, site-packages), so the answer is cached.
        self._project_path: dict[str, str | None] = {}
        # Modules whose body is being run by one of our wrappers, per thread:
        # a subclass's exec_module calling super().exec_module() reaches a
        # second wrapper for the same module, which must not enter twice.
        self._running = threading.local()

    @property
    def installed(self) -> bool:
        return bool(self._patches)

    def install(self, extra_loader_classes: Sequence[type] = ()) -> None:
        """Wrap `SourceFileLoader.exec_module` and each extra class's; idempotent."""
        for cls in (importlib.machinery.SourceFileLoader, *extra_loader_classes):
            if any(patch.cls is cls for patch in self._patches):
                continue
            current = getattr(cls, "exec_module", None)
            if current is None:
                raise TypeError(f"{cls.__qualname__} has no exec_module to wrap")
            if getattr(current, _MARK, None) is self:
                # Inherited from a class we already wrapped.
                continue
            own = cls.__dict__.get("exec_module")
            setattr(cls, "exec_module", self._wrap(current))  # noqa: B010 - `type` has no typed exec_module
            self._patches.append(_Patch(cls, own))

    def uninstall(self) -> None:
        """Put every wrapped `exec_module` back."""
        # Reverse order, so a subclass is restored before its base.
        while self._patches:
            patch = self._patches.pop()
            if patch.own is None:
                if "exec_module" in patch.cls.__dict__:
                    delattr(patch.cls, "exec_module")
            else:
                setattr(patch.cls, "exec_module", patch.own)  # noqa: B010

    def _project_file(self, module: ModuleType) -> str | None:
        spec = getattr(module, "__spec__", None)
        origin = getattr(spec, "origin", None) or getattr(module, "__file__", None)
        if not isinstance(origin, str):
            return None
        try:
            return self._project_path[origin]
        except KeyError:
            pass
        path = origin if os.path.isabs(origin) else os.path.abspath(origin)
        result = path if self._is_project_file(path) else None
        self._project_path[origin] = result
        return result

    def _wrap(self, original: ExecModule) -> ExecModule:
        watcher = self

        @importlib_like
        def exec_module(loader: Any, module: ModuleType) -> Any:
            # Any error of the module's body leaves without this frame (see
            # measure/frames.py): tracebacks read as without testmon-watch.
            __tracebackhide__ = True  # for pytest, where frames.py cannot help (3.10)
            try:
                path = watcher._project_file(module)
                if path is None:
                    return original(loader, module)
                running: set[int] | None = getattr(watcher._running, "modules", None)
                if running is None:
                    running = watcher._running.modules = set()
                key = id(module)
                if key in running:
                    return original(loader, module)
                running.add(key)
                watcher._on_enter(path)
                try:
                    return original(loader, module)
                finally:
                    running.discard(key)
                    watcher._on_exit(path)
            except BaseException as exc:
                hide_own_frame(exc)
                raise

        setattr(exec_module, _MARK, self)
        exec_module.__wrapped__ = original  # type: ignore[attr-defined]
        exec_module.__name__ = "exec_module"
        exec_module.__qualname__ = getattr(original, "__qualname__", "exec_module")
        return exec_module
