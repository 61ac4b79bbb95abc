"""Report the project files a test opens for reading and the directories it lists.

A JSON fixture or a template read by a test is a dependency just like the code
it runs. CPython raises an audit event for every `open()` / `os.open()`
("open"), `os.listdir` and `os.scandir` (which `pathlib`'s `iterdir`/`glob`,
`os.walk` and `glob` use underneath) and `glob.glob`, so one audit hook sees
them all without patching anything.

Audit hooks cannot be removed, so one hook is installed per process, at the
first `enable()`, and dispatches to the enabled watchers; with none enabled it
costs one global lookup per audit event.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["FileReadWatcher"]

# Compiled and imported code is tracked by the line tracer and the import
# watcher, not as data; the interpreter opens these all the time.
_CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".so", ".pyd")
_PYCACHE = f"{os.sep}__pycache__{os.sep}"
_GLOB_MAGIC = frozenset("*?[")


class FileReadWatcher:
    """Calls `on_read(path)` / `on_list(directory)` for project paths while enabled."""

    def __init__(
        self,
        is_project_path: Callable[[str], bool],
        on_read: Callable[[str], None],
        on_list: Callable[[str], None],
        on_site_read: Callable[[str], None] | None = None,
        on_site_list: Callable[[str], None] | None = None,
    ) -> None:
        self.is_project_path = is_project_path
        self.on_read = on_read
        self.on_list = on_list
        # Reads and listings in the directories installed distributions live in
        # (site-packages), each ending in a separator: set before enable().
        self.site_dirs: tuple[str, ...] = ()
        self.on_site_read = on_site_read
        self.on_site_list = on_site_list

    @property
    def enabled(self) -> bool:
        return self in _enabled

    def enable(self) -> None:
        global _enabled
        _install_hook()
        with _lock:
            if self not in _enabled:
                _enabled = (*_enabled, self)

    def disable(self) -> None:
        global _enabled
        with _lock:
            _enabled = tuple(watcher for watcher in _enabled if watcher is not self)


# Rebound as a whole (never mutated) so the hook reads a consistent tuple
# without taking the lock.
_enabled: tuple[FileReadWatcher, ...] = ()
_lock = threading.Lock()
_hook_installed = False
# Set while this thread is inside the hook: the callbacks and even the path
# functions used here may raise audit events of their own.
_busy = threading.local()


@contextmanager
def unobserved() -> Iterator[None]:
    """The engine's own file operations in this thread: no watcher hears of them.

    Cheaper than letting every watcher decide the path is not a dependency:
    the audit hook returns at its first checks.
    """
    previous = getattr(_busy, "active", False)
    _busy.active = True
    try:
        yield
    finally:
        _busy.active = previous


def _install_hook() -> None:
    global _hook_installed
    with _lock:
        if not _hook_installed:
            sys.addaudithook(_audit_hook)
            _hook_installed = True


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    # Called for every audit event of the process (imports, compile, exec, ...):
    # the cheapest checks come first.
    if not _enabled:
        return
    handler = _HANDLERS.get(event)
    if handler is None:
        return
    try:
        if getattr(_busy, "active", False):
            return
        _busy.active = True
    except Exception:  # noqa: BLE001 - e.g. during interpreter shutdown
        return
    try:
        handler(args)
    except Exception:  # noqa: BLE001 - a failing hook would fail the user's open()
        pass
    finally:
        _busy.active = False


def _on_open(args: tuple[Any, ...]) -> None:
    path, mode, flags = args
    if isinstance(path, int):
        return
    # flags are the os.open() flags in both cases (open() computes them from
    # its mode), so write-only is one test for builtin open and os.open.
    if isinstance(flags, int):
        if flags & os.O_ACCMODE == os.O_WRONLY:
            return
    elif isinstance(mode, str) and "r" not in mode and "+" not in mode:
        return
    name = _text_path(path)
    if name is None or name.endswith(_CODE_SUFFIXES) or _PYCACHE in name:
        return
    absolute = _absolute(name)
    for watcher in _enabled:
        if watcher.is_project_path(absolute):
            # os.open() of a directory (os.fwalk, shutil.rmtree) reads
            # nothing; a stat, but only for project paths.
            if os.path.isdir(absolute):
                return
            watcher.on_read(absolute)
        elif watcher.on_site_read is not None and absolute.startswith(watcher.site_dirs):
            watcher.on_site_read(absolute)


def _on_list(args: tuple[Any, ...]) -> None:
    path = args[0] if args else None
    if isinstance(path, int):
        return
    name = "." if path is None else _text_path(path)
    if name is None:
        return
    _report_listing(_absolute(name))


def _on_glob(args: tuple[Any, ...]) -> None:
    pattern, _recursive, root_dir, dir_fd = args
    name = _text_path(pattern)
    if name is None:
        return
    base = _glob_base(name)
    if not os.path.isabs(base):
        if root_dir is not None:
            root = _text_path(root_dir)
            if root is None:
                return
            base = os.path.join(root, base)
        elif dir_fd is not None:
            # Relative to an open directory we cannot name cheaply.
            return
    _report_listing(_absolute(base))


def _report_listing(directory: str) -> None:
    for watcher in _enabled:
        if watcher.is_project_path(directory):
            watcher.on_list(directory)
        elif watcher.on_site_list is not None and os.path.join(directory, "").startswith(
            watcher.site_dirs
        ):
            watcher.on_site_list(directory)


def _glob_base(pattern: str) -> str:
    """The directory part of a glob pattern before its first wildcard."""
    head = os.path.dirname(pattern)
    while head and _GLOB_MAGIC.intersection(head):
        head = os.path.dirname(head)
    return head or "."


def _text_path(path: Any) -> str | None:
    if isinstance(path, str):
        return path
    if isinstance(path, bytes):
        return os.fsdecode(path)
    if isinstance(path, os.PathLike):
        value = os.fspath(path)
        return value if isinstance(value, str) else os.fsdecode(value)
    return None


def _absolute(path: str) -> str:
    if os.path.isabs(path):
        return os.path.normpath(path)
    return os.path.normpath(os.path.join(os.getcwd(), path))


_HANDLERS: dict[str, Callable[[tuple[Any, ...]], None]] = {
    "open": _on_open,
    "os.listdir": _on_list,
    "os.scandir": _on_list,
    # glob.glob raises "glob.glob" and, right after, "glob.glob/2" with the
    # same pattern plus root_dir and dir_fd (3.10+, our minimum): handling
    # only the latter reports each call once, against the right directory.
    "glob.glob/2": _on_glob,
}
