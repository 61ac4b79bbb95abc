"""Unit tests for testmon_watch.measure.coverage_export: real pytest runs, real coverage files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import coverage
import pytest

from testmon_watch.core.db import Database
from testmon_watch.measure.coverage_export import (
    ExportSummary,
    SourceError,
    export_coverage,
    resolve_source,
)

PROJECT = {
    "pytest.ini": "[pytest]\npythonpath = . src lib\n",
    "shop/__init__.py": "",
    "shop/pricing.py": """\
        RATE = 2


        def price(x):
            if x > 10:
                return x * RATE - 1  # big
            return x * RATE  # small


        def discount(x):
            return x - 1  # discount


        def never():
            return 0  # never
        """,
    "lib/helpers.py": """\
        def shout(s):
            return s.upper()  # shout
        """,
    "src/inventory/__init__.py": "",
    "src/inventory/stock.py": """\
        def count():
            return 3  # count
        """,
    "tests/conftest.py": """\
        import pytest


        @pytest.fixture(scope="module")
        def catalog():
            return {"a": 1}  # catalog fixture
        """,
    "tests/test_shop.py": """\
        import pytest

        from shop.pricing import discount, price


        def test_small():
            assert price(1) == 2


        def test_big():
            assert price(20) == 39


        def test_discount(catalog):
            assert discount(3) == 2


        @pytest.mark.parametrize("n", [1, 2])
        def test_param(n):
            assert price(n) == 2 * n
        """,
    "tests/test_other.py": """\
        from helpers import shout
        from inventory.stock import count


        def test_shout():
            assert shout("a") == "A"


        def test_count():
            assert count() == 3
        """,
}

ALL_TESTS = {
    "tests/test_shop.py::test_small",
    "tests/test_shop.py::test_big",
    "tests/test_shop.py::test_discount",
    "tests/test_shop.py::test_param[1]",
    "tests/test_shop.py::test_param[2]",
    "tests/test_other.py::test_shout",
    "tests/test_other.py::test_count",
}


def write_project(root: Path, files: dict[str, str]) -> None:
    for relpath, text in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "COVERAGE_", "TESTMON_"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--testmon", "-p", "no:cacheprovider", "-q", *args],
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, 5), result.stdout + result.stderr
    return result


def run_coverage(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coverage", *args],
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def line_of(root: Path, relpath: str, marker: str) -> int:
    for number, text in enumerate((root / relpath).read_text().splitlines(), start=1):
        if marker in text:
            return number
    raise AssertionError(f"{marker!r} not in {relpath}")


def abs_file(root: Path, relpath: str) -> str:
    return os.path.realpath(root / relpath)


def export(
    root: Path, out: str = ".coverage", **kwargs: object
) -> tuple[ExportSummary, coverage.CoverageData]:
    db, _ = Database.open(root / ".testmondata")
    try:
        env = db.environment("default")
        assert env is not None
        summary = export_coverage(db, env.id, root, root / out, **kwargs)  # type: ignore[arg-type]
    finally:
        db.close()
    data = coverage.CoverageData(basename=str(root / out))
    data.read()
    return summary, data


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample project after one full recording run (read-only for the tests using it)."""
    root = tmp_path_factory.mktemp("recorded")
    write_project(root, PROJECT)
    run_pytest(root)
    return root


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """A recorded project of the test's own, free to edit."""
    write_project(tmp_path, PROJECT)
    run_pytest(tmp_path)
    return tmp_path


# -- content ----------------------------------------------------------------


def test_measured_files_and_lines(recorded: Path, tmp_path: Path) -> None:
    summary, data = export(recorded, out=str(tmp_path / "out.coverage"))
    root = recorded
    expected_files = {
        abs_file(root, p)
        for p in (
            "shop/__init__.py",
            "shop/pricing.py",
            "lib/helpers.py",
            "src/inventory/__init__.py",
            "src/inventory/stock.py",
            "tests/conftest.py",
            "tests/test_shop.py",
            "tests/test_other.py",
        )
    }
    assert set(data.measured_files()) == expected_files
    assert not data.has_arcs()
    pricing = abs_file(root, "shop/pricing.py")
    lines = set(data.lines(pricing) or ())
    for marker in (
        "RATE = 2",
        "def price",
        "# big",
        "# small",
        "def discount",
        "# discount",
        "def never",
    ):
        assert line_of(root, "shop/pricing.py", marker) in lines, marker
    assert line_of(root, "shop/pricing.py", "# never") not in lines
    # Imported, no line of its own: line 0, as coverage.py records it. Below
    # Python 3.11 an empty module runs line 1, and coverage.py records that.
    empty_module_lines = [0] if sys.version_info >= (3, 11) else [1]
    assert data.lines(abs_file(root, "shop/__init__.py")) == empty_module_lines
    assert summary.path == tmp_path / "out.coverage"
    # Files with a line of their own: not the two empty __init__.py files (3.11+).
    assert summary.files == len(expected_files)  # empty modules count on every Python
    assert summary.tests == len(ALL_TESTS)
    assert summary.merged_deselected == 0 and summary.skipped_pending == 0


def test_one_context_per_test_and_shared_unit(recorded: Path, tmp_path: Path) -> None:
    summary, data = export(recorded, out=str(tmp_path / "out.coverage"))
    contexts = set(data.measured_contexts())
    assert ALL_TESTS <= contexts
    assert {
        "import:shop/pricing.py",
        "import:tests/test_shop.py",
        "import:lib/helpers.py",
    } <= contexts
    assert any(c.startswith("fixture:module:") and c.endswith("::catalog") for c in contexts)
    assert summary.contexts == len(contexts)
    assert "" not in contexts  # nothing lands in coverage's default context


def test_contexts_by_lineno_names_exactly_the_tests_that_ran_a_line(
    recorded: Path, tmp_path: Path
) -> None:
    _, data = export(recorded, out=str(tmp_path / "out.coverage"))
    root = recorded
    pricing = abs_file(root, "shop/pricing.py")
    by_line = {line: set(ctxs) for line, ctxs in data.contexts_by_lineno(pricing).items()}
    small = {
        "tests/test_shop.py::test_small",
        "tests/test_shop.py::test_param[1]",
        "tests/test_shop.py::test_param[2]",
    }
    big = {"tests/test_shop.py::test_big"}
    assert by_line[line_of(root, "shop/pricing.py", "if x > 10")] == small | big
    assert by_line[line_of(root, "shop/pricing.py", "# small")] == small
    assert by_line[line_of(root, "shop/pricing.py", "# big")] == big
    assert by_line[line_of(root, "shop/pricing.py", "# discount")] == {
        "tests/test_shop.py::test_discount"
    }
    # Module-level lines belong to the module's import, not to whichever test imported it.
    assert by_line[line_of(root, "shop/pricing.py", "def price")] == {"import:shop/pricing.py"}
    # A module-scoped fixture's body is its own context, not the test's.
    conftest = abs_file(root, "tests/conftest.py")
    fixture_line = line_of(root, "tests/conftest.py", "# catalog fixture")
    (fixture_ctx,) = data.contexts_by_lineno(conftest)[fixture_line]
    assert fixture_ctx.startswith("fixture:module:") and fixture_ctx.endswith("::catalog")


def test_readable_by_coverage_report_html_and_xml(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.coverage"
    export(recorded, out=str(out))
    report = run_coverage(recorded, "report", "-m", "--data-file", str(out))
    assert report.returncode == 0, report.stdout + report.stderr
    assert "shop/pricing.py" in report.stdout
    never = line_of(recorded, "shop/pricing.py", "# never")
    rows = report.stdout.splitlines()
    pricing_row = next(row for row in rows if row.startswith("shop/pricing.py"))
    assert pricing_row.split()[1:] == ["9", "1", "89%", str(never)]

    html_dir = tmp_path / "htmlcov"
    html = run_coverage(
        recorded, "html", "--show-contexts", "-d", str(html_dir), "--data-file", str(out)
    )
    assert html.returncode == 0, html.stdout + html.stderr
    pages = {p.name: p.read_text() for p in html_dir.glob("*.html")}
    pricing_page = next(text for name, text in pages.items() if "pricing_py" in name)
    assert "tests/test_shop.py::test_big" in pricing_page

    xml_file = tmp_path / "coverage.xml"
    xml = run_coverage(recorded, "xml", "-o", str(xml_file), "--data-file", str(out))
    assert xml.returncode == 0, xml.stdout + xml.stderr
    assert 'filename="shop/pricing.py"' in xml_file.read_text()


# -- source -----------------------------------------------------------------


def test_source_directory(recorded: Path, tmp_path: Path) -> None:
    _, data = export(recorded, out=str(tmp_path / "out.coverage"), source=["lib", "shop/"])
    assert set(data.measured_files()) == {
        abs_file(recorded, "lib/helpers.py"),
        abs_file(recorded, "shop/__init__.py"),
        abs_file(recorded, "shop/pricing.py"),
    }


def test_source_dotted_names(recorded: Path, tmp_path: Path) -> None:
    _, data = export(recorded, out=str(tmp_path / "a.coverage"), source=["shop.pricing"])
    assert set(data.measured_files()) == {abs_file(recorded, "shop/pricing.py")}
    # A package in a src/ layout.
    _, data = export(recorded, out=str(tmp_path / "b.coverage"), source=["inventory"])
    assert set(data.measured_files()) == {
        abs_file(recorded, "src/inventory/__init__.py"),
        abs_file(recorded, "src/inventory/stock.py"),
    }
    _, data = export(recorded, out=str(tmp_path / "c.coverage"), source=["inventory.stock"])
    assert set(data.measured_files()) == {abs_file(recorded, "src/inventory/stock.py")}


def test_source_file_and_root(recorded: Path, tmp_path: Path) -> None:
    _, data = export(recorded, out=str(tmp_path / "a.coverage"), source=["lib/helpers.py"])
    assert set(data.measured_files()) == {abs_file(recorded, "lib/helpers.py")}
    _, everything = export(recorded, out=str(tmp_path / "b.coverage"))
    _, dot = export(recorded, out=str(tmp_path / "c.coverage"), source=["."])
    assert set(dot.measured_files()) == set(everything.measured_files())


def test_source_entry_that_names_nothing_is_an_error(recorded: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="'nosuch' is neither"):
        resolve_source(recorded, ["shop", "nosuch"])
    assert issubclass(SourceError, ValueError)
    assert resolve_source(recorded, ["shop", "shop.pricing", "inventory", "."]) == [
        "shop",
        "shop/pricing.py",
        "src/inventory",
        "",
    ]
    assert not (tmp_path / "x.coverage").exists()
    with pytest.raises(SourceError):
        export(recorded, out=str(tmp_path / "x.coverage"), source=["no.such.pkg"])
    assert not (tmp_path / "x.coverage").exists()


# -- validity ---------------------------------------------------------------


def test_pending_tests_are_left_out(fresh: Path) -> None:
    root = fresh
    path = root / "shop/pricing.py"
    path.write_text(
        path.read_text().replace("return x - 1  # discount", "y = x\n    return y - 1  # discount")
    )
    # -k with --testmon-forceselect: the change is detected and its tests marked
    # pending, but -k keeps them from running, so they stay pending.
    run_pytest(root, "-k", "test_shout", "--testmon-forceselect")
    summary, data = export(root, ran={"tests/test_other.py::test_shout"})
    assert "tests/test_shop.py::test_discount" not in set(data.measured_contexts())
    assert summary.skipped_pending == 1
    assert summary.tests == len(ALL_TESTS) - 1
    assert summary.merged_deselected == len(ALL_TESTS) - 2
    pricing = abs_file(root, "shop/pricing.py")
    by_line = data.contexts_by_lineno(pricing)
    assert line_of(root, "shop/pricing.py", "# discount") not in by_line
    assert "tests/test_shop.py::test_small" in by_line[line_of(root, "shop/pricing.py", "# small")]
    # Once it runs again, it is back.
    run_pytest(root)
    summary, data = export(root)
    assert summary.skipped_pending == 0
    assert data.contexts_by_lineno(pricing)[line_of(root, "shop/pricing.py", "# discount")] == [
        "tests/test_shop.py::test_discount"
    ]


def test_merged_deselected_counts_valid_tests_that_did_not_run(
    recorded: Path, tmp_path: Path
) -> None:
    ran = {"tests/test_shop.py::test_small", "tests/test_shop.py::test_big"}
    summary, data = export(recorded, out=str(tmp_path / "out.coverage"), ran=ran)
    assert summary.merged_deselected == len(ALL_TESTS) - 2
    assert ALL_TESTS <= set(data.measured_contexts())  # the whole suite, not just what ran
    assert "lines of 5 deselected tests merged" in summary.message(cwd=tmp_path)
    summary, _ = export(recorded, out=str(tmp_path / "out.coverage"), ran=ALL_TESTS)
    assert summary.merged_deselected == 0
    assert "merged from" not in summary.message()


def test_message(recorded: Path) -> None:
    summary = ExportSummary(
        path=recorded / ".coverage", files=3, contexts=9, merged_deselected=1, tests=4
    )
    assert summary.message(cwd=recorded) == (
        "testmon-watch: wrote .coverage (3 files, 4 tests, "
        "lines of 1 deselected test merged from earlier runs)"
    )


def test_deleted_files_are_skipped(fresh: Path) -> None:
    root = fresh
    (root / "lib/helpers.py").unlink()
    _summary, data = export(root)
    assert abs_file(root, "lib/helpers.py") not in set(data.measured_files())
    report = run_coverage(root, "report", "--data-file", ".coverage")
    assert report.returncode == 0, report.stdout + report.stderr


def test_replaces_existing_file_and_leaves_parallel_files_alone(fresh: Path) -> None:
    root = fresh
    (root / ".coverage").write_text("not a database")
    parallel = root / ".coverage.otherhost.123.456"
    parallel.write_bytes(b"someone else's")
    summary, data = export(root)
    assert summary.tests == len(ALL_TESTS)
    assert parallel.read_bytes() == b"someone else's"
    leftovers = sorted(p.name for p in root.iterdir() if p.name.startswith((".coverage", "..cov")))
    assert leftovers == [".coverage", ".coverage.otherhost.123.456"]
    # Exporting twice gives the same data, not twice as much.
    again, data2 = export(root)
    assert again == summary
    pricing = abs_file(root, "shop/pricing.py")
    assert data2.contexts_by_lineno(pricing) == data.contexts_by_lineno(pricing)


def test_other_environments_are_not_mixed_in(fresh: Path) -> None:
    root = fresh
    run_pytest(root, "--testmon-env", "other", "-k", "test_shout")
    db, _ = Database.open(root / ".testmondata")
    try:
        other = db.environment("other")
        assert other is not None
        summary = export_coverage(db, other.id, root, root / "other.coverage")
    finally:
        db.close()
    data = coverage.CoverageData(basename=str(root / "other.coverage"))
    data.read()
    tests = {c for c in data.measured_contexts() if "::" in c and not c.startswith("fixture:")}
    assert tests == {"tests/test_other.py::test_shout"}
    assert summary.tests == 1


def test_empty_database_gives_an_empty_valid_file(tmp_path: Path) -> None:
    db, _ = Database.open(tmp_path / ".testmondata")
    try:
        with db.transaction():
            env_id = db.save_environment("default", "py", {})
        summary = export_coverage(db, env_id, tmp_path, tmp_path / ".coverage")
    finally:
        db.close()
    assert (summary.files, summary.contexts, summary.tests) == (0, 0, 0)
    data = coverage.CoverageData(basename=str(tmp_path / ".coverage"))
    data.read()
    assert list(data.measured_files()) == []


@pytest.mark.xfail(
    strict=True,
    reason=(
        "engine: an edit that shifts a function without changing its checksum leaves "
        "the stored lines of tests that do not re-run at the old line numbers"
    ),
)
def test_lines_follow_a_function_that_moved(fresh: Path) -> None:
    root = fresh
    path = root / "shop/pricing.py"
    # A line added inside price() moves discount() down by one; discount's block
    # checksum is unchanged, so test_discount is not selected again.
    path.write_text(path.read_text().replace("    if x > 10:", "    y = x\n    if y > 10:"))
    run_pytest(root)
    _, data = export(root)
    by_line = data.contexts_by_lineno(abs_file(root, "shop/pricing.py"))
    assert by_line.get(line_of(root, "shop/pricing.py", "# discount")) == [
        "tests/test_shop.py::test_discount"
    ]
