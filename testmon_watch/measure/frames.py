"""Keep our wrappers' frames out of the tracebacks of the code they wrap.

The wrappers around `importlib.import_module`, the loaders' `exec_module` and
`os.stat` sit between the user's code and the call that failed, so an error
there (a test module with a syntax error, a missing import) would show a frame
of ours that plain pytest does not. Inside an import chain our frame also
splits CPython's run of `<frozen importlib._bootstrap*>` frames, which it then
cannot trim (`remove_importlib_frames` in Python/import.c only trims runs of
importlib frames).

A wrapper catches the exception, calls `hide_own_frame(exc)` and re-raises it
with a bare `raise`: since Python 3.11 the traceback lives on the exception
and a bare `raise` adds no entry, so unlinking the catching frame's entry
takes it out for good. On 3.10 the interpreter re-raises the traceback it
saved when the handler started, so there this changes nothing; instead
`importlib_like` gives the import wrappers importlib's own file name, so
CPython trims them with the importlib frames around them and pytest's filter
of generated file names drops them (a SyntaxError, which pytest shows
unfiltered, then shows them as importlib's `???` lines).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

__all__ = ["called_by_importlib", "hide_own_frame", "importlib_like"]

_WORKS = sys.version_info >= (3, 11)
_IMPORTLIB_FILE = "<frozen importlib._bootstrap_external>"
F = TypeVar("F", bound=Callable[..., Any])


def importlib_like(wrapper: F) -> F:
    """On Python 3.10, `wrapper` with importlib's file name on its code; else as it is."""
    if not _WORKS:
        wrapper.__code__ = wrapper.__code__.replace(co_filename=_IMPORTLIB_FILE)
    return wrapper


def hide_own_frame(exc: BaseException) -> None:
    """Drop the caller's own entry from `exc`'s traceback before it re-raises `exc`.

    Call it first thing in an `except` clause that ends in a bare `raise`.
    """
    if not _WORKS:
        return
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame is sys._getframe(1):
        exc.__traceback__ = tb.tb_next


_METADATA_DIR = os.path.join("importlib", "metadata", "")


def called_by_importlib(metadata: bool = False) -> bool:
    """True when the import system is listing a directory (its finder cache), not a test.

    Call it from the listing callback itself: it looks from that callback's
    caller up. With `metadata`, importlib.metadata's searches count too.
    """
    frame: FrameType | None = sys._getframe(2)
    for _ in range(12):
        if frame is None:
            return False
        filename = frame.f_code.co_filename
        if filename.startswith("<frozen importlib"):
            return True
        if metadata and (_METADATA_DIR in filename or "importlib_metadata" in filename):
            return True
        frame = frame.f_back
    return False
