"""Issue #13: a test file that did not change is collected only in the parts that run.

A top-level class or function of an unchanged test file none of whose known
tests must run is not collected: the rule that skips whole files, one level down.
Whatever could give such a file new tests (its own import, a conftest's
collection hooks, data its parametrize reads) is a dependency of all its tests,
so then the whole file is collected. These tests check both sides: the time
goes (the left-out parts are never collected) and nothing is missed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Project


def make_project(project: Project) -> None:
    project.write(
        "shop.py",
        """
        def cases():
            return [1, 2]


        def price(n):
            return n * 2


        def tax(n):
            return n + 1
        """,
    )
    # Every function pytest collects here is logged: what collection touched.
    project.write(
        "conftest.py",
        """
        import os


        def pytest_generate_tests(metafunc):
            with open(os.path.join(os.path.dirname(__file__), "collected.log"), "a") as log:
                log.write(f"{metafunc.cls.__name__ + '.' if metafunc.cls else ''}"
                          f"{metafunc.function.__name__}\\n")
        """,
    )
    project.write(
        "tests/test_shop.py",
        """
        import pytest

        from shop import cases, price, tax


        @pytest.mark.parametrize("n", cases())
        def test_cases(n):
            assert n > 0


        def test_price():
            assert price(2) == 4


        class TestTax:
            def test_tax(self):
                assert tax(1) == 2

            def test_tax_zero(self):
                assert tax(0) == 1


        def test_other():
            assert True
        """,
    )
    project.write("tests/test_untouched.py", "def test_u():\n    assert True\n")


def collected(project: Project) -> list[str]:
    log = project.path / "collected.log"
    names = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return names


def test_only_the_classes_and_functions_that_run_are_collected(project: Project) -> None:
    make_project(project)
    project.first_run()
    assert sorted(collected(project)) == sorted(
        [
            "test_cases",
            "test_price",
            "TestTax.test_tax",
            "TestTax.test_tax_zero",
            "test_other",
            "test_u",
        ]
    )
    project.replace("shop.py", "return n + 1", "return 1 + n")
    run = project.run()
    assert run.ran == {
        "tests/test_shop.py::TestTax::test_tax",
        "tests/test_shop.py::TestTax::test_tax_zero",
    }
    assert sorted(collected(project)) == ["TestTax.test_tax", "TestTax.test_tax_zero"]
    # The counts still add up: 2 run, 5 known tests not collected, none deselected by pytest.
    assert "2 selected; 5 not affected (5 in 1 file and parts of 1 file not collected)" in run.text
    assert re.search(r"=+ 2 passed in ", run.text), run.text


def test_the_tests_left_out_stay_known(project: Project) -> None:
    make_project(project)
    project.first_run()
    project.replace("shop.py", "return n * 2", "return 2 * n")
    assert project.run().ran == {"tests/test_shop.py::test_price"}
    # Nothing was forgotten: a no-change run knows all 7, and a full run finds no new one.
    assert "deselected 7" in project.run().text
    full = project.run("--testmon-noselect")
    assert "(0 new)" in full.text or "new" not in full.text.split("running all")[-1].split("\n")[0]
    assert len(full.ran) == 7


def test_new_parametrized_cases_of_an_unchanged_file_run(project: Project) -> None:
    make_project(project)
    project.first_run()
    collected(project)
    project.replace("shop.py", "return [1, 2]", "return [1, 2, 3]")
    run = project.run()
    # cases() runs at the test module's import: every test of the file depends on it.
    assert "tests/test_shop.py::test_cases[3]" in run.ran
    assert {n.partition("::")[0] for n in run.ran} == {"tests/test_shop.py"}
    assert len(run.ran) == 7, run.ran


def test_a_changed_collection_hook_collects_everything(project: Project) -> None:
    make_project(project)
    project.first_run()
    project.write(
        "conftest.py",
        """
        def pytest_generate_tests(metafunc):
            if "extra" in metafunc.fixturenames:
                metafunc.parametrize("extra", [1])
        """,
    )
    run = project.run()
    assert len(run.ran) == 7, run.ran


def test_node_ids_on_the_command_line_are_left_to_pytest(project: Project) -> None:
    make_project(project)
    project.first_run()
    project.replace("shop.py", "return n + 1", "return 1 + n")
    run = project.run("tests/test_shop.py::TestTax::test_tax", "tests/test_shop.py::test_other")
    # Named tests run as named (testmon does not deselect then), none left out.
    assert run.ran == {"tests/test_shop.py::TestTax::test_tax", "tests/test_shop.py::test_other"}


def test_only_the_methods_that_run_are_collected_in_a_class(project: Project) -> None:
    make_project(project)
    project.write(
        "tests/test_members.py",
        """
        import unittest

        from shop import price, tax


        class TestMembers:
            def test_price(self):
                assert price(1) == 2

            def test_tax(self):
                assert tax(1) == 2

            class TestInner:
                def test_inner_price(self):
                    assert price(2) == 4

                def test_inner_tax(self):
                    assert tax(2) == 3


        class TestCaseMembers(unittest.TestCase):
            def test_price(self):
                self.assertEqual(price(3), 6)

            def test_tax(self):
                self.assertEqual(tax(3), 4)
        """,
    )
    project.first_run()
    collected(project)
    project.replace("shop.py", "return n * 2", "return 2 * n")
    run = project.run()
    assert run.ran == {
        "tests/test_shop.py::test_price",
        "tests/test_members.py::TestMembers::test_price",
        "tests/test_members.py::TestMembers::TestInner::test_inner_price",
        "tests/test_members.py::TestCaseMembers::test_price",
    }
    # The methods of the other functions were not collected (a unittest.TestCase
    # lists its own methods, and pytest_generate_tests is not called for them).
    assert sorted(collected(project)) == [
        "TestInner.test_inner_price",
        "TestMembers.test_price",
        "test_price",
    ]
    # The counts add up: 13 known, 4 run, 1 collected and deselected, 8 left out.
    assert "4 selected; 9 not affected" in run.text, run.text
    assert re.search(r"=+ 4 passed, 1 deselected in ", run.text), run.text
    # Nothing was forgotten: a no-change run knows all 13.
    assert "deselected 13" in project.run().text
    # An edit of tax() runs the others, collected in their turn.
    project.replace("shop.py", "return n + 1", "return 1 + n")
    assert project.run().ran == {
        "tests/test_shop.py::TestTax::test_tax",
        "tests/test_shop.py::TestTax::test_tax_zero",
        "tests/test_members.py::TestMembers::test_tax",
        "tests/test_members.py::TestMembers::TestInner::test_inner_tax",
        "tests/test_members.py::TestCaseMembers::test_tax",
    }
