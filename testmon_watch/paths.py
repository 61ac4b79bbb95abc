"""Where every file of ours lives: the data file and the files kept beside it.

`.testmondata` sits at the project root unless `$TESTMON_DATAFILE` names
another file; a relative name is taken from the project root, in every process
(the plugin, the warm worker, the app), whatever their current directory. The
other files follow the data file, so pointing it elsewhere moves them all:

    .testmondata                 the SQLite data file (core/db.py)
    .testmondata-wal, -shm       SQLite's companions
    .testmondata-children/<pid>/ child-process reports of a running session (measure/children.py);
                                 the folder holds a `.gitignore` of `*`, as .pytest_cache does
    .testmondata-preload.json    what the warm worker imports at start (worker/)
    .testmondata-preload.json.<pid>.tmp   the preload list while it is written (renamed at once)
    .testmondata-worker.log      the warm worker's stderr
    .testmondata.broken-<stamp>[-n] (with -wal, -shm)   an unusable data file, moved aside
    OUT.combine-<random>.tmp     `testmon-watch combine`'s OUT while it is written (then renamed)
    .coverage                    `--testmon-cov` and the app's export, at the root

Everything of ours starts with `.testmondata`, so one ignore line covers it.

Outside the project: our cache folder, core/cache_home.py.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DATAFILE_ENV = "TESTMON_DATAFILE"
DATAFILE_NAME = ".testmondata"
CHILDREN_DIR_NAME = ".testmondata-children"
COVERAGE_NAME = ".coverage"
# What a scratch folder of ours holds so that git never offers its contents (pytest
# writes the same file into .pytest_cache).
SCRATCH_GITIGNORE = "# Created by testmon-watch automatically.\n*\n"


def make_scratch_dir(path: Path) -> None:
    """Create a folder of ours under the project (and its parents), with its `.gitignore`."""
    path.mkdir(parents=True, exist_ok=True)
    top = path
    while top.parent.name.startswith(DATAFILE_NAME):
        top = top.parent
    ignore = top / ".gitignore"
    if not ignore.exists():
        try:
            ignore.write_text(SCRATCH_GITIGNORE, encoding="utf-8")
        except OSError:
            pass  # a read-only tree: the folder still works


def datafile_path(root: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The data file of the project at `root` (absolute)."""
    named = (os.environ if environ is None else environ).get(DATAFILE_ENV)
    path = Path(named) if named else Path(DATAFILE_NAME)
    return path if path.is_absolute() else Path(root) / path


@dataclass(frozen=True)
class ProjectPaths:
    """The files of one project; build it with `ProjectPaths.of(root)`."""

    root: Path
    datafile: Path

    @classmethod
    def of(cls, root: Path, environ: Mapping[str, str] | None = None) -> ProjectPaths:
        return cls(Path(root), datafile_path(Path(root), environ))

    def _beside(self, suffix: str) -> Path:
        return self.datafile.with_name(self.datafile.name + suffix)

    @property
    def children_dir(self) -> Path:
        """Child-process reports, one folder per recording session (its pid)."""
        return self.datafile.parent / CHILDREN_DIR_NAME

    @property
    def preload_list(self) -> Path:
        return self._beside("-preload.json")

    @property
    def worker_log(self) -> Path:
        return self._beside("-worker.log")

    @property
    def coverage_file(self) -> Path:
        return self.root / COVERAGE_NAME
