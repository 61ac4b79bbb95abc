"""The coverage job's arguments and its answer, one JSON document on its stdout.

The app never reads `.testmondata` or imports coverage.py itself. For the
coverage view and the `.coverage` export it runs

    python -m testmon_watch.measure.coverage_job <mode> --root <root> --environment <name>

(`job_arguments` / `parse_job_arguments`) with the project root as its current
directory, and reads one line of JSON from its stdout (`encode` / `decode`):

    {"format": "testmon-watch coverage report", "version": 1, "answer": <kind>, ...}

    answer "report"    mode report: what `coverage report` says of the exported file
        "contexts": [context key, ...]        every key named below, once
        "groups": [[context index, ...], ...]  every set of contexts that executed a line, once
        "files": [{"path", "statements": [line], "missing": [line], "excluded": [line],
                   "percent": coverage's display, "executed_by": [[line, group index], ...]}]
        "totals": {"statements", "missing", "percent"}
    answer "exported"  mode export: `.coverage` was written
        "path", "files", "tests", "skipped_pending"
    answer "problem"   either mode: nothing to show or write, and why
        "kind": a `ProblemKind`, "detail": one line (the underlying error), or ""

Percentages are coverage.py's own display strings (its rounding: never 100
while a line is missed; its configured precision), so the view shows what
`coverage report` prints. Context keys are `ContextKey` texts: a test's key
names the test, a shared unit's key stands for itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from testmon_watch.core.defaults import DEFAULT_ENVIRONMENT
from testmon_watch.core.keys import ContextKey

VERSION = 1
FORMAT = "testmon-watch coverage report"
JOB_MODULE = "testmon_watch.measure.coverage_job"


class ReportFormatError(ValueError):
    """Bytes that are not a coverage job answer of this version (the message is one line)."""


class JobMode(str, Enum):
    REPORT = "report"  # the coverage view's files, lines and totals
    EXPORT = "export"  # write the project's `.coverage`

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class JobRequest:
    mode: JobMode
    root: Path
    environment: str = DEFAULT_ENVIRONMENT


def job_arguments(request: JobRequest) -> list[str]:
    """The interpreter's arguments that run the job (`[sys.executable, *job_arguments(...)]`)."""
    return [
        "-m",
        JOB_MODULE,
        request.mode.value,
        "--root",
        str(request.root),
        "--environment",
        request.environment,
    ]


def parse_job_arguments(argv: Sequence[str]) -> JobRequest:
    """Inverse of `job_arguments` without its first two (`argv`: what follows the module).

    Raises ReportFormatError naming what is wrong.
    """
    if not argv:
        raise ReportFormatError("coverage job: no mode (report or export)")
    try:
        mode = JobMode(argv[0])
    except ValueError:
        raise ReportFormatError(f"coverage job: unknown mode {argv[0]!r}") from None
    options: dict[str, str] = {}
    rest = list(argv[1:])
    while rest:
        name = rest.pop(0)
        if name not in ("--root", "--environment") or not rest:
            raise ReportFormatError(f"coverage job: unexpected argument {name!r}")
        options[name] = rest.pop(0)
    if "--root" not in options:
        raise ReportFormatError("coverage job: --root is required")
    return JobRequest(
        mode, Path(options["--root"]), options.get("--environment", DEFAULT_ENVIRONMENT)
    )


# -- the answer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCoverage:
    """One reported source file, as coverage.py analyses it, and who executed each line."""

    path: str  # project-relative, '/'-separated
    statements: frozenset[int]  # the statements coverage.py counts (exclusions left out)
    missing: frozenset[int]  # statements no valid record executed
    excluded: frozenset[int] = frozenset()  # excluded by the project's coverage configuration
    percent: str = ""  # coverage.py's display of the percentage covered
    # line -> who executed it: tests, or a shared unit no test uses (an import's body)
    executed_by: Mapping[int, tuple[ContextKey, ...]] = field(default_factory=dict)

    @property
    def executed(self) -> frozenset[int]:
        return self.statements - self.missing

    @property
    def covered(self) -> float:
        """Percentage of statements executed (100 for a file without any)."""
        if not self.statements:
            return 100.0
        return 100.0 * len(self.executed) / len(self.statements)


@dataclass(frozen=True)
class Totals:
    statements: int
    missing: int
    percent: str  # coverage.py's display, the one on `coverage report`'s TOTAL line


@dataclass(frozen=True)
class CoverageReport:
    """Answer of mode report: every reported file, in coverage.py's order, and the totals."""

    files: tuple[FileCoverage, ...]
    totals: Totals


@dataclass(frozen=True)
class Exported:
    """Answer of mode export: the written data file."""

    path: str  # absolute
    files: int  # source files with at least one line
    tests: int  # tests with at least one line
    skipped_pending: int  # tests left out: their recorded lines are out of date


class ProblemKind(str, Enum):
    NO_DATA_FILE = "no_data_file"  # nothing was recorded yet: there is no data file
    UNREADABLE = "unreadable"  # the data file exists but cannot be read (damaged, foreign, locked)
    NO_DATA = "no_data"  # the data file holds no tests of the environment, or no valid line
    FAILED = "failed"  # the job ran into an error (coverage.py, the file system)
    CRASHED = "crashed"  # the job ended without an answer (the front end's client says so)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Problem:
    """Answer of either mode when there is nothing to show or write."""

    kind: ProblemKind
    detail: str = ""  # one line: the underlying error or exit status, no sentence of ours


Answer = CoverageReport | Exported | Problem


def _one_line(text: str) -> str:
    return " ".join(text.split())


def encode(answer: Answer) -> str:
    """One line of JSON (no newline at the end)."""
    document: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    if isinstance(answer, CoverageReport):
        # The lines of one function mostly share their tests: each set is written once.
        index: dict[ContextKey, int] = {}
        groups: dict[tuple[int, ...], int] = {}
        files = []
        for file in answer.files:
            executed_by = []
            for line, keys in sorted(file.executed_by.items()):
                group = tuple(index.setdefault(key, len(index)) for key in keys)
                executed_by.append([line, groups.setdefault(group, len(groups))])
            files.append(
                {
                    "path": file.path,
                    "statements": sorted(file.statements),
                    "missing": sorted(file.missing),
                    "excluded": sorted(file.excluded),
                    "percent": file.percent,
                    "executed_by": executed_by,
                }
            )
        totals = answer.totals
        document.update(
            answer="report",
            contexts=[str(key) for key in index],
            groups=[list(group) for group in groups],
            files=files,
            totals={
                "statements": totals.statements,
                "missing": totals.missing,
                "percent": totals.percent,
            },
        )
    elif isinstance(answer, Exported):
        document.update(
            answer="exported",
            path=answer.path,
            files=answer.files,
            tests=answer.tests,
            skipped_pending=answer.skipped_pending,
        )
    else:
        document.update(answer="problem", kind=answer.kind.value, detail=_one_line(answer.detail))
    return json.dumps(document, separators=(",", ":"))


def decode(text: str | bytes) -> Answer:
    """The answer in `text`; ReportFormatError (one line) for anything else."""
    try:
        document = json.loads(text)
    except ValueError:
        raise ReportFormatError("the coverage job's answer is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ReportFormatError("the coverage job's answer is not a coverage report")
    version = document.get("version")
    if version != VERSION:
        raise ReportFormatError(
            f"the coverage job answered in version {version!r} of its format (this reads {VERSION})"
        )
    try:
        return _decode_answer(document)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ReportFormatError(f"the coverage job's answer is malformed ({exc!r})") from None


def _ints(values: Any) -> frozenset[int]:
    if not isinstance(values, list) or not all(type(v) is int for v in values):
        raise TypeError("expected a list of line numbers")
    return frozenset(values)


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _decode_answer(document: dict[str, Any]) -> Answer:
    kind = document["answer"]
    if kind == "report":
        contexts = [ContextKey.parse(_str(text)) for text in document["contexts"]]
        groups = [tuple(contexts[_int(i)] for i in group) for group in document["groups"]]
        files = []
        for entry in document["files"]:
            executed_by = {_int(line): groups[_int(group)] for line, group in entry["executed_by"]}
            files.append(
                FileCoverage(
                    path=_str(entry["path"]),
                    statements=_ints(entry["statements"]),
                    missing=_ints(entry["missing"]),
                    excluded=_ints(entry["excluded"]),
                    percent=_str(entry["percent"]),
                    executed_by=executed_by,
                )
            )
        totals = document["totals"]
        return CoverageReport(
            files=tuple(files),
            totals=Totals(
                statements=_int(totals["statements"]),
                missing=_int(totals["missing"]),
                percent=_str(totals["percent"]),
            ),
        )
    if kind == "exported":
        return Exported(
            path=_str(document["path"]),
            files=_int(document["files"]),
            tests=_int(document["tests"]),
            skipped_pending=_int(document["skipped_pending"]),
        )
    if kind == "problem":
        return Problem(ProblemKind(document["kind"]), _str(document["detail"]))
    raise ValueError(f"unknown answer {kind!r}")
