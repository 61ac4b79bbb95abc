"""--testmon-baseline: select against a data file recorded elsewhere, never writing it."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from repo_helpers import digest, git, write_pytest_testmon_file

from testmon_watch.core.schema import MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    from conftest import Project, Run


def ours_beside(path: Path) -> set[str]:
    """The data file and its companions (-wal, -shm) in its folder."""
    return {p.name for p in path.parent.glob(path.name + "*")}


def run_in(project: Project, where: Path, *args: str) -> Run:
    """`pytest --testmon -v` with `where` as the current folder (another checkout)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(where)
        result = project.pytester.runpytest_subprocess(
            "--testmon", "-v", "-p", "no:cacheprovider", *args
        )
    return project.run_class(result)


def baseline_lines(run: Run) -> list[str]:
    return [line for line in run.text.splitlines() if "testmon-watch: baseline " in line]


def make_shop(project: Project) -> None:
    project.write(".gitignore", ".testmondata*\nrunpytest-*/\n__pycache__/\n")
    project.write("shop/__init__.py", "")
    project.write(
        "shop/pricing.py",
        """
        def price(x):
            return x * 2


        def discount(x):
            return x - 1
    """,
    )
    project.write(
        "shop/util.py",
        """
        def fmt(x):
            return f"${x}"
    """,
    )
    project.write(
        "test_pricing.py",
        """
        from shop.pricing import discount, price


        def test_price():
            assert price(2) == 4


        def test_discount():
            assert discount(2) == 1
    """,
    )
    project.write(
        "test_util.py",
        """
        from shop.util import fmt


        def test_fmt():
            assert fmt(3) == "$3"
    """,
    )
    project.write(
        "test_other.py",
        """
        def test_plain():
            assert True
    """,
    )


def test_baseline_from_an_older_commit_selects_what_changed_since(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Checkout A records at commit 1: the baseline (a CI artifact).
    make_shop(project)
    a = project.path
    git(a, "init", "-q")
    git(a, "add", ".")
    git(a, "commit", "-qm", "one")
    project.first_run()
    baseline = a / ".testmondata"
    before, companions = digest(baseline), ours_beside(baseline)

    # Checkout B: a fresh clone (new mtimes), then commit 2: an edited function,
    # a renamed module, a renamed test file, a new test file.
    b = tmp_path_factory.mktemp("checkout") / "B"
    git(a.parent, "clone", "-q", str(a), str(b))
    pricing = b / "shop/pricing.py"
    pricing.write_text(pricing.read_text().replace("return x - 1", "return -1 + x"))
    git(b, "mv", "shop/util.py", "shop/format.py")
    (b / "test_util.py").write_text((b / "test_util.py").read_text().replace("util", "format"))
    git(b, "mv", "test_other.py", "test_misc.py")
    (b / "test_new.py").write_text("def test_new():\n    assert 1\n")
    git(b, "add", ".")
    git(b, "commit", "-qm", "two")

    run = run_in(project, b, f"--testmon-baseline={baseline}")
    must_run = {
        "test_pricing.py::test_discount",  # the edited function
        "test_util.py::test_fmt",  # its module was renamed (and its import edited)
        "test_misc.py::test_plain",  # the renamed test file: new node ids
        "test_new.py::test_new",
    }
    assert run.ret == 0, run.text
    assert run.ran == must_run, run.text
    assert baseline_lines(run) == [
        f"testmon-watch: baseline {baseline}: 4 tests imported "
        "(3 to run: changed since recorded there, or due to run)"
    ]
    assert digest(baseline) == before
    assert ours_beside(baseline) == companions  # not even a -shm beside it

    again = run_in(project, b, f"--testmon-baseline={baseline}")
    assert again.ran == set(), again.text
    assert "no records newer than those imported before" in again.text

    # What a local record selects for the same change: checkout A brought to commit 2.
    git(a, "pull", "-q", str(b), "main")
    local = project.run()
    assert local.ran == must_run, local.text


def make_flag_project(project: Project) -> None:
    project.write(
        "test_flag.py",
        """
        import os


        def test_flag():
            # The environment is not a dependency: the record decides whether it runs.
            assert "BREAK" not in os.environ


        def test_other():
            assert True
    """,
    )


def test_newer_baseline_record_wins(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    make_flag_project(project)
    monkeypatch.setenv("BREAK", "1")
    assert project.run().outcomes["test_flag.py::test_flag"] == "FAILED"  # local, older
    monkeypatch.delenv("BREAK")
    monkeypatch.setenv("TESTMON_DATAFILE", "ci.testmondata")
    project.first_run()  # the baseline, newer: passed
    monkeypatch.delenv("TESTMON_DATAFILE")
    # Given by the ini option this time.
    project.write("pytest.ini", "[pytest]\npythonpath = .\ntestmon_baseline = ci.testmondata\n")
    run = project.run()
    assert run.ran == set(), run.text  # the local record alone would run test_flag again
    assert "2 tests imported" in run.text


def test_newer_local_record_wins(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    make_flag_project(project)
    monkeypatch.setenv("TESTMON_DATAFILE", "ci.testmondata")
    project.first_run()  # the baseline, older: passed
    monkeypatch.delenv("TESTMON_DATAFILE")
    monkeypatch.setenv("BREAK", "1")
    assert project.run().outcomes["test_flag.py::test_flag"] == "FAILED"  # local, newer
    monkeypatch.delenv("BREAK")
    run = project.run("--testmon-baseline=ci.testmondata")
    assert run.outcomes == {"test_flag.py::test_flag": "PASSED"}, run.text
    assert baseline_lines(run) == [
        "testmon-watch: baseline ci.testmondata: no records newer than the local ones "
        "(2 tests recorded more recently here)"
    ]


# -- baselines that are not used -------------------------------------------------------


def copy_data_file(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def edit_copy(project: Project, target: Path, statement: str) -> None:
    copy_data_file(project.path / ".testmondata", target)
    conn = sqlite3.connect(target)
    with conn:
        conn.execute(statement)
    conn.close()


def pytest_testmon_file(project: Project, target: Path) -> None:
    write_pytest_testmon_file(target)


def another_project(project: Project, target: Path) -> None:
    other = project.path / "elsewhere"
    other.mkdir()
    (other / "test_theirs.py").write_text("def test_theirs():\n    assert 1\n")
    (other / "pytest.ini").write_text("[pytest]\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(other)
        patch.setenv("TESTMON_DATAFILE", str(target))
        result = project.pytester.runpytest_subprocess("--testmon", "-p", "no:cacheprovider")
    assert result.ret == 0
    shutil.rmtree(other)


BAD_BASELINES = {
    "pytest-testmon": (pytest_testmon_file, "it is a pytest-testmon database"),
    "random bytes": (
        lambda project, target: target.write_bytes(bytes(range(256)) * 16),
        "it is not a testmon-watch data file (file is not a database)",
    ),
    "empty": (lambda project, target: target.write_bytes(b""), "it is empty"),
    "missing": (lambda project, target: None, "it does not exist"),
    "newer schema": (
        lambda project, target: edit_copy(
            project,
            target,
            f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema_version'",
        ),
        f"it was written by a newer testmon-watch (schema {SCHEMA_VERSION + 1}, "
        f"this one reads {SCHEMA_VERSION})",
    ),
    "older schema": (
        lambda project, target: edit_copy(
            project,
            target,
            f"UPDATE meta SET value = '{min(MIGRATIONS) - 1}' WHERE key = 'schema_version'",
        ),
        f"it has the older schema version {min(MIGRATIONS) - 1} (now {SCHEMA_VERSION})",
    ),
    "another python": (
        lambda project, target: edit_copy(
            project, target, "UPDATE environment SET python = 'CPython 2.7.18 (pdp11)'"
        ),
        "recorded under CPython 2.7.18 (pdp11), this run uses CPython ",
    ),
    "another project": (
        another_project,
        "its only test file does not exist here (recorded for another project, "
        "or from another rootdir)",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_BASELINES))
def test_unusable_baseline_is_refused_in_one_line(project: Project, kind: str) -> None:
    make_flag_project(project)
    project.first_run()
    target = project.path / "ci.testmondata"
    make, reason = BAD_BASELINES[kind]
    make(project, target)
    kept = digest(target) if target.exists() else None

    run = project.run("--testmon-baseline=ci.testmondata")

    assert run.ret == 0, run.text
    assert "Traceback" not in run.text
    lines = baseline_lines(run)
    assert len(lines) == 1, run.text
    assert lines[0].startswith("testmon-watch: baseline ci.testmondata not used: " + reason)
    assert run.ran == set(), run.text  # the local data selected as usual
    assert (digest(target) if target.exists() else None) == kept
    assert project.run().ran == set()  # and is intact


def test_refusal_is_said_once_also_under_q(project: Project) -> None:
    make_flag_project(project)
    project.first_run()
    result = project.pytester.runpytest_subprocess(
        "--testmon", "-q", "-p", "no:cacheprovider", "--testmon-baseline=missing.testmondata"
    )
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, text
    assert text.count("baseline missing.testmondata not used: it does not exist") == 1, text


def test_the_option_alone_turns_selection_on(project: Project) -> None:
    make_flag_project(project)
    project.first_run()
    copy_data_file(project.path / ".testmondata", project.path / "ci.testmondata")
    run = project.run("--testmon-baseline=ci.testmondata", testmon=False)
    assert run.ran == set(), run.text
    assert baseline_lines(run) == [
        "testmon-watch: baseline ci.testmondata: no records newer than the local ones"
    ]


def test_baseline_outside_the_project_needs_the_equals_form(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # pytest chooses the rootdir before plugins add options: `--testmon-baseline FILE`
    # makes FILE look like a test path, and the rootdir would follow it.
    make_flag_project(project)
    project.first_run()
    elsewhere = tmp_path_factory.mktemp("artifacts") / "ci.testmondata"
    copy_data_file(project.path / ".testmondata", elsewhere)
    run = project.run("--testmon-baseline", str(elsewhere))
    assert run.ret == 4, run.text
    assert f"write --testmon-baseline={elsewhere} (with '=')" in run.text
    assert "Traceback" not in run.text


def test_baseline_keeps_the_fast_path_aside(project: Project) -> None:
    make_flag_project(project)
    project.first_run()
    copy_data_file(project.path / ".testmondata", project.path / "ci.testmondata")
    run = project.run("--testmon-explain", "--testmon-baseline=ci.testmondata")
    assert run.ran == set()
    assert "fast path not taken: a baseline data file is given (ci.testmondata)" in run.text
    assert "nothing changed: not collected" not in run.text
