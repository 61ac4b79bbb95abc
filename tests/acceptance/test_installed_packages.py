"""Installed distributions are dependencies of the tests that use them, not of all tests.

The rule (core/distributions.py, README "Installed packages"): a test depends on
the distributions it imported, read files or metadata of, or asked for by name,
and on what those require; a test that enumerates distributions on their set;
every test on pytest, its plugins and the interpreter. Each case installs real
wheels with pip into a real virtualenv and runs `pytest --testmon` there.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_fast_path import fresh_venv
from wheels import install_offline, make_wheel, uninstall

RESULT = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)")

PROJECT = {
    "pytest.ini": "[pytest]\npythonpath = .\ntestpaths = tests\n",
    "app/__init__.py": "",
    "app/core.py": "def double(x):\n    return 2 * x\n",
    "tests/test_core.py": (
        "from app.core import double\n\n\ndef test_double():\n    assert double(2) == 4\n"
    ),
    # libx is imported inside one test only: its neighbour does not depend on it.
    "tests/test_libx.py": (
        "def test_uses_libx():\n    import libx\n\n    assert libx.VALUE\n\n\n"
        "def test_neighbour():\n    assert True\n"
    ),
    # libz, imported at the top, requires liby: liby's code runs for these tests.
    "tests/test_libz.py": "import libz\n\n\ndef test_z():\n    assert libz.VALUE\n",
    # libd ships only data: read from site-packages, never imported.
    "tests/test_data.py": (
        "import sysconfig\nfrom pathlib import Path\n\n\n"
        "def test_reads_table():\n"
        "    table = Path(sysconfig.get_paths()['purelib'], 'libd_data', 'table.txt')\n"
        "    assert table.read_text()\n"
    ),
    # libw is imported only by a child process the test starts.
    "tests/test_child.py": (
        "import subprocess\nimport sys\n\n\n"
        "def test_child_imports_libw():\n"
        "    code = 'import libw; assert libw.VALUE'\n"
        "    subprocess.run([sys.executable, '-c', code], check=True)\n"
    ),
}
METADATA_TESTS = {
    "tests/test_meta.py": (
        "from importlib.metadata import PackageNotFoundError, entry_points, version\n\n\n"
        "def test_version():\n    assert version('libx')\n\n\n"
        "def test_not_installed():\n"
        "    try:\n        version('notyet')\n    except PackageNotFoundError:\n        pass\n\n\n"
        "def test_entry_points():\n"
        "    assert entry_points(group='sample.plugins') is not None\n"
    ),
}


def library(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    module = name.replace("-", "_")
    files = {f"{module}/__init__.py": f"VALUE = {version!r}\n"}
    wheel: Path = make_wheel(folder, name, version, files, requires)
    return wheel


def data_library(folder: Path, version: str) -> Path:
    wheel: Path = make_wheel(folder, "libd", version, {"libd_data/table.txt": f"table {version}\n"})
    return wheel


@dataclass
class Project:
    root: Path
    venv: Path
    wheels: Path

    def run(self, *args: str) -> set[str]:
        done = subprocess.run(
            [str(self.venv / "bin" / "pytest"), "--testmon", "-v", "-p", "no:cacheprovider", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.last = done.stdout + done.stderr
        assert done.returncode in (0, 1), self.last
        return {m[1] for m in map(RESULT.match, self.last.splitlines()) if m}

    def install(self, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
        if name == "libd":
            wheel = data_library(self.wheels, version)
        else:
            wheel = library(self.wheels, name, version, requires)
        install_offline(self.venv, wheel)


def make_project(tmp_path: Path, files: dict[str, str]) -> Project:
    root = tmp_path / "project"
    for relpath, text in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    project = Project(root, fresh_venv(tmp_path / "venv"), wheels)
    install_offline(
        project.venv,
        library(wheels, "libx", "1.0"),
        library(wheels, "liby", "1.0"),
        library(wheels, "libz", "1.0", ("liby>=1",)),
        library(wheels, "libw", "1.0"),
        data_library(wheels, "1.0"),
    )
    recorded = project.run()
    assert recorded and "FAILED" not in project.last, project.last
    assert project.run() == set(), project.last
    return project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path, PROJECT)


@pytest.fixture
def metadata_project(tmp_path: Path) -> Project:
    return make_project(tmp_path, PROJECT | METADATA_TESTS)


def test_installing_an_unrelated_package_reruns_nothing(project: Project) -> None:
    project.install("unrelated", "1.0")
    assert project.run("--testmon-explain") == set(), project.last
    assert "unrelated 1.0 installed" in project.last


def test_upgrading_a_package_reruns_exactly_the_tests_that_imported_it(project: Project) -> None:
    project.install("libx", "2.0")
    assert project.run() == {"tests/test_libx.py::test_uses_libx"}, project.last
    assert project.run() == set(), project.last


def test_upgrading_what_an_imported_package_requires_reruns_its_tests(project: Project) -> None:
    project.install("liby", "2.0")
    assert project.run() == {"tests/test_libz.py::test_z"}, project.last


def test_a_package_only_a_child_process_imported_reruns_its_test(project: Project) -> None:
    project.install("libw", "2.0")
    assert project.run() == {"tests/test_child.py::test_child_imports_libw"}, project.last


def test_a_test_that_read_a_package_file_reruns_when_it_changes(project: Project) -> None:
    project.install("libd", "2.0")
    assert project.run() == {"tests/test_data.py::test_reads_table"}, project.last


def test_removing_a_package_reruns_its_tests(project: Project) -> None:
    uninstall(project.venv, "libx")
    assert project.run() == {"tests/test_libx.py::test_uses_libx"}, project.last
    assert "No module named 'libx'" in project.last


def test_a_new_pytest_plugin_reruns_everything(project: Project) -> None:
    plugin = make_wheel(
        project.wheels,
        "pytest-sample-plugin",
        "1.0",
        {"sample_plugin.py": "def pytest_configure(config):\n    pass\n"},
        entry_points="[pytest11]\nsample = sample_plugin\n",
    )
    install_offline(project.venv, plugin)
    ran = project.run()
    assert ran == {
        "tests/test_core.py::test_double",
        "tests/test_libx.py::test_uses_libx",
        "tests/test_libx.py::test_neighbour",
        "tests/test_libz.py::test_z",
        "tests/test_data.py::test_reads_table",
        "tests/test_child.py::test_child_imports_libw",
    }, project.last


def test_metadata_asked_by_name_or_enumerated(metadata_project: Project) -> None:
    project = metadata_project
    # Any new distribution: the test that enumerates entry points runs again.
    project.install("unrelated", "1.0")
    assert project.run() == {"tests/test_meta.py::test_entry_points"}, project.last
    # The one a test looked for and did not find: it runs again too.
    project.install("notyet", "1.0")
    assert project.run() == {
        "tests/test_meta.py::test_not_installed",
        "tests/test_meta.py::test_entry_points",
    }, project.last
    # A version asked for by name, the import of the same package, and the test
    # that read every distribution's entry points (libx's among them).
    project.install("libx", "3.0")
    assert project.run() == {
        "tests/test_meta.py::test_version",
        "tests/test_libx.py::test_uses_libx",
        "tests/test_meta.py::test_entry_points",
    }, project.last
