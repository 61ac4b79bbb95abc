"""Runs the coverage job in a child process for a front end and reads its one answer.

The front end never imports coverage.py, `testmon_watch.measure` or the data
file's reader: the job (`python -m testmon_watch.measure.coverage_job`) does
that work in a process of its own, and this module only starts it, waits for
it (call `run` from a thread, never from the event loop), can stop it, and
turns whatever happens into an `Answer`: a child that crashes, is killed or
prints something else becomes a `Problem` of kind CRASHED with one line of
detail, never a traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from testmon_watch.core.defaults import DEFAULT_ENVIRONMENT
from testmon_watch.wire.coverage_report import (
    Answer,
    JobMode,
    JobRequest,
    Problem,
    ProblemKind,
    ReportFormatError,
    decode,
    job_arguments,
)


class CoverageJob:
    """One run of the coverage job for the project at `root`; `run()` once, `cancel()` any time."""

    def __init__(
        self,
        root: Path,
        mode: JobMode,
        environment: str = DEFAULT_ENVIRONMENT,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
    ) -> None:
        self.request = JobRequest(mode, Path(root), environment)
        self.python = python
        self.env = env  # None: this process's environment ($TESTMON_DATAFILE included)
        self.started = threading.Event()  # set once the child process exists
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def returncode(self) -> int | None:
        """The child's exit status once it ended (negative: the signal that ended it)."""
        return self._proc.returncode if self._proc is not None else None

    @property
    def argv(self) -> list[str]:
        return [self.python, *job_arguments(self.request)]

    def run(self) -> Answer:
        """Start the job, wait for it, and return its answer (blocks: call it from a thread)."""
        with self._lock:
            if self._cancelled.is_set():
                return Problem(ProblemKind.CRASHED, "cancelled")
            try:
                # A session of its own: a Ctrl-C in the terminal reaches the front end
                # only, and cancel() stops the job whatever it started.
                self._proc = proc = subprocess.Popen(
                    self.argv,
                    cwd=self.request.root,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=self.env,
                    start_new_session=True,
                )
            except OSError as exc:
                return Problem(ProblemKind.CRASHED, f"cannot start {self.python}: {exc}")
            self.started.set()
        out, err = proc.communicate()
        if self._cancelled.is_set():
            return Problem(ProblemKind.CRASHED, "cancelled")
        answer_line = out.decode("utf-8", "replace").strip().rpartition("\n")[2]
        if answer_line:
            try:
                return decode(answer_line)
            except ReportFormatError as exc:
                if proc.returncode == 0:
                    return Problem(ProblemKind.CRASHED, str(exc))
        return Problem(ProblemKind.CRASHED, _crash_detail(proc.returncode, err))

    def cancel(self) -> None:
        """Stop the job if it runs; `run` then returns a CRASHED problem saying "cancelled"."""
        with self._lock:
            self._cancelled.set()
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            if hasattr(os, "killpg"):
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except (ProcessLookupError, PermissionError):
            pass  # it ended meanwhile


def _crash_detail(returncode: int, stderr: bytes) -> str:
    """One line: how the job ended, and the last line it wrote to stderr (the error)."""
    if returncode < 0:
        try:
            ended = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            ended = f"killed by signal {-returncode}"
    else:
        ended = f"exit status {returncode}"
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    last = next((line for line in reversed(lines) if line), "")
    return f"{ended}: {last}" if last else ended
