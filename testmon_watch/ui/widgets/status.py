"""The status bar and the header: watched files, trigger, selection, latency, worker; counts.

The status bar fits its width: the trigger is shortened first ("3 files" for
the list), then the less essential parts are dropped; latency and the worker's
state always stay.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from testmon_watch.core.runs import WorkerState
from testmon_watch.ui.state import WatchState
from testmon_watch.ui.summary import ERROR_STYLE, header_counts, import_errors_text, plural

WORKER_STYLE = {
    WorkerState.WARM: "green",
    WorkerState.RUNNING: "cyan",
    WorkerState.RECYCLING: "yellow",
}
SEPARATOR = " · "


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{seconds // 60:.0f} min {seconds % 60:.0f} s"


def short_trigger(trigger: str) -> str:
    """'a.py, b.py, c.py' -> '3 files'; one name stays as it is."""
    names = trigger.split(", ")
    return plural(len(names), "file") if len(names) > 1 else trigger


Part = tuple[str, str]  # text, style


def _parts(state: WatchState, level: int) -> list[Part]:
    """The bar's parts; a higher `level` shortens or drops more of them (0: everything)."""
    parts: list[Part] = []
    if state.message and level < 7:
        parts.append((state.message, "yellow"))
    if state.paused and level < 6:
        parts.append(("paused", "bold yellow"))
    elif level < 4:
        parts.append((f"watching {plural(state.watched_files, 'file')}", ""))
    if state.last_trigger and level < 5:
        trigger = state.last_trigger if level == 0 else short_trigger(state.last_trigger)
        parts.append((f"last: {trigger}", "cyan"))
    run = state.current or (state.runs[-1] if state.runs else None)
    if run is not None and run.started and level < 6:
        parts.append((f"selected {run.selected}, deselected {run.deselected}", ""))
    if level < 3:
        parts.append((f"saved {duration(state.time_saved)}", ""))
    latency = f"latency {ms(state.last_latency)}"
    if level < 2:
        latency += f" (median {ms(state.median_latency)})"
    parts.append((latency, ""))
    worker = str(state.worker_state)
    if state.worker_detail and level < 8:
        worker += f": {state.worker_detail}"
    parts.append((f"worker {worker}", WORKER_STYLE.get(state.worker_state, "")))
    flaky = len(state.flaky_suspects)
    if flaky and level < 6:
        parts.append((f"{flaky} flaky?", "magenta"))
    return parts


def status_text(state: WatchState, width: int | None = None) -> Text:
    """The status bar's line, shortened to fit `width` cells (None: no limit)."""
    text = Text()
    for level in range(9):
        text = Text(SEPARATOR).join(Text(part, style) for part, style in _parts(state, level))
        if width is None or text.cell_len <= width:
            return text
    text.truncate(width or 0, overflow="ellipsis")
    return text


def summary_text(state: WatchState) -> Text:
    """The header: tests by status (adding up to the tests that exist), then broken files."""
    text = Text()
    for _status, count, word, style in header_counts(state):
        text.append(f"{count} {word}  ", style)
    broken = import_errors_text(state)
    if broken:
        text.append(broken, ERROR_STYLE)
    text.rstrip()
    if text:
        return text
    return Text("no tests found" if state.started_runs else "no tests yet", "dim")


class StatusBar(Static):
    """One line at the bottom; redrawn to fit when the terminal is resized."""

    state: WatchState | None = None

    def show(self, state: WatchState) -> None:
        self.state = state
        self.update(status_text(state, self.size.width or None))

    def on_resize(self) -> None:
        if self.state is not None:
            self.show(self.state)
