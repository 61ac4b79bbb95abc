"""Coverage for the coverage view, read from `.testmondata`.

Per-file statements, missed lines and percent, and which tests executed each
line. No Textual import: unit-tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from testmon_watch.core.db import Database, DatabaseError
from testmon_watch.core.environment import DEFAULT_ENVIRONMENT
from testmon_watch.core.packing import pack_ints, unpack_ints, unpack_lines
from testmon_watch.paths import datafile_path


@dataclass
class FileCoverage:
    """One source file: its executable lines, the executed ones, and who executed them."""

    path: str
    statements: set[int]
    tests_by_line: dict[int, set[str]] = field(default_factory=dict)

    @property
    def executed(self) -> set[int]:
        return {line for line in self.tests_by_line if line in self.statements}

    @property
    def missed(self) -> set[int]:
        return self.statements - set(self.tests_by_line)

    @property
    def percent(self) -> float:
        if not self.statements:
            return 100.0
        return 100.0 * len(self.executed) / len(self.statements)


@dataclass
class CoverageData:
    files: dict[str, FileCoverage] = field(default_factory=dict)
    message: str = ""  # why there is nothing to show, if so

    def totals(self) -> tuple[int, int, float]:
        statements = sum(len(f.statements) for f in self.files.values())
        missed = sum(len(f.missed) for f in self.files.values())
        percent = 100.0 * (statements - missed) / statements if statements else 100.0
        return statements, missed, percent


def executable_lines(source: str) -> set[int]:
    """The statement lines coverage.py would count (empty when the source does not parse)."""
    from coverage.exceptions import NotPython
    from coverage.parser import PythonParser

    parser = PythonParser(text=source)
    try:
        parser.parse_source()
    except (NotPython, SyntaxError, ValueError):
        return set()
    return set(parser.statements)


def build_coverage(root: Path, executed: Mapping[str, Mapping[int, set[str]]]) -> CoverageData:
    """`executed`: relative path -> line -> tests; statements are read from the files."""
    data = CoverageData()
    for path in sorted(executed):
        if not path.endswith(".py"):
            continue
        try:
            source = (root / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        statements = executable_lines(source)
        tests_by_line = {
            line: set(tests) for line, tests in executed[path].items() if line in statements
        }
        data.files[path] = FileCoverage(path, statements, tests_by_line)
    return data


def read_executed(db: Database) -> dict[str, dict[int, set[str]]]:
    """relative path -> line -> the tests that executed it (their own lines and their units')."""
    env = db.environment(DEFAULT_ENVIRONMENT)
    env_id = env.id if env is not None else None
    paths = {row.id: path for path, row in db.files().items()}
    units = db.units(env_id, with_lines=True)
    unit_lines = {uid: unpack_lines(unit.lines) for uid, unit in units.items()}
    executed: dict[str, dict[int, set[str]]] = {}
    rows = list(db.test_lines(env_id)) if env_id is not None else []
    used: set[int] = set()
    for _, _, units_blob in rows:
        used.update(unpack_ints(units_blob))
    # Units no test refers to (import time, collection) still executed their lines.
    rows += [(f"({units[uid].key})", b"", pack_ints([uid])) for uid in units if uid not in used]
    for nodeid, lines_blob, units_blob in rows:
        per_file = [unpack_lines(lines_blob)]
        per_file += [unit_lines[uid] for uid in unpack_ints(units_blob) if uid in unit_lines]
        for lines_by_file in per_file:
            for file_id, lines in lines_by_file.items():
                path = paths.get(file_id)
                if path is None:
                    continue
                by_line = executed.setdefault(path, {})
                for line in lines:
                    by_line.setdefault(line, set()).add(nodeid)
    return executed


def load_coverage(root: Path) -> CoverageData:
    """Coverage from the project's `.testmondata` (opened read-only)."""
    path = datafile_path(root)
    try:
        db, _ = Database.open(path, readonly=True)
    except DatabaseError as exc:
        return CoverageData(message=str(exc))
    try:
        executed = read_executed(db)
    finally:
        db.close()
    data = build_coverage(root, executed)
    if not data.files:
        data.message = "no coverage recorded yet: run some tests"
    return data


def load_known_tests(root: Path) -> list[tuple[str, str, float]]:
    """(nodeid, outcome, duration) of the tests recorded by earlier runs."""
    path = datafile_path(root)
    if not path.exists():
        return []
    try:
        db, _ = Database.open(path, readonly=True)
    except DatabaseError:
        return []
    try:
        env = db.environment(DEFAULT_ENVIRONMENT)
        if env is None:
            return []
        return [(t.nodeid, t.outcome, t.duration) for t in db.tests(env.id)]
    finally:
        db.close()
