"""Installed distributions as dependencies of single tests, not of the whole suite.

The rule (README, "Installed packages"):

- a test depends on every distribution whose modules it imported (an `import`
  statement it ran, `importlib.import_module`), whose files it read (data files
  or metadata in site-packages), and whose metadata it asked for by name
  (`importlib.metadata.version("x")`, present or not); and on what those
  distributions require, transitively, extras included (what they import
  without our seeing it: a warm worker has it imported already);
- a test that enumerates distributions (`importlib.metadata.distributions()`,
  `entry_points()`, a listing of site-packages) depends on the set of installed
  names: adding or removing any distribution reruns it;
- every test depends on the interpreter, on pytest and the distributions that
  register pytest plugins (`pytest11` entry points), on every distribution
  that installs a `.pth` file (site.py runs its import lines and puts its
  paths on sys.path, before any test), and on what those require.

Each dependency is stored as a row of the `file` table with a pseudo-path, so
that fingerprints, pending marks, baselines and combining treat it like any
file (see `core.schema`):

    kind          path                 digest                 blocks
    'dist'        <dist>/ENV/NAME      the version ('' absent)  one: hash of name and version
    'dist-list'   <dists>/ENV          hash of sorted names   one
    'dist-global' <global>/ENV         hash of name==version  one

ENV is the `--testmon-env` name: environments (venvs) sharing one data file
each keep their own. NAME is a normalised distribution name (PEP 503), which
never contains '/'.

The distributions of the project itself (metadata at or under the rootdir, or an
editable install of it) are not tracked here: its files are.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from testmon_watch.core.distribution_cache import DistributionCache, to_fields
from testmon_watch.core.environment import METADATA_SUFFIXES, metadata_path_state

DIST_KIND = "dist"
LISTING_KIND = "dist-list"
GLOBAL_KIND = "dist-global"
KINDS = frozenset({DIST_KIND, LISTING_KIND, GLOBAL_KIND})

_DIST_PREFIX = "<dist>/"
_LISTING_PREFIX = "<dists>/"
_GLOBAL_PREFIX = "<global>/"


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: 'Foo_Bar.baz' -> 'foo-bar-baz'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_path(environment: str, name: str) -> str:
    return f"{_DIST_PREFIX}{environment}/{canonical_name(name)}"


def listing_path(environment: str) -> str:
    return _LISTING_PREFIX + environment


def global_path(environment: str) -> str:
    return _GLOBAL_PREFIX + environment


def parse_path(path: str) -> tuple[str, str, str] | None:
    """(kind, environment, name) of a pseudo-path ('' name for the set rows); None for a file."""
    if path.startswith(_DIST_PREFIX):
        environment, _, name = path[len(_DIST_PREFIX) :].rpartition("/")
        return DIST_KIND, environment, name
    if path.startswith(_LISTING_PREFIX):
        return LISTING_KIND, path[len(_LISTING_PREFIX) :], ""
    if path.startswith(_GLOBAL_PREFIX):
        return GLOBAL_KIND, path[len(_GLOBAL_PREFIX) :], ""
    return None


def checksum(text: str) -> int:
    """A signed 64-bit checksum, like the blocks of a source file."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# -- the installed distributions ---------------------------------------------------------


@dataclass(frozen=True)
class InstalledDistribution:
    name: str  # canonical
    version: str
    metadata: str  # the .dist-info / .egg-info directory
    requires: frozenset[str]  # canonical names of what it always requires
    extras: frozenset[str]  # ... and of what its extras require
    tops: frozenset[str]  # first components of its files under its sys.path entry
    installs_pth: bool  # a .pth file: code or sys.path entries for every process
    plugin: bool  # registers a pytest plugin (a pytest11 entry point)
    editable_dir: str | None  # an editable install's source directory


@dataclass
class DistributionIndex:
    """Everything on sys.path, and which distribution owns a file or module."""

    root: str
    by_name: dict[str, InstalledDistribution] = field(default_factory=dict)
    # sys.path entry -> first path component -> owners
    owners: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    editable: list[tuple[str, str]] = field(default_factory=list)  # (directory + sep, name)
    project: set[str] = field(default_factory=set)  # the project's own distributions
    _module_owners: dict[str, frozenset[str]] = field(default_factory=dict)
    _closures: dict[tuple[frozenset[str], bool], frozenset[str]] = field(default_factory=dict)
    _global: frozenset[str] | None = None

    @property
    def site_dirs(self) -> tuple[str, ...]:
        """The sys.path entries that hold distributions, each ending in a separator."""
        return tuple(os.path.join(d, "") for d in self.owners)

    def versions(self) -> dict[str, str]:
        return {name: d.version for name, d in self.by_name.items() if name not in self.project}

    def owners_of_path(self, path: str) -> frozenset[str]:
        """The distributions a file belongs to (none: the project, stdlib, unknown)."""
        for site, tops in self.owners.items():
            prefix = os.path.join(site, "")
            if path.startswith(prefix):
                first = path[len(prefix) :].split(os.sep, 1)[0]
                found = tops.get(first)
                if found is None and first.endswith(METADATA_SUFFIXES):
                    found = self._owner_of_metadata(os.path.join(site, first))
                return frozenset(found or ()) - self.project
        for directory, name in self.editable:
            if path.startswith(directory):
                return frozenset({name}) - self.project
        return frozenset()

    def _owner_of_metadata(self, metadata: str) -> set[str]:
        return {d.name for d in self.by_name.values() if d.metadata == metadata}

    def owners_of_module(self, top: str) -> frozenset[str]:
        """The distributions a top-level module (already imported) belongs to."""
        cached = self._module_owners.get(top)
        if cached is not None:
            return cached
        module = sys.modules.get(top)
        paths: list[str] = []
        file = getattr(module, "__file__", None)
        if isinstance(file, str):
            paths.append(file)
        else:  # a namespace package: every portion
            paths.extend(p for p in getattr(module, "__path__", ()) or () if isinstance(p, str))
        owners: set[str] = set()
        for path in paths:
            owners |= self.owners_of_path(os.path.abspath(path))
        result = self._module_owners[top] = frozenset(owners)
        return result

    def closure(self, names: Iterable[str], extras: bool = True) -> frozenset[str]:
        """`names` and what they require, transitively (installed ones only).

        With `extras`, what their extras require too: an optional dependency
        (pandas reading parquet with pyarrow) is imported without our seeing it
        when the worker has it imported already.
        """
        start = frozenset(names)
        cached = self._closures.get((start, extras))
        if cached is not None:
            return cached
        seen: set[str] = set()
        todo = list(start)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            dist = self.by_name.get(name)
            if dist is not None:
                needs = dist.requires | dist.extras if extras else dist.requires
                todo.extend(r for r in needs if r in self.by_name and r not in seen)
        result = self._closures[(start, extras)] = frozenset(seen - self.project)
        return result

    def dependencies(self, used: Iterable[str]) -> frozenset[str]:
        """What a test that used `used` depends on, besides what every test does.

        The global distributions are left out before the closure is taken too:
        pytest's own imports inside a test must not make it depend on pytest's extras.
        """
        every = self.global_names()
        return self.closure(frozenset(used) - every) - every

    def global_names(self) -> frozenset[str]:
        """What every test depends on: pytest, plugins, .pth files, and what they need.

        Their extras are left out: a plugin's optional stack (hypothesis's numpy)
        is a dependency of the tests that import it, found per test.
        """
        if self._global is None:
            roots = {"pytest"} | {
                d.name for d in self.by_name.values() if d.plugin or d.installs_pth
            }
            self._global = self.closure(roots - self.project, extras=False)
        return self._global

    def global_digest(self) -> str:
        installed = self.by_name
        return ";".join(
            f"{n}=={installed[n].version if n in installed else ''}"
            for n in sorted(self.global_names())
        )

    def listing_digest(self) -> str:
        return hashlib.blake2b(
            "\n".join(sorted(self.versions())).encode("utf-8"), digest_size=16
        ).hexdigest()


def site_dirs(root: str | os.PathLike[str]) -> tuple[str, ...]:
    """The sys.path entries holding installed distributions, each ending in a separator.

    The project root itself is left out (its NAME.egg-info is the project's own);
    a virtualenv inside the project is in.
    """
    own = os.path.join(os.path.abspath(root), "")
    dirs = []
    for entry, _mtime in metadata_path_state():
        directory = os.path.join(os.path.abspath(entry or "."), "")
        if directory != own:
            dirs.append(directory)
    return tuple(dirs)


_indexes: dict[tuple[str, tuple[tuple[str, int], ...]], DistributionIndex] = {}


def current_index(root: str | os.PathLike[str]) -> DistributionIndex:
    """The index of sys.path as it is now (rebuilt when a site directory changed)."""
    root_text = os.path.abspath(os.fspath(root))
    key = (root_text, metadata_path_state())
    index = _indexes.get(key)
    if index is None:
        if len(_indexes) > 8:
            _indexes.clear()
        index = _indexes[key] = build_index(root_text, [entry for entry, _ in key[1]])
    return index


def build_index(root: str, site_dirs: Iterable[str]) -> DistributionIndex:
    """Read every distribution's metadata and RECORD in the given sys.path entries."""
    index = DistributionIndex(root)
    root_prefix = os.path.join(root, "")
    cache = DistributionCache()
    for site in site_dirs:
        site = os.path.abspath(site or ".")
        tops = index.owners.setdefault(site, {})
        try:
            children = sorted(os.listdir(site))
        except OSError:
            continue
        for child in children:
            if not child.lower().endswith(METADATA_SUFFIXES):
                continue
            metadata = os.path.join(site, child)
            dist = _cached_distribution(cache, site, metadata)
            if dist is None or dist.name in index.by_name:
                continue  # first on sys.path wins, as for imports
            index.by_name[dist.name] = dist
            for top in dist.tops:
                tops.setdefault(top, set()).add(dist.name)
            if _is_project_metadata(site, metadata, root_prefix):
                index.project.add(dist.name)
            editable = dist.editable_dir
            if editable is not None:
                directory = os.path.join(os.path.abspath(editable), "")
                if root_prefix.startswith(directory) or directory.startswith(root_prefix):
                    index.project.add(dist.name)
                else:
                    index.editable.append((directory, dist.name))
    cache.save()
    return index


def _cached_distribution(
    cache: DistributionCache, site: str, metadata: str
) -> InstalledDistribution | None:
    """`_read_distribution`, unless the cache holds it for files that did not change."""
    fields = cache.get(metadata, lambda: to_fields(_read_distribution(site, metadata)))
    if fields is None:
        return None
    try:
        values: dict[str, Any] = {
            k: frozenset(v) if k in _SET_FIELDS else v for k, v in fields.items()
        }
        return InstalledDistribution(**values)
    except TypeError:  # a cache of another shape: read the files
        return _read_distribution(site, metadata)


_SET_FIELDS = frozenset({"requires", "extras", "tops"})


def _is_project_metadata(site: str, metadata: str, root_prefix: str) -> bool:
    """Metadata the project keeps itself: NAME.egg-info at the root or in src/.

    A virtualenv inside the project (.venv/lib/.../site-packages) is not the
    project, nor is a dist-info that `pip install --target` put there.
    """
    inside = os.path.join(site, "") == root_prefix or site.startswith(root_prefix)
    return (
        inside
        and metadata.endswith(".egg-info")
        and os.path.basename(site) not in ("site-packages", "dist-packages")
    )


_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_MARKER = re.compile(r"\bextra\s*==")


def _read_distribution(site: str, metadata: str) -> InstalledDistribution | None:
    headers = _headers(_read_text(metadata, "METADATA") or _read_text(metadata, "PKG-INFO"))
    names = headers.get("name")
    versions = headers.get("version")
    if not names or not versions:
        return None
    requires: set[str] = set()
    extras: set[str] = set()
    for requirement in headers.get("requires-dist", []):
        match = _REQUIREMENT_NAME.match(requirement)
        if match:
            marker = requirement.partition(";")[2]
            target = extras if _EXTRA_MARKER.search(marker) else requires
            target.add(canonical_name(match[1]))
    target = requires
    for line in (_read_text(metadata, "requires.txt") or "").splitlines():
        if line.startswith("["):  # '[extra]' or '[:marker]' sections follow the plain ones
            target = extras if not line.startswith("[:") else requires
            continue
        match = _REQUIREMENT_NAME.match(line)
        if match:
            target.add(canonical_name(match[1]))
    tops, installs_pth = _record_tops(site, metadata)
    entry_points = _read_text(metadata, "entry_points.txt") or ""
    return InstalledDistribution(
        name=canonical_name(names[0]),
        version=versions[0],
        metadata=metadata,
        requires=frozenset(requires),
        extras=frozenset(extras - requires),
        tops=frozenset(tops),
        installs_pth=installs_pth,
        plugin=re.search(r"^\s*\[pytest11\]\s*$", entry_points, re.MULTILINE) is not None,
        editable_dir=_editable_dir(metadata),
    )


def _read_text(metadata: str, name: str) -> str | None:
    try:
        with open(os.path.join(metadata, name), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _headers(text: str | None) -> dict[str, list[str]]:
    """The RFC 822 header of a METADATA file: lower-case name -> values."""
    found: dict[str, list[str]] = {}
    for line in (text or "").splitlines():
        if not line:
            break
        if line[0] in " \t":
            continue  # a folded continuation: none of the headers we read folds usefully
        name, sep, value = line.partition(":")
        if sep:
            found.setdefault(name.strip().lower(), []).append(value.strip())
    return found


# A RECORD row's first path component and what follows it: '/' (a directory) or
# ',' (a file at the top). Rows quoted for a comma or quote in the path are rare
# and read with the csv module; one regex pass keeps torch's 20,000 rows cheap.
_RECORD_TOP = re.compile(r'^([^/,\r\n"]+)([/,])', re.MULTILINE)


def _record_tops(site: str, metadata: str) -> tuple[set[str], bool]:
    """First path components of the distribution's files; whether it installs a .pth file."""
    firsts: list[tuple[str, bool]] = []  # (component, is a file at the top)
    record = _read_text(metadata, "RECORD")
    if record is not None:
        firsts = [(top, sep == ",") for top, sep in _RECORD_TOP.findall(record)]
        quoted = record.startswith('"') or '\n"' in record
        for line in record.splitlines() if quoted else ():
            if line.startswith('"'):
                path = next(csv.reader([line]))[0].replace("\\", "/")
                top, slash, _ = path.partition("/")
                firsts.append((top, not slash))
    else:  # an egg-info: installed-files.txt is relative to it; else top_level.txt
        listed = _read_text(metadata, "installed-files.txt")
        if listed is not None:
            base = os.path.relpath(metadata, site)
            for line in listed.splitlines():
                path = os.path.normpath(os.path.join(base, line)).replace(os.sep, "/")
                top, slash, _ = path.partition("/")
                firsts.append((top, not slash))
        else:
            firsts = [(t, False) for t in (_read_text(metadata, "top_level.txt") or "").split()]
    tops: set[str] = set()
    installs_pth = False
    for top, at_top in firsts:
        if top in ("", ".", "..") or top.endswith(METADATA_SUFFIXES):
            continue  # scripts and headers (../../bin), its own metadata
        tops.add(top)
        if at_top and top.endswith(".pth"):
            installs_pth = True
        if at_top and top.endswith(".py"):
            tops.add(top[:-3])  # a single-module distribution: 'six.py' is module 'six'
    return tops, installs_pth


def _editable_dir(metadata: str) -> str | None:
    text = _read_text(metadata, "direct_url.json")
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    info = data.get("dir_info")
    url = data.get("url")
    if not isinstance(info, dict) or not info.get("editable") or not isinstance(url, str):
        return None
    parsed = urlparse(url)
    return unquote(parsed.path) if parsed.scheme == "file" else None


# -- states of the pseudo-rows -------------------------------------------------------------


@dataclass(frozen=True)
class PseudoState:
    """What a pseudo-row's digest and single block checksum are now."""

    digest: str  # '' when the distribution is not installed
    block: str  # the block's name
    checksum: int


def current_state(path: str, index: DistributionIndex) -> PseudoState | None:
    """The state of a pseudo-row under `index`; None when `path` is not one."""
    parsed = parse_path(path)
    if parsed is None:
        return None
    kind, _environment, name = parsed
    if kind == DIST_KIND:
        dist = index.by_name.get(name)
        version = "" if dist is None or name in index.project else dist.version
        return PseudoState(version, "<dist>", checksum(f"{name}=={version}"))
    if kind == LISTING_KIND:
        digest = index.listing_digest()
        return PseudoState(digest, "<listing>", checksum(digest))
    digest = index.global_digest()
    return PseudoState(digest or "-", "<global>", checksum(digest))
