"""Beside pytest-xdist, pytest-cov and an installed pytest-testmon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CALC = """
    def add(a, b):
        return a + b


    def mul(a, b):
        return a * b


    def unused():
        return 0
"""


def make_project(project, modules: int = 4) -> None:
    project.write("calc.py", CALC)
    for i in range(modules):
        project.write(
            f"test_m{i}.py",
            """
            import pytest
            from calc import add, mul


            @pytest.fixture(scope="session")
            def two():
                return add(1, 1)


            def test_add(two):
                assert add(two, 1) == 3


            def test_mul():
                assert mul(2, 3) == 6
        """,
        )


def test_xdist_workers_record_and_one_writer_stores(project) -> None:
    pytest.importorskip("xdist")
    make_project(project)
    first = project.run("-n", "2")
    assert first.ret == 0, first.text
    assert len(first.ran) == 8
    assert "database is locked" not in first.text
    again = project.run("-n", "2")
    assert again.ran == set()
    assert again.ret == 0
    project.replace("calc.py", "return a * b", "return b * a")
    edited = project.run("-n", "2")
    assert edited.ran == {f"test_m{i}.py::test_mul" for i in range(4)}
    # The session fixture is credited to every test that used it, on every worker.
    project.replace("calc.py", "return a + b", "return b + a")
    assert project.run("-n", "2").ran == {f"test_m{i}.py::test_add" for i in range(4)}


def coverage_lines(path: Path) -> dict[str, list[int]]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "coverage",
            "json",
            "-o",
            "-",
            "--data-file",
            str(path / ".coverage"),
        ],
        cwd=path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = json.loads(out)
    return {name: sorted(info["executed_lines"]) for name, info in data["files"].items()}


def test_pytest_cov_data_is_not_corrupted(project) -> None:
    pytest.importorskip("pytest_cov")
    make_project(project, modules=2)
    plain = project.run("--cov=.", "--cov-report=", testmon=False)
    assert plain.ret == 0
    expected = coverage_lines(project.path)
    (project.path / ".coverage").unlink()
    both = project.run("--cov=.", "--cov-report=")
    assert both.ret == 0, both.text
    assert coverage_lines(project.path) == expected
    if sys.version_info < (3, 12):
        assert "allows one: selecting, but not recording this run" in both.text
    else:
        # Different sys.monitoring tool ids: both record.
        project.replace("calc.py", "return a * b", "return b * a")
        assert project.run("--cov=.", "--cov-report=").ran == {
            "test_m0.py::test_mul",
            "test_m1.py::test_mul",
        }


@pytest.fixture(scope="session")
def pytest_testmon_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("pytest-testmon")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            "pytest-testmon==2.2.0",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot install pytest-testmon 2.2.0 here: {result.stderr.strip()[-200:]}")
    return target


def test_installed_pytest_testmon_stops_with_one_line(
    project, pytest_testmon_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(project, modules=1)
    monkeypatch.setenv("PYTHONPATH", str(pytest_testmon_dir))
    run = project.run()
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert "pytest-testmon is installed too" in run.text
    assert "Traceback" not in run.text
    # Without --testmon, pytest (and pytest-testmon) keep working.
    plain = project.run(testmon=False)
    assert plain.ret == 0
