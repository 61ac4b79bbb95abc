"""`selection_of(config)`: what the warm worker reads of a session's selection, typed."""

from __future__ import annotations

import json
from typing import Any

VIEW_CONFTEST = """
import json
from typing import Any

from testmon_watch.pytest_plugin.selection_view import selection_of


def pytest_collection_finish(session):
    view = selection_of(session.config)
    data = None
    if view is not None:
        data = {
            "selected": {n: [r.to_json() for r in rs] for n, rs in view.selected.items()},
            "deselected": view.deselected,
            "changed": [[c.path, list(c.blocks), c.deleted] for c in view.changed],
            "messages": list(view.messages),
        }
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    reporter.write_line("VIEW " + json.dumps(data))
"""


def view_of(run: Any) -> Any:
    [line] = [line for line in run.result.outlines if line.startswith("VIEW ")]
    return json.loads(line[len("VIEW ") :])


def make_project(project) -> None:
    project.write("conftest.py", VIEW_CONFTEST)
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
        """,
    )
    project.write("test_other.py", "def test_other():\n    assert True\n")


def test_the_view_shows_reasons_counts_and_changes(project) -> None:
    make_project(project)
    first = view_of(project.first_run())
    assert first["selected"] == {
        nodeid: [{"kind": "new"}]
        for nodeid in (
            "test_calc.py::test_add",
            "test_calc.py::test_mul",
            "test_other.py::test_other",
        )
    }
    assert (first["deselected"], first["changed"]) == (0, [])

    project.replace("calc.py", "return a * b", "return b * a")
    second = view_of(project.run())
    assert list(second["selected"]) == ["test_calc.py::test_mul"]
    [reason] = second["selected"]["test_calc.py::test_mul"]
    assert (reason["kind"], reason["file"], reason["blocks"]) == ("changed", "calc.py", ["mul"])
    # test_add was deselected; test_other.py was not even collected
    assert second["deselected"] == 2
    assert second["changed"] == [["calc.py", ["mul"], False]]


def test_no_view_without_testmon(project) -> None:
    make_project(project)
    assert view_of(project.run(testmon=False)) is None
