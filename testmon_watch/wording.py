"""How the engine's typed facts read in English: reasons, units, changed files, outcome marks.

Only the edges call this: the pytest terminal output (`--testmon-explain`,
the header), the headless printer and the app. The engine, the worker and the
wire carry the typed values; nothing parses these sentences back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from testmon_watch.core.keys import ContextKey, ContextKind
from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.reasons import (
    ChangedFile,
    EnvironmentChange,
    FileEvent,
    Interruption,
    Reason,
    ReasonKind,
)

BLOCKS_SHOWN = 4  # a reason names at most this many changed blocks, then "..."

# One mark per outcome, the same in the terminal app and the --no-tui printer.
OUTCOME_MARKS: dict[Outcome, str] = {
    Outcome.PASSED: "✓",
    Outcome.FAILED: "✗",
    Outcome.ERROR: "E",
    Outcome.SKIPPED: "s",
    Outcome.XFAILED: "x",
    Outcome.XPASSED: "X",
    Outcome.CRASHED: "!",
    Outcome.TIMEOUT: "T",
}

_EVENT_WORDS = {
    FileEvent.CREATED: "created",
    FileEvent.DELETED: "deleted",
    FileEvent.CHANGED_DURING_RUN: "changed during the run",
}


def describe_unit(key: ContextKey) -> str:
    """'session-scoped fixture db', 'import of src/a.py', 'collection of tests/t.py'."""
    if key.kind is ContextKind.FIXTURE:
        return f"{key.fixture_scope}-scoped fixture {key.fixture_name}"
    if key.kind is ContextKind.IMPORT:
        return f"import of {key.target}"
    if key.kind is ContextKind.COLLECT:
        return f"collection of {key.target}"
    return str(key)


def _blocks(blocks: Sequence[str]) -> str:
    shown = ", ".join(blocks[:BLOCKS_SHOWN])
    return shown + (" ..." if len(blocks) > BLOCKS_SHOWN else "")


def _what_happened(reason: Reason) -> str:
    """'deleted', 'syntax error at a.py:3: ...', 'f, g': what became of the reason's file."""
    if reason.event is FileEvent.UNPARSABLE:
        return reason.error or "it no longer parses"
    if reason.event in _EVENT_WORDS:
        return _EVENT_WORDS[reason.event]
    return _blocks(reason.blocks)


def describe_reason(reason: Reason) -> str:
    """One clause: 'src/shop.py changed in price (through the session-scoped fixture cart)'."""
    kind = reason.kind
    if kind is ReasonKind.CHANGED:
        if reason.event is not FileEvent.EDITED:
            text = f"{reason.file}: {_what_happened(reason)}"
        elif reason.blocks:
            text = f"{reason.file} changed in {_blocks(reason.blocks)}".replace(
                "<module>", "its top level"
            )
        else:
            text = f"{reason.file} changed"
        if reason.via is not None:
            text += f" (through the {describe_unit(reason.via)})"
        return text
    if kind is ReasonKind.IMPORTS:
        detail = _what_happened(reason)
        text = f"its code imports {reason.file}, whose import-time code changed"
        return text + (f" ({detail})" if detail else "")
    if kind is ReasonKind.FAILED:
        return (
            "it had an error last time"
            if reason.outcome is Outcome.ERROR
            else ("it failed last time")
        )
    if kind is ReasonKind.NEW:
        return "it is new"
    if kind is ReasonKind.ENVIRONMENT:
        detail = describe_environment(reason.environment)
        return "the environment changed" + (f": {detail}" if detail else "")
    if kind is ReasonKind.INTERRUPTED:
        if reason.interruption is Interruption.CHILD_LOST:
            return "a child process it started did not report"
        return "its last run did not finish"
    if kind is ReasonKind.FULL_RUN:
        return "full run requested"
    if kind is ReasonKind.REQUESTED:
        return "requested"
    raise AssertionError(f"unknown reason kind {kind!r}")


def describe_reasons(reasons: Sequence[Reason]) -> str:
    return "; ".join(describe_reason(r) for r in reasons)


def describe_environment(change: EnvironmentChange) -> str:
    """'Python 3.11.7 -> 3.12.1', or 'numpy 1.0 -> 2.0, rich 13 installed and 2 more'."""
    if change.python is not None:
        return f"Python {change.python[0]} -> {change.python[1]}"
    parts = []
    for package in change.packages:
        if package.before is None:
            parts.append(f"{package.name} {package.after} installed")
        elif package.after is None:
            parts.append(f"{package.name} {package.before} removed")
        else:
            parts.append(f"{package.name} {package.before} -> {package.after}")
    return ", ".join(parts) + (f" and {change.more} more" if change.more else "")


def describe_changes(files: Sequence[ChangedFile], limit: int = 3, blocks: int = 6) -> str:
    """'src/a.py (price, Cart.total), data/x.json, and 2 more' for a run's header.

    At most `blocks` block names per file: a file that no longer parses has all of
    them changed, and one line should still say which file it was.
    """
    parts = []
    for changed in files[:limit]:
        if changed.deleted:
            parts.append(f"{changed.path} (deleted)")
        elif changed.blocks:
            names = list(changed.blocks[:blocks])
            if len(changed.blocks) > blocks:
                names.append(f"+{len(changed.blocks) - blocks} more")
            parts.append(f"{changed.path} ({', '.join(names)})")
        else:
            parts.append(changed.path)
    if len(files) > limit:
        parts.append(f"and {len(files) - limit} more")
    return ", ".join(parts)


@dataclass(frozen=True)
class SelectionCounts:
    """What `pytest --testmon` did with the tests that exist, for its header line."""

    selected: int
    new: int
    deselected_by_pytest: int  # collected, then deselected: pytest's own "N deselected"
    not_collected: int  # known tests not even collected: their file skipped or narrowed
    files_not_collected: int
    files_collected_in_part: int = 0  # collected, but only the classes/functions that run


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def describe_selection_counts(counts: SelectionCounts) -> str:
    """'3 selected; 177 not affected (55 deselected by pytest, 122 in 9 files not collected)'.

    pytest's summary counts only tests it collected and then deselected; testmon
    also skips whole test files without collecting them. The line names both, so
    that it agrees with pytest's "55 deselected" and still adds up.
    """
    text = f"{counts.selected} selected"
    if counts.new:
        text += f" ({counts.new} new)"
    not_affected = counts.deselected_by_pytest + counts.not_collected
    if not not_affected:
        return text + "; none deselected"
    parts = []
    if counts.deselected_by_pytest:
        parts.append(f"{counts.deselected_by_pytest} deselected by pytest")
    if counts.not_collected:
        where = []
        if counts.files_not_collected:
            where.append(_count(counts.files_not_collected, "file"))
        if counts.files_collected_in_part:
            where.append("parts of " + _count(counts.files_collected_in_part, "file"))
        parts.append(f"{counts.not_collected} in {' and '.join(where)} not collected")
    return text + f"; {not_affected} not affected ({', '.join(parts)})"


def describe_running_all(collected: int, new: int) -> str:
    return f"running all {collected} collected ({new} new)"


def describe_outcome_count(outcome: Outcome, n: int) -> str:
    """'2 passed', '1 error', '3 errors': the words of pytest's summary line."""
    if outcome is Outcome.ERROR:
        return _count(n, "error")
    return f"{n} {outcome}"


def describe_collection_error(nodeid: str) -> str:
    """The heading pytest gives a collector that failed."""
    return f"ERROR collecting {nodeid}"


def describe_not_run(n: int) -> str:
    """Tests a run selected and pytest ended before (collection errors, -x)."""
    return f"{n} not run"


def describe_cancelled(n: int) -> str:
    return f"{n} cancelled"


def describe_removed(nodeids: Sequence[str], limit: int = 3) -> str:
    """'removed (no longer exist): t.py::a, t.py::b and 2 more'."""
    shown = ", ".join(nodeids[:limit])
    more = f" and {len(nodeids) - limit} more" if len(nodeids) > limit else ""
    return f"removed (no longer exist): {shown}{more}"


def describe_stopped(nodeid: str, seconds: float) -> str:
    return f"stopped {nodeid} after {seconds:.1f} s"
