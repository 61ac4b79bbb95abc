"""The status bar: watched files, trigger, selection, time saved, latency, worker state."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.runs import TestPhase, WorkerState
from testmon_watch.ui.state import Status, WatchState

WORKER_STYLE = {
    WorkerState.WARM: "green",
    WorkerState.RUNNING: "cyan",
    WorkerState.RECYCLING: "yellow",
}
# The header's counts, in this order (a status not listed is not counted there).
SUMMARY: tuple[tuple[Status, str], ...] = (
    (Outcome.FAILED, "bold red"),
    (Outcome.ERROR, "bold red"),
    (Outcome.CRASHED, "bold red"),
    (Outcome.TIMEOUT, "bold red"),
    (Outcome.PASSED, "green"),
    (Outcome.SKIPPED, "yellow"),
    (TestPhase.UP_TO_DATE, "dim"),
    (TestPhase.RUNNING, "cyan"),
    (TestPhase.QUEUED, "cyan"),
)


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{seconds // 60:.0f} min {seconds % 60:.0f} s"


def status_text(state: WatchState) -> Text:
    text = Text()
    watching = "paused" if state.paused else f"watching {state.watched_files} files"
    text.append(watching, "bold yellow" if state.paused else "")
    if state.last_trigger:
        text.append(" · last: ")
        text.append(state.last_trigger, "cyan")
    run = state.current or (state.runs[-1] if state.runs else None)
    if run is not None and (run.selected or run.deselected):
        text.append(f" · selected {run.selected}, deselected {run.deselected}")
    text.append(f" · saved {duration(state.time_saved)}")
    text.append(f" · latency {ms(state.last_latency)} (median {ms(state.median_latency)})")
    worker = str(state.worker_state) + (f": {state.worker_detail}" if state.worker_detail else "")
    text.append(" · worker ")
    text.append(worker, WORKER_STYLE.get(state.worker_state, ""))
    flaky = len(state.flaky_suspects)
    if flaky:
        text.append(f" · {flaky} flaky?", "magenta")
    return text


def summary_text(state: WatchState) -> Text:
    counts = state.counts()
    text = Text()
    for status, style in SUMMARY:
        if counts.get(status):
            word = "up to date" if status is TestPhase.UP_TO_DATE else str(status)
            text.append(f"{counts[status]} {word}  ", style)
    return text or Text("no tests yet", "dim")


class StatusBar(Static):
    def show(self, state: WatchState) -> None:
        self.update(status_text(state))
