"""The detail pane: the selected test's result, traceback, captured output and why it ran."""

from __future__ import annotations

import re

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.runs import TestPhase, WorkerExit
from testmon_watch.ui.state import RunRecord, TestState, label
from testmon_watch.ui.widgets.results import STATUS_STYLE
from testmon_watch.ui.widgets.status import ms
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


def test_renderable(test: TestState) -> RenderableType:
    parts: list[RenderableType] = []
    status = test.status
    head = Text()
    head.append(test.nodeid, "bold")
    head.append("  ")
    head.append(label(status), STATUS_STYLE.get(status, ""))
    if test.duration is not None:
        head.append(f"  {ms(test.duration)}", "dim")
    if test.flaky:
        head.append(
            "  flaky suspect: its outcome changed with no change to what it uses", "magenta"
        )
    parts.append(head)
    if test.reasons:
        why = Text("\nWhy it ran\n", "bold underline")
        for reason in test.reasons:
            why.append(f"  • {describe_reason(reason)}\n")
        parts.append(why)
    elif status is TestPhase.UP_TO_DATE:
        parts.append(Text("\nNot selected: nothing it depends on changed.", "dim"))
    if len(test.history) > 1:
        history = Text("\nHistory  ", "bold")
        for _trigger, outcome in test.history[-12:]:
            mark = "✓" if outcome is Outcome.PASSED else str(outcome)[0].upper()
            history.append(mark, STATUS_STYLE.get(outcome, ""))
        parts.append(history)
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
