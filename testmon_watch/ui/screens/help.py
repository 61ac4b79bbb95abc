"""The help screen: every key and what it does, with the keys actually configured."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from testmon_watch.ui.config import ACTIONS, UiConfig
from testmon_watch.ui.display import LEGEND, MARKS, label

# Every mark a test row can show, and the notes a row can carry.
MARKS_LEGEND = "  ".join(f"{MARKS[status]} {label(status)}" for status in LEGEND)
ROW_NOTES = (
    "flaky? its outcome changed with no change to what it uses;  E on a file: it failed to import"
)
PANES = (
    ("Results", "tests by file and class, failures first"),
    ("Marks", MARKS_LEGEND),
    ("", ROW_NOTES),
    ("Detail", "the test under the cursor: why it ran, traceback, captured output, history"),
    ("Status", "watched files, last trigger, selection, time saved, latency, worker"),
    ("Coverage", "per-file table and source with executed/missed lines and who ran them"),
)
EXTRA_KEYS = (
    ("j / k, ↑ / ↓", "move"),
    ("escape", "clear the filter / close"),
    ("ctrl+p", "command palette"),
)


def display_key(keys: str) -> str:
    names = {
        "slash": "/",
        "question_mark": "?",
        "comma": ",",
        "full_stop": ".",
        "space": "space",
        "enter": "enter",
    }
    return " / ".join(names.get(k, k) for k in keys.split(","))


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "app.pop_screen", "Close"),
    ]

    def __init__(self, config: UiConfig) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        keys = Table(title="Keys", show_header=False, box=None, padding=(0, 2))
        for action in ACTIONS:
            keys.add_row(display_key(self.config.keys_for(action)), action.description)
        for key, what in EXTRA_KEYS:
            keys.add_row(key, what)
        panes = Table(title="Panes", show_header=False, box=None, padding=(0, 2))
        for name, what in PANES:
            panes.add_row(name, what)
        with VerticalScroll(id="help"):
            yield Static(keys)
            yield Static(panes)
            yield Static(
                'Keys are configured in [tool.testmon-watch.keys], e.g. run = "r,enter".',
                classes="dim",
            )
