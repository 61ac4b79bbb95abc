"""File state -> changed blocks: stat first, then content hash, then block checksums."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from testmon_watch.core import blocks as blocks_mod
from testmon_watch.core import distributions
from testmon_watch.core.db import BlockRow, FileRow
from testmon_watch.core.reasons import ChangedFile
from testmon_watch.core.reparse import reparse_python

MISSING_MTIME = -1

# Python files parsed ahead (`prepare`): what parse_state computed for one content,
# keyed by everything it depends on. Content-addressed: a later read of the same
# bytes, however its stat looks, gets exactly what parsing them again would give.
_PREPARED: dict[tuple[str, str, bool, str], tuple[list[BlockRow], list[str], str | None]] = {}
_PREPARED_LIMIT = 64
# The last parse of each Python file in this process, by (path, module name, package):
# when the next content changes one function body, only that body is parsed (core.reparse).
_LAST_PARSE: dict[tuple[str, str, bool], tuple[bytes, blocks_mod.FileBlocks]] = {}
_LAST_PARSE_LIMIT = 16


def file_kind(relpath: str) -> str:
    return "python" if relpath.endswith(".py") else "data"


def module_name_for(path: Path) -> tuple[str, bool]:
    """Best guess of a file's dotted module name: walk up while `__init__.py` exists."""
    is_package = path.name == "__init__.py"
    parts = [] if is_package else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").exists():
        parts.insert(0, directory.name)
        directory = directory.parent
    return ".".join(parts), is_package


def _digest(content: bytes) -> str:
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def _missing(relpath: str, kind: str) -> FileRow:
    return FileRow(relpath, kind, MISSING_MTIME, 0, "", [], [], None)


def parse_state(
    root: Path, relpath: str, kind: str, content: bytes, mtime_ns: int, size: int
) -> FileRow:
    """A file's full state from its content: digest, blocks and imports."""
    digest = _digest(content)
    if kind == "python":
        module, is_package = module_name_for(root / relpath)
        key = (relpath, module, is_package, digest)
        known = _PREPARED.get(key)
        if known is None:
            known = _parse_python(relpath, content, module, is_package)
        rows, imports, error = known
        return FileRow(relpath, kind, mtime_ns, size, digest, list(rows), list(imports), error)
    return FileRow(
        relpath,
        kind,
        mtime_ns,
        size,
        digest,
        [("<content>", 0, 0, blocks_mod.data_checksum(content))],
        [],
        None,
    )


def _parse_python(
    relpath: str, content: bytes, module: str, is_package: bool
) -> tuple[list[BlockRow], list[str], str | None]:
    """(blocks, imports, error) of a Python file's content."""
    key = (relpath, module, is_package)
    last = _LAST_PARSE.get(key)
    parsed = None
    if last is not None:
        parsed = reparse_python(last[0], last[1], content, module or None, is_package)
    if parsed is None:
        try:
            parsed = blocks_mod.parse_python(content, module or None, is_package)
        except SyntaxError as exc:
            # The last parse that worked stays: the save that fixes this is
            # usually inside the same body again.
            where = f"{relpath}:{exc.lineno}" if exc.lineno else relpath
            return [], [], f"syntax error at {where}: {exc.msg}"
    _LAST_PARSE.pop(key, None)
    if len(_LAST_PARSE) >= _LAST_PARSE_LIMIT:
        del _LAST_PARSE[next(iter(_LAST_PARSE))]
    _LAST_PARSE[key] = (content, parsed)
    rows: list[BlockRow] = [(b.name, b.start, b.end, b.checksum) for b in parsed.blocks]
    return rows, list(parsed.imports), None


def prepare(root: Path, relpath: str) -> None:
    """Parse a Python file now, so that reading the same content later does not.

    For a process that waits while the file is being saved (the standby child,
    worker/standby.py): the parse moves off the path from the save to the
    first result. Never raises; a file that cannot be read is left alone.
    """
    if file_kind(relpath) != "python":
        return
    try:
        content = (root / relpath).read_bytes()
    except OSError:
        return
    module, is_package = module_name_for(root / relpath)
    key = (relpath, module, is_package, _digest(content))
    if key in _PREPARED:
        return
    try:
        parsed = _parse_python(relpath, content, module, is_package)
    except Exception:  # noqa: BLE001 - whatever parse_state raises, the run meets again
        return
    if len(_PREPARED) >= _PREPARED_LIMIT:
        del _PREPARED[next(iter(_PREPARED))]
    _PREPARED[key] = parsed


def read_state(
    root: Path,
    relpath: str,
    kind: str,
    previous: FileRow | None = None,
    parsed: FileRow | None = None,
) -> tuple[FileRow, bool]:
    """Current state of a file, reusing `previous` when stat or content is unchanged.

    `parsed` is the file's state computed elsewhere (the parse helper); it is
    used instead of reading the file while the file's size and mtime still
    match it. Returns (state, content_changed). A vanished file has mtime -1
    and no blocks. The pseudo-rows of installed distributions (kinds in
    `distributions.KINDS`) are compared with what is installed now.
    """
    if kind in distributions.KINDS:
        return _read_installed(root, relpath, kind, previous)
    path = root / relpath
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        if previous is not None and previous.missing:
            return previous, False
        return _missing(relpath, kind), True
    except OSError as exc:
        state = _missing(relpath, kind)
        state.error = f"cannot read {relpath}: {exc.strerror}"
        return state, True
    if kind == "dir":
        return _read_dir(root, relpath, st.st_mtime_ns, previous)
    if previous is not None and previous.mtime_ns == st.st_mtime_ns and previous.size == st.st_size:
        return previous, False
    if (
        parsed is not None
        and parsed.kind == kind
        and parsed.mtime_ns == st.st_mtime_ns
        and parsed.size == st.st_size
    ):
        if previous is not None and previous.digest == parsed.digest and not previous.missing:
            return _restat(previous, st), False
        return parsed, True
    try:
        content = path.read_bytes()
    except OSError as exc:
        state = _missing(relpath, kind)
        state.error = f"cannot read {relpath}: {exc.strerror}"
        return state, True
    if previous is not None and previous.digest == _digest(content) and not previous.missing:
        return _restat(previous, st), False
    state = parse_state(root, relpath, kind, content, st.st_mtime_ns, st.st_size)
    return state, True


def _read_installed(
    root: Path, relpath: str, kind: str, previous: FileRow | None
) -> tuple[FileRow, bool]:
    now = distributions.current_state(relpath, distributions.current_index(root))
    if now is None:  # a pseudo-kind with a path that is not one: nothing can match it
        return _missing(relpath, kind), previous is None or not previous.missing
    if previous is not None and previous.digest == now.digest:
        return previous, False
    state = FileRow(relpath, kind, 0, 0, now.digest, [(now.block, 0, 0, now.checksum)], [], None)
    if previous is not None:
        state.id = previous.id
    return state, True


def _restat(previous: FileRow, st: os.stat_result) -> FileRow:
    """`previous` with a new size and mtime: touched, same content."""
    return FileRow(
        previous.path,
        previous.kind,
        st.st_mtime_ns,
        st.st_size,
        previous.digest,
        previous.blocks,
        previous.imports,
        previous.error,
        previous.id,
    )


def _read_dir(
    root: Path, relpath: str, mtime_ns: int, previous: FileRow | None
) -> tuple[FileRow, bool]:
    if previous is not None and previous.mtime_ns == mtime_ns:
        return previous, False
    try:
        names = os.listdir(root / relpath) if relpath else os.listdir(root)
    except OSError:
        return _missing(relpath, "dir"), True
    checksum = blocks_mod.listing_checksum(names)
    digest = f"{checksum:x}"
    state = FileRow(relpath, "dir", mtime_ns, 0, digest, [("<listing>", 0, 0, checksum)], [], None)
    if previous is not None:
        state.id = previous.id
    return state, previous is None or previous.digest != digest


@dataclass
class FileChange:
    """One file whose content differs from the stored state."""

    old: FileRow
    new: FileRow

    @property
    def new_checksums(self) -> frozenset[int]:
        return frozenset(b[3] for b in self.new.blocks)

    def removed_blocks(self) -> dict[int, str]:
        """checksum -> block name, for every stored block that no longer exists as it was."""
        current = self.new_checksums
        return {b[3]: b[0] for b in self.old.blocks if b[3] not in current}

    @property
    def module_block_changed(self) -> bool:
        if self.old.kind != "python":
            return False
        old_module = [b[3] for b in self.old.blocks if b[0] == "<module>"]
        return not old_module or old_module[0] not in self.new_checksums


@dataclass
class ChangeSet:
    """What differs on disk from the database's file table."""

    changed: list[FileChange] = field(default_factory=list)
    restat: list[FileRow] = field(default_factory=list)  # same content, new mtime

    @property
    def warnings(self) -> list[str]:
        return [c.new.error for c in self.changed if c.new.error]

    def summary(self) -> list[ChangedFile]:
        """Each changed file with the blocks that changed in it (python files), for the header."""
        result = []
        for change in self.changed:
            if change.old.kind in distributions.KINDS:
                continue  # said as the environment's change (describe_environment)
            if change.new.missing:
                result.append(ChangedFile(change.old.path, deleted=True))
            elif change.old.kind == "python":
                names = tuple(sorted(set(change.removed_blocks().values())))
                result.append(ChangedFile(change.old.path, names))
            else:
                result.append(ChangedFile(change.old.path))
        return result


def detect_changes(
    root: Path,
    rows: Mapping[str, FileRow] | Iterable[FileRow],
    environment: str | None = None,
) -> ChangeSet:
    """Compare every stored file with the disk: the cheap stat check first.

    The installed distributions of `environment` are compared too (see
    core.distributions); those of other environments, or of all when None, are
    left alone.
    """
    values = rows.values() if isinstance(rows, Mapping) else rows
    result = ChangeSet()
    prefix = os.path.join(root, "")
    for row in values:
        if row.kind in distributions.KINDS:
            parsed = distributions.parse_path(row.path)
            if environment is None or parsed is None or parsed[1] != environment:
                continue
        if row.kind != "dir" and row.mtime_ns > 0:
            # read_state's first step, on plain strings: most files are unchanged.
            try:
                st = os.stat(prefix + row.path)
            except OSError:
                pass
            else:
                if st.st_mtime_ns == row.mtime_ns and st.st_size == row.size:
                    continue
        state, content_changed = read_state(root, row.path, row.kind, row)
        state.id = row.id
        if content_changed:
            result.changed.append(FileChange(row, state))
        elif state is not row:
            result.restat.append(state)
    return result
