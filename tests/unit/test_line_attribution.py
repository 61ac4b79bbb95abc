"""core/line_attribution: who executed which line, and which records are valid (real runs)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import coverage
import pytest

from testmon_watch.core.db import Database
from testmon_watch.core.keys import ContextKey
from testmon_watch.core.line_attribution import LineAttribution, attribute_lines, under_any
from testmon_watch.measure.coverage_export import export_coverage

PROJECT = {
    "pytest.ini": "[pytest]\npythonpath = .\n",
    "shop/__init__.py": "",
    "shop/pricing.py": """\
        RATE = 2


        def price(x):
            return x * RATE  # price


        def discount(x):
            return x - 1  # discount
        """,
    "shop/extra.py": """\
        def shout(s):
            return s.upper()  # shout
        """,
    "tests/conftest.py": """\
        import pytest


        @pytest.fixture(scope="module")
        def catalog():
            return {"a": 1}  # catalog fixture
        """,
    "tests/test_shop.py": """\
        from shop.pricing import discount, price


        def test_price():
            assert price(2) == 4


        def test_discount(catalog):
            assert discount(3) == 2
        """,
    "tests/test_extra.py": """\
        def test_shout():
            from shop import extra  # imported here: a broken extra.py fails this test only

            assert extra.shout("a") == "A"
        """,
}

PRICE = "tests/test_shop.py::test_price"
DISCOUNT = "tests/test_shop.py::test_discount"
SHOUT = "tests/test_extra.py::test_shout"


def run_pytest(root: Path, *args: str) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "COVERAGE_", "TESTMON_"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--testmon", "-p", "no:cacheprovider", "-q", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, 5), result.stdout + result.stderr


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for relpath, text in PROJECT.items():
        path = tmp_path / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    run_pytest(tmp_path)
    return tmp_path


def attribution(root: Path, paths: tuple[str, ...] = ()) -> LineAttribution:
    db, _ = Database.open(root / ".testmondata", readonly=True)
    try:
        env = db.environment("default")
        assert env is not None
        with db.snapshot():
            return attribute_lines(db, env.id, root, paths)
    finally:
        db.close()


def line_of(root: Path, relpath: str, marker: str) -> int:
    lines = (root / relpath).read_text().splitlines()
    return next(n for n, text in enumerate(lines, 1) if marker in text)


def edit(root: Path, relpath: str, old: str, new: str) -> None:
    path = root / relpath
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def recorded_tests(found: LineAttribution) -> set[str]:
    return {test.key.target for test in found.tests}


def catalog_fixtures(found: LineAttribution) -> list[ContextKey]:
    return [unit.key for unit in found.units if unit.key.fixture_name == "catalog"]


def test_who_executed_each_line_after_a_full_run(root: Path) -> None:
    found = attribution(root)
    assert recorded_tests(found) == {PRICE, DISCOUNT, SHOUT}
    assert found.pending == ()
    assert set(found.files) >= {"shop/pricing.py", "shop/extra.py", "tests/conftest.py"}
    assert found.files["shop/pricing.py"] == os.path.realpath(root / "shop/pricing.py")
    by_line = found.executed_by()
    pricing = by_line["shop/pricing.py"]
    assert pricing[line_of(root, "shop/pricing.py", "# price")] == {ContextKey.test(PRICE)}
    assert pricing[line_of(root, "shop/pricing.py", "# discount")] == {ContextKey.test(DISCOUNT)}
    # A module body runs once for all its importers: its lines are the import's.
    assert pricing[line_of(root, "shop/pricing.py", "RATE = 2")] == {
        ContextKey.import_of("shop/pricing.py")
    }
    # A wider-scoped fixture's lines go to the tests that use it, in the view's answer...
    fixture_line = line_of(root, "tests/conftest.py", "# catalog fixture")
    assert by_line["tests/conftest.py"][fixture_line] == {ContextKey.test(DISCOUNT)}
    # ...and the unit keeps them as its own context, which the export writes.
    (fixture,) = catalog_fixtures(found)
    assert found.users[fixture] == (DISCOUNT,)
    assert ContextKey.import_of("shop/pricing.py") not in found.users  # no test refers to it
    contexts = {context.key for context in found.contexts()}
    assert {ContextKey.test(PRICE), fixture, ContextKey.import_of("shop/pricing.py")} <= contexts


def test_a_pending_test_and_a_unit_only_it_uses_are_left_out(root: Path) -> None:
    # Same line count: the other records' line numbers stay right.
    edit(root, "shop/pricing.py", "return x - 1  # discount", "return x + -1  # discount")
    # The change is seen and test_discount marked pending, but -k keeps it from running.
    run_pytest(root, "-k", "test_shout", "--testmon-forceselect")
    found = attribution(root)
    assert found.pending == (DISCOUNT,)
    assert recorded_tests(found) == {PRICE, SHOUT}
    assert catalog_fixtures(found) == []  # only test_discount used the fixture
    pricing = found.executed_by()["shop/pricing.py"]
    assert line_of(root, "shop/pricing.py", "# discount") not in pricing
    assert pricing[line_of(root, "shop/pricing.py", "# price")] == {ContextKey.test(PRICE)}


def test_a_unit_whose_code_changed_is_left_out(root: Path) -> None:
    # extra.py is imported only by test_shout's body: with test_shout deselected its
    # import is not recorded again, and the recorded one is out of date.
    edit(root, "shop/extra.py", "def shout(s):", "PREFIX = ''\n\n\ndef shout(s):")
    run_pytest(root, "-k", "test_price", "--testmon-forceselect")
    found = attribution(root)
    units = {unit.key for unit in found.units}
    assert ContextKey.import_of("shop/extra.py") not in units
    assert ContextKey.import_of("shop/pricing.py") in units
    assert found.pending == (SHOUT,)
    assert "shop/extra.py" not in found.executed_by()


def test_a_deleted_file_holds_no_lines(root: Path) -> None:
    (root / "shop/extra.py").unlink()
    found = attribution(root)
    assert "shop/extra.py" not in found.files
    assert "shop/extra.py" not in found.executed_by()
    assert SHOUT in recorded_tests(found)  # not run since: still valid, its other lines kept


def test_a_file_that_no_longer_parses_holds_no_lines(root: Path) -> None:
    edit(root, "shop/extra.py", "def shout(s):", "def shout(s:")
    run_pytest(root, "-k", "test_price", "--testmon-forceselect")
    found = attribution(root)
    assert "shop/extra.py" not in found.files
    assert "shop/extra.py" not in found.executed_by()
    assert "shop/pricing.py" in found.files


def test_paths_limit_the_files(root: Path) -> None:
    found = attribution(root, ("shop",))
    assert set(found.files) == {"shop/__init__.py", "shop/pricing.py", "shop/extra.py"}
    assert set(found.executed_by()) <= set(found.files)
    assert set(attribution(root, ("shop/extra.py",)).files) == {"shop/extra.py"}


def test_under_any() -> None:
    assert under_any("a/b.py", ())
    assert under_any("a/b.py", ("",))
    assert under_any("a/b.py", ("a",))
    assert under_any("a/b.py", ("x", "a/b.py"))
    assert not under_any("ab/c.py", ("a",))
    assert not under_any("a.py", ("a",))


def test_the_export_writes_exactly_the_lines_the_view_attributes(root: Path) -> None:
    edit(root, "shop/pricing.py", "return x - 1  # discount", "return x + -1  # discount")
    run_pytest(root, "-k", "test_shout", "--testmon-forceselect")
    (root / "shop/extra.py").unlink()
    found = attribution(root)
    db, _ = Database.open(root / ".testmondata", readonly=True)
    try:
        env = db.environment("default")
        assert env is not None
        export_coverage(db, env.id, root, root / ".coverage")
    finally:
        db.close()
    data = coverage.CoverageData(basename=str(root / ".coverage"))
    data.read()
    exported = {
        os.path.relpath(name, os.path.realpath(root)).replace(os.sep, "/"): set(
            data.lines(name) or ()
        )
        for name in data.measured_files()
    }
    viewed = {path: set(lines) for path, lines in found.executed_by().items()}
    assert exported == viewed
    assert "shop/extra.py" not in exported
