"""The fast path and test modules that the project's standing filter empties.

packaging's ini has `addopts = -m "not property"`: its property-test modules are
collected on every run and every test in them deselected, so none is ever
recorded. They used to look new to every no-change run ("new test file
tests/property/..."). Now a run remembers the modules that gave no test under
the filter in force, and the fast path passes over them while nothing changed,
never when something did.
"""

from __future__ import annotations

import sqlite3

import pytest

from testmon_watch.core.schema import SCHEMA_VERSION

NOT_TAKEN = "testmon-watch: fast path not taken: "
TAKEN = "testmon-watch: fast path taken: nothing changed since the last run"
FAST = "nothing changed: not collected"

INI = """
[pytest]
pythonpath = .
testpaths = tests
addopts = -m "not property"
markers =
    property: property-based tests (opt-in)
"""

RECORDED = {"tests/test_calc.py::test_add", "tests/test_calc.py::test_mul"}


def make_project(project) -> None:
    project.write("pytest.ini", INI)
    project.write(
        "calc.py", "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"
    )
    project.write(
        "tests/test_calc.py",
        """
        from calc import add, mul


        def test_add():
            assert add(1, 2) == 3


        def test_mul():
            assert mul(2, 3) == 6
    """,
    )
    project.write("tests/property/__init__.py", "")
    project.write("tests/property/strategies.py", "SAMPLES = [0, 1, 2]\n")
    project.write(
        "tests/property/test_prop.py",
        """
        import pytest

        from calc import add
        from tests.property.strategies import SAMPLES

        pytestmark = pytest.mark.property


        @pytest.mark.parametrize("x", SAMPLES)
        def test_add_zero(x):
            assert add(x, 0) == x
    """,
    )
    # Matches `test_*.py` and holds no test: collected, gives nothing.
    project.write("tests/test_helpers.py", "HELPER = 1\n")
    project.write("tests/__init__.py", "")
    first = project.first_run()
    assert first.ran == RECORDED
    assert "3 deselected" in first.text  # pytest's -m, the three property cases


def explained(project, *args: str):
    return project.run_class(
        project.pytester.runpytest_subprocess(
            "--testmon", "--testmon-explain", "-v", "-p", "no:cacheprovider", *args
        )
    )


def fast_line(run) -> str:
    lines = [line for line in run.result.outlines if line.startswith("testmon-watch: fast path")]
    assert len(lines) == 1, run.text
    line = lines[0]
    return TAKEN if line.startswith(TAKEN) else line


def test_modules_the_ini_filter_empties_keep_the_fast_path(project) -> None:
    make_project(project)
    run = explained(project)
    assert fast_line(run) == TAKEN, run.text
    assert run.ran == set()
    assert run.ret == 0
    # Counts add up as the normal path counts them: 2 recorded + 3 deselected by -m.
    assert "changed: nothing; 0 of 2 recorded tests to run" in run.text
    assert "deselected 5 (nothing changed: not collected)" in run.text
    assert "5 deselected in " in run.text
    assert explained(project).ran == set()


@pytest.mark.parametrize(
    "addopts",
    ['-k "not add_zero"', "--deselect tests/property/test_prop.py"],
    ids=["k", "deselect"],
)
def test_the_other_standing_filters_keep_the_fast_path_too(project, addopts) -> None:
    make_project(project)
    project.write("pytest.ini", INI.replace('-m "not property"', addopts))
    first = explained(project)
    assert first.ran == set() and "3 deselected" in first.text, first.text
    run = explained(project)
    assert fast_line(run) == TAKEN, run.text
    assert "5 deselected in " in run.text


def test_a_test_the_filter_keeps_added_to_such_a_module_runs(project) -> None:
    make_project(project)
    project.write(
        "tests/test_helpers.py", "HELPER = 1\n\n\ndef test_helper():\n    assert HELPER == 1\n"
    )
    run = explained(project)
    assert fast_line(run).startswith(NOT_TAKEN + "files changed (tests/test_helpers.py"), run.text
    assert run.ran == {"tests/test_helpers.py::test_helper"}
    again = explained(project)
    assert fast_line(again) == TAKEN, again.text


def test_unmarking_a_filtered_test_runs_it(project) -> None:
    make_project(project)
    project.replace("tests/property/test_prop.py", "pytestmark = pytest.mark.property", "")
    run = explained(project)
    assert FAST not in run.text
    assert run.ran == {f"tests/property/test_prop.py::test_add_zero[{x}]" for x in (0, 1, 2)}


def test_breaking_what_only_a_filtered_module_imports_shows_the_error(project) -> None:
    make_project(project)
    project.write("tests/property/strategies.py", "raise RuntimeError('broken strategies')\n")
    run = explained(project)
    assert FAST not in run.text
    assert run.ret != 0
    assert "broken strategies" in run.text
    assert "ERROR tests/property/test_prop.py" in run.text


def test_a_changed_source_clears_the_record_until_collected_again(project) -> None:
    make_project(project)
    # A run of one file after an edit: the property module is not collected ...
    project.replace("calc.py", "return a * b", "return b * a")
    narrowed = explained(project, "tests/test_calc.py")
    assert narrowed.ran == {"tests/test_calc.py::test_mul"}
    # ... and, changed since, it is not known to be empty: the normal path collects it.
    run = explained(project)
    assert fast_line(run).startswith(NOT_TAKEN + "new test file tests/"), run.text
    assert run.ran == set()
    assert fast_line(explained(project)) == TAKEN


def test_another_standing_filter_takes_the_normal_path_once(project) -> None:
    make_project(project)
    project.write("pytest.ini", INI.replace('"not property"', '"not property and not slow"'))
    run = explained(project)
    assert FAST not in run.text
    assert run.ran == set()
    assert fast_line(explained(project)) == TAKEN


def test_a_typed_filter_runs_the_filtered_tests_then_they_are_known(project) -> None:
    make_project(project)
    run = explained(project, "-m", "property")
    assert run.ran == {f"tests/property/test_prop.py::test_add_zero[{x}]" for x in (0, 1, 2)}
    after = explained(project)
    assert fast_line(after) == TAKEN, after.text
    assert "deselected 5 (nothing changed: not collected)" in after.text


def test_a_conftest_that_deselects_keeps_its_modules_new(project) -> None:
    # What a conftest.py hook drops may depend on anything (an environment variable):
    # its modules are never taken for empty.
    project.write(
        "tests/conftest.py",
        """
        def pytest_collection_modifyitems(config, items):
            items[:] = [i for i in items if "slow" not in i.nodeid]
    """,
    )
    project.write("tests/test_slow.py", "def test_slow():\n    assert True\n")
    make_project(project)
    for _ in range(2):
        run = explained(project)
        assert fast_line(run) == NOT_TAKEN + "new test file tests/test_slow.py", run.text


def test_an_inert_collection_hook_in_a_conftest_keeps_the_fast_path(project) -> None:
    # packaging's conftest.py turns the garbage collector off while pytest collects.
    project.write(
        "tests/conftest.py",
        """
        import gc


        def pytest_collection() -> None:
            gc.disable()


        def pytest_collection_finish(session):
            gc.enable()
    """,
    )
    make_project(project)
    run = explained(project)
    assert fast_line(run) == TAKEN, run.text


@pytest.mark.parametrize(
    "hook",
    [
        "def pytest_collection(session):\n    session.config.seen_by_conftest = True\n",
        "def pytest_collection():\n    return None if True else 1\n",
        "import pytest\n\n\n@pytest.hookimpl(wrapper=True)\ndef pytest_collection():\n"
        "    return (yield)\n",
    ],
    ids=["uses-its-argument", "may-return-a-value", "wrapper"],
)
def test_a_collection_hook_that_may_act_takes_the_normal_path(project, hook) -> None:
    # Harmless in fact, but nothing short of running it could tell.
    project.write("conftest.py", hook)
    make_project(project)
    for _ in range(2):
        run = explained(project)
        assert fast_line(run).startswith(NOT_TAKEN), run.text
        assert run.ran == set()
    # Without the property modules, the conftest.py itself is the doubt named.
    project.delete("tests/property/test_prop.py")
    project.delete("tests/test_helpers.py")
    explained(project)
    run = explained(project)
    assert (
        fast_line(run)
        == NOT_TAKEN + "conftest.py mentions pytest_collection (may change collection)"
    ), run.text


def test_a_schema_4_file_is_brought_up_to_date_in_place(project) -> None:
    make_project(project)
    datafile = project.path / ".testmondata"
    conn = sqlite3.connect(datafile)
    # What schema 4 did not have: the emptied modules, tests' shared line sets, the
    # fingerprints' digests.
    conn.execute("DROP TABLE filtered_file")
    conn.execute("ALTER TABLE test DROP COLUMN lineset_id")
    conn.execute("DROP TABLE lineset")
    conn.execute("DROP INDEX fingerprint_digest")
    conn.execute("ALTER TABLE fingerprint DROP COLUMN digest")
    conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    # Read-only, the fast path reads no emptied modules from it: the normal path runs,
    # keeps every recorded test, and adds the table.
    run = explained(project)
    assert "moved it to" not in run.text
    assert fast_line(run).startswith(NOT_TAKEN + "new test file tests/"), run.text
    assert run.ran == set()
    conn = sqlite3.connect(datafile)
    (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    (tests,) = conn.execute("SELECT count(*) FROM test").fetchone()
    conn.close()
    assert (version, tests) == (str(SCHEMA_VERSION), 2)
    assert fast_line(explained(project)) == TAKEN
