"""Acceptance-test helpers: a sample project in a temporary folder, run with real pytest twice."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

OUTCOMES = "PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS"
RESULT_LINES = (
    re.compile(rf"^(?P<nodeid>\S+::\S+) (?P<outcome>{OUTCOMES})"),
    # pytest-xdist's verbose form: "[gw0] [ 50%] PASSED test_a.py::test_x"
    re.compile(rf"^\[gw\d+\] \[ *\d+%\] (?P<outcome>{OUTCOMES}) (?P<nodeid>\S+::\S+)"),
)


def parse_result(line: str) -> re.Match[str] | None:
    for pattern in RESULT_LINES:
        match = pattern.match(line)
        if match:
            return match
    return None


@dataclass
class Run:
    """One finished `pytest --testmon` subprocess."""

    result: pytest.RunResult

    @property
    def ran(self) -> set[str]:
        """Node ids that ran (any outcome), parsed from -v output."""
        found = set()
        for line in self.result.outlines:
            match = parse_result(line)
            if match:
                found.add(match["nodeid"])
        return found

    @property
    def outcomes(self) -> dict[str, str]:
        found = {}
        for line in self.result.outlines:
            match = parse_result(line)
            if match:
                found[match["nodeid"]] = match["outcome"]
        return found

    @property
    def ret(self) -> int:
        return int(self.result.ret)

    @property
    def text(self) -> str:
        return self.result.stdout.str() + self.result.stderr.str()


class Project:
    """A throw-away project: write files, run pytest --testmon, edit, run again."""

    # Tests that start pytest themselves wrap results in this (`conftest` is not a
    # unique module name once several conftest.py files are loaded).
    run_class = Run

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path
        self.write("pytest.ini", "[pytest]\npythonpath = .\n")

    def write(self, relpath: str, text: str) -> Path:
        path = self.path / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def replace(self, relpath: str, old: str, new: str) -> None:
        path = self.path / relpath
        content = path.read_text()
        assert old in content, f"{old!r} not in {relpath}"
        path.write_text(content.replace(old, new, 1))

    def delete(self, relpath: str) -> None:
        (self.path / relpath).unlink()

    def run(self, *args: str, testmon: bool = True) -> Run:
        flags = ["--testmon"] if testmon else []
        result = self.pytester.runpytest_subprocess(*flags, "-v", "-p", "no:cacheprovider", *args)
        return Run(result)

    def first_run(self, *args: str) -> Run:
        """The recording run: everything runs and passes."""
        run = self.run(*args)
        assert run.ret == 0, run.text
        return run


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Project:
    # Under pytest-xdist the runs below would inherit this and believe they are
    # xdist workers themselves (the no-change fast path stands aside for those).
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    return Project(pytester)
