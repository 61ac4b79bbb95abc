"""What each installed distribution's metadata says, remembered between processes.

Building the distributions index (core/distributions.py) reads every
distribution's METADATA, RECORD and a few more files, and scans RECORD for
top-level names: 9-12 ms for 20-24 distributions, on every cold `pytest
--testmon` that records. The result per metadata folder is kept in
`distributions.json` in our cache home (core/cache_home.py), stamped with the
(mtime, size) of every file it was read from; a folder whose files all stat
the same is not read again. Anything wrong with the cache (missing, damaged,
another format, not writable) only means reading the metadata again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from testmon_watch.core.cache_home import cache_home

FORMAT = 1
FILE_NAME = "distributions.json"
MAX_ENTRIES = 5000  # metadata folders remembered; the cache starts again beyond
# Every file `_read_distribution` may read, for the stamp.
READ_FILES = (
    "METADATA",
    "PKG-INFO",
    "RECORD",
    "requires.txt",
    "entry_points.txt",
    "direct_url.json",
    "installed-files.txt",
    "top_level.txt",
)

_READ = frozenset(READ_FILES)
Stamp = list[list[Any]]  # [[file name, mtime_ns, size], ...] of the files that exist


def stamp_of(metadata: str) -> Stamp:
    """(name, mtime, size) of the files read from `metadata` that exist, in READ_FILES order.

    One listing, then a stat of each file present: no failed stat per absent file.
    """
    found: dict[str, list[Any]] = {}
    try:
        with os.scandir(metadata) as entries:
            for entry in entries:
                if entry.name in _READ:
                    st = entry.stat()
                    found[entry.name] = [entry.name, st.st_mtime_ns, st.st_size]
    except OSError:
        return []
    return [found[name] for name in READ_FILES if name in found]


class DistributionCache:
    """Metadata folder -> the fields of its InstalledDistribution, while its stamp holds."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else cache_home() / FILE_NAME
        self._entries: dict[str, Any] | None = None
        self._changed = False

    def _load(self) -> dict[str, Any]:
        if self._entries is None:
            self._entries = {}
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(data, dict) and data.get("format") == FORMAT:
                    entries = data.get("entries")
                    if isinstance(entries, dict):
                        self._entries = entries
            except (OSError, ValueError):
                pass
        return self._entries

    def get(
        self, metadata: str, read: Callable[[], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """The fields for `metadata`, from the cache when its files are unchanged, else `read()`."""
        entries = self._load()
        stamp = stamp_of(metadata)
        entry = entries.get(metadata)
        if isinstance(entry, dict) and entry.get("stamp") == stamp:
            fields = entry.get("fields")
            if fields is None or isinstance(fields, dict):
                return fields
        fields = read()
        if len(entries) >= MAX_ENTRIES:
            entries.clear()
        entries[metadata] = {"stamp": stamp, "fields": fields}
        self._changed = True
        return fields

    def save(self) -> None:
        """Write the entries back if any is new (beside, then renamed: readers never see half)."""
        if not self._changed or self._entries is None:
            return
        self._changed = False
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"format": FORMAT, "entries": self._entries}), "utf-8")
            os.replace(tmp, self.path)
        except OSError:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass


def to_fields(dist: Any) -> dict[str, Any] | None:
    """An InstalledDistribution (or None) as JSON-able fields; sets become sorted lists."""
    if dist is None:
        return None
    return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in asdict(dist).items()}
