"""coverage_model: statements, missed lines and who executed them, from .testmondata."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from testmon_watch.ui.coverage_model import build_coverage, executable_lines, load_coverage

from .conftest import write_project


def test_executable_lines() -> None:
    source = '"""doc"""\n\nX = 1\n\n\ndef f():\n    # comment\n    return X\n'
    assert executable_lines(source) == {3, 6, 8}
    assert executable_lines("def (:\n") == set()


def test_build_coverage(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("X = 1\n\n\ndef f():\n    return X\n")
    data = build_coverage(
        tmp_path, {"m.py": {1: {"t::a"}, 4: {"t::a"}, 2: {"t::b"}}, "data.json": {1: {"t::a"}}}
    )
    cov = data.files["m.py"]
    assert cov.statements == {1, 4, 5}
    assert cov.missed == {5}
    assert round(cov.percent) == 67
    assert cov.tests_by_line == {1: {"t::a"}, 4: {"t::a"}}  # line 2 is not a statement
    assert list(data.files) == ["m.py"]
    assert data.totals() == (3, 1, 200 / 3)


def test_load_coverage_from_a_real_run(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj")
    env = {k: v for k, v in os.environ.items() if k != "TESTMON_DATAFILE"}
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--testmon", "-p", "no:cacheprovider"],
        cwd=root,
        check=True,
        env=env,
        capture_output=True,
    )
    data = load_coverage(root)
    calc = data.files["calc.py"]
    assert calc.statements == {1, 2, 5, 6}
    assert calc.tests_by_line[2] == {
        "test_calc.py::test_add",
        "test_calc.py::TestMore::test_add_zero",
    }
    assert calc.tests_by_line[6] == {"test_calc.py::test_mul"}
    assert not calc.missed


def test_no_data_says_so(tmp_path: Path) -> None:
    data = load_coverage(tmp_path)
    assert not data.files and "does not exist" in data.message
