"""The pytest plugin inside a worker child: turns pytest's hooks into protocol events.

Each event is written to the event pipe with one `os.write` as soon as it happens,
with no buffering: the client shows a result within milliseconds of the test's
teardown. Selection reasons come from the `pytest --testmon` session plugin,
read through `pytest_plugin.selection_view.selection_of`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testmon_watch.core.outcomes import Outcome, outcome_of
from testmon_watch.core.reasons import Reason, ReasonKind
from testmon_watch.core.runs import ExitStatus
from testmon_watch.pytest_plugin.selection_view import SelectionView, selection_of
from testmon_watch.wire.worker_protocol import (
    CollectionError,
    Message,
    Notice,
    RunFinished,
    RunStarted,
    SelectedTest,
    TestFinished,
    TestStarted,
    truncate,
)
from testmon_watch.worker.preload import write_preload_list


def _longrepr_of(reports: list[pytest.TestReport], outcome: Outcome) -> str:
    for report in reports:
        if report.failed:
            return truncate(report.longreprtext)
    for report in reports:
        if report.skipped:
            if hasattr(report, "wasxfail"):
                return f"xfail: {report.wasxfail}" if report.wasxfail else "xfail"
            longrepr = report.longrepr
            if isinstance(longrepr, tuple) and len(longrepr) == 3:
                return str(longrepr[2])  # (path, lineno, "Skipped: reason")
            return truncate(report.longreprtext)
    if outcome is Outcome.XPASSED:
        return next((f"xpass: {r.wasxfail}" for r in reports if hasattr(r, "wasxfail")), "")
    return ""


class WriteRecorder:
    """Project files this process opens for writing (snapshots, caches the tests write).

    Reported with run_finished so the watcher does not take the tests' own
    output for an edit and start a run of its own: no rerun loops.
    """

    def __init__(self, root: Path) -> None:
        self.prefix = str(root.resolve()) + os.sep
        self.written: set[str] = set()
        sys.addaudithook(self._on_audit)

    def _on_audit(self, event: str, args: tuple[Any, ...]) -> None:
        # "open" carries (path, mode, flags): mode is a str for open(), None for os.open().
        if event != "open" or len(args) < 3 or not isinstance(args[0], str):
            return
        path, mode, flags = args[0], args[1], args[2]
        if isinstance(mode, str):
            writing = any(c in mode for c in "wax+")
        else:
            writing = isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR))
        if not writing:
            return
        absolute = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
        if absolute.startswith(self.prefix):
            self.written.add(absolute[len(self.prefix) :].replace(os.sep, "/"))

    def paths(self) -> list[str]:
        return sorted(self.written)


def looked_in(config: pytest.Config) -> list[str]:
    """Where pytest looked for tests, relative to the rootdir: its arguments as given,
    else the ini's testpaths, else the folder it ran in (pytest's own rule)."""
    root = config.rootpath
    found = []
    for arg in config.args:
        path = Path(str(arg).split("::", 1)[0])
        if not path.is_absolute():
            path = config.invocation_params.dir / path
        try:
            text = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            text = str(arg)
        found.append("." if text in ("", ".") else text)
    return list(dict.fromkeys(found)) or ["."]


class EventStreamer:
    """Streams run_started, test_started, test_finished and run_finished for one run."""

    def __init__(
        self,
        run_id: str,
        trigger: Any,
        send: Callable[[Message], None],
        t0: float,
        root: Path,
        preload_path: Path | None,
        only_failed: bool = False,
        default_reason: Reason | None = None,
    ) -> None:
        self.run_id = run_id
        self.trigger = trigger
        self.send = send
        self.t0 = t0  # when the run command reached the server (time.time())
        self.child_start = time.time()
        self.modules_at_start = set(sys.modules)  # the server's imports: none of the project
        self.root = root
        self.preload_path = preload_path
        self.only_failed = only_failed
        self.default_reason = default_reason
        self.session: pytest.Session | None = None
        self.reports: dict[str, list[pytest.TestReport]] = {}
        # Collectors that failed, in pytest's order: sent with run_started.
        self.collect_errors: dict[str, CollectionError] = {}
        self.counts: dict[Outcome, int] = {}
        self.deselected = 0
        self.deselected_ids: set[str] = set()
        self.collect_done: float | None = None
        self.first_result: float | None = None
        self.finished = False
        self.writes = WriteRecorder(root)
        self.run_started_sent = False

    def start_run(self, run_id: str, trigger: Any, t0: float) -> None:
        """A standby child was released: this is the run it now belongs to."""
        self.run_id = run_id
        self.trigger = trigger
        self.t0 = t0
        self.child_start = time.time()

    # -- collection -------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if not self.only_failed:
            return
        # Runs after testmon's selection: keep the tests it selected because they failed.
        selection = selection_of(config)
        reasons = selection.selected if selection is not None else {}
        keep = [
            i for i in items if any(r.kind is ReasonKind.FAILED for r in reasons.get(i.nodeid, ()))
        ]
        drop = [i for i in items if i not in keep]
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)
        self.deselected_ids.update(i.nodeid for i in items)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and report.nodeid not in self.collect_errors:
            # Sent as what it is, a collector that failed, never as a "test": its
            # file shows the error, and a broken import never looks like "no tests ran".
            self.collect_errors[report.nodeid] = CollectionError(
                nodeid=report.nodeid,
                path=report.nodeid.split("::", 1)[0],  # node ids are relative to the rootdir
                longrepr=truncate(report.longreprtext),
            )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collect_done = time.time()
        selection = selection_of(session.config)
        for message in selection.messages if selection is not None else ():
            self.send(Notice(text=message))  # front ends say who speaks
        reasons_by_id = selection.selected if selection is not None else {}
        selected = []
        for item in session.items:
            reasons = list(reasons_by_id.get(item.nodeid, ()))
            if not reasons and self.default_reason is not None:
                reasons = [self.default_reason]
            selected.append(SelectedTest(nodeid=item.nodeid, reasons=reasons))
        changed = list(selection.changed) if selection is not None else []
        errors = list(self.collect_errors.values())
        self.send(
            RunStarted(
                run_id=self.run_id,
                trigger=self.trigger,
                changed=changed,
                selected=selected,
                deselected=self._deselected(selection, selected, errors),
                started_at=self.t0,
                collection_errors=errors,
                removed=list(selection.removed) if selection is not None else [],
                looked_in=looked_in(session.config),
            )
        )
        self.run_started_sent = True

    def _deselected(
        self,
        selection: SelectionView | None,
        selected: list[SelectedTest],
        errors: list[CollectionError],
    ) -> int:
        """Tests that exist and this run does not run, whatever the mode.

        They are the tests the data file knows, those collected and deselected
        and those selected; minus the ones selected and those of a collector that
        failed (they exist, but their fate is the error, not deselection).
        """
        if selection is None:
            return self.deselected
        ids = {s.nodeid for s in selected}
        failed = tuple(e.nodeid for e in errors)
        below_failed = tuple(f"{n}::" for n in failed)
        existing = selection.known | self.deselected_ids
        return sum(
            1
            for nodeid in existing
            if nodeid not in ids and nodeid not in failed and not nodeid.startswith(below_failed)
        )

    # -- tests --------------------------------------------------------------------------

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.reports[nodeid] = []
        self.send(TestStarted(run_id=self.run_id, nodeid=nodeid))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.setdefault(report.nodeid, []).append(report)

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        reports = self.reports.pop(nodeid, [])
        path, lineno, name = location
        # pytest counts lines from 0; editors and tracebacks from 1.
        self._finish(
            nodeid,
            reports,
            outcome_of(reports),
            [path, None if lineno is None else lineno + 1, name],
        )

    def _finish(
        self, nodeid: str, reports: list[Any], outcome: Outcome, location: list[Any] | None
    ) -> None:
        sections = [
            [title, truncate(content)]
            for title, content in (reports[-1].sections if reports else [])
        ]
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if self.first_result is None:
            self.first_result = time.time()
        self.send(
            TestFinished(
                run_id=self.run_id,
                nodeid=nodeid,
                outcome=outcome,
                duration=sum(getattr(r, "duration", 0.0) for r in reports),
                longrepr=_longrepr_of(reports, outcome),
                sections=sections,
                location=location,
            )
        )

    # -- the end ----------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # After pytest_sessionfinish, so testmon has saved its results: the next run,
        # started as soon as the client sees run_finished, reads them.
        if self.preload_path is not None:
            write_preload_list(self.preload_path, self.root, self.modules_at_start)
        status = self.session.exitstatus if self.session is not None else 0
        self.finish(int(status))

    def finish(self, exitstatus: ExitStatus) -> None:
        """Send run_finished once (also used when pytest ends before configuring us)."""
        if self.finished:
            return
        self.finished = True
        now = time.time()

        def since(t: float | None) -> float | None:
            return None if t is None else round(t - self.t0, 6)

        timing = {
            "spawn": since(self.child_start),
            "collect": since(self.collect_done),
            "first_result": since(self.first_result),
            "total": since(now),
        }
        self.send(
            RunFinished(
                run_id=self.run_id,
                exitstatus=exitstatus,
                counts=dict(self.counts),
                timing=timing,
                crashed=None,
                written=self.writes.paths(),
            )
        )
