"""The coverage job run through its client: real processes, real data files, every ending."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import coverage
import pytest

from testmon_watch.core.db import Database
from testmon_watch.coverage_client import CoverageJob
from testmon_watch.wire.coverage_report import (
    JOB_MODULE,
    CoverageReport,
    Exported,
    JobMode,
    Problem,
    ProblemKind,
    decode,
)

PROJECT = {
    "pytest.ini": "[pytest]\npythonpath = .\n",
    "shop/__init__.py": "",
    "shop/pricing.py": """\
        RATE = 2


        def price(x):
            total = (x *
                     RATE)  # continued
            return total


        def discount(x):
            return x - 1  # discount


        def never():
            return 0


        def debug():  # pragma: no cover
            return "debug"
        """,
    "tests/test_shop.py": """\
        from shop.pricing import discount, price


        def test_price():
            assert price(2) == 4


        def test_discount():
            assert discount(3) == 2
        """,
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "COVERAGE_", "TESTMON_"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def write(root: Path, files: dict[str, str]) -> Path:
    for relpath, text in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def run_pytest(root: Path, *args: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--testmon", "-p", "no:cacheprovider", "-q", *args],
        cwd=root,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, 5), result.stdout + result.stderr


def coverage_report_rows(root: Path, data_file: Path) -> dict[str, list[str]]:
    """`coverage report` on `data_file`, run at the root: name -> [stmts, miss, cover]."""
    result = subprocess.run(
        [sys.executable, "-m", "coverage", "report", "--data-file", str(data_file)],
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and re.fullmatch(r"[\d.]+%", fields[3]):
            rows[fields[0]] = fields[1:]
    return rows


def job(root: Path, mode: JobMode, **env: str) -> CoverageJob:
    return CoverageJob(root, mode, env=clean_env(**env))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample project after one recording run (read-only for the tests using it)."""
    root = write(tmp_path_factory.mktemp("recorded"), PROJECT)
    run_pytest(root)
    return root


# -- the two modes ---------------------------------------------------------------------------


def test_report_agrees_with_coverage_report_on_the_export(recorded: Path) -> None:
    report = job(recorded, JobMode.REPORT).run()
    assert isinstance(report, CoverageReport), report
    exported = job(recorded, JobMode.EXPORT).run()
    assert isinstance(exported, Exported), exported
    rows = coverage_report_rows(recorded, Path(exported.path))
    shown = {
        f.path: [str(len(f.statements)), str(len(f.missing)), f"{f.percent}%"] for f in report.files
    }
    total = report.totals
    shown["TOTAL"] = [str(total.statements), str(total.missing), f"{total.percent}%"]
    assert shown == rows
    pricing = next(f for f in report.files if f.path == "shop/pricing.py")
    lines = (recorded / "shop/pricing.py").read_text().splitlines()
    debug = next(n for n, text in enumerate(lines, 1) if "def debug" in text)
    assert debug in pricing.excluded and debug not in pricing.statements  # pragma: no cover
    never_body = next(n for n, text in enumerate(lines, 1) if "return 0" in text)
    assert pricing.missing == {never_body}


def test_who_executed_a_multi_line_statement_is_shown_at_its_first_line(recorded: Path) -> None:
    report = job(recorded, JobMode.REPORT).run()
    assert isinstance(report, CoverageReport), report
    pricing = next(f for f in report.files if f.path == "shop/pricing.py")
    lines = (recorded / "shop/pricing.py").read_text().splitlines()
    first = next(n for n, text in enumerate(lines, 1) if "total = (x *" in text)
    assert first + 1 not in pricing.statements  # the continuation line
    assert [str(k) for k in pricing.executed_by[first]] == ["test:tests/test_shop.py::test_price"]
    assert first + 1 not in pricing.executed_by


def test_export_writes_the_projects_coverage_file(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT)
    run_pytest(root)
    answer = job(root, JobMode.EXPORT).run()
    assert answer == Exported(
        path=str(Path(os.path.realpath(root)) / ".coverage"), files=3, tests=2, skipped_pending=0
    )
    data = coverage.CoverageData(basename=str(root / ".coverage"))
    data.read()
    assert len(data.measured_files()) == answer.files  # shop/__init__.py, shop/pricing.py, the test
    assert "tests/test_shop.py::test_price" in data.measured_contexts()


def test_the_data_file_named_by_testmon_datafile_is_read(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT)
    run_pytest(root, env=clean_env(TESTMON_DATAFILE="state/data.sqlite"))
    assert (root / "state/data.sqlite").exists() and not (root / ".testmondata").exists()
    report = job(root, JobMode.REPORT, TESTMON_DATAFILE="state/data.sqlite").run()
    assert isinstance(report, CoverageReport), report
    exported = job(root, JobMode.EXPORT, TESTMON_DATAFILE="state/data.sqlite").run()
    assert isinstance(exported, Exported), exported
    assert exported.path == str(Path(os.path.realpath(root)) / ".coverage")  # at the root
    # Without the variable the project has no data file.
    assert job(root, JobMode.REPORT).run() == Problem(
        ProblemKind.NO_DATA_FILE, str(Path(os.path.realpath(root)) / ".testmondata")
    )


def test_pending_tests_are_left_out_of_both(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT)
    run_pytest(root)
    path = root / "shop/pricing.py"
    path.write_text(path.read_text().replace("return x - 1  # discount", "return x + -1"))
    run_pytest(root, "-k", "test_price", "--testmon-forceselect")
    report = job(root, JobMode.REPORT).run()
    assert isinstance(report, CoverageReport), report
    pricing = next(f for f in report.files if f.path == "shop/pricing.py")
    discount_body = next(
        n for n, text in enumerate(path.read_text().splitlines(), 1) if "return x + -1" in text
    )
    assert discount_body in pricing.missing  # only the pending test executed it
    exported = job(root, JobMode.EXPORT).run()
    assert isinstance(exported, Exported) and exported.skipped_pending == 1, exported
    rows = coverage_report_rows(root, root / ".coverage")
    assert rows["TOTAL"] == [
        str(report.totals.statements),
        str(report.totals.missing),
        f"{report.totals.percent}%",
    ]


def test_the_projects_coverage_configuration_applies(tmp_path: Path) -> None:
    root = write(tmp_path, PROJECT)
    (root / ".coveragerc").write_text(
        "[report]\nprecision = 2\nomit = tests/*\nexclude_also =\n    def never\n"
    )
    run_pytest(root)
    report = job(root, JobMode.REPORT).run()
    assert isinstance(report, CoverageReport), report
    assert [f.path for f in report.files] == ["shop/__init__.py", "shop/pricing.py"]
    assert report.totals.missing == 0 and report.totals.percent == "100.00"
    exported = job(root, JobMode.EXPORT).run()
    assert isinstance(exported, Exported), exported
    assert coverage_report_rows(root, root / ".coverage")["TOTAL"] == [
        str(report.totals.statements),
        "0",
        "100.00%",
    ]


# -- problems ------------------------------------------------------------------------------------


def test_no_data_file(tmp_path: Path) -> None:
    for mode in JobMode:
        answer = job(tmp_path, mode).run()
        assert answer == Problem(
            ProblemKind.NO_DATA_FILE, str(Path(os.path.realpath(tmp_path)) / ".testmondata")
        )
    assert not (tmp_path / ".coverage").exists()


def test_a_corrupt_data_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    datafile = tmp_path / ".testmondata"
    datafile.write_bytes(b"this is not a database, but it is long enough to look like one" * 20)
    for mode in JobMode:
        answer = job(tmp_path, mode).run()
        assert isinstance(answer, Problem) and answer.kind is ProblemKind.UNREADABLE, answer
        assert "damaged" in answer.detail or "not a database" in answer.detail
    assert datafile.read_bytes().startswith(b"this is not a database")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".testmondata"]


def test_a_data_file_without_data(tmp_path: Path) -> None:
    db, _ = Database.open(tmp_path / ".testmondata")
    db.close()
    for mode in JobMode:
        assert job(tmp_path, mode).run() == Problem(ProblemKind.NO_DATA, "default")
    assert not (tmp_path / ".coverage").exists()
    with Database.open(tmp_path / ".testmondata")[0].transaction() as conn:
        conn.execute(
            "INSERT INTO environment (name, python, packages) VALUES ('default', 'py', '{}')"
        )
    assert job(tmp_path, JobMode.REPORT).run() == Problem(ProblemKind.NO_DATA, "default")


def test_another_environment_is_asked_for_by_name(recorded: Path) -> None:
    answer = CoverageJob(recorded, JobMode.REPORT, environment="py99", env=clean_env()).run()
    assert answer == Problem(ProblemKind.NO_DATA, "py99")


# -- the child process ---------------------------------------------------------------------------


def fake_python(tmp_path: Path, script: str) -> str:
    """An executable that stands in for the interpreter: the job's child, misbehaving."""
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for python")
@pytest.mark.parametrize(
    ("script", "detail"),
    [
        (
            """\
            echo 'Traceback (most recent call last):' >&2
            echo '  File "x.py", line 1, in <module>' >&2
            echo 'ModuleNotFoundError: No module named coverage' >&2
            exit 1
            """,
            "exit status 1: ModuleNotFoundError: No module named coverage",
        ),
        ("kill -9 $$\n", "killed by SIGKILL"),
        ("echo 'hello'\n", "the coverage job's answer is not JSON"),
        ('echo \'{"format": "testmon-watch coverage report", "version": 99}\'\n', "version 99"),
        ("exit 3\n", "exit status 3"),
    ],
)
def test_a_child_that_gives_no_answer_is_one_line(tmp_path: Path, script: str, detail: str) -> None:
    python = fake_python(tmp_path, script)
    answer = CoverageJob(tmp_path, JobMode.REPORT, python=python).run()
    assert isinstance(answer, Problem) and answer.kind is ProblemKind.CRASHED, answer
    assert detail in answer.detail
    assert "\n" not in answer.detail and "Traceback" not in answer.detail


def test_an_interpreter_that_cannot_start(tmp_path: Path) -> None:
    answer = CoverageJob(tmp_path, JobMode.REPORT, python=str(tmp_path / "nothing")).run()
    assert isinstance(answer, Problem) and answer.kind is ProblemKind.CRASHED
    assert answer.detail.startswith("cannot start ")


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for python")
def test_cancel_stops_a_running_job(tmp_path: Path) -> None:
    running = CoverageJob(
        tmp_path, JobMode.REPORT, python=fake_python(tmp_path, "exec sleep 600\n")
    )
    answers: list[object] = []
    thread = threading.Thread(target=lambda: answers.append(running.run()))
    thread.start()
    assert running.started.wait(60)
    running.cancel()
    thread.join(60)
    assert answers == [Problem(ProblemKind.CRASHED, "cancelled")]
    assert running.cancelled and running.returncode == -signal.SIGKILL


def test_a_job_cancelled_before_it_starts_never_starts(tmp_path: Path) -> None:
    never = CoverageJob(tmp_path, JobMode.REPORT)
    never.cancel()
    assert never.run() == Problem(ProblemKind.CRASHED, "cancelled")
    assert not never.started.is_set()


def test_bad_arguments_are_answered_on_stdout(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", JOB_MODULE, "draw", "--root", str(tmp_path)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert decode(result.stdout) == Problem(ProblemKind.FAILED, "coverage job: unknown mode 'draw'")


def test_the_answer_is_the_only_line_on_stdout(recorded: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", JOB_MODULE, "report", "--root", str(recorded)],
        cwd=recorded,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert json.loads(result.stdout)["answer"] == "report"
