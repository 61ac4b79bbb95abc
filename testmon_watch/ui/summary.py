"""The header's counts: tests by the status they show, and the files that failed to import.

The counts are counts of the tests that exist now, one status each, so they add
up to that number; files whose module failed to import or collect are counted
apart, as files, never as tests. Pure Python: the header widget renders the list.
"""

from __future__ import annotations

from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.runs import TestPhase
from testmon_watch.ui.display import STATUS_STYLE, Status, label
from testmon_watch.ui.state import WatchState

# Every status a test can show, in the header's order.
HEADER_ORDER: tuple[Status, ...] = (
    Outcome.FAILED,
    Outcome.ERROR,
    Outcome.CRASHED,
    Outcome.TIMEOUT,
    Outcome.XPASSED,
    TestPhase.RUNNING,
    TestPhase.QUEUED,
    Outcome.PASSED,
    Outcome.SKIPPED,
    Outcome.XFAILED,
    TestPhase.CANCELLED,
    TestPhase.NOT_RUN,
    TestPhase.UP_TO_DATE,
)
ERROR_STYLE = "bold red"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """'1 file', '3 files'."""
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


def header_counts(state: WatchState) -> list[tuple[Status, int, str, str]]:
    """(status, count, word, style) for each status some test shows, in the header's order."""
    counts = state.counts()
    return [
        (status, counts[status], label(status), STATUS_STYLE.get(status, ""))
        for status in HEADER_ORDER
        if counts.get(status)
    ]


def import_errors_text(state: WatchState) -> str:
    """'2 modules failed to import', or '' when every test module imported."""
    files = len(state.error_files)
    if not files:
        return ""
    return f"{plural(files, 'module')} failed to import"
