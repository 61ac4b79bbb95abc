"""Our cache folder outside every project, shared by all of them.

`$TESTMON_WATCH_CACHE_DIR`, else `testmon-watch/` in the XDG cache home: compiled
test modules (worker/code_cache.py) and what installed distributions' metadata
says (core/distribution_cache.py). Everything in it can be deleted at any time.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "TESTMON_WATCH_CACHE_DIR"


def cache_home() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "testmon-watch"
