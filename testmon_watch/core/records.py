"""What a recording process hands to the store: executions, finished tests, their batches.

The recorder (measure/) fills an `Execution` per context; the pytest plugin
turns a finished test into a `TestRecord` and hands both to `core.store.RunStore`
in a `TestRecording` (after each test) or a `SessionRecording` (at the end).
Between an xdist worker and its controller they travel as the JSON-able data
of `testmon_watch.wire.xdist`. Paths are project-relative, '/'-separated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from testmon_watch.core.keys import ContextKey
from testmon_watch.core.outcomes import Outcome


@dataclass
class Execution:
    """What ran while one context was current."""

    key: ContextKey
    lines: dict[str, set[int]] = field(default_factory=dict)  # path -> executed line numbers
    reads: set[str] = field(default_factory=set)  # files opened for reading (or looked for)
    listings: set[str] = field(default_factory=set)  # directories listed
    imported: set[str] = field(default_factory=set)  # modules whose import started here
    incomplete_children: int = 0  # child processes that did not report (killed, still running)
    # Installed distributions it imported from, read files or metadata of, or asked
    # for by name (canonical names; see core.distributions), and whether it
    # enumerated them all.
    distributions: set[str] = field(default_factory=set)
    lists_distributions: bool = False


@dataclass
class TestRecord:
    """A finished test: its own execution and the shared units it used."""

    __test__ = False  # not a pytest test class, whatever its name

    nodeid: str
    path: str  # its test module
    outcome: Outcome
    duration: float  # setup, call and teardown
    units: list[ContextKey]  # the session, its module's collection, wider-scoped fixtures
    roots: list[str]  # its test module and the conftest.py files that apply to it
    execution: Execution  # its setup, call and teardown (function-scoped fixtures included)
    complete: bool = True  # False: what was recorded cannot be trusted (it runs again)


@dataclass
class TestRecording:
    """What one test's teardown hands over: the test, and units finished since the last one."""

    __test__ = False

    test: TestRecord
    units: list[Execution] = field(default_factory=list)
    modules: dict[str, str] = field(default_factory=dict)  # dotted name -> path, newly seen


@dataclass
class SessionRecording:
    """What the end of a recording session hands over."""

    units: list[Execution] = field(default_factory=list)  # the session unit and the rest
    modules: dict[str, str] = field(default_factory=dict)
    # Child-process data that arrived after its context was saved (or never did), and
    # lines threads ran for their owner test after it was saved.
    late: list[Execution] = field(default_factory=list)
