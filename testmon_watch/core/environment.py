"""The interpreter and installed packages a run uses, and how they differ from the recorded ones."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata

DEFAULT_ENVIRONMENT = "default"


@dataclass(frozen=True)
class Environment:
    name: str
    python: str
    packages: Mapping[str, str]


def python_identity() -> str:
    """'CPython 3.11.7 (x86_64)': a change of interpreter invalidates everything."""
    return f"{platform.python_implementation()} {platform.python_version()} ({platform.machine()})"


_packages_cache: dict[tuple[tuple[str, int], ...], dict[str, str]] = {}


_holds_metadata: dict[tuple[str, int], bool] = {}


def _path_state() -> tuple[tuple[str, int], ...]:
    """The sys.path directories that hold package metadata, with their mtimes.

    Installing or removing a package changes such a directory's mtime. Other
    entries (the project root that pytest's `pythonpath` adds, whose mtime
    changes whenever a file is created there) are left out of the key.
    """
    if len(_holds_metadata) > 4096:
        _holds_metadata.clear()
    state = []
    for entry in sys.path:
        try:
            key = (entry, os.stat(entry or ".").st_mtime_ns)
        except OSError:
            continue
        holds = _holds_metadata.get(key)
        if holds is None:
            try:
                names = os.listdir(entry or ".")
            except OSError:
                names = []
            holds = _holds_metadata[key] = any(
                n.endswith((".dist-info", ".egg-info")) for n in names
            )
        if holds:
            state.append(key)
    return tuple(state)


def installed_packages() -> dict[str, str]:
    """{normalised distribution name: version} of everything importable.

    Scanning every dist-info costs tens of milliseconds; the warm worker asks
    before every run, so the answer is kept while no sys.path directory changed.
    """
    key = _path_state()
    cached = _packages_cache.get(key)
    if cached is None:
        cached = _packages_cache[key] = _scan_packages()
    return dict(cached)


def _scan_packages() -> dict[str, str]:
    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if not name:
            continue
        key = name.lower().replace("_", "-").replace(".", "-")
        packages.setdefault(key, dist.version)  # first on sys.path wins, as for imports
    return packages


def current_environment(name: str = DEFAULT_ENVIRONMENT) -> Environment:
    return Environment(name, python_identity(), installed_packages())


def describe_difference(
    old_python: str, old_packages: Mapping[str, str], new: Environment
) -> str | None:
    """One line naming what changed, or None when nothing did."""
    if old_python != new.python:
        return f"Python {old_python} -> {new.python}"
    changes = []
    for name in sorted(set(old_packages) | set(new.packages)):
        before, after = old_packages.get(name), new.packages.get(name)
        if before == after:
            continue
        if before is None:
            changes.append(f"{name} {after} installed")
        elif after is None:
            changes.append(f"{name} {before} removed")
        else:
            changes.append(f"{name} {before} -> {after}")
    if not changes:
        return None
    shown = ", ".join(changes[:3])
    return shown + (f" and {len(changes) - 3} more" if len(changes) > 3 else "")


if __name__ == "__main__":  # pragma: no cover - manual inspection
    env = current_environment()
    print(env.python, len(env.packages), "packages", file=sys.stderr)
