"""`pytest --testmon --testmon-cov[=SOURCE]`: a standard .coverage file from the recorded lines."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import coverage
import pytest

if TYPE_CHECKING:
    from conftest import Project

WORK = """
    import multiprocessing

    FACTOR = 3


    def square(x):
        if x < 0:
            return 0
        return x * x


    def triple(x):
        return x * FACTOR


    def check_triple(value, expected):
        if triple(value) != expected:
            raise SystemExit(1)


    def parallel_squares(values):
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(2) as pool:
            result = pool.map(square, values)
            # close + join: coverage.py saves a pool worker's data only when it exits
            # normally (leaving the `with` terminates the workers).
            pool.close()
            pool.join()
        return result


    def unused():
        return "never"
"""

PRICING = """
    from shop.work import triple


    def price(x):
        if x > 10:
            return triple(x) - 1
        return triple(x)


    def discount(x):
        return x - 1
"""

TEST_MP = """
    import multiprocessing

    from shop.work import check_triple, parallel_squares


    def test_pool():
        assert parallel_squares([1, 2, 3]) == [1, 4, 9]


    def test_process():
        # No file written: pytester's tmp_path is inside the project, and a file
        # the test writes and reads back is "changed during the run" (pending).
        ctx = multiprocessing.get_context("spawn")
        p = ctx.Process(target=check_triple, args=(2, 6))
        p.start()
        p.join()
        assert p.exitcode == 0
"""

TEST_PRICING = """
    from shop.pricing import discount, price


    def test_small():
        assert price(1) == 3


    def test_big():
        assert price(20) == 59


    def test_discount():
        assert discount(3) == 2
"""

TEST_UTIL = """
    from util import shout


    def test_shout():
        assert shout("a") == "A"
"""

UTIL = """
    def shout(s):
        return s.upper()
"""

COVERAGERC = """
    [run]
    source = .
    concurrency = multiprocessing
    parallel = true
"""


def make_project(project: Project, multiprocessing: bool = False) -> None:
    project.write("shop/__init__.py", "")
    project.write("shop/work.py", WORK)
    project.write("shop/pricing.py", PRICING)
    project.write("util.py", UTIL)
    project.write("tests/test_pricing.py", TEST_PRICING)
    project.write("tests/test_util.py", TEST_UTIL)
    if multiprocessing:
        project.write("tests/test_mp.py", TEST_MP)


RESULT = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)")


@dataclass
class Run:
    result: pytest.RunResult

    @property
    def ret(self) -> int:
        return int(self.result.ret)

    @property
    def ran(self) -> set[str]:
        return {m[1] for line in self.result.outlines if (m := RESULT.match(line))}

    @property
    def text(self) -> str:
        return self.result.stdout.str() + self.result.stderr.str()


def run(project: Project, *args: str) -> Run:
    """`pytest --testmon -v` in a subprocess, with a timeout (children must not hang it)."""
    result = project.pytester.runpytest_subprocess(
        "--testmon", "-v", "-p", "no:cacheprovider", *args, timeout=180
    )
    return Run(result)


def clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "COVERAGE_", "TESTMON_"))
    }


def coverage_cli(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coverage", *args],
        cwd=project.path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def read_data(path: Path) -> coverage.CoverageData:
    data = coverage.CoverageData(basename=str(path))
    data.read()
    return data


def relative_lines(data: coverage.CoverageData, root: Path) -> dict[str, set[int]]:
    base = os.path.realpath(root)
    return {
        os.path.relpath(f, base).replace(os.sep, "/"): set(data.lines(f) or ())
        for f in data.measured_files()
    }


def wrote_line(run: Run) -> str:
    lines = [line for line in run.text.splitlines() if "testmon-watch: wrote .coverage" in line]
    assert lines, f"no 'testmon-watch: wrote .coverage' line in:\n{run.text}"
    return lines[0]


def test_testmon_cov_writes_a_coverage_file_that_coverage_reads(project: Project) -> None:
    make_project(project)
    first = run(project, "--testmon-cov")
    assert first.ret == 0, first.text
    wrote_line(first)
    data_file = project.path / ".coverage"
    assert data_file.exists()
    data = read_data(data_file)
    assert "tests/test_pricing.py::test_big" in data.measured_contexts()

    report = coverage_cli(project, "report", "-m", "--data-file", ".coverage")
    assert report.returncode == 0, report.stdout + report.stderr
    assert "shop/pricing.py" in report.stdout
    html = coverage_cli(
        project, "html", "--show-contexts", "-d", "htmlcov", "--data-file", ".coverage"
    )
    assert html.returncode == 0, html.stdout + html.stderr
    assert (project.path / "htmlcov" / "index.html").exists()
    xml = coverage_cli(project, "xml", "--data-file", ".coverage")
    assert xml.returncode == 0, xml.stdout + xml.stderr
    assert 'filename="shop/pricing.py"' in (project.path / "coverage.xml").read_text()


def test_lines_equal_coverage_run_with_multiprocessing(project: Project) -> None:
    make_project(project, multiprocessing=True)
    project.write(".coveragerc", COVERAGERC)
    ran = subprocess.run(
        [sys.executable, "-m", "coverage", "run", "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=project.path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    combined = coverage_cli(project, "combine")
    assert combined.returncode == 0, combined.stdout + combined.stderr
    reference = project.path / "reference.coverage"
    shutil.move(project.path / ".coverage", reference)

    ours = run(project, "--testmon-cov")
    assert ours.ret == 0, ours.text
    expected = relative_lines(read_data(reference), project.path)
    actual = relative_lines(read_data(project.path / ".coverage"), project.path)

    project_files = {"shop/__init__.py", "shop/work.py", "shop/pricing.py", "util.py"}
    assert project_files <= expected.keys(), sorted(expected)
    assert project_files <= actual.keys(), sorted(actual)
    differences = [
        f"{name}: only coverage.py {sorted(expected[name] - actual[name])}, "
        f"only testmon-watch {sorted(actual[name] - expected[name])}"
        for name in sorted(expected.keys() & actual.keys())
        if expected[name] != actual[name]
    ]
    only = sorted(expected.keys() ^ actual.keys())
    assert not differences, (
        "executed lines differ:\n"
        + "\n".join(differences)
        + (f"\n(files measured by one side only: {only})" if only else "")
    )
    # The child processes' lines are there, credited to the tests that started them.
    data = read_data(project.path / ".coverage")
    work = os.path.realpath(project.path / "shop/work.py")
    by_line = data.contexts_by_lineno(work)
    square_body = (project.path / "shop/work.py").read_text().splitlines().index(
        "    return x * x"
    ) + 1
    assert by_line[square_body] == ["tests/test_mp.py::test_pool"]


def test_deselected_tests_are_merged(project: Project) -> None:
    make_project(project)
    first = run(project, "--testmon-cov")
    assert first.ret == 0, first.text
    everything = relative_lines(read_data(project.path / ".coverage"), project.path)
    all_tests = first.ran
    assert len(all_tests) == 4

    # Same line count: the line numbers of the other tests stay valid.
    project.replace("shop/pricing.py", "return x - 1", "return x + -1")
    second = run(project, "--testmon-cov")
    assert second.ret == 0, second.text
    assert second.ran == {"tests/test_pricing.py::test_discount"}
    data = read_data(project.path / ".coverage")
    assert all_tests <= set(data.measured_contexts())
    assert relative_lines(data, project.path) == everything
    line = wrote_line(second)
    assert "merged" in line and "3" in line, line
    assert re.search(r"\b3 deselected tests?\b.*merged|merged.*\b3 deselected", second.text), (
        second.text
    )


def test_testmon_cov_source_limits_the_files(project: Project) -> None:
    make_project(project)
    first = run(project, "--testmon-cov=shop")
    assert first.ret == 0, first.text
    wrote_line(first)
    files = relative_lines(read_data(project.path / ".coverage"), project.path)
    assert set(files) == {"shop/__init__.py", "shop/work.py", "shop/pricing.py"}


def test_pytest_cov_together_is_a_usage_error(project: Project) -> None:
    pytest.importorskip("pytest_cov")
    make_project(project)
    both = run(project, "--testmon-cov", "--cov=.")
    assert both.ret == 4, both.text
    assert both.ran == set()
    errors = [line for line in both.result.errlines if "--testmon-cov" in line and "--cov" in line]
    assert len(errors) == 1, both.text
