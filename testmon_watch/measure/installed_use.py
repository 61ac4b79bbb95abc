"""Which installed distributions an import, a metadata query or a file read used.

Shared by the recorder of the pytest process and that of a child process: both
see `import x` (measure.patches), `importlib.metadata` questions and reads in
site-packages (measure.file_reads), and turn them into canonical distribution
names with the index of core.distributions. The rule is in core/distributions.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from testmon_watch.core.distributions import DistributionIndex, canonical_name, current_index
from testmon_watch.measure.file_reads import unobserved

_STDLIB = frozenset(sys.stdlib_module_names) | {"__future__", "__main__"}
_NONE: frozenset[str] = frozenset()


class InstalledUse:
    """Resolves what was used to distribution names; builds the index when first needed.

    While it resolves (building the index lists every sys.path entry and reads
    site-packages), `resolving` is True: the caller records none of that.
    """

    def __init__(self, root: str | os.PathLike[str], site_dirs: tuple[str, ...]) -> None:
        self.root = root
        self.site_dirs = site_dirs  # each ending in a separator (core.distributions.site_dirs)
        self.resolving = False
        self._index: DistributionIndex | None = None
        self._owners_of_top: dict[str, frozenset[str]] = {}

    @contextmanager
    def _resolution(self) -> Iterator[DistributionIndex]:
        self.resolving = True
        try:
            if self._index is None:
                with unobserved():
                    self._index = current_index(self.root)
            yield self._index
        finally:
            self.resolving = False

    def imported(self, name: str) -> frozenset[str]:
        """An absolute `import name` ran: the distributions of its top-level package."""
        top = name.partition(".")[0]
        owners = self._owners_of_top.get(top)
        if owners is None:
            if not top or top in _STDLIB:
                owners = _NONE
            else:
                with self._resolution() as index:
                    owners = index.owners_of_module(top)
            self._owners_of_top[top] = owners
        return owners

    def asked(self, name: str) -> frozenset[str]:
        """Metadata asked for by name: that distribution, installed or not (not the project's)."""
        canonical = canonical_name(name)
        with self._resolution() as index:
            return _NONE if canonical in index.project else frozenset({canonical})

    def read(self, path: str) -> frozenset[str]:
        """A file in site-packages was read: the distributions it belongs to."""
        with self._resolution() as index:
            return index.owners_of_path(path)

    def lists_all(self, directory: str) -> bool:
        """Is a listing of `directory` an enumeration of installed distributions?"""
        return os.path.join(directory, "") in self.site_dirs
