"""Record, change, select: the basic promise on a small project."""

from __future__ import annotations


def make_calc(project) -> None:
    project.write(
        "calc.py",
        """
        def add(a, b):
            return a + b


        def mul(a, b):
            return a * b
    """,
    )
    project.write(
        "test_calc.py",
        """
        from calc import add, mul


        def test_add():
            assert add(1, 2) == 3


        def test_mul():
            assert mul(2, 3) == 6


        def test_nothing():
            assert True
    """,
    )


def test_first_run_records_and_second_deselects_everything(project) -> None:
    make_calc(project)
    first = project.first_run()
    assert first.ran == {
        "test_calc.py::test_add",
        "test_calc.py::test_mul",
        "test_calc.py::test_nothing",
    }
    assert (project.path / ".testmondata").exists()
    second = project.run()
    assert second.ran == set()
    assert second.ret == 0, second.text  # not 5 ("no tests ran")
    assert "deselected 3" in second.text


def test_function_body_edit_selects_only_its_tests(project) -> None:
    make_calc(project)
    project.first_run()
    project.replace("calc.py", "return a * b", "return b * a")
    run = project.run()
    assert run.ran == {"test_calc.py::test_mul"}
    assert "calc.py (mul)" in run.text


def test_whitespace_and_comment_edits_select_nothing(project) -> None:
    make_calc(project)
    project.first_run()
    project.replace("calc.py", "    return a + b", "    # adds\n\n    return a  +  b  # sum")
    run = project.run()
    assert run.ran == set()
    assert run.ret == 0


def test_failed_test_runs_again_until_it_passes(project) -> None:
    make_calc(project)
    project.first_run()
    project.replace("calc.py", "return a + b", "return a - b")
    assert project.run().outcomes == {"test_calc.py::test_add": "FAILED"}
    # Nothing changed, but it failed last time: it runs again.
    assert project.run().outcomes == {"test_calc.py::test_add": "FAILED"}
    project.replace("calc.py", "return a - b", "return a + b")
    assert project.run().outcomes == {"test_calc.py::test_add": "PASSED"}
    assert project.run().ran == set()


def test_new_renamed_and_deleted_tests(project) -> None:
    make_calc(project)
    project.first_run()
    project.replace("test_calc.py", "def test_nothing():", "def test_renamed():")
    project.write("test_more.py", "def test_new():\n    assert 1\n")
    run = project.run()
    assert {"test_calc.py::test_renamed", "test_more.py::test_new"} <= run.ran
    project.delete("test_more.py")
    after = project.run()
    assert after.ran == set()
    assert after.ret == 0


def test_edited_test_body_reruns_that_test(project) -> None:
    make_calc(project)
    project.first_run()
    project.replace("test_calc.py", "assert mul(2, 3) == 6", "assert mul(3, 2) == 6")
    assert project.run().ran == {"test_calc.py::test_mul"}


def test_syntax_error_selects_dependents_with_a_warning(project) -> None:
    make_calc(project)
    project.first_run()
    project.replace("calc.py", "return a * b", "return a * (b")
    run = project.run()
    assert "syntax error at calc.py:" in run.text
    assert run.ret != 0
    assert "Traceback (most recent call last)" not in run.result.stdout.str().split("ERRORS")[0]


def test_stored_file_states_match_parsing_each_file_here(project) -> None:
    # New files are parsed by a helper process while the tests run (measure/parse_helper):
    # what it stored must be exactly what parsing in this process gives.
    from testmon_watch.core.changes import read_state
    from testmon_watch.core.db import Database

    make_calc(project)
    project.write("shop/__init__.py", "")
    project.write(
        "shop/cart.py",
        """
        from . import calc_bridge


        class Cart:
            def total(self):
                return calc_bridge.total([1, 2])
    """,
    )
    project.write(
        "shop/calc_bridge.py",
        """
        from calc import add


        def total(items):
            return add(*items)
    """,
    )
    project.write(
        "test_shop.py",
        """
        from shop.cart import Cart


        def test_total():
            assert Cart().total() == 3
    """,
    )
    project.first_run()
    db, _ = Database.open(project.path / ".testmondata", readonly=True)
    try:
        stored = db.files()
    finally:
        db.close()
    python_files = {
        "calc.py",
        "test_calc.py",
        "shop/__init__.py",
        "shop/cart.py",
        "shop/calc_bridge.py",
        "test_shop.py",
    }
    assert python_files <= stored.keys()
    for rel in python_files:
        expected, _ = read_state(project.path, rel, "python")
        row = stored[rel]
        # (mtime is stored as 0 for a file written just before the run: checked again.)
        assert (row.digest, row.size) == (expected.digest, expected.size), rel
        assert row.blocks == expected.blocks, rel
        assert row.imports == expected.imports, rel
