"""KnownTests answers from its index by file what a pass over every test answers.

The oracle is that pass, written out over a plain dict: whatever a run does to the
known tests (copies with tests marked or unmarked, tests forgotten), every question
gets the same answer from the index.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.reasons import Reason
from testmon_watch.pytest_plugin.known_tests import KnownTest, KnownTests, name_path

MUST = [Reason.interrupted()]


def known(nodeid: str, path: str | None, reasons: list[Reason] | None = None) -> KnownTest:
    return KnownTest(nodeid, path, Outcome.PASSED, 0.5, reasons)


def answers(tests: KnownTests) -> dict[str, object]:
    paths = {t.path for t in tests.values() if t.path is not None}
    return {
        "tests": dict(tests.items()),
        "must_run": tests.must_run(),
        "paths": tests.paths(),
        "paths_to_run": tests.paths_to_run(),
        "on_path": {p: sorted(t.nodeid for t in tests.on_path(p)) for p in paths},
    }


def oracle(tests: dict[str, KnownTest]) -> dict[str, object]:
    """The same questions, answered by a pass over every test."""
    paths = {t.path for t in tests.values() if t.path is not None}
    return {
        "tests": dict(tests),
        "must_run": {n: t.reasons for n, t in tests.items() if t.reasons},
        "paths": paths,
        "paths_to_run": {t.path for t in tests.values() if t.reasons and t.path is not None},
        "on_path": {p: sorted(n for n, t in tests.items() if t.path == p) for p in paths},
    }


def test_the_tests_that_must_run_and_the_files_they_are_in() -> None:
    tests = KnownTests(
        [
            known("a.py::test_1", "a.py"),
            known("a.py::K::test_2", "a.py", MUST),
            known("b.py::test_3", "b.py"),
            known("gone::test_4", None, MUST),
        ]
    )
    assert tests.must_run() == {"a.py::K::test_2": MUST, "gone::test_4": MUST}
    assert tests.paths() == {"a.py", "b.py"}
    assert tests.paths_to_run() == {"a.py"}
    assert [t.nodeid for t in tests.on_path("a.py")] == ["a.py::test_1", "a.py::K::test_2"]
    assert tests.on_path("c.py") == []
    assert "b.py::test_3" in tests and len(tests) == 4


def test_a_copy_with_tests_marked_leaves_the_original_as_it_was() -> None:
    base = KnownTests([known("a.py::test_1", "a.py"), known("b.py::test_2", "b.py", MUST)])
    copy = base.updated([known("a.py::test_1", "a.py", MUST), known("b.py::test_2", "b.py")])
    assert copy.must_run() == {"a.py::test_1": MUST}
    assert copy.paths_to_run() == {"a.py"}
    assert base.must_run() == {"b.py::test_2": MUST}
    assert base["a.py::test_1"].reasons is None


def test_forgotten_tests_leave_their_file_and_only_in_the_copy_that_forgot_them() -> None:
    base = KnownTests([known("a.py::test_1", "a.py", MUST), known("b.py::test_2", "b.py")])
    copy = base.updated([])
    assert copy.pop("a.py::test_1") is not None
    assert copy.pop("a.py::test_1") is None
    assert copy.paths() == {"b.py"} and copy.on_path("a.py") == []
    assert copy.must_run() == {} and copy.paths_to_run() == set()
    assert base.paths() == {"a.py", "b.py"}
    assert [t.nodeid for t in base.on_path("a.py")] == ["a.py::test_1"]


def test_a_test_new_to_the_copy_is_found_in_its_file() -> None:
    base = KnownTests([known("a.py::test_1", "a.py")])
    copy = base.updated([known("c.py::test_9", "c.py", MUST)])
    assert copy.paths() == {"a.py", "c.py"}
    assert [t.nodeid for t in copy.on_path("c.py")] == ["c.py::test_9"]
    assert base.paths() == {"a.py"} and base.on_path("c.py") == []


def test_name_path() -> None:
    assert name_path("tests/test_a.py::TestK::test_x[1]") == ("TestK", "test_x")
    assert name_path("tests/test_a.py::TestK::TestIn::test_x") == ("TestK", "TestIn", "test_x")
    assert name_path("test_a.py::test_f[a::b]") == ("test_f",)
    assert name_path("test_a.py::test_f[]") == ("test_f",)
    assert name_path("test_a.py") is None
    assert name_path("test_a.py::") is None


NODEIDS = [f"{p}::test_{i}" for p in ("a.py", "b.py", "c.py") for i in range(3)]
step = st.one_of(
    st.tuples(st.just("mark"), st.sampled_from(NODEIDS), st.booleans()),
    st.tuples(st.just("pop"), st.sampled_from(NODEIDS), st.booleans()),
)


@settings(max_examples=200, deadline=None)
@given(
    start=st.dictionaries(st.sampled_from(NODEIDS), st.booleans()),
    steps=st.lists(step, max_size=12),
)
def test_every_answer_is_what_a_pass_over_every_test_gives(
    start: dict[str, bool], steps: list[tuple[str, str, bool]]
) -> None:
    def make(nodeid: str, must: bool) -> KnownTest:
        return known(nodeid, nodeid.partition("::")[0], MUST if must else None)

    tests = KnownTests(make(n, m) for n, m in start.items())
    plain = {n: make(n, m) for n, m in start.items()}
    for action, nodeid, must in steps:
        if action == "mark":
            tests = tests.updated([make(nodeid, must)])
            plain[nodeid] = make(nodeid, must)
        else:
            tests.pop(nodeid)
            plain.pop(nodeid, None)
        assert answers(tests) == oracle(plain)
