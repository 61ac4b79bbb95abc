"""The coverage job: the coverage view's report or the `.coverage` export, in a process of its own.

The app runs `python -m testmon_watch.measure.coverage_job <mode> --root <root>`
(arguments and answer: `wire/coverage_report.py`) so that neither coverage.py
nor the data file's reader is ever imported by the front end. Both modes read
the recorded lines through `core/line_attribution.py`, and the report mode
computes its numbers with coverage.py's own JSON report over exactly the data
the export writes, under the project's coverage configuration: the view shows
what `coverage report` prints for the exported `.coverage`.

Exactly one line, the answer, goes to stdout; anything else printed on the way
(coverage.py's warnings) goes to stderr.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import coverage
from coverage.exceptions import CoverageException
from coverage.parser import PythonParser

from testmon_watch.core.db import Database, DatabaseError
from testmon_watch.core.keys import ContextKey
from testmon_watch.core.line_attribution import LineAttribution, attribute_lines
from testmon_watch.measure.coverage_export import add_contexts, export_coverage
from testmon_watch.paths import ProjectPaths
from testmon_watch.wire.coverage_report import (
    Answer,
    CoverageReport,
    Exported,
    FileCoverage,
    JobMode,
    JobRequest,
    Problem,
    ProblemKind,
    ReportFormatError,
    Totals,
    encode,
    parse_job_arguments,
)


def run_job(request: JobRequest) -> Answer:
    """The answer to `request` (never raises for a problem the user can meet)."""
    paths = ProjectPaths.of(Path(os.path.realpath(request.root)))
    # coverage.py reads its configuration from, and names files relative to, the
    # current directory: the project root, as when the user runs `coverage report` there.
    os.chdir(paths.root)
    if not paths.datafile.exists():
        return Problem(ProblemKind.NO_DATA_FILE, str(paths.datafile))
    try:
        db, _ = Database.open(paths.datafile, readonly=True)
    except DatabaseError as exc:
        return Problem(ProblemKind.UNREADABLE, str(exc))
    try:
        with db.snapshot():
            env = db.environment(request.environment)
            if env is None or not db.tests(env.id):
                return Problem(ProblemKind.NO_DATA, request.environment)
            if request.mode is JobMode.EXPORT:
                summary = export_coverage(db, env.id, paths.root, paths.coverage_file)
                return Exported(
                    path=str(summary.path),
                    files=summary.files,
                    tests=summary.tests,
                    skipped_pending=summary.skipped_pending,
                )
            attribution = attribute_lines(db, env.id, paths.root)
    except sqlite3.Error as exc:
        return Problem(ProblemKind.UNREADABLE, f"{paths.datafile}: {exc}")
    except (OSError, CoverageException) as exc:
        return Problem(ProblemKind.FAILED, str(exc))
    finally:
        db.close()
    try:
        return coverage_report(attribution)
    except (OSError, CoverageException) as exc:
        return Problem(ProblemKind.FAILED, str(exc))


def coverage_report(attribution: LineAttribution) -> CoverageReport | Problem:
    """What `coverage report` says of these lines, with who executed each line.

    The lines go into an in-memory data file, exactly as the export writes them
    to disk, and coverage.py's JSON report reads it: its statements, exclusions,
    include/omit and precision settings, and its rounding.
    """
    if not any(True for _ in attribution.contexts()):
        return Problem(ProblemKind.NO_DATA, "no recorded line is still valid")
    cov = coverage.Coverage(data_file=None)  # the project's configuration, nothing on disk
    add_contexts(cov.get_data(), attribution.contexts(), attribution.files)
    with tempfile.TemporaryDirectory(prefix="testmon-watch-coverage-") as folder:
        out = Path(folder) / "report.json"
        # ignore_errors: a file edited into a syntax error since it was recorded is
        # left out of the view rather than failing all of it.
        cov.json_report(outfile=str(out), ignore_errors=True, show_contexts=False)
        report = json.loads(out.read_text(encoding="utf-8"))
    path_of = {filename: path for path, filename in attribution.files.items()}
    executed_by = attribution.executed_by()
    files = []
    for name, entry in report["files"].items():
        filename = os.path.realpath(name)  # relative to the root, the current directory
        path = path_of.get(filename, Path(name).as_posix())
        statements = frozenset(entry["executed_lines"]) | frozenset(entry["missing_lines"])
        excluded = frozenset(entry["excluded_lines"])
        files.append(
            FileCoverage(
                path=path,
                statements=statements,
                missing=frozenset(entry["missing_lines"]),
                excluded=excluded,
                percent=entry["summary"]["percent_covered_display"],
                executed_by=_by_statement(
                    filename, executed_by.get(path, {}), statements | excluded
                ),
            )
        )
    totals = report["totals"]
    return CoverageReport(
        files=tuple(files),
        totals=Totals(
            statements=totals["num_statements"],
            missing=totals["missing_lines"],
            percent=totals["percent_covered_display"],
        ),
    )


def _by_statement(
    filename: str, by_line: Mapping[int, set[ContextKey]], statements: frozenset[int]
) -> dict[int, tuple[ContextKey, ...]]:
    """Who executed each line, each line moved to the first line of its statement.

    coverage.py counts a multi-line statement at its first line, whichever of
    its lines the tracer saw; the tests of a line go where its mark is shown.
    """
    first_line = _first_lines(filename) if set(by_line) - statements - {0} else None
    result: dict[int, set[ContextKey]] = {}
    for line, keys in by_line.items():
        if line == 0:
            continue  # a module that ran without a line of its own
        if line not in statements and first_line is not None:
            line = first_line(line)
        result.setdefault(line, set()).update(keys)
    return {line: tuple(sorted(keys, key=str)) for line, keys in result.items()}


def _first_lines(filename: str) -> Callable[[int], int] | None:
    """coverage.py's map of a line to the first line of its statement (None: no parse)."""
    parser = PythonParser(filename=filename)
    try:
        parser.parse_source()
    except (CoverageException, SyntaxError, ValueError, OSError):
        return None
    return parser.first_line


def main(argv: Sequence[str] | None = None) -> int:
    """Print the answer as one line on stdout; 0 when there is an answer, even a problem."""
    answer_out = sys.stdout
    sys.stdout = sys.stderr  # nothing but the answer on the real stdout
    status = 0
    try:
        answer = run_job(parse_job_arguments(sys.argv[1:] if argv is None else argv))
    except ReportFormatError as exc:
        answer = Problem(ProblemKind.FAILED, str(exc))
        status = 2
    except Exception as exc:  # noqa: BLE001 - one line for the app; the traceback for stderr
        traceback.print_exc()
        answer = Problem(ProblemKind.FAILED, f"{type(exc).__name__}: {exc}")
        status = 1
    finally:
        sys.stdout = answer_out
    answer_out.write(encode(answer) + "\n")
    answer_out.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
