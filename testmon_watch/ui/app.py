"""The Textual app: results tree, detail pane, status bar and keys over a `WatchSession`.

The app drives the loop only through the session's methods (run, cancel, pause,
resume, stop) and learns about the world only from session events, which arrive
through `EventPump` as coalesced `SessionEvents` batches and fold into `WatchState`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.actions import SkipAction
from textual.app import App, ComposeResult, SuspendNotSupported, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Input, ProgressBar, Static, Tree

from testmon_watch.config import ConfigError, WatchConfig
from testmon_watch.core.outcomes import RunMode
from testmon_watch.coverage_client import CoverageJob
from testmon_watch.session import KnownTest, Listener, SessionNotice, WatchSession
from testmon_watch.ui.config import ACTIONS, UiConfig, load_ui_config
from testmon_watch.ui.coverage_model import describe_export, describe_problem
from testmon_watch.ui.editor import editor_command, failure_location
from testmon_watch.ui.messages import INTERVAL, EventPump, EventsPending, SessionEvents
from testmon_watch.ui.notes import FlipRow, notices_text, run_toast
from testmon_watch.ui.screens.coverage import CoverageScreen
from testmon_watch.ui.screens.help import HelpScreen
from testmon_watch.ui.state import RunRecord, WatchState
from testmon_watch.ui.widgets.detail import (
    DetailPane,
    file_renderable,
    no_tests_renderable,
    run_renderable,
    test_renderable,
)
from testmon_watch.ui.widgets.results import ResultsTree
from testmon_watch.ui.widgets.status import StatusBar, summary_text
from testmon_watch.wire.coverage_report import Exported, JobMode, Problem
from testmon_watch.wire.worker_protocol import Notice, RunFinished

EXIT_USAGE = 4
SessionFactory = Callable[[Listener], WatchSession]
Severity = Literal["information", "warning", "error"]


# Keys that move the focus to the filter box are priority bindings: the app handles
# them before it forwards later keys to the focused widget, so text typed in one
# burst with them ("/zer", a paste) lands in the box, not in the tree.
FOCUS_MOVING_ACTIONS = ("filter", "filter_file")


def _bindings() -> list[BindingType]:
    bindings: list[BindingType] = [
        Binding(
            a.keys,
            a.action,
            a.description,
            show=a.show,
            id=a.name,
            priority=a.name in FOCUS_MOVING_ACTIONS,
        )
        for a in ACTIONS
    ]
    bindings.append(Binding("escape", "clear_filter", "Clear filter", show=False))
    return bindings


class TestmonWatchApp(App[int]):
    """Live results of the watch loop, driven from the keyboard."""

    __test__ = False
    CSS_PATH = "app.tcss"
    TITLE = "testmon-watch"
    BINDINGS: ClassVar[list[BindingType]] = _bindings()

    def __init__(
        self,
        root: Path,
        make_session: SessionFactory,
        ui_config: UiConfig | None = None,
        run_on_start: bool = True,
        start_session: bool = True,
        load_known: bool = True,
    ) -> None:
        super().__init__()
        self.root = root
        self.ui_config = ui_config or UiConfig()
        self.run_on_start = run_on_start
        self.start_session = start_session
        self.load_known = load_known
        self.state = WatchState()
        self.pump = EventPump()
        self.session = make_session(self.pump.listener)
        self.name_filter = ""
        self.file_filter = ""
        self.filter_kind = "name"
        self.history_index: int | None = None
        self._last_flush = 0.0
        self._flush_timer: Any = None
        self._tree_version = -1
        self._session_started = False
        self.flushes = 0  # batches applied (a flood of events must give few of them)
        self.opened: list[list[str]] = []  # editor commands run (for the status line/tests)
        self.pending_notices: list[str] = []  # notices waiting for the run's one toast
        self.toasts: list[str] = []  # every toast shown (or, with toasts off, put in the bar)
        if self.ui_config.keys:
            self.set_keymap(dict(self.ui_config.keys))

    def check_theme(self) -> None:
        """ConfigError naming `theme` when it is not a Textual theme."""
        theme = self.ui_config.theme
        if theme is not None:
            if theme not in self.available_themes:
                known = ", ".join(sorted(self.available_themes))
                raise ConfigError(
                    f"[tool.testmon-watch] theme: unknown theme {theme!r} (known: {known})"
                )
            self.theme = theme

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield Static(summary_text(self.state), id="summary")
            yield ProgressBar(id="progress", show_eta=False)
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield ResultsTree(id="results")
                yield Input(placeholder="filter by name", id="filter")
            yield DetailPane(id="detail")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.check_theme()
        self.query_one("#progress", ProgressBar).display = False
        self.query_one("#filter", Input).display = False
        self.query_one(ResultsTree).focus()
        self.refresh_all(rebuild=True)
        self.pump.attach(self)
        if self.load_known:
            self.load_known_tests()
        if self.start_session:
            self.start_the_session()

    @work(thread=True, exit_on_error=False)
    def load_known_tests(self) -> None:
        known = self.session.known_tests()
        if known:
            self.call_from_thread(self._known_loaded, known)

    def _known_loaded(self, known: list[KnownTest]) -> None:
        self.state.load_known(known)
        self.refresh_all()

    @work(thread=True, exit_on_error=False)
    def start_the_session(self) -> None:
        self._session_started = True
        self.session.start(run_on_start=self.run_on_start)

    def on_unmount(self) -> None:
        self.stop_session()

    def stop_session(self) -> None:
        """Stop the watcher and the worker (and its children); safe to call twice."""
        try:
            self.session.stop()
        except Exception:  # noqa: BLE001 - quitting must not fail on a half-started worker
            pass

    # -- session events ----------------------------------------------------------------------

    def on_events_pending(self, message: EventsPending) -> None:
        wait = self._last_flush + INTERVAL - time.monotonic()
        if wait > 0:
            if self._flush_timer is None:
                self._flush_timer = self.set_timer(wait, self.flush_events)
        else:
            self.flush_events()

    def flush_events(self) -> None:
        self._flush_timer = None
        self._last_flush = time.monotonic()
        self.flushes += 1
        self.apply_events(self.pump.drain())

    def on_session_events(self, message: SessionEvents) -> None:
        self.apply_events(message)

    def apply_events(self, batch: SessionEvents) -> None:
        ended: list[RunRecord] = []
        touched: set[str] = set()
        for event in batch.events:
            self.state.apply(event)
            nodeid = getattr(event, "nodeid", None)
            if isinstance(nodeid, str):
                touched.add(nodeid)
            if isinstance(event, (Notice, SessionNotice)):
                self.pending_notices.append(event.text)
            elif isinstance(event, RunFinished):
                ended += [r for r in self.state.runs if r.run_id == event.run_id]
        if self.pending_notices and self.state.running:
            # Said in the run's one toast when it ends; meanwhile in the status bar.
            self.state.message = notices_text(self.pending_notices)
        self.refresh_all(touched=touched)
        if ended or (self.pending_notices and not self.state.running):
            self.toast_run([flip for record in ended for flip in record.flipped])

    def toast_run(self, flips: list[FlipRow]) -> None:
        """The one toast of a run (or of notices between runs): flips, then notices."""
        notices, self.pending_notices = self.pending_notices, []
        self.state.message = ""
        text = run_toast(flips, notices)
        if text:
            broke = any(new.failing for _nodeid, _old, new in flips)
            self.toast(text, "error" if broke else "warning" if not flips else "information")
        if flips and self.ui_config.bell:
            self.bell()

    def toast(self, text: str, severity: Severity = "information") -> None:
        """Say `text`: one toast on screen at a time, or the status bar when toasts are off."""
        self.toasts.append(text)
        if not self.ui_config.notifications:
            self.state.message = text.replace("\n", "; ")
            self.query_one(StatusBar).show(self.state)
            return
        self.clear_notifications()
        self.notify(text, title="testmon-watch", severity=severity)

    # -- redraws -------------------------------------------------------------------------------

    def refresh_all(self, rebuild: bool = False, touched: Iterable[str] = ()) -> None:
        try:
            tree = self.query_one(ResultsTree)
        except NoMatches:  # quitting: the widgets are gone while the session's last events land
            return
        if rebuild or self.state.version != self._tree_version:
            self._tree_version = self.state.version
            tree.rebuild(self.state, self.name_filter, self.file_filter)
        else:
            tree.update_labels(self.state, set(touched))
        self.state.watched_files = self.session.watched_files
        self.query_one(StatusBar).show(self.state)
        self.query_one("#summary", Static).update(summary_text(self.state))
        progress = self.query_one("#progress", ProgressBar)
        progress.display = self.state.running
        if self.state.running:
            progress.update(
                total=max(self.state.progress_total, 1), progress=self.state.progress_done
            )
        if self.history_index is None:
            self.show_detail()

    def show_detail(self) -> None:
        """The row under the cursor: a test, a file (with its import error), or a hint."""
        tree = self.query_one(ResultsTree)
        pane = self.query_one(DetailPane)
        data = tree.cursor_data
        test = self.state.tests.get(data) if data in tree.leaves else None
        if test is not None:
            pane.show(test_renderable(test, self.state.in_error(test.nodeid)))
        elif data is not None and data.startswith("file:"):
            path = data.split(":", 1)[1]
            tests = sum(1 for n in tree.shown if self.state.tests[n].file == path)
            pane.show(file_renderable(path, self.state.error_files.get(path, []), tests))
        elif self.state.tests or self.state.collection_errors:
            pane.show(Text("Select a test to see its result and why it ran.", "dim"))
        else:
            pane.show(no_tests_renderable(self.state.looked_in, self.state.started_runs > 0))

    @on(Tree.NodeHighlighted)
    def node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        self.history_index = None
        self.show_detail()

    # -- filter ----------------------------------------------------------------------------------

    def open_filter(self, kind: str) -> None:
        if isinstance(self.focused, Input) or len(self.screen_stack) > 1:
            # Typing in a box, or another screen is open: the key is theirs (the
            # binding is a priority one, so it would fire here first).
            raise SkipAction
        self.filter_kind = kind
        box = self.query_one("#filter", Input)
        box.placeholder = "filter by name" if kind == "name" else "filter by file"
        box.value = self.name_filter if kind == "name" else self.file_filter
        box.display = True
        self.set_focus(box)

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        if self.filter_kind == "name":
            self.name_filter = event.value
        else:
            self.file_filter = event.value
        self.refresh_all(rebuild=True)

    @on(Input.Submitted, "#filter")
    def filter_submitted(self, event: Input.Submitted) -> None:
        self.query_one(ResultsTree).focus()
        if not event.value:
            event.input.display = False

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        self.name_filter = self.file_filter = ""
        box.value = ""
        box.display = False
        self.query_one(ResultsTree).focus()
        self.refresh_all(rebuild=True)

    def action_filter_name(self) -> None:
        self.open_filter("name")

    def action_filter_file(self) -> None:
        self.open_filter("file")

    # -- runs --------------------------------------------------------------------------------------

    def action_run_affected(self) -> None:
        self.session.run(RunMode.AFFECTED, trigger="key: run affected")

    def action_run_all(self) -> None:
        self.session.run(RunMode.ALL, trigger="key: run all")

    def action_run_failed(self) -> None:
        failing = self.state.failures()
        if not failing:
            self.toast("no failing tests")
            return
        self.session.run(RunMode.FAILED, nodeids=failing, trigger="key: run failed")

    def action_run_test(self) -> None:
        node = self.query_one(ResultsTree).cursor_node
        if node is None or node.data is None:
            self.toast("no test under the cursor", "warning")
            return
        target = (
            node.data.split(":", 1)[1] if node.data.startswith(("file:", "class:")) else node.data
        )
        self.session.run(RunMode.NODEIDS, nodeids=[target], trigger=f"key: run {target}")

    def action_cancel(self) -> None:
        self.session.cancel()
        self.toast("cancelling the run" if self.state.running else "no run to cancel")

    def action_toggle_pause(self) -> None:
        if self.state.paused:
            self.session.resume()
        else:
            self.session.pause()
        self.state.paused = not self.state.paused
        self.toast("watching paused" if self.state.paused else "watching resumed")
        self.refresh_all()

    # -- navigation ------------------------------------------------------------------------------

    def _jump_failure(self, step: int) -> None:
        tree = self.query_one(ResultsTree)
        failing = [n for n in tree.shown if self.state.tests[n].shows_failure]
        if not failing:
            self.toast("no failures")
            return
        current = tree.cursor_test
        order = tree.shown
        here = order.index(current) if current in order else -1
        if step > 0:
            after = [n for n in failing if order.index(n) > here]
            target = after[0] if after else failing[0]
        else:
            before = [n for n in failing if here == -1 or order.index(n) < here]
            target = before[-1] if before else failing[-1]
        tree.move_to(target)
        tree.focus()

    def action_next_failure(self) -> None:
        self._jump_failure(1)

    def action_previous_failure(self) -> None:
        self._jump_failure(-1)

    def action_history(self, step: int) -> None:
        runs = self.state.runs
        if not runs:
            self.toast("no runs yet")
            return
        index = len(runs) - 1 if self.history_index is None else self.history_index + step
        index = max(
            0,
            min(
                len(runs) - 1,
                index if self.history_index is not None or step < 0 else len(runs) - 1,
            ),
        )
        self.history_index = index
        self.query_one(DetailPane).show(run_renderable(runs[index], index, len(runs)))

    # -- screens and tools --------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.ui_config))

    def action_coverage(self) -> None:
        if not isinstance(self.screen, CoverageScreen):
            self.push_screen(CoverageScreen(self.root))

    def action_export_coverage(self) -> None:
        self.export_coverage(CoverageJob(self.root, JobMode.EXPORT))

    @work(thread=True, exclusive=True, group="export")
    def export_coverage(self, job: CoverageJob) -> None:
        """Write `.coverage` in the coverage job (a child process) and say how it went."""
        answer = job.run()
        if isinstance(answer, Exported):
            self.call_from_thread(self.toast, describe_export(answer, self.root))
        elif isinstance(answer, Problem):
            text = f"coverage export: {describe_problem(answer)}"
            self.call_from_thread(self.toast, text, "error")

    def action_open_editor(self) -> None:
        nodeid = self.query_one(ResultsTree).cursor_test
        where = failure_location(self.state.tests.get(nodeid), self.root) if nodeid else None
        if where is None:
            self.toast("no test under the cursor", "warning")
            return
        command = [c for c in editor_command(self.ui_config.editor, *where) if c]
        self.opened.append(command)
        try:
            with self.suspend():
                self._run_editor(command)
        except SuspendNotSupported:
            self._run_editor(command)  # no terminal to hand over (tests, web)

    def _run_editor(self, command: list[str]) -> None:
        try:
            subprocess.run(command, cwd=self.root, check=False)
        except OSError as exc:
            self.toast(f"cannot run {command[0]}: {exc}", "error")

    # -- command palette ---------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for action in ACTIONS:
            if action.name == "quit":
                continue
            keys = self.ui_config.keys_for(action)
            yield SystemCommand(
                action.description,
                f"key: {keys}",
                lambda a=action.action: self.run_palette_action(a),
            )

    def run_palette_action(self, action: str) -> None:
        self.call_later(self.run_action, action)


def run_app(
    root: Path, config: WatchConfig, pytest_args: Sequence[str], options: argparse.Namespace
) -> int:
    """Run the terminal app until `q`; the session is stopped on the way out."""
    try:
        ui_config = load_ui_config(root)
    except ConfigError as exc:
        print(f"testmon-watch: {exc}", file=sys.stderr)
        return EXIT_USAGE

    def make_session(listener: Listener) -> WatchSession:
        return WatchSession(
            root,
            listener,
            config,
            pytest_args=pytest_args,
            on_change=config.on_change,
            timeout=config.timeout,
        )

    app = TestmonWatchApp(root, make_session, ui_config, run_on_start=config.run_on_start)
    try:
        app.check_theme()
    except ConfigError as exc:
        app.stop_session()
        print(f"testmon-watch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = app.run()
    finally:
        app.stop_session()
    return result or 0
