"""Child-process reports: the variables a recorded child inherits, its marker files, its report.

A Python process started while a test runs records what it executes and tells
the pytest process that started it (measure/children.py does both sides):

    variable                 value
    TESTMON_WATCH_CHILD      JSON {"version": 2, "root": <project root>, "dir": <report folder>}
    TESTMON_WATCH_CONTEXT    the context key current when the child started (`str(ContextKey)`)

    file in the report folder   written by                   content
    <hash>.key                  every child of the context   the context key's text
    <hash>-<tag>.started        a child as it starts         its state: "starting" or "running"
                                                             (empty: killed before writing it)
    <hash>-<tag>.json           a child as it ends           its report (below)

`<hash>` is `key_hash(key)`, `<tag>` the child's pid (`unrecordable<n>` for a
Python started with -E, -I or -S: it never reports). The report:

    {"version": 2, "key": <key>, "pid": <pid>, "lines": {<path>: [<line>, ...]},
     "reads": [<path>, ...], "listings": [<path>, ...],
     "distributions": [<canonical name>, ...], "lists_distributions": <bool>}

Paths are relative to the project root. A `.json` file is replaced whole
(written aside, then renamed), so a reader never sees half of one.

Every recorded child process imports this module as it starts: its value
types are NamedTuples, which cost a fraction of a dataclass to define.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

from testmon_watch.core.keys import ContextKey

VERSION = 2

CHILD_ENV = "TESTMON_WATCH_CHILD"
CONTEXT_ENV = "TESTMON_WATCH_CONTEXT"

KEY_SUFFIX = ".key"
STARTED_SUFFIX = ".started"
REPORT_SUFFIX = ".json"


def _check_version(what: str, data: Any) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{what}: not a JSON object")
    found = data.get("version")
    if found != VERSION:
        raise ValueError(f"{what}: version {found!r}, this reader reads version {VERSION}")


# -- the environment -----------------------------------------------------------------


class ChildSettings(NamedTuple):
    """Where a child reports: the project root and the session's report folder."""

    root: Path
    dir: Path


def encode_settings(settings: ChildSettings) -> str:
    return json.dumps({"version": VERSION, "root": str(settings.root), "dir": str(settings.dir)})


def decode_settings(text: str) -> ChildSettings:
    """The value of TESTMON_WATCH_CHILD; ValueError when it is not one this reader knows."""
    data = json.loads(text)
    _check_version(CHILD_ENV, data)
    root, folder = data.get("root"), data.get("dir")
    if not isinstance(root, str) or not isinstance(folder, str):
        raise ValueError(f"{CHILD_ENV}: no root or dir")
    return ChildSettings(Path(root), Path(folder))


def encode_context(key: ContextKey) -> str:
    """The value of TESTMON_WATCH_CONTEXT (also the content of a `.key` file)."""
    return str(key)


def decode_context(text: str) -> ContextKey:
    """ValueError when `text` is not a context key."""
    return ContextKey.parse(text)


# -- file names ----------------------------------------------------------------------


def key_hash(key: ContextKey) -> str:
    """The short name of a context in file names (a key may hold any character)."""
    return hashlib.blake2b(str(key).encode(), digest_size=8).hexdigest()


def key_file_name(key: ContextKey) -> str:
    return key_hash(key) + KEY_SUFFIX


def key_file_draft(key: ContextKey, writer: str) -> str:
    """Where one writer (pid and thread) writes a `.key` file before renaming it into place."""
    return f"{key_file_name(key)}-{writer}"


class ChildFiles(NamedTuple):
    """The names of one child's marker and report in the report folder."""

    stem: str  # <hash>-<tag>

    @classmethod
    def of(cls, key: ContextKey, tag: int | str) -> ChildFiles:
        return cls(f"{key_hash(key)}-{tag}")

    @property
    def started(self) -> str:
        return self.stem + STARTED_SUFFIX

    @property
    def report(self) -> str:
        return self.stem + REPORT_SUFFIX

    @property
    def report_draft(self) -> str:
        """Where the report is written before it is renamed into place."""
        return self.stem + ".tmp"


class ChildListing(NamedTuple):
    """The children of one context, from a listing of the report folder."""

    reported: list[ChildFiles]  # wrote their report
    unreported: list[ChildFiles]  # started, no report (yet)


def children_of(key: ContextKey, names: Iterable[str]) -> ChildListing:
    """Sort the folder's file `names` that belong to children of `key`."""
    prefix = key_hash(key) + "-"
    reported: set[str] = set()
    started: set[str] = set()
    for name in names:
        if not name.startswith(prefix):
            continue
        if name.endswith(REPORT_SUFFIX):
            reported.add(name[: -len(REPORT_SUFFIX)])
        elif name.endswith(STARTED_SUFFIX):
            started.add(name[: -len(STARTED_SUFFIX)])
    return ChildListing(
        [ChildFiles(stem) for stem in sorted(reported)],
        [ChildFiles(stem) for stem in sorted(started - reported)],
    )


# -- the `.started` marker -----------------------------------------------------------


class ChildState(str, Enum):
    """What a child's `.started` marker says."""

    STARTING = "starting"  # a multiprocessing child whose target has not run yet
    RUNNING = "running"  # running project code: its report is owed

    def __str__(self) -> str:
        return self.value


def decode_state(text: str) -> ChildState | None:
    """None for an empty marker (killed before writing it); unknown text counts as running."""
    if not text:
        return None
    try:
        return ChildState(text)
    except ValueError:
        return ChildState.RUNNING  # when in doubt the child's lines are owed


# -- the report ------------------------------------------------------------------------


class ChildReport(NamedTuple):
    """What one child process recorded."""

    key: ContextKey
    pid: int
    lines: dict[str, set[int]]
    reads: set[str]
    listings: set[str]
    distributions: frozenset[str] = frozenset()  # installed ones it used (core.distributions)
    lists_distributions: bool = False  # it enumerated them


def encode_report(report: ChildReport) -> str:
    return json.dumps(
        {
            "version": VERSION,
            "key": str(report.key),
            "pid": report.pid,
            "lines": {path: sorted(lines) for path, lines in report.lines.items()},
            "reads": sorted(report.reads),
            "listings": sorted(report.listings),
            "distributions": sorted(report.distributions),
            "lists_distributions": report.lists_distributions,
        }
    )


def decode_report(text: str) -> ChildReport:
    """ValueError when `text` is not a report this reader knows."""
    data = json.loads(text)
    _check_version("child report", data)
    try:
        return ChildReport(
            ContextKey.parse(data["key"]),
            int(data["pid"]),
            {str(path): {int(n) for n in lines} for path, lines in data["lines"].items()},
            {str(path) for path in data["reads"]},
            {str(path) for path in data["listings"]},
            frozenset(str(name) for name in data["distributions"]),
            bool(data["lists_distributions"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"child report: malformed ({exc!r})") from None
