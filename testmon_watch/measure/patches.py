"""Small wrappers for what no hook reports: modules loaded by name, files found missing, threads.

`importlib.import_module` of an already imported module runs no code and
raises no audit event; `os.stat` of a missing file raises none either. Both
matter for selection: the second test that loads a module by name depends on
it, and a test that checks `os.path.exists("override.json")` depends on that
file appearing. `threading.Thread.start` is wrapped to learn which test
started a thread (the recorder credits the thread's lines to it) and to tell
the tracer before the thread runs. The wrappers cost one Python call each and
are removed again by `uninstall()`. An error passing through one leaves
without the wrapper's frame (measure/frames.py): tracebacks read as without
the plugin.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.metadata
import os
import pathlib
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from testmon_watch.measure.frames import hide_own_frame, importlib_like

# Python 3.10's pathlib does not look os.stat up when called: Path.stat (and so
# exists(), is_file(), ...) goes through an accessor object that holds the
# os.stat of import time. The wrapper is set on that object too (3.11+ has none).
_PATHLIB_ACCESSOR: object | None = getattr(pathlib, "_normal_accessor", None)


ThreadCallback = Callable[[threading.Thread], None]


class ModulePatches:
    """Wraps `importlib.import_module`, `os.stat` and `threading.Thread.start` while installed.

    `on_thread_start(thread)` is called just before a thread starts, and
    `on_thread_started(thread)` once it has (its `ident` is known), both in the
    thread that starts it.
    """

    def __init__(
        self,
        on_imported: Callable[[ModuleType], None],
        on_missing: Callable[[str], None],
        on_thread_start: ThreadCallback | None = None,
        on_thread_started: ThreadCallback | None = None,
    ) -> None:
        self.on_imported = on_imported
        self.on_missing = on_missing
        self.on_thread_start = on_thread_start
        self.on_thread_started = on_thread_started
        self._original_import: Callable[..., ModuleType] | None = None
        self._original_stat: Callable[..., os.stat_result] | None = None
        self._stat: Callable[..., os.stat_result] | None = None
        self._original_start: Callable[[threading.Thread], None] | None = None

    def install(self) -> None:
        if self._original_import is not None:
            return
        original_import = self._original_import = importlib.import_module
        original_stat = self._original_stat = os.stat
        on_imported, on_missing = self.on_imported, self.on_missing

        @importlib_like
        def import_module(name: str, package: str | None = None) -> ModuleType:
            __tracebackhide__ = True  # for pytest, where frames.py cannot help (3.10)
            try:
                module = original_import(name, package)
            except BaseException as exc:
                hide_own_frame(exc)
                raise
            try:
                on_imported(module)
            except Exception:  # noqa: BLE001 - recording must never break the import
                pass
            return module

        def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            __tracebackhide__ = True  # for pytest, where frames.py cannot help (3.10)
            try:
                return original_stat(path, *args, **kwargs)
            except BaseException as exc:
                hide_own_frame(exc)
                if (
                    isinstance(exc, FileNotFoundError)
                    and isinstance(path, (str, os.PathLike))
                    and kwargs.get("dir_fd") is None
                ):
                    try:
                        on_missing(os.path.abspath(os.fspath(path)))
                    except Exception:  # noqa: BLE001 - recording must never break the stat
                        pass
                raise

        import_module.__wrapped__ = original_import  # type: ignore[attr-defined]
        stat.__wrapped__ = original_stat  # type: ignore[attr-defined]
        importlib.import_module = import_module
        os.stat = self._stat = stat
        if _PATHLIB_ACCESSOR is not None:
            vars(_PATHLIB_ACCESSOR)["stat"] = stat
        if self.on_thread_start is not None or self.on_thread_started is not None:
            self._install_thread_start()

    def _install_thread_start(self) -> None:
        original_start = self._original_start = threading.Thread.start
        before, after = self.on_thread_start, self.on_thread_started

        def start(thread: threading.Thread) -> None:
            __tracebackhide__ = True  # for pytest, where frames.py cannot help (3.10)
            if before is not None:
                try:
                    before(thread)
                except Exception:  # noqa: BLE001 - recording must never break the thread
                    pass
            try:
                original_start(thread)
            except BaseException as exc:
                hide_own_frame(exc)
                raise
            if after is not None:
                try:
                    after(thread)
                except Exception:  # noqa: BLE001 - recording must never break the thread
                    pass

        start.__wrapped__ = original_start  # type: ignore[attr-defined]
        start.__doc__ = original_start.__doc__
        threading.Thread.start = start  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        original_import, original_stat = self._original_import, self._original_stat
        if original_import is not None:
            if _unwrapped(importlib.import_module) is original_import:
                importlib.import_module = original_import
            self._original_import = None
        if original_stat is not None:
            if _unwrapped(os.stat) is original_stat:
                os.stat = original_stat
            if _PATHLIB_ACCESSOR is not None and vars(_PATHLIB_ACCESSOR).get("stat") is self._stat:
                del vars(_PATHLIB_ACCESSOR)["stat"]
            self._original_stat = self._stat = None
        original_start = self._original_start
        if original_start is not None:
            if _unwrapped(threading.Thread.start) is original_start:
                threading.Thread.start = original_start  # type: ignore[method-assign,assignment]
            self._original_start = None


class InstalledPatches:
    """Wraps `builtins.__import__` and importlib.metadata's path finder while installed.

    `on_import_statement(name)` for every absolute import statement run, and
    `on_distribution_query(name)` for every question to importlib.metadata
    (None: all distributions). Used by the recorders of the pytest process and
    of child processes (measure/installed_use.py turns them into distributions).
    """

    def __init__(
        self,
        on_import_statement: Callable[[str], None],
        on_distribution_query: Callable[[str | None], None],
    ) -> None:
        self.on_import_statement = on_import_statement
        self.on_distribution_query = on_distribution_query
        self._original_builtin_import: Callable[..., ModuleType] | None = None
        self._original_find_distributions: Any = None

    def install(self) -> None:
        if self._original_builtin_import is None:
            self._install_builtin_import(self.on_import_statement)
            self._install_distribution_query(self.on_distribution_query)

    def _install_builtin_import(self, on_import: Callable[[str], None]) -> None:
        """Every absolute `import x` / `from x import y` run, cached module or not.

        An import statement of a module imported before runs none of its code and
        no import hook: without this the second test that imports an installed
        package inside a function would not depend on it.
        """
        original = self._original_builtin_import = builtins.__import__

        @importlib_like
        def __import__(  # noqa: A001, N807 - the builtin it stands in for, by its name
            name: str,
            globals: Any = None,  # noqa: A002
            locals: Any = None,  # noqa: A002
            fromlist: Any = (),
            level: int = 0,
        ) -> ModuleType:
            __tracebackhide__ = True  # for pytest, where frames.py cannot help (3.10)
            try:
                module = original(name, globals, locals, fromlist, level)
            except BaseException as exc:
                hide_own_frame(exc)
                raise
            if not level:  # a relative import stays inside the importing package
                try:
                    on_import(name)
                except Exception:  # noqa: BLE001 - recording must never break the import
                    pass
            return module

        __import__.__wrapped__ = original  # type: ignore[attr-defined]
        __import__.__doc__ = original.__doc__
        builtins.__import__ = __import__

    def _install_distribution_query(self, on_query: Callable[[str | None], None]) -> None:
        """Every question to importlib.metadata: a name, or None for 'all of them'.

        `version()`, `metadata()`, `distribution()`, `distributions()` and
        `entry_points()` all ask the path-based finder through this classmethod
        (3.10 to 3.13). Its directory listings are cached per process, so the
        audit hook alone would miss a second enumeration.
        """
        finder = importlib.metadata.MetadataPathFinder
        original = self._original_find_distributions = vars(finder)["find_distributions"]
        function = original.__func__

        def find_distributions(cls: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            context = args[0] if args else kwargs.get("context")
            try:
                on_query(getattr(context, "name", None) if context is not None else None)
            except Exception:  # noqa: BLE001 - recording must never break the query
                pass
            return function(cls, *args, **kwargs)

        find_distributions.__wrapped__ = function  # type: ignore[attr-defined]
        finder.find_distributions = classmethod(find_distributions)  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        original_builtin_import = self._original_builtin_import
        if original_builtin_import is not None:
            if _unwrapped(builtins.__import__) is original_builtin_import:
                builtins.__import__ = original_builtin_import
            self._original_builtin_import = None
        original_find = self._original_find_distributions
        if original_find is not None:
            finder = importlib.metadata.MetadataPathFinder
            current = vars(finder).get("find_distributions")
            if _unwrapped(getattr(current, "__func__", None)) is original_find.__func__:
                finder.find_distributions = original_find  # type: ignore[method-assign]
            self._original_find_distributions = None


def _unwrapped(function: object) -> object:
    """The function our wrapper wraps, or the function itself when it is not ours."""
    return getattr(function, "__wrapped__", function)
