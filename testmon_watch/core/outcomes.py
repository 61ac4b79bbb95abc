"""The words every layer shares for results and runs: test outcomes and run modes.

One enum each, used by the database, the plugin, the worker protocol and the
front ends alike. Both are `str` enums whose value is what is stored and sent
(`"passed"`, `"affected"`), so a value read back from SQLite or JSON turns into
the member with `Outcome(text)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any


class Outcome(str, Enum):
    """One word for a test's result across its setup, call and teardown."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # a failure outside the call phase (setup, teardown, collection)
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"
    CRASHED = "crashed"  # the test process died while this test ran (worker only)
    TIMEOUT = "timeout"  # no result within the per-test limit (worker only)

    def __str__(self) -> str:  # f-strings and str() give the value on every Python
        return self.value

    @property
    def failing(self) -> bool:
        """Shown as a failure and kept selected until it passes."""
        return self in FAILING

    @property
    def runs_again(self) -> bool:
        """Recorded with this outcome, the test is selected on every run until it passes."""
        return self in RUNS_AGAIN

    @classmethod
    def parse(cls, text: str) -> Outcome:
        """The outcome stored as `text`; an unknown word (a newer writer) counts as an error.

        A dict lookup, not `Outcome(text)`: the database reads one per test row, and
        the enum's own lookup costs ten times more (20 ms for 20,000 tests).
        """
        return OUTCOME_BY_VALUE.get(text, Outcome.ERROR)


OUTCOME_BY_VALUE = {outcome.value: outcome for outcome in Outcome}

FAILING = frozenset(
    {Outcome.FAILED, Outcome.ERROR, Outcome.CRASHED, Outcome.TIMEOUT, Outcome.XPASSED}
)
# The recorded outcomes that keep a test selected (the data file's "failed last time").
# Narrower than FAILING: a non-strict xpass is a pass to pytest and is not run again.
RUNS_AGAIN = frozenset({Outcome.FAILED, Outcome.ERROR})
# The outcomes pytest itself produces (and the data file records): the rest are the worker's.
PYTEST_OUTCOMES = (
    Outcome.PASSED,
    Outcome.FAILED,
    Outcome.ERROR,
    Outcome.SKIPPED,
    Outcome.XFAILED,
    Outcome.XPASSED,
)


def outcome_of(reports: Iterable[Any]) -> Outcome:
    """The outcome of a test from its pytest TestReports (setup, call, teardown).

    Reports are read by attribute (when, failed, skipped, wasxfail), so this
    module needs no pytest import. A failure outside the call phase is an error.
    """
    outcome = Outcome.PASSED
    for report in reports:
        xfail = hasattr(report, "wasxfail")
        if report.failed:
            return Outcome.FAILED if report.when == "call" else Outcome.ERROR
        if report.skipped:
            outcome = Outcome.XFAILED if xfail else Outcome.SKIPPED
        elif report.when == "call" and xfail:
            outcome = Outcome.XPASSED
    return outcome


class RunMode(str, Enum):
    """What a watch-loop run executes."""

    AFFECTED = "affected"  # what changed since the last run (pytest --testmon)
    ALL = "all"  # every test, recording as it goes
    FAILED = "failed"  # the failing tests: the node ids given, else the recorded failures
    NODEIDS = "nodeids"  # exactly the node ids given

    def __str__(self) -> str:
        return self.value
