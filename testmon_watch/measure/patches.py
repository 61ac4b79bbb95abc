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

import importlib
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


def _unwrapped(function: object) -> object:
    """The function our wrapper wraps, or the function itself when it is not ours."""
    return getattr(function, "__wrapped__", function)
