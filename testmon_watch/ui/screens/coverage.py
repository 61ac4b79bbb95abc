"""The coverage view: a per-file table, and the source of a file with executed and missed lines."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from testmon_watch.ui.coverage_model import CoverageData, FileCoverage, load_coverage


class CoverageScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,v,q", "app.pop_screen", "Back"),
        Binding("tab", "focus_next", "Switch pane", show=False),
        Binding("j", "down", show=False),
        Binding("k", "up", show=False),
    ]

    def __init__(self, root: Path, data: CoverageData | None = None) -> None:
        super().__init__()
        self.root = root
        self.data = data
        self.file: FileCoverage | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="coverage-files-box"):
                yield Static("Coverage", id="coverage-title")
                yield DataTable(id="coverage-files", cursor_type="row", zebra_stripes=True)
            with Vertical(id="coverage-source-box"):
                yield DataTable(id="coverage-source", cursor_type="row", show_header=False)
                yield Static("", id="coverage-who")
        yield Footer()

    def on_mount(self) -> None:
        files = self.query_one("#coverage-files", DataTable)
        files.add_columns("file", "stmts", "miss", "cover")
        if self.data is None:
            self.query_one("#coverage-title", Static).update("Coverage: reading .testmondata…")
            self.load()
        else:
            self.show_data(self.data)

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        data = load_coverage(self.root)
        self.app.call_from_thread(self.show_data, data)

    def show_data(self, data: CoverageData) -> None:
        self.data = data
        files = self.query_one("#coverage-files", DataTable)
        files.clear()
        for path, cov in data.files.items():
            pct = cov.percent
            style = "green" if pct >= 90 else "yellow" if pct >= 60 else "red"
            files.add_row(
                path,
                str(len(cov.statements)),
                str(len(cov.missed)),
                Text(f"{pct:.0f}%", style),
                key=path,
            )
        statements, missed, percent = data.totals()
        title = f"Coverage: {percent:.0f}% of {statements} statements, {missed} missed"
        self.query_one("#coverage-title", Static).update(data.message or title)
        if data.files:
            self.show_file(next(iter(data.files)))
        files.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "coverage-files" and event.row_key.value:
            self.show_file(event.row_key.value)
        elif event.data_table.id == "coverage-source" and event.row_key.value:
            self.show_who(int(event.row_key.value))

    def show_file(self, path: str) -> None:
        if (
            self.data is None
            or path not in self.data.files
            or (self.file is not None and self.file.path == path)
        ):
            return
        self.file = cov = self.data.files[path]
        source = self.query_one("#coverage-source", DataTable)
        source.clear(columns=True)
        source.add_columns("line", "", "source")
        try:
            lines = (self.root / path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        for number, line in enumerate(lines, 1):
            if number in cov.tests_by_line:
                mark, style = "▌", "green"
            elif number in cov.statements:
                mark, style = "▌", "red"
            else:
                mark, style = " ", "dim"
            source.add_row(
                Text(str(number), "dim"), Text(mark, style), Text(line, style), key=str(number)
            )
        self.show_who(1)

    def show_who(self, line: int) -> None:
        who = self.query_one("#coverage-who", Static)
        if self.file is None:
            who.update("")
            return
        tests = sorted(self.file.tests_by_line.get(line, ()))
        if tests:
            shown = "\n".join(f"  {t}" for t in tests[:8])
            more = f"\n  … and {len(tests) - 8} more" if len(tests) > 8 else ""
            who.update(
                Text(f"{self.file.path}:{line} executed by {len(tests)} test(s):\n")
                + Text(shown + more, "cyan")
            )
        elif line in self.file.statements:
            who.update(Text(f"{self.file.path}:{line}: no test executed this line", "red"))
        else:
            who.update(Text(f"{self.file.path}:{line}: not a statement", "dim"))

    def action_down(self) -> None:
        focused = self.focused
        if isinstance(focused, DataTable):
            focused.action_cursor_down()

    def action_up(self) -> None:
        focused = self.focused
        if isinstance(focused, DataTable):
            focused.action_cursor_up()
