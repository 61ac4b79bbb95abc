"""Which absolute paths belong to the project: traced, recorded, and named by relative path."""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

# Directory names that never hold project code even when they sit inside the root.
EXCLUDED_DIR_NAMES = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".venv",
        "venv",
        "env",
        ".env",
        "__pycache__",
        "site-packages",
        "dist-packages",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "node_modules",
        "build",
        "dist",
        ".eggs",
    }
)


class ProjectFiles:
    """Decides which absolute paths belong to the project (traced and recorded)."""

    def __init__(self, root: Path, extra_excluded: Sequence[str] = ()) -> None:
        self.root = str(root.resolve())
        self.prefix = self.root + os.sep
        excluded = {os.path.realpath(p) + os.sep for p in extra_excluded}
        for name in ("stdlib", "platstdlib", "purelib", "platlib"):
            path = sysconfig.get_paths().get(name)
            if path:
                excluded.add(os.path.realpath(path) + os.sep)
        for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
            excluded.add(os.path.realpath(prefix) + os.sep)
        # Our own code never counts as the project's, even in an editable checkout.
        excluded.add(str(Path(__file__).resolve().parent.parent) + os.sep)
        self.excluded = tuple(p for p in excluded if p != self.prefix)
        self._cache: dict[str, str | None] = {}

    def relative(self, path: str) -> str | None:
        """Project-relative '/'-path of an existing project file, else None."""
        cached = self._cache.get(path, "")
        if cached != "":
            return cached
        result = self._classify(path, must_exist=True)
        self._cache[path] = result
        return result

    def relative_path(self, path: str) -> str | None:
        """Like `relative`, for a path that may not exist (yet): a missing data file."""
        return self._classify(path, must_exist=False)

    def _classify(self, path: str, must_exist: bool) -> str | None:
        if not path or path.startswith("<"):
            return None  # <frozen os>, <string>, <doctest ...>: no file behind it
        absolute = path if os.path.isabs(path) else os.path.abspath(path)
        if not absolute.startswith(self.prefix):
            if absolute.startswith(self.excluded):
                return None  # site-packages, the stdlib: no realpath needed to say no
            absolute = os.path.realpath(absolute)
            if not absolute.startswith(self.prefix):
                return None
        if absolute.startswith(self.excluded) or (must_exist and not os.path.exists(absolute)):
            return None  # also pseudo file names such as editable-install path hooks
        parts = absolute[len(self.prefix) :].split(os.sep)
        if EXCLUDED_DIR_NAMES.intersection(parts[:-1]) or parts[0].startswith(".testmondata"):
            return None  # our own data (database, child-process reports) is no dependency
        return "/".join(parts)

    def is_project(self, path: str) -> bool:
        return self.relative(path) is not None
