"""Issue #12 under `pytest --testmon`: collection errors clear, counts agree with pytest's.

A test module that failed to collect is collected again until it imports; the
header's counts say what pytest's own summary line says, and where they differ
why; the scratch folders we write under the project keep out of git.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Project

SHOP = """
def price():
    return 1
"""


def make_shop(project: Project) -> None:
    project.write("shop.py", SHOP)
    project.write(
        "tests/test_a.py",
        """
        from shop import price


        def test_a():
            assert price() == 1
        """,
    )
    project.write(
        "tests/test_b.py",
        """
        import shop


        def test_b():
            assert shop.price() == 1
        """,
    )
    project.write("tests/test_c.py", "def test_c():\n    pass\n")


def test_a_broken_source_module_errors_both_importers_then_clears_when_restored(
    project: Project,
) -> None:
    make_shop(project)
    project.first_run()
    project.write("shop.py", "def price(:\n    return 1\n")
    broken = project.run()
    assert broken.ret == 2, broken.text
    assert broken.ran == set()  # no test reported passed
    assert "ERROR tests/test_a.py" in broken.text and "ERROR tests/test_b.py" in broken.text
    assert "2 errors" in broken.text
    project.write("shop.py", SHOP)
    fixed = project.run()
    assert fixed.ret == 0, fixed.text
    assert fixed.ran == {"tests/test_a.py::test_a", "tests/test_b.py::test_b"}
    assert "ERROR" not in fixed.text and " error" not in fixed.result.outlines[-1]


def test_a_test_module_that_failed_to_collect_is_collected_again_until_it_imports(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its import fails for a reason no recorded dependency shows (an environment
    # variable); only the memory of the failure brings it back.
    project.write(
        "tests/test_env.py",
        """
        import os

        assert not os.environ.get("BREAK_IMPORT")


        def test_env():
            pass
        """,
    )
    project.write("tests/test_c.py", "def test_c():\n    pass\n")
    project.first_run()
    project.replace("tests/test_env.py", "import os", "import os  # collected again")
    monkeypatch.setenv("BREAK_IMPORT", "1")
    broken = project.run()
    assert broken.ret == 2 and "ERROR tests/test_env.py" in broken.text, broken.text
    monkeypatch.delenv("BREAK_IMPORT")
    fixed = project.run()
    assert fixed.ret == 0, fixed.text
    assert fixed.ran == {"tests/test_env.py::test_env"}
    again = project.run()  # it imports again: nothing is owed any more
    assert again.ran == set()


def _pytest_deselected(text: str) -> int:
    match = re.search(r"=+ .*?(\d+) deselected.* in [\d.]+s", text)
    return int(match.group(1)) if match else 0


def test_the_header_counts_agree_with_pytests_summary_line(project: Project) -> None:
    make_shop(project)
    project.write(
        "tests/test_many.py",
        """
        from shop import price


        def test_uses_price():
            assert price() == 1


        def test_other():
            pass


        def test_third():
            pass
        """,
    )
    project.first_run()
    project.replace("shop.py", "return 1", "return 1  # same value\n    pass")
    # test_many.py changed too, so it is collected in full (an unchanged one would be
    # collected in part, see test_narrowed_collection.py).
    project.replace(
        "tests/test_many.py", "def test_third():\n    pass", "def test_third():\n    pass\n    pass"
    )
    run = project.run()
    assert run.ret == 0, run.text
    header = next(line for line in run.result.outlines if "not affected" in line)
    # pytest collected test_a, test_b and test_many and deselected test_other; testmon
    # did not even collect test_c.
    assert _pytest_deselected(run.text) == 1
    assert header == (
        "testmon-watch: 4 selected; 2 not affected "
        "(1 deselected by pytest, 1 in 1 file not collected)"
    )


def test_scratch_folders_carry_a_gitignore(project: Project) -> None:
    make_shop(project)
    project.first_run()
    children = project.path / ".testmondata-children"
    assert children.is_dir()
    assert (children / ".gitignore").read_text().splitlines()[-1] == "*"
