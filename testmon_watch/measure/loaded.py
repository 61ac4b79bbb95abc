"""A snapshot of `sys.modules` that another import cannot break.

Copying `sys.modules` can meet an import halfway: the garbage collector may run a
finalizer that imports, and another thread may import (jinja2's suite, with trio:
"dictionary changed size during iteration" ended a run after 635 tests). A
snapshot is retried until one copy completes; each try is a C-level dict copy,
so a retry is rare and cheap.
"""

from __future__ import annotations

import sys
from types import ModuleType

_TRIES = 100


def loaded_modules() -> dict[str, ModuleType]:
    """Name -> module of every module loaded now (a copy: safe to iterate)."""
    for _ in range(_TRIES):
        try:
            return dict(sys.modules)
        except RuntimeError:
            continue
    return {}  # never seen: the caller sees no modules rather than the run failing
