"""The detail pane: the selected test's result, traceback, captured output and why it ran."""

from __future__ import annotations

import re

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from testmon_watch.core.runs import TestPhase, WorkerExit
from testmon_watch.ui.display import MARKS, STATUS_STYLE, Status, label
from testmon_watch.ui.state import RunRecord, TestState
from testmon_watch.ui.widgets.status import ms
from testmon_watch.wire.worker_protocol import CollectionError
from testmon_watch.wording import describe_reason

LOCATION = re.compile(r"^(\S+?):(\d+):")


def traceback_renderable(longrepr: str) -> Text:
    """pytest's long report with Python highlighting; `E` lines red, locations cyan."""
    text = Syntax("", "python", theme="ansi_dark").highlight(longrepr)
    text.rstrip()
    offset = 0
    for line in longrepr.splitlines(keepends=True):
        end = offset + len(line.rstrip("\n"))
        if line.startswith("E "):
            text.stylize("bold red", offset, end)
        elif line.startswith(">"):
            text.stylize("bold", offset, end)
        elif LOCATION.match(line):
            text.stylize("cyan", offset, end)
        offset += len(line)
    return text


# Why a test shows no result of its own, after its status word.
WHY_NO_RESULT: dict[Status, str] = {
    TestPhase.CANCELLED: "the run was stopped before it finished",
    TestPhase.QUEUED: "waiting for its turn in this run",
}


def test_renderable(test: TestState, in_error: bool) -> RenderableType:
    """The test under the cursor; `in_error`: its module failed to import."""
    parts: list[RenderableType] = []
    status = test.status
    head = Text()
    head.append(test.nodeid, "bold")
    head.append("  ")
    head.append(f"{MARKS.get(status, '?')} {label(status)}", STATUS_STYLE.get(status, ""))
    if status is TestPhase.UP_TO_DATE and test.outcome is not None:
        head.append(f" · {label(test.outcome)}", "dim")
    shown = test.shown_duration
    if shown is not None:
        after = " after " if status is TestPhase.CANCELLED else "  "
        head.append(f"{after}{ms(shown)}", "dim")
    if test.flaky:
        head.append(
            "  flaky suspect: its outcome changed with no change to what it uses", "magenta"
        )
    parts.append(head)
    if status is TestPhase.NOT_RUN:
        why = (
            "its module failed to import: select the file's row for the error"
            if in_error
            else "pytest stopped before it ran (collection errors elsewhere, -x, or an exit)"
            if test.outcome is not None or test.history
            else "no run has run it yet"
        )
        parts.append(Text(f"Not run: {why}.", "yellow"))
    elif status in WHY_NO_RESULT:
        parts.append(Text(f"No result: {WHY_NO_RESULT[status]}.", "dim"))
    if test.reasons:
        reasons = Text("\nWhy it ran\n", "bold underline")
        for reason in test.reasons:
            reasons.append(f"  • {describe_reason(reason)}\n")
        parts.append(reasons)
    elif status is TestPhase.UP_TO_DATE:
        parts.append(Text("\nNot selected: nothing it depends on changed.", "dim"))
    if len(test.history) > 1:
        history = Text("\nHistory  ", "bold")
        for _trigger, outcome in test.history[-12:]:
            history.append(MARKS.get(outcome, "?"), STATUS_STYLE.get(outcome, ""))
        parts.append(history)
    if test.phase not in (TestPhase.FINISHED, TestPhase.UP_TO_DATE):
        if test.result is not None:  # not this run's: said, not shown as if it were
            earlier = f"\nLast result, from an earlier run: {label(test.result.outcome)}"
            parts.append(Text(earlier, "dim"))
        return Group(*parts)
    result = test.result
    if result is not None and result.longrepr:
        parts.append(Text("\nTraceback", "bold underline"))
        parts.append(traceback_renderable(result.longrepr))
    if result is not None:
        for title, content in result.sections:
            if content.strip():
                parts.append(Text(f"\n{title}", "bold underline"))
                parts.append(Text(content.rstrip()))
    return Group(*parts)


def file_renderable(path: str, errors: list[CollectionError], tests: int) -> RenderableType:
    """A file row: its import or collection errors with their tracebacks."""
    parts: list[RenderableType] = []
    head = Text()
    head.append(path, "bold")
    if errors:
        head.append("  E failed to import", "bold red")
        if tests:
            head.append(f"  ({tests} known test{'s' if tests != 1 else ''} not run)", "yellow")
    parts.append(head)
    for error in errors:
        if error.nodeid != path:
            parts.append(Text(f"\n{error.nodeid}", "bold"))
        parts.append(Text("\nTraceback", "bold underline"))
        parts.append(traceback_renderable(error.longrepr))
    if not errors:
        parts.append(
            Text(f"{tests} test{'s' if tests != 1 else ''}; select one for its result.", "dim")
        )
    return Group(*parts)


def no_tests_renderable(looked_in: list[str], after_a_run: bool) -> RenderableType:
    """The detail pane of a project without tests: before the first run, or after it."""
    if not after_a_run:
        return Text("No tests yet: waiting for the first run.", "dim")
    where = ", ".join(looked_in) if looked_in else "the project's root directory"
    return Text(
        f"No tests found. pytest looked in: {where}\n"
        "(test files are test_*.py or *_test.py unless pytest's configuration says otherwise)",
        "yellow",
    )


def run_renderable(run: RunRecord, index: int, total: int) -> RenderableType:
    text = Text()
    text.append(f"Run {index + 1} of {total}: ", "bold")
    text.append(run.trigger or "run", "cyan")
    text.append(f"  ({run.mode})\n", "dim")
    text.append(f"selected {run.selected}, deselected {run.deselected}\n")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(run.counts().items()) if n)
    text.append((counts or "no results") + "\n")
    if isinstance(run.exitstatus, WorkerExit):
        text.append(f"{run.exitstatus}\n", "red")
    if run.flipped:
        text.append("\nFlipped\n", "bold underline")
        for nodeid, old, new in run.flipped:
            text.append(f"  {old} → ", STATUS_STYLE.get(old, ""))
            text.append(str(new), STATUS_STYLE.get(new, ""))
            text.append(f"  {nodeid}\n")
    else:
        text.append("\nNo test flipped.", "dim")
    return text


class DetailPane(VerticalScroll):
    """Scrollable; shows a test, a run of the history, or a hint."""

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static(Text("Select a test.", "dim"), id="detail-body")

    def show(self, renderable: RenderableType) -> None:
        self.query_one("#detail-body", Static).update(renderable)
