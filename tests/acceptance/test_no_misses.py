"""Never miss an affected test: import-time values, wide fixtures, conftest, data, dynamic calls.

Every case records a small project, edits it, and checks exactly which tests ran
the second time: every test whose result may have changed must run; where the
engine can tell, tests that cannot be affected must not.
"""

from __future__ import annotations

import pytest


def error_collecting(run, module: str) -> bool:
    """pytest reports a module whose import failed as 'ERROR collecting <module>'."""
    return any(
        line.startswith("ERROR collecting") and module in line for line in run.result.outlines
    ) or any("ERROR collecting " + module in line for line in run.result.outlines)


# -- a. values read at import time -------------------------------------------------


def test_module_constant_edit_selects_the_importing_module_only(project) -> None:
    project.write("config.py", "LIMIT = 3\n")
    project.write(
        "test_config.py",
        """
        from config import LIMIT


        def test_limit():
            assert LIMIT == 3


        def test_other_in_module():
            assert True
    """,
    )
    project.write(
        "test_unrelated.py",
        """
        def test_unrelated():
            assert True
    """,
    )
    project.first_run()
    project.replace("config.py", "LIMIT = 3", "LIMIT = 4")
    run = project.run()
    assert run.ran == {"test_config.py::test_limit", "test_config.py::test_other_in_module"}
    assert run.outcomes["test_config.py::test_limit"] == "FAILED"
    assert run.ret != 0


def test_constant_copied_into_a_library_module_selects_its_callers(project) -> None:
    project.write("config.py", "LIMIT = 3\n")
    project.write(
        "lib.py",
        """
        from config import LIMIT


        def limit():
            return LIMIT
    """,
    )
    project.write(
        "test_lib.py",
        """
        import lib


        def test_lib_limit():
            assert lib.limit() == 3
    """,
    )
    project.write(
        "test_unrelated.py",
        """
        def test_unrelated():
            assert True
    """,
    )
    project.first_run()
    project.replace("config.py", "LIMIT = 3", "LIMIT = 5")
    run = project.run()
    assert run.outcomes == {"test_lib.py::test_lib_limit": "FAILED"}


def test_class_attribute_selects_every_reader_also_after_first_import(project) -> None:
    """The module is imported lazily by the first test; the second test runs no import-time line.

    test_second_plain runs too: test_second.py imports client (inside a function counts),
    so the whole module is import-affected (the engine's coarse rule)."""
    project.write(
        "client.py",
        """
        class Client:
            retries = 3

            def get_retries(self):
                return self.retries
    """,
    )
    project.write(
        "test_first.py",
        """
        def test_first():
            from client import Client
            assert Client().get_retries() == 3
    """,
    )
    project.write(
        "test_second.py",
        """
        def test_second():
            from client import Client
            assert Client().get_retries() == 3


        def test_second_plain():
            assert True
    """,
    )
    project.write(
        "test_unrelated.py",
        """
        def test_unrelated():
            assert True
    """,
    )
    first = project.first_run()
    order = [
        line
        for line in first.result.outlines
        if "::test_first " in line or "::test_second " in line
    ]
    assert len(order) == 2 and "test_first" in order[0]  # the second really runs after the import
    project.replace("client.py", "retries = 3", "retries = 4")
    run = project.run()
    assert run.outcomes == {
        "test_first.py::test_first": "FAILED",
        "test_second.py::test_second": "FAILED",
        "test_second.py::test_second_plain": "PASSED",
    }


def test_class_attribute_read_by_a_method_from_a_top_level_import(project) -> None:
    project.write(
        "client.py",
        """
        class Client:
            retries = 3

            def get_retries(self):
                return self.retries
    """,
    )
    project.write(
        "test_client.py",
        """
        from client import Client


        def test_a():
            assert Client().get_retries() == 3


        def test_b():
            assert Client().get_retries() == 3
    """,
    )
    project.write("test_unrelated.py", "def test_unrelated():\n    assert True\n")
    project.first_run()
    project.replace("client.py", "retries = 3", "retries = 2")
    run = project.run()
    assert run.outcomes == {"test_client.py::test_a": "FAILED", "test_client.py::test_b": "FAILED"}


# -- b. fixtures of a wider scope and xunit setup ----------------------------------

HELPERS = """
    def make():
        return {"v": 1}
"""


def _fixture_project(project, scope: str) -> None:
    project.write("helpers.py", HELPERS)
    project.write(
        "conftest.py",
        f"""
        import pytest

        import helpers


        @pytest.fixture(scope="{scope}")
        def res():
            return helpers.make()
    """,
    )
    project.write(
        "test_a.py",
        """
        def test_a1(res):
            assert res["v"] == 1


        def test_a2(res):
            assert res["v"] == 1


        def test_a_without():
            assert True
    """,
    )
    project.write(
        "test_b.py",
        """
        def test_b1(res):
            assert res["v"] == 1


        def test_b_without():
            assert True
    """,
    )


def _check_fixture_users(project) -> None:
    project.first_run()
    project.replace("helpers.py", 'return {"v": 1}', 'return {"v": 2}')
    run = project.run()
    assert run.outcomes == {
        "test_a.py::test_a1": "FAILED",
        "test_a.py::test_a2": "FAILED",
        "test_b.py::test_b1": "FAILED",
    }


def test_session_fixture_helper_edit_selects_every_user(project) -> None:
    _fixture_project(project, "session")
    _check_fixture_users(project)


def test_module_fixture_helper_edit_selects_every_user(project) -> None:
    _fixture_project(project, "module")
    _check_fixture_users(project)


def test_package_fixture_helper_edit_selects_every_user(project) -> None:
    _fixture_project(project, "package")
    _check_fixture_users(project)


def test_class_fixture_helper_edit_selects_every_user(project) -> None:
    project.write("helpers.py", HELPERS)
    project.write(
        "conftest.py",
        """
        import pytest

        import helpers


        @pytest.fixture(scope="class")
        def res():
            return helpers.make()
    """,
    )
    project.write(
        "test_a.py",
        """
        class TestOne:
            def test_x(self, res):
                assert res["v"] == 1

            def test_y(self, res):
                assert res["v"] == 1

            def test_without(self):
                assert True


        class TestTwo:
            def test_z(self, res):
                assert res["v"] == 1
    """,
    )
    project.first_run()
    project.replace("helpers.py", 'return {"v": 1}', 'return {"v": 2}')
    run = project.run()
    assert run.outcomes == {
        "test_a.py::TestOne::test_x": "FAILED",
        "test_a.py::TestOne::test_y": "FAILED",
        "test_a.py::TestTwo::test_z": "FAILED",
    }


def test_xunit_setup_class_helper_edit_selects_the_whole_class(project) -> None:
    project.write("helpers.py", HELPERS)
    project.write(
        "test_a.py",
        """
        import helpers


        class TestOne:
            @classmethod
            def setup_class(cls):
                cls.res = helpers.make()

            def test_x(self):
                assert self.res["v"] == 1

            def test_y(self):
                assert self.res["v"] == 1


        class TestOther:
            def test_other(self):
                assert True
    """,
    )
    project.first_run()
    project.replace("helpers.py", 'return {"v": 1}', 'return {"v": 2}')
    run = project.run()
    assert run.outcomes == {
        "test_a.py::TestOne::test_x": "FAILED",
        "test_a.py::TestOne::test_y": "FAILED",
    }


def test_xunit_setup_module_helper_edit_selects_the_whole_module(project) -> None:
    project.write("helpers.py", HELPERS)
    project.write(
        "test_a.py",
        """
        import helpers

        RES = {}


        def setup_module(module):
            RES.update(helpers.make())


        def test_x():
            assert RES["v"] == 1


        def test_y():
            assert RES["v"] == 1
    """,
    )
    project.write("test_unrelated.py", "def test_unrelated():\n    assert True\n")
    project.first_run()
    project.replace("helpers.py", 'return {"v": 1}', 'return {"v": 2}')
    run = project.run()
    assert run.outcomes == {"test_a.py::test_x": "FAILED", "test_a.py::test_y": "FAILED"}


# -- c. conftest.py ------------------------------------------------------------------


def _conftest_project(project) -> None:
    project.write(
        "a/conftest.py",
        """
        import os

        import pytest

        THRESHOLD = 5
        os.environ["MODE"] = "fast"


        @pytest.fixture
        def threshold():
            return THRESHOLD


        @pytest.fixture
        def doubled():
            return 2 * 2
    """,
    )
    project.write(
        "a/test_a.py",
        """
        import os


        def test_threshold(threshold):
            assert threshold == 5


        def test_doubled(doubled):
            assert doubled == 4


        def test_mode():
            assert os.environ["MODE"] == "fast"


        def test_plain():
            assert True
    """,
    )
    project.write(
        "b/conftest.py",
        """
        import pytest


        @pytest.fixture
        def threshold():
            return 5
    """,
    )
    project.write(
        "b/test_b.py",
        """
        def test_b(threshold):
            assert threshold == 5
    """,
    )


def test_conftest_constant_selects_the_tests_below_it(project) -> None:
    _conftest_project(project)
    project.first_run()
    project.replace("a/conftest.py", "THRESHOLD = 5", "THRESHOLD = 6")
    run = project.run()
    assert run.outcomes == {
        "a/test_a.py::test_threshold": "FAILED",
        "a/test_a.py::test_doubled": "PASSED",
        "a/test_a.py::test_mode": "PASSED",
        "a/test_a.py::test_plain": "PASSED",
    }


def test_conftest_environment_variable_selects_the_tests_below_it(project) -> None:
    _conftest_project(project)
    project.first_run()
    project.replace("a/conftest.py", '"fast"', '"slow"')
    run = project.run()
    assert run.ran == {
        "a/test_a.py::test_threshold",
        "a/test_a.py::test_doubled",
        "a/test_a.py::test_mode",
        "a/test_a.py::test_plain",
    }
    assert run.outcomes["a/test_a.py::test_mode"] == "FAILED"


def test_conftest_fixture_body_selects_only_its_users(project) -> None:
    _conftest_project(project)
    project.first_run()
    project.replace("a/conftest.py", "return 2 * 2", "return 2 * 3")
    run = project.run()
    assert run.outcomes == {"a/test_a.py::test_doubled": "FAILED"}


@pytest.mark.parametrize("conftest", ["conftest.py", "tests/conftest.py"])
def test_a_module_a_startup_conftest_imports_is_a_dependency(project, conftest) -> None:
    # pytest imports these conftest.py files while it starts, before any collection:
    # what they import at that moment must be recorded too.
    project.write("settings.py", "FACTOR = 2\n")
    project.write(
        conftest,
        """
        import pytest

        from settings import FACTOR


        @pytest.fixture
        def factor():
            return FACTOR
    """,
    )
    project.write(
        "tests/test_factor.py",
        """
        def test_factor(factor):
            assert factor == 2
    """,
    )
    project.first_run()
    project.replace("settings.py", "FACTOR = 2", "FACTOR = 3")
    run = project.run()
    assert run.outcomes == {"tests/test_factor.py::test_factor": "FAILED"}


@pytest.mark.parametrize("conftest", ["conftest.py", "tests/conftest.py", "tests/unit/conftest.py"])
def test_a_new_conftest_selects_the_tests_below_it(project, conftest) -> None:
    project.write("tests/unit/test_value.py", "def test_value():\n    pass\n")
    project.write("other/test_other.py", "def test_other():\n    pass\n")
    project.first_run()
    project.write(
        conftest,
        """
        import pytest


        @pytest.fixture(autouse=True)
        def boom():
            raise RuntimeError("a new conftest.py applies")
    """,
    )
    run = project.run()
    expected = {"tests/unit/test_value.py::test_value": "ERROR"}
    if conftest == "conftest.py":
        expected["other/test_other.py::test_other"] = "ERROR"
    assert run.outcomes == expected


# -- c2. project hooks that run between a test's phases --------------------------
#
# Below Python 3.12 the recorder traces a test's setup, call and teardown and the
# project's own hook implementations, not pytest's work in between (see
# pytest_plugin/windows.py). Hooks like these run in between.


def test_a_report_hook_wrapper_in_a_conftest_is_a_dependency(project) -> None:
    project.write(
        "policy.py",
        """
        def verdict(outcome):
            return outcome
    """,
    )
    project.write(
        "sub/conftest.py",
        """
        import pytest

        import policy


        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            report = outcome.get_result()
            if call.when == "call":
                report.outcome = policy.verdict(report.outcome)
    """,
    )
    project.write(
        "sub/test_sub.py",
        """
        def test_fails():
            assert False


        def test_passes():
            assert True
    """,
    )
    project.write("test_other.py", "def test_other():\n    assert True\n")
    first = project.run()  # not first_run(): one test fails
    assert first.outcomes["sub/test_sub.py::test_fails"] == "FAILED"
    project.replace("policy.py", "return outcome", 'return "passed"')
    run = project.run()
    assert run.outcomes == {
        "sub/test_sub.py::test_fails": "PASSED",
        "sub/test_sub.py::test_passes": "PASSED",
    }


def test_a_plain_hook_in_the_startup_conftest_is_a_dependency(project) -> None:
    project.write(
        "journal.py",
        """
        SEEN = []


        def record(report):
            SEEN.append(report.nodeid)
    """,
    )
    project.write(
        "conftest.py",
        """
        import journal


        def pytest_runtest_logreport(report):
            journal.record(report)


        def pytest_report_teststatus(report, config):
            journal.record(report)
    """,
    )
    project.write("test_one.py", "def test_one():\n    assert True\n")
    project.write("test_two.py", "def test_two():\n    assert True\n")
    project.first_run()
    project.replace("journal.py", "SEEN.append(report.nodeid)", "SEEN.append(report.when)")
    run = project.run()
    assert run.ran == {"test_one.py::test_one", "test_two.py::test_two"}


def test_a_sessionstart_hook_in_conftest_is_a_dependency(project) -> None:
    # pytest_sessionstart is otherwise quiet (pytest scanning plugins for fixtures).
    project.write(
        "seed.py",
        """
        import os


        def prepare():
            os.environ["SEED_LEVEL"] = "1"
    """,
    )
    project.write(
        "conftest.py",
        """
        import seed


        def pytest_sessionstart(session):
            seed.prepare()
    """,
    )
    project.write(
        "test_seed.py",
        """
        import os


        def test_level():
            assert os.environ["SEED_LEVEL"] == "1"
    """,
    )
    project.first_run()
    project.replace("seed.py", '"1"', '"2"')
    run = project.run()
    assert run.outcomes == {"test_seed.py::test_level": "FAILED"}


# -- d. parametrization computed at collection ---------------------------------------


def test_parametrize_from_a_helper_collects_the_new_parameter(project) -> None:
    project.write(
        "helpers.py",
        """
        def registry():
            return [1, 2]
    """,
    )
    project.write(
        "test_p.py",
        """
        import pytest

        from helpers import registry


        @pytest.mark.parametrize("x", registry())
        def test_x(x):
            assert x > 0
    """,
    )
    project.write("test_unrelated.py", "def test_unrelated():\n    assert True\n")
    project.first_run()
    project.replace("helpers.py", "return [1, 2]", "return [1, 2, 3]")
    run = project.run()
    assert run.outcomes == {
        "test_p.py::test_x[1]": "PASSED",
        "test_p.py::test_x[2]": "PASSED",
        "test_p.py::test_x[3]": "PASSED",
    }


def test_a_custom_collector_in_conftest_is_a_dependency(project) -> None:
    # pytest calls a collector's collect() itself, not through a hook: collection
    # stays traced for a collector class the project defines.
    project.write(
        "cases.py",
        """
        def parse(text):
            return [line.split("=") for line in text.splitlines() if line]
    """,
    )
    project.write(
        "conftest.py",
        """
        import pytest

        import cases


        class SpecItem(pytest.Item):
            def __init__(self, *, value, **kwargs):
                super().__init__(**kwargs)
                self.value = value

            def runtest(self):
                assert int(self.value) > 0


        class SpecFile(pytest.File):
            def collect(self):
                for name, value in cases.parse(self.path.read_text()):
                    yield SpecItem.from_parent(self, name=name, value=value)


        def pytest_collect_file(parent, file_path):
            if file_path.suffix == ".spec":
                return SpecFile.from_parent(parent, path=file_path)
    """,
    )
    project.write("checks.spec", "a=1\nb=2\n")
    project.first_run()
    project.replace(
        "cases.py",
        'line.split("=")',
        '(line.split("=")[0], "-" + line.split("=")[1])',
    )
    run = project.run()
    assert run.outcomes == {"checks.spec::a": "FAILED", "checks.spec::b": "FAILED"}


def test_pytest_generate_tests_in_the_test_module_with_fixed_ids(project) -> None:
    # Same ids, other values: the node ids do not change, so only the recorded
    # execution of the module's own pytest_generate_tests can select them.
    project.write(
        "helpers.py",
        """
        def limits():
            return [1, 2]
    """,
    )
    project.write(
        "test_gen.py",
        """
        import helpers


        def pytest_generate_tests(metafunc):
            if "limit" in metafunc.fixturenames:
                metafunc.parametrize("limit", helpers.limits(), ids=["low", "high"])


        def test_limit(limit):
            assert limit < 3


        def test_plain():
            assert True
    """,
    )
    project.write("test_unrelated.py", "def test_unrelated():\n    assert True\n")
    project.first_run()
    project.replace("helpers.py", "return [1, 2]", "return [1, 5]")
    run = project.run()
    assert run.outcomes == {
        "test_gen.py::test_limit[low]": "PASSED",
        "test_gen.py::test_limit[high]": "FAILED",
        "test_gen.py::test_plain": "PASSED",
    }


def test_pytest_generate_tests_in_conftest_collects_the_new_parameter(project) -> None:
    project.write(
        "helpers.py",
        """
        def values():
            return ["a", "b"]


        def unrelated():
            return 1
    """,
    )
    project.write(
        "conftest.py",
        """
        import helpers


        def pytest_generate_tests(metafunc):
            if "y" in metafunc.fixturenames:
                metafunc.parametrize("y", helpers.values())
    """,
    )
    project.write(
        "test_g.py",
        """
        def test_y(y):
            assert y
    """,
    )
    project.write(
        "test_unrelated.py",
        """
        import helpers


        def test_unrelated():
            assert helpers.unrelated() == 1
    """,
    )
    project.first_run()
    project.replace("helpers.py", 'return ["a", "b"]', 'return ["a", "b", "c"]')
    run = project.run()
    assert run.outcomes == {
        "test_g.py::test_y[a]": "PASSED",
        "test_g.py::test_y[b]": "PASSED",
        "test_g.py::test_y[c]": "PASSED",
    }


def test_parametrize_from_a_json_file_collects_the_new_case(project) -> None:
    project.write("cases.json", "[1, 2]\n")
    project.write(
        "test_p.py",
        """
        import json
        from pathlib import Path

        import pytest

        CASES = json.loads((Path(__file__).parent / "cases.json").read_text())


        @pytest.mark.parametrize("x", CASES)
        def test_x(x):
            assert x > 0
    """,
    )
    project.write("test_unrelated.py", "def test_unrelated():\n    assert True\n")
    project.first_run()
    project.write("cases.json", "[1, 2, 3]\n")
    run = project.run()
    assert run.ran == {"test_p.py::test_x[1]", "test_p.py::test_x[2]", "test_p.py::test_x[3]"}


# -- e. decorators and default values ---------------------------------------------------


def test_decorator_wrapper_body_selects_callers_of_decorated_functions(project) -> None:
    """The wrapper is nested in `logged`, whose block also ran at lib's import (decoration):
    so lib is import-affected and every test of a module importing lib runs, test_h too
    (the engine's coarse rule for import-time code). Modules not importing lib do not run."""
    project.write(
        "deco.py",
        """
        import functools


        def logged(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                return fn(*args, **kwargs)
            return wrapper
    """,
    )
    project.write(
        "lib.py",
        """
        from deco import logged


        @logged
        def f():
            return 1


        @logged
        def g():
            return 2


        def h():
            return 3
    """,
    )
    project.write(
        "test_lib.py",
        """
        import lib


        def test_f():
            assert lib.f() == 1


        def test_g():
            assert lib.g() == 2


        def test_h():
            assert lib.h() == 3
    """,
    )
    project.write("test_unrelated.py", "def test_unrelated():\n    assert True\n")
    project.first_run()
    project.replace("deco.py", "return fn(*args, **kwargs)", "return fn(*args, **kwargs) * 10")
    run = project.run()
    assert run.outcomes == {
        "test_lib.py::test_f": "FAILED",
        "test_lib.py::test_g": "FAILED",
        "test_lib.py::test_h": "PASSED",
    }


def test_decorator_used_lazily_selects_callers(project) -> None:
    """Decorated module imported inside the tests; the second test runs after the import."""
    project.write(
        "deco.py",
        """
        def logged(fn):
            def wrapper(*args, **kwargs):
                return fn(*args, **kwargs)
            return wrapper
    """,
    )
    project.write(
        "lib.py",
        """
        from deco import logged


        @logged
        def f():
            return 1
    """,
    )
    project.write(
        "test_one.py",
        """
        def test_one():
            import lib
            assert lib.f() == 1
    """,
    )
    project.write(
        "test_two.py",
        """
        def test_two():
            import lib
            assert lib.f() == 1
    """,
    )
    project.write("test_unrelated.py", "def test_unrelated():\n    assert True\n")
    project.first_run()
    project.replace("deco.py", "return fn(*args, **kwargs)", "return fn(*args, **kwargs) + 1")
    run = project.run()
    assert run.outcomes == {"test_one.py::test_one": "FAILED", "test_two.py::test_two": "FAILED"}


def test_default_argument_value_selects_callers(project) -> None:
    project.write(
        "lib.py",
        """
        def f(x=1):
            return x * 2
    """,
    )
    project.write(
        "test_lib.py",
        """
        from lib import f


        def test_f_default():
            assert f() == 2


        def test_f_explicit():
            assert f(3) == 6
    """,
    )
    project.write("test_unrelated.py", "def test_unrelated():\n    assert True\n")
    project.first_run()
    project.replace("lib.py", "def f(x=1):", "def f(x=2):")
    run = project.run()
    assert run.outcomes == {
        "test_lib.py::test_f_default": "FAILED",
        "test_lib.py::test_f_explicit": "PASSED",
    }


def test_default_argument_value_of_a_method_selects_callers_imported_lazily(project) -> None:
    project.write(
        "lib.py",
        """
        class Greeter:
            def greet(self, name="world"):
                return "hello " + name
    """,
    )
    project.write(
        "test_one.py",
        """
        def test_one():
            from lib import Greeter
            assert Greeter().greet() == "hello world"
    """,
    )
    project.write(
        "test_two.py",
        """
        def test_two():
            from lib import Greeter
            assert Greeter().greet() == "hello world"
    """,
    )
    project.write("test_unrelated.py", "def test_unrelated():\n    assert True\n")
    project.first_run()
    project.replace("lib.py", 'name="world"', 'name="there"')
    run = project.run()
    assert run.outcomes == {"test_one.py::test_one": "FAILED", "test_two.py::test_two": "FAILED"}


# -- f. the test file itself -------------------------------------------------------------


def _class_test_project(project) -> None:
    project.write(
        "test_c.py",
        """
        import pytest


        class TestA:
            def test_one(self):
                assert 1 + 1 == 2

            def test_two(self):
                assert 2 + 2 == 4


        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_p(n):
            assert n > 0


        def test_plain():
            assert True
    """,
    )
    project.write("test_unrelated.py", "def test_unrelated():\n    assert True\n")


def test_edited_method_body_reruns_only_that_method(project) -> None:
    _class_test_project(project)
    project.first_run()
    project.replace("test_c.py", "assert 1 + 1 == 2", "assert 1 + 1 == 3")
    run = project.run()
    assert run.outcomes == {"test_c.py::TestA::test_one": "FAILED"}


def test_edited_parametrized_body_reruns_every_parameter(project) -> None:
    _class_test_project(project)
    project.first_run()
    project.replace("test_c.py", "assert n > 0", "assert n > 1")
    run = project.run()
    assert run.outcomes == {
        "test_c.py::test_p[1]": "FAILED",
        "test_c.py::test_p[2]": "PASSED",
        "test_c.py::test_p[3]": "PASSED",
    }


def test_added_parameter_runs_new_case(project) -> None:
    """The parameter list is module-level code: the test module's module block changes,
    so every test of test_c.py runs (coarse rule), test_p[4] among them as a new test."""
    _class_test_project(project)
    project.first_run()
    project.replace("test_c.py", "[1, 2, 3]", "[1, 2, 3, 4]")
    run = project.run()
    assert "test_c.py::test_p[4]" in run.ran
    assert run.ran == {
        "test_c.py::TestA::test_one",
        "test_c.py::TestA::test_two",
        "test_c.py::test_p[1]",
        "test_c.py::test_p[2]",
        "test_c.py::test_p[3]",
        "test_c.py::test_p[4]",
        "test_c.py::test_plain",
    }


def test_renamed_added_and_deleted_methods(project) -> None:
    _class_test_project(project)
    project.first_run()
    project.replace("test_c.py", "def test_two(self):", "def test_three(self):")
    run = project.run()
    assert "test_c.py::TestA::test_three" in run.ran
    assert "test_c.py::TestA::test_two" not in run.ran
    assert run.ret == 0
    # The class body changed (a method was renamed): nothing else is pending any more.
    assert project.run().ran == set()
    project.replace("test_c.py", "    def test_three(self):\n        assert 2 + 2 == 4\n", "")
    project.replace(
        "test_c.py", "def test_plain():", "def test_added():\n    assert 1\n\n\ndef test_plain():"
    )
    run = project.run()
    assert "test_c.py::test_added" in run.ran
    assert "test_c.py::TestA::test_three" not in run.ran
    assert run.ret == 0
    assert project.run().ran == set()


def test_test_module_top_level_call_selects_the_whole_module(project) -> None:
    project.write(
        "helpers.py",
        """
        def build():
            return [1, 2]


        def other():
            return 0
    """,
    )
    project.write(
        "test_d.py",
        """
        from helpers import build

        DATA = build()


        def test_a():
            assert DATA == [1, 2]


        def test_b():
            assert True
    """,
    )
    project.write(
        "test_unrelated.py",
        """
        from helpers import other


        def test_unrelated():
            assert other() == 0
    """,
    )
    project.first_run()
    project.replace("helpers.py", "return [1, 2]", "return [2, 1]")
    run = project.run()
    assert run.outcomes == {"test_d.py::test_a": "FAILED", "test_d.py::test_b": "PASSED"}
    project.replace("helpers.py", "return [2, 1]", "return [1, 2]")
    project.run()
    project.replace("test_d.py", "DATA = build()", "DATA = build() + [3]")
    run = project.run()
    assert run.outcomes == {"test_d.py::test_a": "FAILED", "test_d.py::test_b": "PASSED"}


# -- g. data files and directory listings --------------------------------------------


def test_data_files_rerun_exactly_their_readers(project) -> None:
    project.write("data/a.json", '{"v": 1}\n')
    project.write("data/b.txt", "hello\n")
    project.write("templates/page.html", "<p>{name}</p>\n")
    project.write(
        "test_data.py",
        """
        import json
        from pathlib import Path

        HERE = Path(__file__).parent


        def test_json():
            with open(HERE / "data" / "a.json") as f:
                assert json.load(f) == {"v": 1}


        def test_text():
            assert (HERE / "data" / "b.txt").read_text() == "hello\\n"


        def test_template():
            template = (HERE / "templates" / "page.html").read_text()
            assert template.format(name="x") == "<p>x</p>\\n"


        def test_nothing():
            assert True
    """,
    )
    project.first_run()
    project.write("data/a.json", '{"v": 2}\n')
    assert project.run().outcomes == {"test_data.py::test_json": "FAILED"}
    project.write("data/a.json", '{"v": 1}\n')
    assert project.run().outcomes == {"test_data.py::test_json": "PASSED"}
    project.write("data/b.txt", "bye\n")
    assert project.run().outcomes == {"test_data.py::test_text": "FAILED"}
    project.write("templates/page.html", "<div>{name}</div>\n")
    assert project.run().outcomes == {
        "test_data.py::test_text": "FAILED",
        "test_data.py::test_template": "FAILED",
    }


def test_data_file_read_by_a_library_function(project) -> None:
    project.write("data/x.json", '{"v": 1}\n')
    project.write(
        "lib.py",
        """
        import json
        from pathlib import Path


        def load():
            return json.loads((Path(__file__).parent / "data" / "x.json").read_text())


        def other():
            return 0
    """,
    )
    project.write(
        "test_lib.py",
        """
        import lib


        def test_load():
            assert lib.load() == {"v": 1}


        def test_other():
            assert lib.other() == 0
    """,
    )
    project.first_run()
    project.write("data/x.json", '{"v": 2}\n')
    assert project.run().outcomes == {"test_lib.py::test_load": "FAILED"}


def test_data_file_read_at_import_time_of_a_library_module(project) -> None:
    project.write("settings.json", '{"debug": false}\n')
    project.write(
        "settings.py",
        """
        import json
        from pathlib import Path

        SETTINGS = json.loads((Path(__file__).parent / "settings.json").read_text())
    """,
    )
    project.write(
        "test_settings.py",
        """
        from settings import SETTINGS


        def test_debug():
            assert SETTINGS["debug"] is False


        def test_other():
            assert True
    """,
    )
    project.write(
        "test_lazy.py",
        """
        def test_lazy():
            from settings import SETTINGS
            assert SETTINGS["debug"] is False
    """,
    )
    project.write("test_unrelated.py", "def test_unrelated():\n    assert True\n")
    project.first_run()
    project.write("settings.json", '{"debug": true}\n')
    run = project.run()
    assert run.outcomes == {
        "test_settings.py::test_debug": "FAILED",
        "test_settings.py::test_other": "PASSED",
        "test_lazy.py::test_lazy": "FAILED",
    }


def test_directory_listing_selects_the_test_when_a_file_is_added(project) -> None:
    project.write("fixtures/a.txt", "a\n")
    project.write("fixtures/b.txt", "b\n")
    project.write(
        "test_list.py",
        """
        import os
        from pathlib import Path

        HERE = Path(__file__).parent


        def test_listdir():
            assert sorted(os.listdir(HERE / "fixtures")) == ["a.txt", "b.txt"]


        def test_glob():
            assert sorted(p.name for p in (HERE / "fixtures").glob("*.txt")) == ["a.txt", "b.txt"]


        def test_nothing():
            assert True
    """,
    )
    project.first_run()
    project.write("fixtures/c.txt", "c\n")
    run = project.run()
    assert run.outcomes == {
        "test_list.py::test_listdir": "FAILED",
        "test_list.py::test_glob": "FAILED",
    }


def test_relative_listdir_from_the_working_directory(project) -> None:
    project.write("fixtures/a.txt", "a\n")
    project.write(
        "test_list.py",
        """
        import os


        def test_listdir():
            assert sorted(os.listdir("fixtures")) == ["a.txt"]


        def test_nothing():
            assert True
    """,
    )
    project.first_run()
    project.write("fixtures/b.txt", "b\n")
    assert project.run().outcomes == {"test_list.py::test_listdir": "FAILED"}


def test_data_file_that_did_not_exist_at_recording(project) -> None:
    """A test that checks for an optional file: creating the file may change its result."""
    project.write(
        "test_optional.py",
        """
        import json
        from pathlib import Path

        OVERRIDE = Path(__file__).parent / "override.json"


        def test_optional():
            data = json.loads(OVERRIDE.read_text()) if OVERRIDE.exists() else {}
            assert data == {}


        def test_nothing():
            assert True
    """,
    )
    project.first_run()
    project.write("override.json", '{"x": 1}\n')
    assert project.run().outcomes == {"test_optional.py::test_optional": "FAILED"}


# -- h. dynamic call paths -------------------------------------------------------------


def test_function_reached_by_getattr(project) -> None:
    project.write(
        "handlers.py",
        """
        def on_a():
            return 1


        def on_b():
            return 2
    """,
    )
    project.write(
        "test_dyn.py",
        """
        import handlers


        def test_a():
            assert getattr(handlers, "on_" + "a")() == 1


        def test_b():
            assert getattr(handlers, "on_" + "b")() == 2
    """,
    )
    project.first_run()
    project.replace("handlers.py", "return 1", "return 10")
    assert project.run().outcomes == {"test_dyn.py::test_a": "FAILED"}


def test_function_reached_through_a_decorator_registry(project) -> None:
    project.write(
        "registry.py",
        """
        HANDLERS = {}


        def register(name):
            def deco(fn):
                HANDLERS[name] = fn
                return fn
            return deco
    """,
    )
    project.write(
        "plugins.py",
        """
        from registry import register


        @register("x")
        def x():
            return 1


        @register("y")
        def y():
            return 2
    """,
    )
    project.write(
        "test_reg.py",
        """
        import plugins  # noqa: F401 - fills the registry
        from registry import HANDLERS


        def test_x():
            assert HANDLERS["x"]() == 1


        def test_y():
            assert HANDLERS["y"]() == 2
    """,
    )
    project.first_run()
    project.replace("plugins.py", "return 1", "return 11")
    assert project.run().outcomes == {"test_reg.py::test_x": "FAILED"}


def test_function_reached_through_a_callback(project) -> None:
    project.write(
        "lib.py",
        """
        def apply(fn, value):
            return fn(value)
    """,
    )
    project.write(
        "callbacks.py",
        """
        def double(v):
            return v * 2


        def triple(v):
            return v * 3
    """,
    )
    project.write(
        "test_cb.py",
        """
        import callbacks
        import lib


        def test_double():
            assert lib.apply(callbacks.double, 2) == 4


        def test_triple():
            assert lib.apply(callbacks.triple, 2) == 6
    """,
    )
    project.first_run()
    project.replace("callbacks.py", "return v * 2", "return v * 2 + 1")
    assert project.run().outcomes == {"test_cb.py::test_double": "FAILED"}


def test_module_loaded_by_name_with_importlib(project) -> None:
    """importlib.import_module: no import statement names the module;
    the second test runs no line of it."""
    project.write("dynconfig.py", "LIMIT = 3\n")
    project.write(
        "test_imp.py",
        """
        import importlib


        def test_first():
            assert importlib.import_module("dyn" + "config").LIMIT == 3


        def test_second():
            assert importlib.import_module("dyn" + "config").LIMIT == 3


        def test_nothing():
            assert True
    """,
    )
    project.first_run()
    project.replace("dynconfig.py", "LIMIT = 3", "LIMIT = 4")
    assert project.run().outcomes == {
        "test_imp.py::test_first": "FAILED",
        "test_imp.py::test_second": "FAILED",
    }


# -- precision ---------------------------------------------------------------------------


def _precision_project(project) -> None:
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
        "test_add.py",
        """
        from calc import add


        def test_add():
            assert add(1, 2) == 3
    """,
    )
    project.write(
        "test_mul.py",
        """
        import calc


        def test_mul():
            assert calc.mul(2, 3) == 6


        def test_mul_no_calc():
            assert True
    """,
    )
    project.write("test_unrelated.py", "def test_unrelated():\n    assert True\n")


def test_function_body_edit_selects_only_tests_that_executed_it(project) -> None:
    _precision_project(project)
    project.first_run()
    project.replace("calc.py", "return a + b", "return b + a")
    assert project.run().ran == {"test_add.py::test_add"}


def test_adding_an_unused_function_reruns_the_importers(project) -> None:
    """Documented coarse rule: a new `def` changes the module block (signatures are
    import-time code), so calc is import-affected and every test of a module importing
    calc runs, even ones that never call it; tests not importing calc do not."""
    _precision_project(project)
    project.first_run()
    project.replace("calc.py", "def mul(a, b):", "def unused():\n    return 0\n\n\ndef mul(a, b):")
    run = project.run()
    assert run.ran == {
        "test_add.py::test_add",
        "test_mul.py::test_mul",
        "test_mul.py::test_mul_no_calc",
    }
    assert run.ret == 0


# -- a broken import ----------------------------------------------------------------------


def _pkg_project(project) -> None:
    project.write(
        "pkg/__init__.py",
        """
        from .core import value
    """,
    )
    project.write(
        "pkg/core.py",
        """
        def value():
            return 1
    """,
    )
    project.write(
        "test_p1.py",
        """
        import pkg


        def test_p1():
            assert pkg.value() == 1


        def test_p1_other():
            assert True
    """,
    )
    project.write(
        "test_p2.py",
        """
        from pkg import value


        def test_p2():
            assert value() == 1
    """,
    )
    project.write(
        "test_lazy.py",
        """
        def test_lazy():
            import pkg
            assert pkg.value() == 1
    """,
    )
    project.write("test_unrelated.py", "def test_unrelated():\n    assert True\n")


def _check_broken_then_fixed(project, relpath: str, old: str, new: str, *args: str) -> None:
    project.first_run()
    project.replace(relpath, old, new)
    broken = project.run(*args)
    assert broken.ret != 0, broken.text
    assert "no tests ran" not in broken.text
    assert error_collecting(broken, "test_p1.py"), broken.text
    assert error_collecting(broken, "test_p2.py"), broken.text
    if "--continue-on-collection-errors" in args:
        assert broken.outcomes == {"test_lazy.py::test_lazy": "FAILED"}, broken.text
    else:
        # pytest stops after collection errors: nothing runs, test_lazy stays pending.
        assert "Interrupted: 2 errors during collection" in broken.text
        assert broken.outcomes == {}
    project.replace(relpath, new, old)
    fixed = project.run()
    assert fixed.outcomes == {
        "test_p1.py::test_p1": "PASSED",
        "test_p1.py::test_p1_other": "PASSED",
        "test_p2.py::test_p2": "PASSED",
        "test_lazy.py::test_lazy": "PASSED",
    }, fixed.text
    assert fixed.ret == 0
    assert project.run().ran == set()


def test_package_init_raising_reports_every_importer(project) -> None:
    _pkg_project(project)
    _check_broken_then_fixed(
        project,
        "pkg/__init__.py",
        "from .core import value",
        'raise RuntimeError("boom")\nfrom .core import value',
    )


def test_name_error_at_module_level_reports_every_importer(project) -> None:
    _pkg_project(project)
    _check_broken_then_fixed(
        project, "pkg/core.py", "def value():", "undefined_name\n\n\ndef value():"
    )


def test_broken_import_with_continue_on_collection_errors(project) -> None:
    _pkg_project(project)
    _check_broken_then_fixed(
        project,
        "pkg/__init__.py",
        "from .core import value",
        'raise RuntimeError("boom")\nfrom .core import value',
        "--continue-on-collection-errors",
    )


def test_session_fixture_used_by_the_last_test_of_the_session(project) -> None:
    """The fixture is finalized in the teardown of the last test that uses it."""
    project.write("helpers.py", HELPERS)
    project.write(
        "conftest.py",
        """
        import pytest

        import helpers


        @pytest.fixture(scope="session")
        def res():
            return helpers.make()
    """,
    )
    project.write(
        "test_a.py",
        """
        def test_a_without():
            assert True


        def test_a_last(res):
            assert res["v"] == 1
    """,
    )
    project.first_run()
    project.replace("helpers.py", 'return {"v": 1}', 'return {"v": 2}')
    assert project.run().outcomes == {"test_a.py::test_a_last": "FAILED"}


def test_precise_selection_survives_a_data_file_change(project) -> None:
    """Checking a changed data file at startup must not make it a dependency of every test."""
    project.write("data.txt", "one\n")
    project.write(
        "test_d.py",
        """
        from pathlib import Path


        def test_reads():
            assert (Path(__file__).parent / "data.txt").read_text()[-1] == "\\n"


        def test_other():
            assert True
    """,
    )
    project.first_run()
    project.write("data.txt", "two\n")
    assert project.run().ran == {"test_d.py::test_reads"}
    project.write("data.txt", "three\n")
    assert project.run().ran == {"test_d.py::test_reads"}


def test_precise_selection_survives_a_module_block_change(project) -> None:
    """After a module-level edit, a later edit of another function of that module stays precise."""
    _precision_project(project)
    project.write("other.py", "X = 1\n\n\ndef other():\n    return X\n")
    project.write(
        "test_other.py",
        """
        import other


        def test_other():
            assert other.other() == 1
    """,
    )
    project.first_run()
    project.replace("other.py", "X = 1", "X = 1  # noqa\nY = 2")
    assert project.run().ran == {"test_other.py::test_other"}
    project.replace("calc.py", "return a + b", "return b + a")
    assert project.run().ran == {"test_add.py::test_add"}
    project.replace("other.py", "Y = 2", "Y = 3")
    assert project.run().ran == {"test_other.py::test_other"}


def test_precise_selection_after_a_slow_run(project) -> None:
    """A run long enough to save results mid-run: saving must not record the data file as
    read by the session (which would select every test when it changes)."""
    project.write("data.txt", "one\n")
    project.write(
        "test_d.py",
        """
        import time
        from pathlib import Path


        def test_reads():
            assert (Path(__file__).parent / "data.txt").read_text() == "one\\n"


        def test_slow():
            time.sleep(1.5)


        def test_other():
            assert True
    """,
    )
    project.first_run()
    project.write("data.txt", "two\n")
    assert project.run().outcomes == {"test_d.py::test_reads": "FAILED"}


def test_new_test_file_in_a_subdirectory_runs_alone(project) -> None:
    """pytest lists tests/ while collecting; that listing is not a dependency of every test."""
    project.write("tests/test_a.py", "def test_a():\n    assert True\n")
    project.write("tests/test_b.py", "def test_b():\n    assert True\n")
    project.first_run()
    project.write("tests/test_new.py", "def test_new():\n    assert True\n")
    assert project.run().ran == {"tests/test_new.py::test_new"}
