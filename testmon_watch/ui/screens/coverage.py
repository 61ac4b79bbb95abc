"""The coverage view: a per-file table, and the source of a file with executed and missed lines.

Its numbers come from the coverage job, a child process (`coverage_client.py`)
started from a thread worker when the screen opens and stopped if it closes
first; a problem is shown as the one-line title.
"""

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

from testmon_watch.coverage_client import CoverageJob
from testmon_watch.ui.coverage_model import (
    LOADING,
    UNEXPECTED,
    describe_problem,
    executed_by,
    line_style,
    percent_style,
    title,
)
from testmon_watch.wire.coverage_report import (
    Answer,
    CoverageReport,
    FileCoverage,
    JobMode,
    Problem,
)


class CoverageScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,v,q", "app.pop_screen", "Back"),
        Binding("tab", "app.focus_next", "Switch pane", show=False),
        Binding("shift+tab", "app.focus_previous", "Switch pane", show=False),
        Binding("j", "down", show=False),
        Binding("k", "up", show=False),
    ]

    def __init__(
        self, root: Path, data: CoverageReport | None = None, job: CoverageJob | None = None
    ) -> None:
        """`data` given: show it; else run `job` (default: the project's report job)."""
        super().__init__()
        self.root = root
        self.data = data
        self.problem: Problem | None = None
        self.job = job if job is not None else CoverageJob(root, JobMode.REPORT)
        self.file: FileCoverage | None = None
        self.by_path: dict[str, FileCoverage] = {}

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
            self.query_one("#coverage-title", Static).update(LOADING)
            self.load()
        else:
            self.show_data(self.data)

    def on_unmount(self) -> None:
        self.job.cancel()  # closed before the answer came: nobody needs it

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        answer = self.job.run()
        if not self.job.cancelled:
            self.app.call_from_thread(self.show_answer, answer)

    def show_answer(self, answer: Answer) -> None:
        if not self.is_mounted:
            return  # closed while the answer was on its way
        if isinstance(answer, CoverageReport):
            self.show_data(answer)
        elif isinstance(answer, Problem):
            self.show_problem(answer)
        else:  # an export's answer: not what this job was asked for
            self.query_one("#coverage-title", Static).update(UNEXPECTED)

    def show_problem(self, problem: Problem) -> None:
        self.problem = problem
        self.query_one("#coverage-title", Static).update(Text(describe_problem(problem), "red"))

    def show_data(self, data: CoverageReport) -> None:
        self.data = data
        self.by_path = {file.path: file for file in data.files}
        files = self.query_one("#coverage-files", DataTable)
        files.clear()
        for cov in data.files:
            files.add_row(
                cov.path,
                str(len(cov.statements)),
                str(len(cov.missing)),
                Text(f"{cov.percent}%", percent_style(cov)),
                key=cov.path,
            )
        self.query_one("#coverage-title", Static).update(title(data))
        if data.files:
            self.show_file(data.files[0].path)
        files.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "coverage-files" and event.row_key.value:
            self.show_file(event.row_key.value)
        elif event.data_table.id == "coverage-source" and event.row_key.value:
            self.show_who(int(event.row_key.value))

    def show_file(self, path: str) -> None:
        if (
            self.data is None
            or path not in self.by_path
            or (self.file is not None and self.file.path == path)
        ):
            return
        self.file = cov = self.by_path[path]
        source = self.query_one("#coverage-source", DataTable)
        source.clear(columns=True)
        source.add_columns("line", "", "source")
        try:
            lines = (self.root / path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        for number, line in enumerate(lines, 1):
            style = line_style(cov, number)
            mark = " " if style == "dim" else "▌"
            source.add_row(
                Text(str(number), "dim"), Text(mark, style), Text(line, style), key=str(number)
            )
        self.show_who(1)

    def show_who(self, line: int) -> None:
        who = self.query_one("#coverage-who", Static)
        if self.file is None:
            who.update("")
            return
        tests = executed_by(self.file, line)
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
