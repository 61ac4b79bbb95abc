"""coverage_model: the coverage view's words and marks, from the job's answers (real runs too)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from testmon_watch.core.keys import ContextKey
from testmon_watch.coverage_client import CoverageJob
from testmon_watch.ui.coverage_model import (
    context_label,
    describe_export,
    describe_problem,
    executed_by,
    line_style,
    percent_style,
    title,
)
from testmon_watch.wire.coverage_report import (
    CoverageReport,
    Exported,
    FileCoverage,
    JobMode,
    Problem,
    ProblemKind,
    Totals,
)

from .conftest import write_project

ADD = ContextKey.test("test_calc.py::test_add")
ZERO = ContextKey.test("test_calc.py::TestMore::test_add_zero")
CALC = FileCoverage(
    "calc.py",
    statements=frozenset({1, 2, 5, 6}),
    missing=frozenset({6}),
    excluded=frozenset({8}),
    percent="75",
    executed_by={1: (ContextKey.import_of("calc.py"),), 2: (ZERO, ADD), 3: (ADD,)},
)


def test_labels_name_tests_by_node_id_and_units_by_key() -> None:
    assert context_label(ADD) == "test_calc.py::test_add"
    assert context_label(ContextKey.import_of("calc.py")) == "(import:calc.py)"
    assert context_label(ContextKey.session()) == "(session)"
    assert executed_by(CALC, 2) == [
        "test_calc.py::TestMore::test_add_zero",
        "test_calc.py::test_add",
    ]
    assert executed_by(CALC, 1) == ["(import:calc.py)"]
    assert executed_by(CALC, 6) == []


def test_marks_and_styles() -> None:
    assert [line_style(CALC, n) for n in range(1, 9)] == [
        "green",
        "green",
        "dim",  # executed, but not a statement of its own (a continuation line)
        "dim",
        "green",
        "red",
        "dim",
        "dim",  # excluded
    ]
    assert percent_style(CALC) == "yellow"
    assert percent_style(FileCoverage("a.py", frozenset({1}), frozenset())) == "green"
    assert percent_style(FileCoverage("a.py", frozenset({1, 2}), frozenset({1, 2}))) == "red"


def test_title_shows_coveragepy_rounding_as_given() -> None:
    report = CoverageReport(files=(CALC,), totals=Totals(203, 1, "99"))
    assert title(report) == "Coverage: 99% of 203 statements, 1 missed"


def test_every_problem_is_one_line() -> None:
    for kind in ProblemKind:
        for detail in ("", "cannot use /p/.testmondata: it is damaged (file is not a database)"):
            text = describe_problem(Problem(kind, detail))
            assert text and "\n" not in text
    assert describe_problem(Problem(ProblemKind.NO_DATA_FILE, "/p/.testmondata")) == (
        "no coverage recorded yet: .testmondata does not exist (run some tests)"
    )
    assert describe_problem(Problem(ProblemKind.NO_DATA, "default")) == (
        "no coverage recorded yet: run some tests"
    )
    assert "it is damaged" in describe_problem(Problem(ProblemKind.UNREADABLE, "it is damaged"))
    assert describe_problem(Problem(ProblemKind.CRASHED, "killed by SIGKILL")) == (
        "the coverage job crashed (killed by SIGKILL)"
    )


def test_export_message(tmp_path: Path) -> None:
    written = str(tmp_path / ".coverage")
    assert (
        describe_export(Exported(written, 3, 7, 0), tmp_path)
        == "wrote .coverage (3 files, 7 tests)"
    )
    assert describe_export(Exported(written, 1, 1, 2), tmp_path) == (
        "wrote .coverage (1 file, 1 test, 2 out-of-date tests left out)"
    )
    elsewhere = str(tmp_path.parent / "x.coverage")
    assert describe_export(Exported(elsewhere, 1, 1, 0), tmp_path).startswith(f"wrote {elsewhere} ")


def test_report_of_a_real_run(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESTMON_", "COVERAGE_"))}
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--testmon", "-p", "no:cacheprovider"],
        cwd=root,
        check=True,
        env=env,
        capture_output=True,
    )
    report = CoverageJob(root, JobMode.REPORT, env=env).run()
    assert isinstance(report, CoverageReport), report
    calc = next(f for f in report.files if f.path == "calc.py")
    assert calc.statements == {1, 2, 5, 6}
    assert not calc.missing and calc.percent == "100"
    assert set(executed_by(calc, 2)) == {
        "test_calc.py::test_add",
        "test_calc.py::TestMore::test_add_zero",
    }
    assert executed_by(calc, 6) == ["test_calc.py::test_mul"]
    assert executed_by(calc, 1) == ["(import:calc.py)"]
    assert [f.path for f in report.files] == ["calc.py", "test_calc.py"]
    assert report.totals.statements == sum(len(f.statements) for f in report.files)


def test_no_data_file_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESTMON_")}
    answer = CoverageJob(tmp_path, JobMode.REPORT, env=env).run()
    assert answer == Problem(
        ProblemKind.NO_DATA_FILE, str(Path(os.path.realpath(tmp_path)) / ".testmondata")
    )
    assert "does not exist" in describe_problem(answer)
