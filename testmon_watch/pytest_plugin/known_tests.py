"""The recorded tests a run's plan knows, indexed by test file.

Every run asks the same questions of them: which must run, which test files have
none that must (not even imported), which classes and functions of a file to collect,
which tests of a collected file were not collected (deleted). Answered by a pass
over every test, they cost opt-einsum (7,891 tests) about 13 ms per save, after
the save and before the first result. Here they are answered from an index by
test file that a standby child builds while it waits (`ReadAhead`): a run copies
it and replaces the few tests the save affected (`updated`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.reasons import Reason


@dataclass
class KnownTest:
    nodeid: str
    path: str | None
    outcome: Outcome
    duration: float
    reasons: list[Reason] | None  # None: up to date


def name_path(nodeid: str) -> tuple[str, ...] | None:
    """The names pytest collects a test by within its file, parameters left out.

    'tests/test_a.py::TestK::test_x[1]' -> ('TestK', 'test_x');
    'test_a.py::test_f[a::b]' -> ('test_f',); 'test_a.py' -> None.
    """
    _path, sep, rest = nodeid.partition("::")
    if not sep:
        return None
    names = tuple(rest.partition("[")[0].split("::"))
    return names if all(names) else None


class KnownTests(Mapping[str, KnownTest]):
    """nodeid -> KnownTest, with the tests that must run and the tests of each file.

    The index by file may be shared with the copies `updated` makes and is never
    changed after it is built; it may name tests popped since, so every read of it
    checks membership.
    """

    def __init__(self, tests: Iterable[KnownTest]) -> None:
        self._tests: dict[str, KnownTest] = {t.nodeid: t for t in tests}
        self._must_run: set[str] = {n for n, t in self._tests.items() if t.reasons}
        self._by_path: dict[str, list[str]] = {}
        for nodeid, test in self._tests.items():
            if test.path is not None:
                self._by_path.setdefault(test.path, []).append(nodeid)

    # -- Mapping -----------------------------------------------------------------

    def __getitem__(self, nodeid: str) -> KnownTest:
        return self._tests[nodeid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tests)

    def __len__(self) -> int:
        return len(self._tests)

    def __contains__(self, nodeid: object) -> bool:
        return nodeid in self._tests

    def get(self, nodeid: str, default: KnownTest | None = None) -> KnownTest | None:  # type: ignore[override]
        return self._tests.get(nodeid, default)

    # -- changes -----------------------------------------------------------------

    def updated(self, replacements: Iterable[KnownTest]) -> KnownTests:
        """A copy in which these tests replace the ones of their node ids."""
        copy = KnownTests.__new__(KnownTests)
        copy._tests = dict(self._tests)
        copy._must_run = set(self._must_run)
        copy._by_path = self._by_path
        reindex = False
        for test in replacements:
            old = copy._tests.get(test.nodeid)
            reindex = reindex or old is None or old.path != test.path
            copy._tests[test.nodeid] = test
            if test.reasons:
                copy._must_run.add(test.nodeid)
            else:
                copy._must_run.discard(test.nodeid)
        if reindex:  # never from marking tests: a test keeps its file
            copy._by_path = KnownTests(copy._tests.values())._by_path
        return copy

    def pop(self, nodeid: str, default: KnownTest | None = None) -> KnownTest | None:
        self._must_run.discard(nodeid)
        return self._tests.pop(nodeid, default)

    # -- questions ---------------------------------------------------------------

    def must_run(self) -> dict[str, list[Reason]]:
        """nodeid -> reasons, for every test that must run."""
        return {n: reasons for n in self._must_run if (reasons := self._tests[n].reasons)}

    def paths(self) -> set[str]:
        """The test files with at least one known test."""
        tests = self._tests
        return {p for p, ids in self._by_path.items() if any(n in tests for n in ids)}

    def paths_to_run(self) -> set[str]:
        """The test files with at least one test that must run."""
        return {p for n in self._must_run if (p := self._tests[n].path) is not None}

    def on_path(self, path: str) -> list[KnownTest]:
        """The known tests of one test file."""
        tests = self._tests
        return [tests[n] for n in self._by_path.get(path, ()) if n in tests]
