"""`testmon-watch combine`: shards' data files select as one full recording does."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from repo_helpers import digest, write_pytest_testmon_file

from testmon_watch.core.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from conftest import Project, Run

SHARD_1 = ("tests/test_a.py", "tests/test_b.py")
SHARD_2 = ("tests/test_c.py", "tests/test_d.py")


def make_suite(project: Project) -> None:
    project.write("pytest.ini", "[pytest]\npythonpath = .\ntestpaths = tests\n")
    project.write("app/__init__.py", "")
    project.write(
        "app/prices.py",
        """
        RATE = 2


        def price(x):
            return x * RATE


        def discount(x):
            return x - 1
    """,
    )
    project.write(
        "app/stock.py",
        """
        from app.prices import price


        def value(n):
            return price(n) * 10


        def count():
            return 3
    """,
    )
    project.write("tests/catalog.json", '{"items": 3}\n')
    project.write(
        "tests/conftest.py",
        """
        import json
        from pathlib import Path

        import pytest


        @pytest.fixture(scope="session")
        def catalog():
            return json.loads((Path(__file__).parent / "catalog.json").read_text())
    """,
    )
    project.write(
        "tests/test_a.py",
        """
        from app.prices import discount, price


        def test_price():
            assert price(2) == 4


        def test_discount():
            assert discount(2) == 1
    """,
    )
    project.write(
        "tests/test_b.py",
        """
        from app.stock import value


        def test_value():
            assert value(1) == 20


        def test_catalog(catalog):
            assert catalog["items"] == 3
    """,
    )
    project.write(
        "tests/test_c.py",
        """
        from app import prices, stock


        def test_count():
            assert stock.count() == 3


        def test_price_again():
            assert prices.price(3) == 6
    """,
    )
    project.write(
        "tests/test_d.py",
        """
        def test_plain():
            assert True


        def test_catalog_d(catalog):
            assert catalog
    """,
    )


def record(project: Project, monkeypatch: pytest.MonkeyPatch, datafile: str, *args: str) -> Run:
    monkeypatch.setenv("TESTMON_DATAFILE", datafile)
    run = project.run(*args)
    monkeypatch.delenv("TESTMON_DATAFILE")
    return run


def combine(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "testmon_watch.cli", "combine", *args],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_combined_shards_select_as_one_full_recording(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_suite(project)
    full = record(project, monkeypatch, "full.testmondata")
    assert full.ret == 0 and len(full.ran) == 8, full.text
    assert record(project, monkeypatch, "shard1.testmondata", *SHARD_1).ret == 0
    assert record(project, monkeypatch, "shard2.testmondata", *SHARD_2).ret == 0
    done = combine(project, "combined.testmondata", "shard1.testmondata", "shard2.testmondata")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "testmon-watch combine: 2 files into combined.testmondata: 8 tests, 0 due to run"
    ]

    def edit(relpath: str, old: str, new: str) -> None:
        project.replace(relpath, old, new)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("nothing", lambda: None),
        ("function body", lambda: edit("app/prices.py", "return x - 1", "return -1 + x")),
        ("module level", lambda: edit("app/prices.py", "RATE = 2", "RATE = 1 + 1")),
        ("data file", lambda: edit("tests/catalog.json", "3", "3 ")),
        ("another body", lambda: edit("app/stock.py", "return 3", "return 1 + 2")),
        ("deleted test file", lambda: project.delete("tests/test_d.py")),
        ("new test file", lambda: project.write("tests/test_e.py", "def test_e():\n    pass\n")),
    ]
    selected_any = set()
    for name, change in steps:
        change()
        from_full = record(project, monkeypatch, "full.testmondata")
        from_combined = record(project, monkeypatch, "combined.testmondata")
        assert from_full.ret == from_combined.ret == 0, (name, from_combined.text)
        assert from_combined.ran == from_full.ran, (name, from_full.text, from_combined.text)
        if from_full.ran:
            selected_any.add(name)
    # The comparison means something only if the edits select tests.
    assert selected_any == {name for name, _ in steps} - {"nothing", "deleted test file"}


def test_conflicts_are_resolved_by_time_and_reported(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_suite(project)
    project.replace("app/prices.py", "return x - 1", "return x - 2")  # a bug
    broken = record(project, monkeypatch, "old.testmondata", *SHARD_1)
    assert broken.outcomes["tests/test_a.py::test_discount"] == "FAILED"
    project.replace("app/prices.py", "return x - 2", "return x - 1")  # fixed
    assert record(project, monkeypatch, "new.testmondata", "tests/test_a.py").ret == 0

    # The older input first on the command line: order does not decide, time does.
    done = combine(project, "combined.testmondata", "old.testmondata", "new.testmondata")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "testmon-watch combine: 2 files into combined.testmondata: 4 tests, 0 due to run",
        "testmon-watch combine: 2 tests recorded in more than one file; "
        "kept the newest record of each:",
        "  tests/test_a.py::test_price: new.testmondata over old.testmondata",
        "  tests/test_a.py::test_discount: new.testmondata over old.testmondata",
    ]
    run = record(project, monkeypatch, "combined.testmondata", *SHARD_1)
    assert run.ran == set(), run.text  # the failed record lost to the newer, passed one


def test_out_may_be_one_of_the_inputs(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    make_suite(project)
    assert record(project, monkeypatch, ".testmondata", *SHARD_1).ret == 0
    assert record(project, monkeypatch, "shard2.testmondata", *SHARD_2).ret == 0
    done = combine(project, ".testmondata", ".testmondata", "shard2.testmondata")
    assert done.returncode == 0, done.stderr
    assert "8 tests" in done.stdout
    assert project.run().ran == set()
    assert not list(project.path.glob("*.combine-*"))
    assert not list(project.path.glob(".testmondata-wal"))


def with_python(project: Project, source: str, target: str, python: str) -> None:
    conn = sqlite3.connect(project.path / target)
    with sqlite3.connect(project.path / source) as src:
        src.backup(conn)
    src.close()
    with conn:
        conn.execute("UPDATE environment SET python = ?", (python,))
    conn.close()


def bad_schema(project: Project, target: str) -> None:
    with_python(project, "shard1.testmondata", target, "x")
    conn = sqlite3.connect(project.path / target)
    with conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    conn.close()


def pytest_testmon_file(project: Project, target: str) -> None:
    write_pytest_testmon_file(project.path / target)


REFUSED: dict[str, tuple[Callable[[Project, str], object], str]] = {
    "not a data file": (
        lambda project, target: (project.path / target).write_bytes(b"hello\n" * 200),
        "cannot use bad.testmondata: it is not a testmon-watch data file (file is not a database)",
    ),
    "pytest-testmon": (pytest_testmon_file, "cannot use bad.testmondata: it is a pytest-testmon"),
    "another schema": (
        bad_schema,
        f"cannot use bad.testmondata: it was written by a newer testmon-watch "
        f"(schema {SCHEMA_VERSION + 1}, this one reads {SCHEMA_VERSION})",
    ),
    "missing": (lambda project, target: None, "cannot use bad.testmondata: it does not exist"),
    "another python": (
        lambda project, target: with_python(
            project, "shard1.testmondata", target, "CPython 2.7.18 (pdp11)"
        ),
        "environment 'default' was recorded under ",
    ),
}


@pytest.mark.parametrize("kind", list(REFUSED))
@pytest.mark.parametrize("out_exists", [False, True], ids=["new-out", "existing-out"])
def test_bad_input_is_refused_and_nothing_written(
    project: Project, monkeypatch: pytest.MonkeyPatch, kind: str, out_exists: bool
) -> None:
    make_suite(project)
    assert record(project, monkeypatch, "shard1.testmondata", *SHARD_1).ret == 0
    make, reason = REFUSED[kind]
    make(project, "bad.testmondata")
    out = project.path / "combined.testmondata"
    if out_exists:
        with_python(project, "shard1.testmondata", out.name, "kept")
    before = sorted(p.name for p in project.path.iterdir())
    kept = digest(out) if out_exists else None

    done = combine(project, out.name, "shard1.testmondata", "bad.testmondata")

    assert done.returncode == 4
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("testmon-watch combine: " + reason), lines[0]
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in project.path.iterdir()) == before  # no temporary file left
    if out_exists:
        assert digest(out) == kept
    else:
        assert not out.exists()


def test_an_out_that_is_not_a_data_file_is_not_overwritten(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_suite(project)
    assert record(project, monkeypatch, "shard1.testmondata", *SHARD_1).ret == 0
    done = combine(project, "tests/conftest.py", "shard1.testmondata")
    assert done.returncode == 4
    assert done.stderr.startswith("testmon-watch combine: not overwriting tests/conftest.py: ")
    assert "def catalog" in (project.path / "tests/conftest.py").read_text()


def test_combine_is_a_subcommand_only_as_the_first_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testmon_watch import cli, combine

    called: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        called.append(list(argv))
        return 0

    monkeypatch.setattr(combine, "main", fake_main)
    assert cli.main(["combine", "out", "in"]) == 0
    assert called == [["out", "in"]]
    # After `--` it is an argument for pytest (here the root check stops the run first).
    missing = str(tmp_path / "missing")
    assert cli.main(["--root", missing, "--", "combine"]) == cli.EXIT_USAGE
    assert called == [["out", "in"]]
