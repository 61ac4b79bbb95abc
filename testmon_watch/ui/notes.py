"""What the app's one toast per run says: the tests that flipped, and the worker's notices.

Pure Python: English made from typed values for the toast (and for the status
bar when toasts are off). At most one toast per run: the app joins a run's
flips and the notices that came during it into one line.
"""

from __future__ import annotations

from collections.abc import Sequence

from testmon_watch.core.outcomes import Outcome
from testmon_watch.ui.nodeids import split_nodeid

NAMES_SHOWN = 3  # test names in a toast; more are "…"

FlipRow = tuple[str, Outcome, Outcome]  # node id, old outcome, new outcome (RunRecord.flipped)


def short_name(nodeid: str) -> str:
    """'tests/test_shop.py::TestCart::test_total[2]' -> 'test_total[2]'."""
    return split_nodeid(nodeid)[2]


def flips_text(flips: Sequence[FlipRow]) -> str:
    """'3 now fail, 1 now passes: test_x, test_y, test_z, …' ('' when nothing flipped)."""
    broke = [nodeid for nodeid, _old, new in flips if new.failing]
    fixed = [nodeid for nodeid, _old, new in flips if not new.failing]
    counts = []
    if broke:
        counts.append(f"{len(broke)} now {'fails' if len(broke) == 1 else 'fail'}")
    if fixed:
        counts.append(f"{len(fixed)} now {'passes' if len(fixed) == 1 else 'pass'}")
    if not counts:
        return ""
    names = [short_name(n) for n in broke + fixed]
    shown = ", ".join(names[:NAMES_SHOWN]) + (", …" if len(names) > NAMES_SHOWN else "")
    return f"{', '.join(counts)}: {shown}"


def notices_text(notices: Sequence[str]) -> str:
    """Notices as one line: the last one, and how many came before it."""
    if not notices:
        return ""
    last = notices[-1]
    more = len(notices) - 1
    return f"{last} (+{more} more)" if more else last


def run_toast(flips: Sequence[FlipRow], notices: Sequence[str]) -> str:
    """The one toast of a run: its flips, then the notices that came during it."""
    return "\n".join(part for part in (flips_text(flips), notices_text(notices)) if part)
