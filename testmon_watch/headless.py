"""Plain-text front end: one compact block per run, streamed to a terminal or a pipe.

Results are printed as they arrive; each run's closing line counts the states
of its tests in the session's run model (`RunDone.run`).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TextIO

from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.runs import ExitStatus, TestPhase, WorkerExit
from testmon_watch.session import ChangesSeen, RunDone, RunRequested, SessionEvent, SessionNotice
from testmon_watch.wire.worker_protocol import (
    Notice,
    RunStarted,
    TestFinished,
    WorkerReady,
    WorkerRecycling,
    trigger_text,
)
from testmon_watch.wording import (
    OUTCOME_MARKS,
    describe_cancelled,
    describe_changes,
    describe_collection_error,
    describe_not_run,
    describe_outcome_count,
    describe_reasons,
    describe_removed,
    describe_stopped,
)

COLOURS = {
    "green": "32",
    "red": "31",
    "yellow": "33",
    "dim": "2",
    "bold": "1",
    "cyan": "36",
}
OUTCOME_COLOUR = {
    Outcome.PASSED: "green",
    Outcome.FAILED: "red",
    Outcome.ERROR: "red",
    Outcome.CRASHED: "red",
    Outcome.TIMEOUT: "red",
    Outcome.XPASSED: "red",
    Outcome.SKIPPED: "yellow",
    Outcome.XFAILED: "yellow",
}
# The order of the counts on a run's closing line.
SUMMARY_ORDER = (
    Outcome.PASSED,
    Outcome.FAILED,
    Outcome.ERROR,
    Outcome.CRASHED,
    Outcome.TIMEOUT,
    Outcome.SKIPPED,
    Outcome.XFAILED,
    Outcome.XPASSED,
)
MAX_TRACEBACK_LINES = 60


def use_colour(stream: TextIO) -> bool:
    """Colour on a terminal, never under NO_COLOR or into a pipe."""
    if os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


class HeadlessPrinter:
    """Session listener that prints; thread-safe (events come from several threads)."""

    def __init__(
        self, stream: TextIO = sys.stdout, colour: bool | None = None, verbose: bool = False
    ) -> None:
        self.stream = stream
        self.colour = use_colour(stream) if colour is None else colour
        self.verbose = verbose
        self._lock = threading.Lock()
        self.last_exitstatus: ExitStatus | None = None

    def paint(self, text: str, colour: str) -> str:
        if not self.colour:
            return text
        return f"\x1b[{COLOURS[colour]}m{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: SessionEvent) -> None:
        with self._lock:
            self._print(event)

    def _print(self, event: SessionEvent) -> None:
        if isinstance(event, WorkerReady):
            self.line(
                self.paint(
                    f"worker ready: {event.python}, {event.preloaded} modules preloaded "
                    f"in {event.import_seconds:.2f} s",
                    "dim",
                )
            )
        elif isinstance(event, WorkerRecycling):
            self.line(self.paint(f"worker recycling: {event.reason}", "yellow"))
        elif isinstance(event, (Notice, SessionNotice)):
            self.line(self.paint(f"testmon-watch: {event.text}", "yellow"))
        elif isinstance(event, ChangesSeen):
            if event.queued:
                self.line(
                    self.paint(
                        f"changed during the run: {', '.join(event.paths[:3])}; runs next", "dim"
                    )
                )
        elif isinstance(event, RunRequested):
            pass
        elif isinstance(event, RunStarted):
            self._run_started(event)
        elif isinstance(event, TestFinished):
            self._test_finished(event)
        elif isinstance(event, RunDone):
            self._run_done(event)

    def _run_started(self, event: RunStarted) -> None:
        trigger = trigger_text(event.trigger)
        title = f" {trigger or 'run'} "
        self.line(self.paint(f"──{title}" + "─" * max(3, 60 - len(title)), "cyan"))
        if event.changed:
            self.line(f"changed: {describe_changes(event.changed)}")
        self.line(f"selected {len(event.selected)}, deselected {event.deselected}")
        if event.removed:
            self.line(self.paint(describe_removed(event.removed), "dim"))
        if self.verbose:
            for test in event.selected:
                self.line(self.paint(f"  {test.nodeid}: {describe_reasons(test.reasons)}", "dim"))
        # As pytest shows them: the collector's heading, then what it printed.
        for error in event.collection_errors:
            self.line(self.paint(describe_collection_error(error.nodeid), "red"))
            self._traceback(error.longrepr)

    def _test_finished(self, event: TestFinished) -> None:
        failing = event.outcome.failing
        if not failing and not self.verbose:
            return
        mark = self.paint(
            OUTCOME_MARKS.get(event.outcome, "?"), OUTCOME_COLOUR.get(event.outcome, "bold")
        )
        self.line(f"{mark} {event.nodeid} {self.paint(_ms(event.duration), 'dim')}")
        if failing and event.longrepr:
            self._traceback(event.longrepr)

    def _traceback(self, longrepr: str) -> None:
        lines = longrepr.splitlines()
        if len(lines) > MAX_TRACEBACK_LINES:
            lines = lines[-MAX_TRACEBACK_LINES:]
            lines.insert(0, "  ...")
        for text in lines:
            self.line("    " + text)

    def _run_done(self, event: RunDone) -> None:
        finished = event.finished
        self.last_exitstatus = finished.exitstatus
        run = event.run
        counts = run.counts()
        # Like pytest's summary line, a collector that failed counts as an error.
        errors = counts.get(Outcome.ERROR, 0) + len(run.collection_errors)
        if errors:
            counts[Outcome.ERROR] = errors
        parts = [
            self.paint(describe_outcome_count(outcome, counts[outcome]), OUTCOME_COLOUR[outcome])
            for outcome in SUMMARY_ORDER
            if counts.get(outcome)
        ]
        phases = run.phase_counts()
        if phases.get(TestPhase.NOT_RUN):
            parts.append(self.paint(describe_not_run(phases[TestPhase.NOT_RUN]), "yellow"))
        if phases.get(TestPhase.CANCELLED):
            parts.append(self.paint(describe_cancelled(phases[TestPhase.CANCELLED]), "yellow"))
        summary = ", ".join(parts) or "no tests ran"
        if isinstance(finished.exitstatus, WorkerExit):
            summary += self.paint(f" ({finished.exitstatus})", "red")
        if finished.stopped is not None and finished.stopped_after is not None:
            summary += self.paint(
                f" ({describe_stopped(finished.stopped, finished.stopped_after)})", "dim"
            )
        timing = event.timing
        self.line(
            f"{summary} · change→selection {_ms(timing.get('selection'))}"
            f" · first result {_ms(timing.get('first_result'))}"
            f" · done {_ms(timing.get('done'))}"
        )
