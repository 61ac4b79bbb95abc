"""A data file recorded in one checkout and venv selects correctly in another clone and venv.

What docs/CI.md promises: record `pytest --testmon` in checkout A with venv 1, `git clone`
A to another absolute path B (every file with a fresh mtime), copy A's `.testmondata`
into B, and run there with another venv. Real git, real virtualenvs, no network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from repo_helpers import clean_env, git
from test_fast_path import fresh_venv
from wheels import install_offline, make_wheel

from testmon_watch.core.environment import python_identity

REPO_ROOT = Path(__file__).resolve().parents[2]
DATAFILE = ".testmondata"

FILES = {
    "pytest.ini": "[pytest]\npythonpath = .\ntestpaths = tests\n",
    ".gitignore": ".testmondata*\n__pycache__/\n",
    "calc/__init__.py": '"""A small package: arithmetic and text."""\n',
    "calc/arith.py": (
        "def add(a, b):\n    return a + b\n\n\n"
        "def sub(a, b):\n    return a - b\n\n\n"
        "def mul(a, b):\n    return a * b\n"
    ),
    "calc/text.py": "def shout(word):\n    return word.upper() + '!'\n",
    "tests/test_arith.py": (
        "from calc.arith import add, mul, sub\n\n\n"
        "def test_add():\n    assert add(1, 2) == 3\n\n\n"
        "def test_add_negative():\n    assert add(-1, -2) == -3\n\n\n"
        "def test_sub():\n    assert sub(5, 3) == 2\n\n\n"
        "def test_mul():\n    assert mul(2, 3) == 6\n\n\n"
        "def test_mul_by_zero():\n    assert mul(7, 0) == 0\n"
    ),
    "tests/test_text.py": (
        "from calc.text import shout\n\n\ndef test_shout():\n    assert shout('hi') == 'HI!'\n"
    ),
}
ALL = {
    "tests/test_arith.py::test_add",
    "tests/test_arith.py::test_add_negative",
    "tests/test_arith.py::test_sub",
    "tests/test_arith.py::test_mul",
    "tests/test_arith.py::test_mul_by_zero",
    "tests/test_text.py::test_shout",
}
MUL_TESTS = {"tests/test_arith.py::test_mul", "tests/test_arith.py::test_mul_by_zero"}
RESULT = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)")

if shutil.which("git") is None:
    pytest.skip("git is not installed", allow_module_level=True)


@dataclass
class Run:
    """One finished `pytest --testmon -v` in a checkout."""

    ret: int
    text: str

    @property
    def ran(self) -> set[str]:
        return {m[1] for m in map(RESULT.match, self.text.splitlines()) if m}


def pytest_in(venv: Path, checkout: Path, *args: str) -> Run:
    """`pytest --testmon` as a developer types it in `checkout`, from `venv`'s console script."""
    done = subprocess.run(
        [str(venv / "bin" / "pytest"), "--testmon", "-v", "-p", "no:cacheprovider", *args],
        cwd=checkout,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Run(done.returncode, done.stdout + done.stderr)


def unrelated_wheel(folder: Path) -> Path:
    """A wheel of `unrelated-tool` 1.0, a distribution the project never uses."""
    files = {"unrelated_tool/__init__.py": '"""Nothing the sample project imports."""\n'}
    wheel: Path = make_wheel(folder, "unrelated-tool", "1.0", files)
    return wheel


@pytest.fixture(scope="module")
def venv_one(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv: Path = fresh_venv(tmp_path_factory.mktemp("venv-one") / "venv")
    return venv


@pytest.fixture(scope="module")
def venv_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another venv at another path with the same distributions as venv one."""
    venv: Path = fresh_venv(tmp_path_factory.mktemp("venv-two") / "venv")
    return venv


@pytest.fixture(scope="module")
def venv_extra(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another venv with one more distribution than venv one: `unrelated-tool` 1.0."""
    venv: Path = fresh_venv(tmp_path_factory.mktemp("venv-extra") / "venv")
    install_offline(venv, unrelated_wheel(tmp_path_factory.mktemp("wheel")))
    return venv


@pytest.fixture(scope="module")
def checkout_a(tmp_path_factory: pytest.TempPathFactory, venv_one: Path) -> Path:
    """Checkout A: the sample project committed in git and recorded with venv one."""
    root = tmp_path_factory.mktemp("machine-a") / "project"
    for relpath, text in FILES.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)
    git(root, "init", "--quiet")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "sample project")
    first = pytest_in(venv_one, root)
    assert first.ret == 0, first.text
    assert first.ran == ALL, first.text
    return root


def clone_with_data(checkout_a: Path, where: Path) -> Path:
    """`git clone` A to `where` (fresh mtimes), plus A's data file, as CI's artifact brings it."""
    where.parent.mkdir(parents=True, exist_ok=True)
    git(where.parent, "clone", "--quiet", str(checkout_a), where.name)
    shutil.copyfile(checkout_a / DATAFILE, where / DATAFILE)
    # Every file of B later than its recorded mtime, however fast the clone was.
    later = (checkout_a / "calc" / "arith.py").stat().st_mtime_ns + 86_400 * 10**9
    for path in where.rglob("*"):
        if ".git" not in path.parts and path.name != DATAFILE and path.is_file():
            os.utime(path, ns=(later, later))
    return where


def edit_mul(checkout: Path) -> None:
    path = checkout / "calc" / "arith.py"
    text = path.read_text()
    assert "return a * b" in text
    path.write_text(text.replace("return a * b", "return b * a"))


def test_another_clone_and_venv_run_nothing_then_only_the_edited_function(
    checkout_a: Path, venv_two: Path, tmp_path: Path
) -> None:
    b = clone_with_data(checkout_a, tmp_path / "machine-b" / "elsewhere" / "project")
    assert b.resolve() != checkout_a.resolve()

    unchanged = pytest_in(venv_two, b, "--testmon-explain")
    assert unchanged.ret == 0, unchanged.text
    assert unchanged.ran == set(), unchanged.text
    assert "selected 0, deselected 6" in unchanged.text, unchanged.text

    edit_mul(b)
    edited = pytest_in(venv_two, b, "--testmon-explain")
    assert edited.ret == 0, edited.text
    assert edited.ran == MUL_TESTS, edited.text


def test_an_unrelated_distribution_installed_reruns_nothing(
    checkout_a: Path, venv_extra: Path, tmp_path: Path
) -> None:
    """The environment-dependencies rule of docs/CI.md: no test imported `unrelated-tool`."""
    b = clone_with_data(checkout_a, tmp_path / "machine-b" / "project")

    unchanged = pytest_in(venv_extra, b, "--testmon-explain")
    assert unchanged.ran == set(), unchanged.text

    edit_mul(b)
    edited = pytest_in(venv_extra, b, "--testmon-explain")
    assert edited.ret == 0, edited.text
    assert edited.ran == MUL_TESTS, edited.text


def other_python_venv() -> Path | None:
    """A venv of this checkout (`make venv312` etc.) on another Python minor version, with
    pytest and this testmon-watch: a data file recorded here must be of no use there."""
    probe = (
        "import sys, pytest, testmon_watch; "
        "print(sys.version_info[0], sys.version_info[1], testmon_watch.__file__)"
    )
    for name in (".venv310", ".venv", ".venv312", ".venv313"):
        venv = REPO_ROOT / name
        python, script = venv / "bin" / "python", venv / "bin" / "pytest"
        if not (python.is_file() and script.is_file()):
            continue
        done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
        if done.returncode != 0:
            continue
        major, minor, location = done.stdout.split(maxsplit=2)
        same_version = (int(major), int(minor)) == sys.version_info[:2]
        if not same_version and Path(location.strip()).is_relative_to(REPO_ROOT):
            return venv
    return None


def test_another_python_version_reruns_everything(checkout_a: Path, tmp_path: Path) -> None:
    venv = other_python_venv()
    if venv is None:
        pytest.skip(
            f"no venv of another Python version than {sys.version.split()[0]} "
            f"in {REPO_ROOT} (make venv310 / venv312 / venv313 builds one)"
        )
    b = clone_with_data(checkout_a, tmp_path / "machine-b" / "project")

    run = pytest_in(venv, b, "--testmon-explain")
    assert run.ret == 0, run.text
    assert run.ran == ALL, run.text
    assert f"environment changed: Python {python_identity()} -> " in run.text, run.text
