"""`testmon-watch combine OUT IN...`: merge the data files that shards of one suite recorded.

Like `coverage combine`: CI runs a suite in shards, on several machines, each
recording its own data file; the combined file selects as one full recording
would. Records are copied by core/merge.py, inputs newest first (an input's
age is that of its latest record): the first input that knows a file gives
the combined state of that file, and a test recorded against other content of
it is marked pending, as a local change would. A test found in several inputs
is kept from its newest record; each such conflict is reported.

Refused with one line, exit status 4 and nothing written: an input that is
not a data file of this schema, inputs that recorded one environment name
under different interpreters, and an OUT that exists but is not a data file
of ours. OUT is written to a temporary file beside it and renamed over it once
complete, so a failure never leaves half a file; OUT may be one of the inputs
(it is read before it is replaced).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testmon_watch.core.db import Database, DatabaseError, FileRow
from testmon_watch.core.merge import Conflict, import_tests

EXIT_OK = 0
EXIT_FAILED = 1  # could not write OUT
EXIT_USAGE = 4  # as pytest and the rest of the command line: refused inputs

SHOWN_CONFLICTS = 5  # conflicts listed one a line; the rest are counted


class Refused(Exception):
    """An input or OUT that cannot be used, phrased as one line."""


@dataclass
class Source:
    path: Path
    db: Database
    latest: float  # when its newest record was made


@dataclass(frozen=True)
class ResolvedConflict:
    """A test recorded in two inputs: the record kept and the one dropped."""

    environment: str
    nodeid: str
    kept: Path
    dropped: Path


@dataclass
class Combined:
    tests: int = 0
    environments: int = 0
    due: int = 0  # tests that must run: pending, or failed last time
    conflicts: list[ResolvedConflict] = field(default_factory=list)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="testmon-watch combine",
        description="Merge data files recorded by shards of one test suite into OUT. "
        "A test recorded in several files is kept from its newest record.",
    )
    parser.add_argument("out", metavar="OUT", type=Path, help="the combined data file to write")
    parser.add_argument(
        "inputs", metavar="IN", type=Path, nargs="+", help="data files to combine (OUT may be one)"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    options = build_parser().parse_args(list(argv))
    out: Path = options.out
    sources: list[Source] = []
    try:
        for path in options.inputs:
            # One by one: those opened before a refused one are closed below.
            sources.append(_open_input(path))  # noqa: PERF401
        _check_interpreters(sources)
        _check_output(out)
        combined = combine(sources, out)
    except Refused as exc:
        print(f"testmon-watch combine: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DatabaseError, OSError, sqlite3.Error) as exc:
        print(f"testmon-watch combine: could not write {out}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for source in sources:
            source.db.close()
    for line in report(combined, len(sources), out):
        print(line)
    return EXIT_OK


def _open_input(path: Path) -> Source:
    try:
        db = Database.open_for_reading(path)
    except DatabaseError as exc:
        raise Refused(f"cannot use {exc}") from None
    try:
        with db.snapshot():
            _, latest, _ = db.records_stamp(None)
    except sqlite3.Error as exc:
        db.close()
        raise Refused(f"cannot use {path}: it is damaged ({exc})") from None
    return Source(path, db, latest)


def _check_interpreters(sources: Sequence[Source]) -> None:
    """One environment name, one interpreter: its records are compared against one another."""
    seen: dict[str, tuple[str, Path]] = {}
    for source in sources:
        for env in source.db.environments():
            first = seen.setdefault(env.name, (env.python, source.path))
            if first[0] != env.python:
                raise Refused(
                    f"environment {env.name!r} was recorded under {first[0]} in {first[1]} "
                    f"and under {env.python} in {source.path}; combine the files of one "
                    "interpreter (or record with --testmon-env NAME per interpreter)"
                )


def _check_output(out: Path) -> None:
    if out.is_dir():
        raise Refused(f"{out} is a directory")
    if not out.parent.is_dir():
        raise Refused(f"{out}: no such directory {out.parent}")
    if not out.exists():
        return
    wal = out.with_name(out.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        # Its WAL would be applied to the new file on the next open, and corrupt it.
        raise Refused(f"{out} is in use or was not closed cleanly ({wal.name} exists)")
    try:
        Database.open_for_reading(out).close()
    except DatabaseError as exc:
        raise Refused(f"not overwriting {exc}") from None


def combine(sources: Sequence[Source], out: Path) -> Combined:
    """Write the combined file to a temporary file beside OUT, then rename it over OUT."""
    # Named after OUT (`.testmondata.combine-XXXX.tmp`): the ignore line for OUT covers it.
    fd, name = tempfile.mkstemp(prefix=f"{out.name}.combine-", suffix=".tmp", dir=out.parent)
    os.close(fd)
    temp = Path(name)
    try:
        os.chmod(temp, out.stat().st_mode & 0o777 if out.exists() else 0o644)
        db, _ = Database.open(temp)
        try:
            combined = _copy_all(sources, db)
        finally:
            db.close()
        _flush_to_disk(temp)  # else a crash soon after the rename may leave OUT empty
        os.replace(temp, out)
    except BaseException:
        for leftover in (temp, *(temp.with_name(temp.name + s) for s in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
        raise
    return combined


def _flush_to_disk(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_all(sources: Sequence[Source], destination: Database) -> Combined:
    combined = Combined()
    origin: dict[tuple[str, str], Path] = {}  # (environment, node id) -> the input kept
    # Newest first: its file states become the combined ones (ties: command-line order).
    for source in sorted(sources, key=lambda s: s.latest, reverse=True):
        with source.db.snapshot(), destination.transaction():
            for env in source.db.environments():
                result = import_tests(source.db, destination, env.name, _unchecked_state)
                for conflict in result.conflicts:
                    resolved = _resolve(conflict, source.path, origin)
                    if resolved is not None:
                        combined.conflicts.append(resolved)
                for nodeid in result.imported:
                    origin[(env.name, nodeid)] = source.path
    for env in destination.environments():
        summary = destination.test_file_summary(env.id)
        combined.environments += 1
        combined.tests += sum(count for count, _ in summary.values())
        combined.due += sum(due for _, due in summary.values())
    return combined


def _resolve(
    conflict: Conflict, source: Path, origin: dict[tuple[str, str], Path]
) -> ResolvedConflict | None:
    if conflict.source_recorded_at == conflict.destination_recorded_at:
        return None  # the same record, in two copies of a file
    other = origin[(conflict.environment, conflict.nodeid)]
    kept, dropped = (source, other) if conflict.source_won else (other, source)
    return ResolvedConflict(conflict.environment, conflict.nodeid, kept, dropped)


def _unchecked_state(row: FileRow) -> FileRow:
    """A path new to the combined file takes the input's state, with no stat to trust.

    The size and mtime were seen on another machine: mtime 0 makes the next run
    that uses the file compare the content instead (as for a "racy" file).
    """
    mtime = row.mtime_ns if row.mtime_ns < 0 else 0  # -1 (missing) stays
    return FileRow(
        row.path, row.kind, mtime, row.size, row.digest, row.blocks, row.imports, row.error
    )


def report(combined: Combined, inputs: int, out: Path) -> list[str]:
    """What was written: counts, then the conflicts (the first few, one a line)."""
    environments = "" if combined.environments == 1 else f" in {combined.environments} environments"
    lines = [
        f"testmon-watch combine: {inputs} files into {out}: "
        f"{_tests(combined.tests)}{environments}, {combined.due} due to run"
    ]
    conflicts = combined.conflicts
    if conflicts:
        lines.append(
            f"testmon-watch combine: {_tests(len(conflicts))} recorded in more than one file; "
            "kept the newest record of each:"
        )
        lines.extend(
            f"  {c.nodeid}: {c.kept} over {c.dropped}" for c in conflicts[:SHOWN_CONFLICTS]
        )
        if len(conflicts) > SHOWN_CONFLICTS:
            lines.append(f"  ... and {len(conflicts) - SHOWN_CONFLICTS} more")
    return lines


def _tests(n: int) -> str:
    return "1 test" if n == 1 else f"{n} tests"
