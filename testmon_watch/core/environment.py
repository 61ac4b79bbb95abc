"""The interpreter and installed packages a run uses, and how they differ from the recorded ones."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from testmon_watch.core.defaults import DEFAULT_ENVIRONMENT
from testmon_watch.core.reasons import EnvironmentChange, PackageChange

METADATA_SUFFIXES = (".dist-info", ".egg-info")


class UnusualMetadata(Exception):
    """The quick package reader cannot promise importlib.metadata's answer; says why."""


@dataclass(frozen=True)
class Environment:
    name: str
    python: str
    packages: Mapping[str, str]


def python_identity() -> str:
    """'CPython 3.11.7 (x86_64)': a change of interpreter invalidates everything.

    Built from sys and os rather than the platform module, which imports
    subprocess on Python 3.10 (core starts no process); the string is the one
    platform.python_implementation/python_version/machine give.
    """
    implementation = _IMPLEMENTATION_NAMES.get(sys.implementation.name, sys.implementation.name)
    return f"{implementation} {sys.version.split()[0]} ({os.uname().machine})"


_IMPLEMENTATION_NAMES = {
    "cpython": "CPython",
    "pypy": "PyPy",
    "ironpython": "IronPython",
    "jython": "Jython",
}


_packages_cache: dict[tuple[tuple[str, int], ...], dict[str, str]] = {}


_holds_metadata: dict[tuple[str, int], bool] = {}


def metadata_path_state() -> tuple[tuple[str, int], ...]:
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
    key = metadata_path_state()
    cached = _packages_cache.get(key)
    if cached is None:
        cached = _packages_cache[key] = _scan_packages()
    return dict(cached)


def _scan_packages() -> dict[str, str]:
    try:
        return read_installed_packages()
    except UnusualMetadata:
        return _scan_with_importlib_metadata()


def _scan_with_importlib_metadata() -> dict[str, str]:
    # Imported here: importlib.metadata pulls in email, zipfile and csv, which
    # the no-change fast path and the usual run never need.
    from importlib import metadata

    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if not name:
            continue
        key = name.lower().replace("_", "-").replace(".", "-")
        packages.setdefault(key, dist.version)  # first on sys.path wins, as for imports
    return packages


def read_installed_packages(paths: Sequence[str] | None = None) -> dict[str, str]:
    """{normalised name: version} as `importlib.metadata` would give it, in a few milliseconds.

    `paths`: the directories to read, in sys.path order (default: sys.path).

    Mirrors `importlib.metadata.distributions()` for directories on sys.path and
    reads only the Name and Version headers, without its `email` parsing (tens
    of milliseconds for a few hundred packages). Raises UnusualMetadata on
    anything it does not mirror exactly (zip files on sys.path, other
    distribution finders, folded or unusual headers): callers fall back to
    `importlib.metadata` there.
    """
    for finder in sys.meta_path:
        if hasattr(finder, "find_distributions") and not _is_path_finder(finder):
            raise UnusualMetadata(f"distribution finder {finder!r}")
    packages: dict[str, str] = {}
    for entry in sys.path if paths is None else paths:
        directory = entry or "."
        try:
            children = os.listdir(directory)
        except OSError:
            if os.path.isfile(directory):
                raise UnusualMetadata(f"{entry} may be a zip file") from None
            continue
        base = os.path.basename(entry).lower()
        infos: dict[str, list[str]] = {}
        eggs: list[str] = []
        for child in children:
            low = child.lower()
            if low.endswith(METADATA_SUFFIXES):
                name = low.rpartition(".")[0].partition("-")[0]
                normalized = re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")
                infos.setdefault(normalized, []).append(child)
            elif base.endswith(".egg") and low == "egg-info":
                eggs.append(child)
        for child in [c for group in infos.values() for c in group] + eggs:
            header = _name_and_version(os.path.join(directory, child))
            if header is None:
                continue
            name, version = header
            key = name.lower().replace("_", "-").replace(".", "-")
            packages.setdefault(key, version)
    return packages


def _is_path_finder(finder: object) -> bool:
    import importlib.machinery

    return finder is importlib.machinery.PathFinder


_HEADER = re.compile(r"([\x21-\x39\x3b-\x7e]+):[ \t]*(.*)")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")


def _name_and_version(path: str) -> tuple[str, str] | None:
    """(Name, Version) from a METADATA/PKG-INFO header; None when it has no Name.

    Reads what `email.message_from_string` would: the first non-empty of the
    candidate files, as UTF-8 (a decoding error raises, as it does there).
    """
    text = None
    for candidate in ("METADATA", "PKG-INFO", ""):
        try:
            with open(os.path.join(path, candidate) if candidate else path, encoding="utf-8") as f:
                text = f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            continue
        if text:
            break
    if not text:
        return None
    found: dict[str, str] = {}
    last = ""
    pos = 0
    while pos < len(text):
        match = _LINE.match(text, pos)
        assert match is not None  # the pattern matches the empty string
        pos = match.end()
        line = match[0].rstrip("\r\n")
        if not line:
            break  # end of the header
        if line[0] in " \t":
            if last in ("name", "version"):
                raise UnusualMetadata(f"folded header in {path}")
            continue
        header = _HEADER.fullmatch(line)
        if header is None:
            raise UnusualMetadata(f"unusual metadata in {path}")
        last = header[1].lower()
        if last in ("name", "version"):
            found.setdefault(last, header[2])
    if not found.get("name"):
        return None
    if "version" not in found:
        raise UnusualMetadata(f"no version in {path}")
    return found["name"], found["version"]


def current_environment(name: str = DEFAULT_ENVIRONMENT) -> Environment:
    return Environment(name, python_identity(), installed_packages())


def environment_difference(
    old_python: str, old_packages: Mapping[str, str], new: Environment
) -> EnvironmentChange | None:
    """What changed: the interpreter, else the packages (sorted by name); None when nothing."""
    if old_python != new.python:
        return EnvironmentChange(python=(old_python, new.python))
    changes = []
    for name in sorted(set(old_packages) | set(new.packages)):
        before, after = old_packages.get(name), new.packages.get(name)
        if before != after:
            changes.append(PackageChange(name, before, after))
    return EnvironmentChange.of_packages(changes) if changes else None


if __name__ == "__main__":  # pragma: no cover - manual inspection
    env = current_environment()
    print(env.python, len(env.packages), "packages", file=sys.stderr)
