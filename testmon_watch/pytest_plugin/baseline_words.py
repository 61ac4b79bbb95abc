"""The one line that says what `--testmon-baseline` did: imported, nothing new, or why not used."""

from __future__ import annotations

import os
from pathlib import Path

from testmon_watch.core.baseline import BaselineApplied, BaselineOutcome, Refusal

# Starts every line of a baseline that was not used (results.py repeats those at the end).
NOT_USED = "not used"


def shown_path(path: Path, root: Path) -> str:
    """The baseline as the user knows it: relative to the rootdir when inside it."""
    resolved = Path(os.path.abspath(path))  # normalised: no `..` left
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(resolved)


def describe_baseline(outcome: BaselineOutcome, path: Path, root: Path) -> str:
    """'baseline ci/.testmondata: 120 tests imported (5 to run: changed since recorded)', ..."""
    name = f"baseline {shown_path(path, root)}"
    if isinstance(outcome, BaselineApplied):
        result = outcome.result
        if result is None:
            return f"{name}: no records newer than those imported before"
        # Equal times are one record seen twice (a copy of the local file): no conflict.
        kept = sum(1 for c in result.conflicts if c.destination_recorded_at > c.source_recorded_at)
        if not result.imported:
            newer = f" ({_tests(kept)} recorded more recently here)" if kept else ""
            return f"{name}: no records newer than the local ones{newer}"
        text = f"{name}: {_tests(len(result.imported))} imported"
        if result.pending:
            text += f" ({result.pending} to run: changed since recorded there, or due to run)"
        if kept:
            text += f"; {_tests(kept)} recorded more recently here kept"
        return text
    why = outcome.why
    if why is Refusal.UNREADABLE:
        reason = outcome.detail
    elif why is Refusal.SAME_FILE:
        reason = "it is the local data file itself"
    elif why is Refusal.NO_ENVIRONMENT:
        reason = f"nothing recorded there for environment {outcome.detail!r}"
    elif why is Refusal.OTHER_PYTHON and outcome.python is not None:
        recorded, current = outcome.python
        reason = f"recorded under {recorded}, this run uses {current}"
    else:
        which = (
            "its only test file does not"
            if outcome.count == 1
            else f"none of its {outcome.count} test files"
        )
        reason = f"{which} exist here (recorded for another project, or from another rootdir)"
    return f"{name} {NOT_USED}: {reason}"


def _tests(n: int) -> str:
    return "1 test" if n == 1 else f"{n} tests"
