"""The state one `pytest --testmon` session's planning and results share, in one typed object.

Planning (pytest_plugin/planning.py) opens the data file, selects and
collects; results (pytest_plugin/results.py) store what ran and report. Both
read and write this object, and only this; `selection_view.selection_of`
shows part of it to the warm worker. It is kept in `config.stash[STATE_KEY]`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from testmon_watch.core.db import Database, DatabaseError
from testmon_watch.core.reasons import Reason
from testmon_watch.core.store import RunStore
from testmon_watch.measure.parse_helper import ParseHelper
from testmon_watch.measure.recorder import Recorder
from testmon_watch.pytest_plugin.names import GATE_PLUGIN
from testmon_watch.pytest_plugin.options import TestmonOptions
from testmon_watch.pytest_plugin.recording import RecordingHooks
from testmon_watch.pytest_plugin.selecting import SelectionPlan


class Gate(Protocol):
    """The warm worker's standby gate (worker.standby.RunGate): selection waits for it."""

    def wait(self) -> None: ...

    def work_ahead(self, job: Callable[[], None]) -> None:
        """Have `job` run while the gate waits, before its release (not if already released)."""

    # When the release arrived (time.time_ns()): the run's start. None before it.
    released_ns: int | None


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_xdist_controller(config: pytest.Config) -> bool:
    return not is_xdist_worker(config) and getattr(config.option, "dist", "no") != "no"


@dataclass(eq=False)
class SessionState:
    """One session's data file, selection and recording, as planning and results see them."""

    config: pytest.Config
    options: TestmonOptions
    recorder: Recorder | None  # None: nothing is recorded in this process
    worker: bool  # an xdist worker: reads the data file, stores nothing
    controller: bool  # an xdist controller: its workers record, it stores
    gate: Gate | None  # selection waits until the warm worker releases it
    started_at: float
    started_ns: int
    messages: list[str] = field(default_factory=list)  # for the header, the app, the summary
    db: Database | None = None
    plan: SelectionPlan | None = None
    store: RunStore | None = None  # None: nothing is saved (xdist worker, or gave up)
    helper: ParseHelper | None = None  # parses new files ahead for the store
    hooks: RecordingHooks | None = None
    selected: dict[str, list[Reason]] = field(default_factory=dict)  # nodeid -> why it runs
    deselected_count: int = 0  # deselected, with the tests of files not even collected
    # Of those: collected, then deselected (what pytest's own summary counts) ...
    deselected_collected: int = 0
    # ... and known tests not even collected (their file skipped, or narrowed away).
    skipped_tests: int = 0
    skipped_files: set[str] = field(default_factory=set)  # known test files not collected
    # Known test files collected in part: file -> the name paths collected
    # (SelectionPlan.parts_to_collect).
    narrowed_files: dict[str, frozenset[tuple[str, ...]]] = field(default_factory=dict)
    files_collected_in_part: int = 0  # of those, the files where a known test was left out
    removed: list[str] = field(default_factory=list)  # known tests that no longer exist
    # Collectors that failed (node ids): their known tests are not "deselected".
    collect_failures: list[str] = field(default_factory=list)
    # Test modules collected in full that are not known test files: path -> how many
    # tests pytest's own filters deselected, all it held; None when one remained or
    # its collection failed. Saved at the end (`filtered_file`, for the fast path).
    filtered_modules: dict[str, int | None] = field(default_factory=dict)

    @classmethod
    def begin(
        cls, config: pytest.Config, options: TestmonOptions, recorder: Recorder | None
    ) -> SessionState:
        gate: Gate | None = config.pluginmanager.get_plugin(GATE_PLUGIN)
        return cls(
            config=config,
            options=options,
            recorder=recorder,
            worker=is_xdist_worker(config),
            controller=is_xdist_controller(config),
            gate=gate,
            started_at=time.time(),
            started_ns=time.time_ns(),
        )

    @property
    def root(self) -> Path:
        return self.config.rootpath

    def relative(self, path: str | os.PathLike[str]) -> str | None:
        """The project-relative '/'-path of a path below the root, else None."""
        text = str(path)
        prefix = str(self.root) + os.sep
        if not text.startswith(prefix):
            return None
        return text[len(prefix) :].replace(os.sep, "/")

    def restart_clock(self, at_ns: int | None = None) -> None:
        """The run starts at `at_ns` (now if None): a standby child released by the worker."""
        self.started_ns = time.time_ns() if at_ns is None else at_ns
        self.started_at = self.started_ns / 1e9

    # -- the engine's own work ----------------------------------------------------

    def engine_io(self) -> contextlib.AbstractContextManager[None]:
        """Files the engine itself reads are not dependencies of the current test."""
        return self.recorder.pause() if self.recorder is not None else contextlib.nullcontext()

    def guarded(self, action: Callable[[], None]) -> bool:
        """Run a data-file step; on failure go on without selection or recording."""
        try:
            action()
        except (DatabaseError, OSError) as exc:
            self.disable(f"{exc}; running without selection or recording")
            return False
        except Exception as exc:  # noqa: BLE001 - a damaged file can fail in many sqlite ways
            self.disable(
                f"cannot use {self.options.datafile.name} ({exc}); "
                "running without selection or recording"
            )
            return False
        return True

    def disable(self, message: str) -> None:
        self.messages.append(message)
        self.plan = None
        self.close_store()
        if self.hooks is not None:
            self.config.pluginmanager.unregister(self.hooks)
            self.hooks = None
        if self.recorder is not None:
            self.recorder.stop()
            self.recorder = None

    def end_parse_helper(self) -> None:
        if self.helper is not None:
            self.helper.close()
        if self.recorder is not None:
            self.recorder.on_project_import = None

    def close_store(self) -> None:
        self.end_parse_helper()
        self.store = None


STATE_KEY = pytest.StashKey[SessionState]()
