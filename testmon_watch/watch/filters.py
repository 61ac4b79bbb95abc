"""Decide which project paths are worth watching: built-in noise, .gitignore, user globs.

Paths are project-relative and '/'-separated (`pkg/mod.py`, never `./pkg/mod.py`).
The order of precedence, strongest first:

1. version-control directories (`.git`, `.hg`, `.svn`): always ignored;
2. `include` globs: a path they match is watched whatever else says;
3. built-in noise (caches, virtualenvs, editor swap/backup files), the user's
   `ignore` globs, `.git/info/exclude`, the root `.gitignore` and nested ones.

All globs use gitignore syntax (pathspec's gitwildmatch), relative to the root.
As in git, a file below an ignored directory cannot be re-included by a
`.gitignore` negation; only an `include` glob can reach into it.

The filter is called from the watchdog thread and the watcher's own thread; its
caches are plain dicts whose single get/set operations are atomic, and a lost
race only means one decision is computed twice.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pathspec import GitIgnoreSpec

# Never watched, and no `include` glob can change that: a commit or checkout
# rewrites thousands of files in there.
VCS_DIRS = frozenset({".git", ".hg", ".svn"})

# Directory names that hold tool output or installed packages, never project sources.
IGNORED_DIR_NAMES = frozenset(
    {
        ".venv",
        "venv",
        "env",
        ".tox",
        ".nox",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".hypothesis",
        "node_modules",
    }
)

# Basename globs for files (and directories) that are tool output or editor noise.
IGNORED_NAME_GLOBS = (
    "*.egg-info",
    "*.pyc",
    "*.pyo",
    ".testmondata*",  # our own database and its -wal/-shm companions
    ".coverage",  # coverage data; `.coveragerc` (configuration) stays watched
    ".coverage.*",
    # vim: swap files, backups, and the file it writes to test that a directory is writable
    ".*.sw?",
    "*.swp",
    "*~",
    "4913",
    # emacs: autosave and lock files
    "#*#",
    ".#*",
    # JetBrains "safe write"
    "*___jb_tmp___",
    "*___jb_old___",
    # generic temporaries and leftovers
    "*.tmp",
    "*.bak",
    "*.orig",
    ".~lock.*",  # LibreOffice
    ".goutputstream-*",  # gedit
    "*.kate-swp",
    ".DS_Store",
)

_NOISE = re.compile("|".join(fnmatch.translate(glob) for glob in IGNORED_NAME_GLOBS))
_GLOB_CHARS = frozenset("*?[")


def _spec(lines: Iterable[str]) -> GitIgnoreSpec | None:
    patterns = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return GitIgnoreSpec.from_lines(patterns) if patterns else None


def _include_reach(patterns: Sequence[str]) -> tuple[bool, list[tuple[str, ...]]]:
    """Where `include` globs can match: (anywhere, literal directory prefixes).

    An ignored directory may only be skipped as a whole when no include glob can
    match below it. Unanchored globs (`*.gen.py`) can match at any depth, so they
    keep every directory open; anchored ones (`build/gen/**`) only the directories
    on their literal prefix.
    """
    anywhere = False
    prefixes: list[tuple[str, ...]] = []
    for raw in patterns:
        pattern = raw.strip()
        if not pattern or pattern.startswith(("#", "!")):
            continue  # a negation only narrows what include matches
        anchored = pattern.startswith("/")
        pattern = pattern.strip("/")
        if not anchored and "/" not in pattern:
            anywhere = True
            continue
        literal: list[str] = []
        for part in pattern.split("/"):
            if _GLOB_CHARS.intersection(part):
                break
            literal.append(part)
        if not literal:
            anywhere = True
        else:
            prefixes.append(tuple(literal))
    return anywhere, prefixes


class PathFilter:
    """Which files under `root` the watcher cares about."""

    def __init__(self, root: Path, include: Sequence[str] = (), ignore: Sequence[str] = ()) -> None:
        self.root = Path(os.path.abspath(root))
        self._root_str = str(self.root)
        self._include = _spec(include)
        self._include_anywhere, self._include_prefixes = _include_reach(include)
        self._ignore = _spec(ignore)
        # dir relpath -> "this directory or one of its parents is ignored" (include aside)
        self._blocked_dirs: dict[str, bool] = {}
        # dir relpath ('' for the root) -> the spec of the .gitignore found there
        self._gitignores: dict[str, GitIgnoreSpec | None] = {}

    def invalidate(self) -> None:
        """Forget cached decisions: a .gitignore, .git/info/exclude or pyvenv.cfg changed."""
        self._blocked_dirs = {}
        self._gitignores = {}

    @staticmethod
    def affects_decisions(relpath: str) -> bool:
        """True when a change to this file can change what the filter decides."""
        name = relpath.rpartition("/")[2]
        return name in (".gitignore", "pyvenv.cfg") or relpath == ".git/info/exclude"

    def ignored(self, relpath: str) -> bool:
        """True when changes to the file at `relpath` must not trigger anything."""
        if not relpath or VCS_DIRS.intersection(relpath.split("/")):
            return True
        if self._include is not None and self._include.match_file(relpath):
            return False
        parent, _, name = relpath.rpartition("/")
        if parent and self._blocked(parent):
            return True
        return self._own_ignored(relpath, name, is_dir=False)

    def is_dir_ignored(self, relpath: str) -> bool:
        """True when nothing below the directory can be watched, so it may be skipped whole.

        A directory that is ignored itself but may hold files an `include` glob
        matches is not skipped; `ignored()` then decides file by file.
        """
        if not relpath:
            return False
        if VCS_DIRS.intersection(relpath.split("/")):
            return True
        return self._blocked(relpath) and not self._include_may_reach(relpath)

    def walk(self, under: str = "") -> Iterator[str]:
        """Relpaths of the watched regular files below `under` ('' for the whole tree).

        Symlinked directories are not followed (neither does the native observer),
        which also keeps link cycles harmless.
        """
        stack = [under]
        while stack:
            directory = stack.pop()
            path = os.path.join(self._root_str, directory) if directory else self._root_str
            try:
                entries = list(os.scandir(path))
            except OSError:
                continue  # vanished or unreadable: nothing to watch in there
            for entry in entries:
                rel = f"{directory}/{entry.name}" if directory else entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if not self.is_dir_ignored(rel):
                            stack.append(rel)
                        continue
                    if not entry.is_file():
                        continue
                except OSError:
                    continue
                if not self.ignored(rel):
                    yield rel

    # -- decisions ---------------------------------------------------------------------------

    def _blocked(self, directory: str) -> bool:
        hit = self._blocked_dirs.get(directory)
        if hit is None:
            parent, _, name = directory.rpartition("/")
            hit = bool(parent and self._blocked(parent)) or self._own_ignored(
                directory, name, is_dir=True
            )
            self._blocked_dirs[directory] = hit
        return hit

    def _own_ignored(self, relpath: str, name: str, *, is_dir: bool) -> bool:
        """The path's own verdict, assuming its parent directories are all watched."""
        if name in VCS_DIRS or _NOISE.match(name):
            return True
        if is_dir and (
            name in IGNORED_DIR_NAMES
            or os.path.isfile(os.path.join(self._root_str, relpath, "pyvenv.cfg"))
        ):
            return True
        # gitignore syntax marks directory-only patterns (`build/`) by a trailing slash
        candidate = relpath + "/" if is_dir else relpath
        if self._ignore is not None and self._ignore.match_file(candidate):
            return True
        return self._gitignored(candidate)

    def _gitignored(self, candidate: str) -> bool:
        """Verdict of the .gitignore files from the root down to the path's directory.

        As in git, the deepest file with a matching pattern decides, and inside one
        file the last matching pattern (a `!negation` included) decides.
        """
        verdict: bool | None = None
        bases = [""]
        parts = candidate.rstrip("/").split("/")[:-1]
        bases.extend("/".join(parts[: i + 1]) for i in range(len(parts)))
        for base in bases:
            spec = self._gitignore_at(base)
            if spec is None:
                continue
            result = spec.check_file(candidate[len(base) + 1 :] if base else candidate)
            if result.include is not None:
                verdict = result.include
        return bool(verdict)

    def _gitignore_at(self, base: str) -> GitIgnoreSpec | None:
        if base in self._gitignores:
            return self._gitignores[base]
        lines: list[str] = []
        sources = [os.path.join(self._root_str, base, ".gitignore")]
        if not base:
            # lowest priority first: later lines win inside one spec
            sources.insert(0, os.path.join(self._root_str, ".git", "info", "exclude"))
        for source in sources:
            try:
                with open(source, encoding="utf-8", errors="replace") as handle:
                    lines.extend(handle.read().splitlines())
            except OSError:
                continue  # no such file (the usual case) or unreadable
        spec = _spec(lines)
        self._gitignores[base] = spec
        return spec

    def _include_may_reach(self, directory: str) -> bool:
        if self._include is None:
            return False
        if self._include_anywhere:
            return True
        parts = tuple(directory.split("/"))
        for prefix in self._include_prefixes:
            n = min(len(prefix), len(parts))
            if parts[:n] == prefix[:n]:
                return True
        return False
