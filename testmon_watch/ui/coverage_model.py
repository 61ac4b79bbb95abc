"""What the coverage view and the export key show, made from the coverage job's answers.

The numbers come from the job (`wire/coverage_report.py`); this module only
words them: titles, labels, marks and one-line messages. No Textual import and
no access to the data file, so it is unit-tested on its own.
"""

from __future__ import annotations

import os
from pathlib import Path

from testmon_watch.core.keys import ContextKey, ContextKind
from testmon_watch.wire.coverage_report import (
    CoverageReport,
    Exported,
    FileCoverage,
    Problem,
    ProblemKind,
)

LOADING = "Coverage: reading the recorded lines…"
UNEXPECTED = "coverage: the job gave another kind of answer"


def context_label(key: ContextKey) -> str:
    """A test by its node id; a shared unit (an import's body) by its key, in parentheses."""
    return key.target if key.kind is ContextKind.TEST else f"({key})"


def executed_by(file: FileCoverage, line: int) -> list[str]:
    """The labels of whoever executed `line`, sorted."""
    return sorted(context_label(key) for key in file.executed_by.get(line, ()))


def title(report: CoverageReport) -> str:
    """The view's title: coverage.py's total percentage, statements and misses."""
    totals = report.totals
    return f"Coverage: {totals.percent}% of {totals.statements} statements, {totals.missing} missed"


def percent_style(file: FileCoverage) -> str:
    covered = file.covered
    return "green" if covered >= 90 else "yellow" if covered >= 60 else "red"


def line_style(file: FileCoverage, line: int) -> str:
    """green: an executed statement; red: a missed one; dim: anything else."""
    if line in file.missing:
        return "red"
    if line in file.statements:
        return "green"
    return "dim"


def describe_problem(problem: Problem) -> str:
    """One line for the view's title or a notification."""
    detail = problem.detail
    if problem.kind is ProblemKind.NO_DATA_FILE:
        name = Path(detail).name if detail else ".testmondata"
        return f"no coverage recorded yet: {name} does not exist (run some tests)"
    if problem.kind is ProblemKind.NO_DATA:
        return "no coverage recorded yet: run some tests"
    if problem.kind is ProblemKind.UNREADABLE:
        return f"cannot read the recorded lines: {detail}"
    if problem.kind is ProblemKind.CRASHED:
        return f"the coverage job crashed ({detail})" if detail else "the coverage job crashed"
    return f"coverage failed: {detail}" if detail else "coverage failed"


def describe_export(exported: Exported, root: Path) -> str:
    """One line for the export's notification: "wrote .coverage (3 files, 7 tests)"."""
    try:
        shown = os.path.relpath(exported.path, root)
    except ValueError:  # another drive on Windows
        shown = exported.path
    if shown.startswith(".."):
        shown = exported.path
    parts = [_count(exported.files, "file"), _count(exported.tests, "test")]
    if exported.skipped_pending:
        parts.append(f"{_count(exported.skipped_pending, 'out-of-date test')} left out")
    return f"wrote {shown} ({', '.join(parts)})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
