"""Watching the project tree: which paths matter, and when a batch of edits is complete.

`PathFilter` decides which paths are worth watching and `ChangeWatcher` turns
raw file-system events into one `ChangeBatch` per save or burst, holding only
paths whose content changed. What to watch is configured in
`testmon_watch.config`.
"""

from __future__ import annotations

from testmon_watch.watch.filters import PathFilter
from testmon_watch.watch.observer import ChangeBatch, ChangeWatcher

__all__ = [
    "ChangeBatch",
    "ChangeWatcher",
    "PathFilter",
]
