"""Export the recorded executed lines as a standard coverage.py data file.

Every test that is still valid (not pending) becomes one coverage context named
by its node id, holding the lines its setup, call and teardown executed. Every
shared unit (`import:<path>`, `collect:<path>`, `fixture:...`, `session`)
becomes one context named by its key. The union is what the whole suite
executes, including tests deselected in this session, whose lines come from the
runs that last recorded them.

Only the public `coverage.CoverageData` API is used, so `coverage report`,
`coverage html --show-contexts` and `coverage xml` read the result as usual.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from testmon_watch.core.db import Database, FileRow
from testmon_watch.core.packing import unpack_ints, unpack_lines
from testmon_watch.paths import ProjectPaths


@dataclass(frozen=True)
class ExportSummary:
    path: Path  # the written data file
    files: int  # source files with at least one line
    contexts: int  # contexts written (tests and shared units with at least one line)
    merged_deselected: int  # valid tests whose lines came from earlier runs (not run this time)
    tests: int = 0  # test contexts among `contexts`
    skipped_pending: int = 0  # tests left out: their recorded lines are out of date

    def message(self, cwd: Path | None = None) -> str:
        """One line for the terminal: "testmon-watch: wrote .coverage (...)"."""
        name = _display_path(self.path, cwd)
        parts = [
            f"{self.files} file{'s' if self.files != 1 else ''}",
            f"{self.tests} test{'s' if self.tests != 1 else ''}",
        ]
        if self.merged_deselected:
            plural = "s" if self.merged_deselected != 1 else ""
            parts.append(
                f"lines of {self.merged_deselected} deselected test{plural} "
                "merged from earlier runs"
            )
        if self.skipped_pending:
            parts.append(
                f"{self.skipped_pending} out-of-date "
                f"test{'s' if self.skipped_pending != 1 else ''} left out"
            )
        return f"testmon-watch: wrote {name} ({', '.join(parts)})"


class SourceError(ValueError):
    """A `source` entry that names no file, directory or package under the root."""


def _display_path(path: Path, cwd: Path | None) -> str:
    base = cwd if cwd is not None else Path.cwd()
    try:
        return os.path.relpath(path, base) if path.is_absolute() else str(path)
    except ValueError:  # other drive on Windows
        return str(path)


def resolve_source(root: Path, source: Iterable[str]) -> list[str]:
    """Turn `--source`-like entries into '/'-separated paths relative to `root`.

    An entry is a file or directory path (relative to root, or absolute inside
    it), or a dotted package/module name: `a.b` is looked up as `a/b`, `a/b.py`,
    `src/a/b` and `src/a/b.py`. Returns "" for the root itself. Raises
    SourceError for an entry that matches nothing.
    """
    root = Path(os.path.realpath(root))
    result: list[str] = []
    for entry in source:
        entry = entry.strip()
        if not entry:
            continue
        found = _resolve_one(root, entry)
        if found is None:
            raise SourceError(
                f"{entry!r} is neither a file, a directory nor a package under {root}"
            )
        result.append(found)
    return result


def _resolve_one(root: Path, entry: str) -> str | None:
    candidates: list[Path] = [Path(entry) if os.path.isabs(entry) else root / entry]
    if _is_dotted(entry):
        rel = Path(*entry.split("."))
        for base in (root, root / "src"):
            candidates += [base / rel, (base / rel).with_name(rel.name + ".py")]
    for candidate in candidates:
        if candidate.exists():
            real = Path(os.path.realpath(candidate))
            try:
                rel_path = real.relative_to(root).as_posix()
            except ValueError:
                continue  # outside the project: nothing of it is recorded
            return "" if rel_path == "." else rel_path
    return None


def _is_dotted(entry: str) -> bool:
    return all(part.isidentifier() for part in entry.split("."))


def _selected(path: str, prefixes: Sequence[str]) -> bool:
    if not prefixes:
        return True
    for prefix in prefixes:
        if prefix == "" or path == prefix or path.startswith(prefix + "/"):
            return True
    return False


def _valid_fingerprints(
    db: Database, files: dict[int, FileRow], fingerprint_ids: set[int]
) -> set[int]:
    """Fingerprints whose checksums all still exist in their file's current blocks."""
    by_file = (
        db.fingerprints_of_files(
            {file_id for file_id in db.fingerprint_files(fingerprint_ids).values()}
        )
        if fingerprint_ids
        else {}
    )
    current: dict[int, set[int]] = {}
    valid = set()
    for fp_id, (file_id, checksums) in by_file.items():
        if fp_id not in fingerprint_ids:
            continue
        row = files.get(file_id)
        if row is None or row.missing:
            continue
        if file_id not in current:
            current[file_id] = {b[3] for b in row.blocks}
        if row.kind != "python" or checksums <= current[file_id]:
            valid.add(fp_id)
    return valid


def export_coverage(
    db: Database,
    env_id: int,
    root: Path,
    out_path: Path,
    source: Sequence[str] = (),
    ran: Collection[str] | None = None,
) -> ExportSummary:
    """Write `out_path` as a coverage.py data file (lines, one context per test and unit).

    `source` limits the files like coverage's `--source` (see `resolve_source`;
    empty: every project file). `ran` holds the node ids that ran in this
    session; valid tests outside it are counted as merged from earlier runs.
    Pending tests are left out: their code changed since their lines were
    recorded. So are shared units whose recorded code no longer exists, and
    files that are gone or no longer parse.
    """
    import coverage  # a dependency, but only needed here

    root = Path(os.path.realpath(root))
    out_path = Path(out_path)
    if not out_path.is_absolute():
        out_path = Path.cwd() / out_path
    prefixes = resolve_source(root, source)

    rows = db.files()
    files_by_id = {row.id: row for row in rows.values()}
    # file id -> absolute filename, for the files we may write
    filenames: dict[int, str] = {}
    for row in rows.values():
        if row.kind != "python" or row.missing or row.error is not None:
            continue
        if not _selected(row.path, prefixes):
            continue
        absolute = os.path.realpath(root / row.path)
        if not os.path.isfile(absolute):
            continue
        filenames[row.id] = absolute

    pending = {t.nodeid for t in db.tests(env_id) if t.pending}
    ran_set = set(ran) if ran is not None else None

    contexts: list[tuple[str, dict[str, list[int]]]] = []
    valid_unit_users: set[int] = set()
    test_count = merged = skipped = 0
    for nodeid, lines_blob, units_blob in db.test_lines(env_id):
        if nodeid in pending:
            skipped += 1
            continue
        valid_unit_users.update(unpack_ints(units_blob))
        if ran_set is not None and nodeid not in ran_set:
            merged += 1
        lines = _lines_for(unpack_lines(lines_blob), filenames)
        if lines:
            contexts.append((nodeid, lines))
            test_count += 1

    units = db.units(env_id, with_lines=True)
    unit_fps = {uid: set(unpack_ints(u.fingerprints)) for uid, u in units.items()}
    valid_fps = _valid_fingerprints(db, files_by_id, set().union(*unit_fps.values()))
    for unit_id, unit in sorted(units.items(), key=lambda item: item[1].key):
        if not unit_fps[unit_id] <= valid_fps:
            continue  # its code changed: the lines are out of date
        if not unit.key.startswith("import:") and unit_id not in valid_unit_users:
            continue  # only pending (or no) tests use it
        lines = _lines_for(unpack_lines(unit.lines), filenames)
        if lines:
            contexts.append((unit.key, lines))

    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside, then renamed over: never a half-written .coverage. The
    # temporary name must not match `.coverage.*`, which `coverage combine` takes.
    tmp = out_path.with_name(f".{out_path.name}-testmon-{os.getpid()}.tmp")
    if tmp.exists():
        tmp.unlink()
    measured: set[str] = set()
    try:
        data = coverage.CoverageData(basename=str(tmp))
        for context, lines in contexts:
            data.set_context(context)
            data.add_lines(lines)
            measured.update(f for f, ls in lines.items() if any(ls))
        if not contexts:
            data.add_lines({})  # an empty data file, but one of lines
        data.write()
        if out_path.exists() or out_path.is_symlink():
            out_path.unlink()
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return ExportSummary(
        path=out_path,
        files=len(measured),
        contexts=len(contexts),
        merged_deselected=merged,
        tests=test_count,
        skipped_pending=skipped,
    )


def _lines_for(lines: dict[int, set[int]], filenames: dict[int, str]) -> dict[str, list[int]]:
    """{file id: lines} -> {absolute filename: sorted lines} for the selected files.

    Line 0 marks a module that ran without a line of its own (an empty
    `__init__.py`); coverage.py records it the same way and reports no line for it.
    """
    result: dict[str, list[int]] = {}
    for file_id, file_lines in lines.items():
        filename = filenames.get(file_id)
        if filename is not None and file_lines:
            result[filename] = sorted(line for line in file_lines if line >= 0)
    return result


def export_coverage_file(root: Path, environment: str = "default") -> Path:
    """What the app's export key does: `.coverage` at the root from `.testmondata`, as now."""
    from testmon_watch.core.db import DatabaseError

    paths = ProjectPaths.of(Path(root))
    datafile = paths.datafile
    db, _ = Database.open(datafile, readonly=True)
    try:
        env = db.environment(environment)
        if env is None:
            raise DatabaseError(f"{datafile.name} has no data for environment {environment!r} yet")
        return export_coverage(db, env.id, paths.root, paths.coverage_file).path
    finally:
        db.close()
