"""Stat-only fingerprints of what a warm worker's imports depend on, to know when to recycle.

The server imported pytest, its plugins and third-party packages once; they go
stale when installed packages change (site-packages entries, dist-info names),
when a file of an imported module changes (an editable install, a plugin being
developed), or when pytest's configuration changes (ini files, conftest.py).
Only `os.stat` and directory listings are used, so checking before each run
costs a few milliseconds.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from testmon_watch.measure.loaded import loaded_modules

CONFIG_FILES = (
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
    "conftest.py",
)

Stamp = tuple[int, int] | tuple[str, ...] | None


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def site_dirs() -> list[str]:
    """Directories on sys.path where installers put packages."""
    return sorted(
        {
            p
            for p in sys.path
            if os.path.basename(p.rstrip(os.sep)) in ("site-packages", "dist-packages")
            and os.path.isdir(p)
        }
    )


def _distributions(directory: str) -> tuple[str, ...]:
    try:
        names = os.listdir(directory)
    except OSError:
        return ()
    return tuple(sorted(n for n in names if n.endswith((".dist-info", ".egg-info", ".pth"))))


class Fingerprint:
    """What the worker's imports depend on, and a description of what changed since."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stamps: dict[str, Stamp] = {}
        self.refresh(())

    def _module_files(self) -> set[str]:
        files = set()
        for module in loaded_modules().values():
            path = getattr(module, "__file__", None)
            if isinstance(path, str) and os.path.isabs(path):
                files.add(path)
        return files

    def refresh(self, conftests: Iterable[str]) -> None:
        """Take stamps of the current state (after start-up, or after importing more)."""
        stamps: dict[str, Stamp] = {}
        for directory in site_dirs():
            stamps[f"site:{directory}"] = _stat(directory)
            stamps[f"dists:{directory}"] = _distributions(directory)
        for name in CONFIG_FILES:
            stamps[f"config:{self.root / name}"] = _stat(str(self.root / name))
        for path in conftests:
            stamps[f"config:{path}"] = _stat(path)
        for path in self._module_files():
            stamps[f"module:{path}"] = _stat(path)
        self.stamps = stamps

    def changed(self) -> str | None:
        """A short reason ("pyproject.toml changed") when a stamp differs, else None."""
        for key, old in self.stamps.items():
            kind, _, path = key.partition(":")
            if kind == "dists":
                new: Stamp = _distributions(path)
            else:
                new = _stat(path)
            if new == old:
                continue
            if kind == "dists":
                before = {n for n in old or () if isinstance(n, str)}
                after = {n for n in new or () if isinstance(n, str)}
                added, removed = sorted(after - before), sorted(before - after)
                parts = [f"+{_dist_name(n)}" for n in added] + [
                    f"-{_dist_name(n)}" for n in removed
                ]
                return "installed packages changed: " + ", ".join(parts[:6])
            if kind == "site":
                continue  # reported through "dists" when names differ; else a module stamp
            shown = self._show(path)
            if old is None:
                return f"{shown} appeared"
            if new is None:
                return f"{shown} was deleted"
            return f"{shown} changed" + (" (imported by the worker)" if kind == "module" else "")
        # A site directory whose entries changed without new dist names (a package
        # rewritten in place); reported last so a clearer reason wins.
        for key, old in self.stamps.items():
            kind, _, path = key.partition(":")
            if kind == "site" and _stat(path) != old:
                return f"installed packages changed ({path})"
        return None

    def _show(self, path: str) -> str:
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return path


def _dist_name(entry: str) -> str:
    """'numpy-2.0.1.dist-info' -> 'numpy 2.0.1'."""
    stem = entry.rsplit(".", 1)[0]
    name, _, version = stem.partition("-")
    return f"{name} {version}".strip()


def cache_installed_packages() -> None:
    """Fill `core.environment`'s package cache in the server, so every child inherits it.

    The scan parses every distribution's metadata (tens of milliseconds); core
    keeps its answer while no sys.path directory changes.
    """
    from testmon_watch.core import environment

    environment.installed_packages()
