"""wire/coverage_report: the job's arguments and answers survive the trip; nothing else is read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testmon_watch.core.defaults import DEFAULT_ENVIRONMENT
from testmon_watch.core.keys import ContextKey
from testmon_watch.wire.coverage_report import (
    FORMAT,
    JOB_MODULE,
    VERSION,
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
    decode,
    encode,
    job_arguments,
    parse_job_arguments,
)

ADD = ContextKey.test("tests/test_calc.py::test_add")
MUL = ContextKey.test("tests/test_calc.py::TestMore::test_mul[1-2]")
IMPORT = ContextKey.import_of("calc.py")
FIXTURE = ContextKey.fixture("module", "tests/test_calc.py", "tests", "catalog", 1)

REPORT = CoverageReport(
    files=(
        FileCoverage(
            "calc.py",
            statements=frozenset({1, 2, 5, 6, 9}),
            missing=frozenset({9}),
            excluded=frozenset({11, 12}),
            percent="80",
            executed_by={1: (IMPORT,), 2: (ADD, MUL), 5: (IMPORT,), 6: (ADD, MUL)},
        ),
        FileCoverage("pkg/__init__.py", statements=frozenset(), missing=frozenset(), percent="100"),
        FileCoverage(
            "tests/conftest.py",
            statements=frozenset({1, 4, 5}),
            missing=frozenset(),
            percent="100",
            executed_by={5: (FIXTURE,), 4: (ContextKey.session(),)},
        ),
    ),
    totals=Totals(statements=8, missing=1, percent="87.50"),
)

ANSWERS: list[Answer] = [
    REPORT,
    CoverageReport(files=(), totals=Totals(0, 0, "100")),
    Exported(path="/p/.coverage", files=3, tests=7, skipped_pending=1),
    *(Problem(kind, "cannot use /p/.testmondata: it is damaged") for kind in ProblemKind),
    Problem(ProblemKind.NO_DATA),
]


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: type(a).__name__)
def test_every_answer_round_trips(answer: Answer) -> None:
    text = encode(answer)
    assert "\n" not in text
    assert decode(text) == answer
    assert decode(text.encode()) == answer


def test_a_set_of_contexts_shared_by_lines_is_written_once() -> None:
    document = json.loads(encode(REPORT))
    assert document["format"] == FORMAT and document["version"] == VERSION
    assert sorted(document["contexts"]) == sorted(
        str(k) for k in (ADD, MUL, IMPORT, FIXTURE, ContextKey.session())
    )
    calc = document["files"][0]
    assert calc["executed_by"][1][1] == calc["executed_by"][3][1]  # lines 2 and 6: add, mul
    assert len(document["groups"]) == 4


def test_decoded_values_are_typed() -> None:
    decoded = decode(encode(REPORT))
    assert isinstance(decoded, CoverageReport)
    calc = decoded.files[0]
    assert calc.executed == {1, 2, 5, 6}
    assert calc.covered == 80.0
    assert all(isinstance(key, ContextKey) for keys in calc.executed_by.values() for key in keys)
    assert decoded.files[1].covered == 100.0


def test_a_multi_line_detail_travels_as_one_line() -> None:
    decoded = decode(encode(Problem(ProblemKind.FAILED, "first\n  second\n")))
    assert decoded == Problem(ProblemKind.FAILED, "first second")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "not JSON"),
        ("Traceback (most recent call last):", "not JSON"),
        ("[1, 2]", "not a coverage report"),
        (json.dumps({"format": "other", "version": VERSION}), "not a coverage report"),
        (json.dumps({"format": FORMAT, "version": VERSION + 1}), f"version {VERSION + 1}"),
        (json.dumps({"format": FORMAT}), "version None"),
        (json.dumps({"format": FORMAT, "version": VERSION, "answer": "what"}), "malformed"),
        (json.dumps({"format": FORMAT, "version": VERSION, "answer": "exported"}), "malformed"),
        (
            json.dumps({"format": FORMAT, "version": VERSION, "answer": "problem", "kind": "bad"}),
            "malformed",
        ),
    ],
)
def test_anything_else_is_refused_in_one_line(text: str, says: str) -> None:
    with pytest.raises(ReportFormatError) as caught:
        decode(text)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_malformed_report_bodies_are_refused() -> None:
    document = json.loads(encode(REPORT))
    damages: list[Callable[[dict[str, Any]], object]] = [
        lambda d: d["files"][0].update(statements=["1"]),
        lambda d: d["files"][0].update(executed_by=[[1, 99]]),
        lambda d: d.update(groups=[[99]]),
        lambda d: d.update(contexts=["not a key"]),
        lambda d: d["totals"].update(missing="1"),
        lambda d: d["files"][0].pop("percent"),
    ]
    for damage in damages:
        broken = json.loads(json.dumps(document))
        damage(broken)
        with pytest.raises(ReportFormatError, match="malformed"):
            decode(json.dumps(broken))


def test_job_arguments_round_trip() -> None:
    for request in (
        JobRequest(JobMode.REPORT, Path("/p/root")),
        JobRequest(JobMode.EXPORT, Path("/p/with space"), "py311"),
    ):
        argv = job_arguments(request)
        assert argv[:2] == ["-m", JOB_MODULE]
        assert parse_job_arguments(argv[2:]) == request


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "no mode"),
        (["draw"], "unknown mode 'draw'"),
        (["report"], "--root is required"),
        (["report", "--root"], "unexpected argument '--root'"),
        (["report", "--root", "/p", "--verbose"], "unexpected argument '--verbose'"),
    ],
)
def test_bad_job_arguments_are_refused(argv: list[str], says: str) -> None:
    with pytest.raises(ReportFormatError, match=says):
        parse_job_arguments(argv)


def test_the_default_environment_is_the_engines() -> None:
    assert JobRequest(JobMode.REPORT, Path(".")).environment == DEFAULT_ENVIRONMENT
