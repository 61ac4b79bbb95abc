"""What one test shows on screen: its display status, mark, word, order and style.

A mark is only what a finished run produced, or a state that says why there is
none (issue #12): the status is made from the run model's `TestPhase`, and an
outcome shows only for a test a run finished (or one that is up to date and
failing: its last result still stands and is still a failure). Pure Python, no
Textual import: rich style strings only.
"""

from __future__ import annotations

from testmon_watch.core.outcomes import PYTEST_OUTCOMES, Outcome
from testmon_watch.core.runs import TestPhase, TestStatus
from testmon_watch.wording import OUTCOME_MARKS

# The status a test shows: the outcome of the run that finished it, or its phase.
Status = Outcome | TestPhase

# Display order: failures first, then what is going on, then the rest.
STATUS_ORDER: dict[Status, int] = {
    Outcome.CRASHED: 0,
    Outcome.TIMEOUT: 1,
    Outcome.ERROR: 2,
    Outcome.FAILED: 3,
    Outcome.XPASSED: 4,
    TestPhase.RUNNING: 5,
    TestPhase.QUEUED: 6,
    TestPhase.NOT_RUN: 7,
    TestPhase.CANCELLED: 8,
    Outcome.PASSED: 9,
    Outcome.XFAILED: 10,
    Outcome.SKIPPED: 11,
    TestPhase.UP_TO_DATE: 12,
}
PHASE_MARKS: dict[Status, str] = {
    TestPhase.RUNNING: "▶",
    TestPhase.QUEUED: "…",
    TestPhase.CANCELLED: "⊘",
    TestPhase.NOT_RUN: "○",
    TestPhase.UP_TO_DATE: "·",
}
MARKS: dict[Status, str] = dict(PHASE_MARKS)
MARKS.update((outcome, mark) for outcome, mark in OUTCOME_MARKS.items())
STATUS_LABEL: dict[Status, str] = {
    TestPhase.UP_TO_DATE: "up to date",
    TestPhase.NOT_RUN: "not run",
    Outcome.TIMEOUT: "timed out",
}
STATUS_STYLE: dict[Status, str] = {
    Outcome.PASSED: "green",
    Outcome.FAILED: "bold red",
    Outcome.ERROR: "bold red",
    Outcome.CRASHED: "bold red",
    Outcome.TIMEOUT: "bold red",
    Outcome.XPASSED: "red",
    Outcome.SKIPPED: "yellow",
    Outcome.XFAILED: "yellow",
    TestPhase.RUNNING: "bold cyan",
    TestPhase.QUEUED: "cyan",
    TestPhase.CANCELLED: "magenta",
    TestPhase.NOT_RUN: "yellow",
    TestPhase.UP_TO_DATE: "dim green",
}
# What each mark means, in the help screen's legend order.
LEGEND: tuple[Status, ...] = (
    *PYTEST_OUTCOMES,
    Outcome.CRASHED,
    Outcome.TIMEOUT,
    TestPhase.RUNNING,
    TestPhase.QUEUED,
    TestPhase.CANCELLED,
    TestPhase.NOT_RUN,
    TestPhase.UP_TO_DATE,
)


def label(status: Status) -> str:
    """The word for a status on screen."""
    return STATUS_LABEL.get(status, str(status))


def display_status(test: TestStatus) -> Status:
    """What `test` shows: its phase, or the outcome of the run that finished it.

    FINISHED shows that run's outcome; UP_TO_DATE shows as such unless its last
    outcome is a failure (a failure that still stands stays red); up to date with
    no known outcome has no result to stand on: not run. CANCELLED and NOT_RUN
    never show an earlier outcome.
    """
    phase = test.phase
    if phase is TestPhase.FINISHED:
        return test.outcome if test.outcome is not None else TestPhase.NOT_RUN
    if phase is TestPhase.UP_TO_DATE:
        if test.outcome is None:
            return TestPhase.NOT_RUN
        return test.outcome if test.outcome.failing else TestPhase.UP_TO_DATE
    if phase is TestPhase.REMOVED:  # not shown at all; counted nowhere
        return TestPhase.NOT_RUN
    return phase
