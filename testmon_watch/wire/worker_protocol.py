"""The messages the warm worker and its client exchange, as versioned JSON lines.

Every message is one line of JSON with `"v"` (the protocol version) and `"type"`.
Commands go from the client to the server (`run`, `prepare`, `cancel`, `shutdown`,
`status`);
events go back (`worker_ready`, `run_started`, `test_finished`, ...); a worker
child sends the run's events to the server the same way. This module imports
neither pytest nor anything of the project: the UI process imports it.

Fields are typed: outcomes are `Outcome`, a run's mode is `RunMode`, its exit
status pytest's code or a `WorkerExit`, counts are keyed by `Outcome`.
`decode` turns the JSON values into these types and refuses a value that is not
one of them with a one-line `ProtocolError`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.reasons import ChangedFile, Reason
from testmon_watch.core.runs import ExitStatus, Run, WorkerExit

# 2: reasons and changed files are typed objects (core.reasons), not English.
# 3: outcomes, modes, exit statuses and counts are checked on decode; the standby
#    release carries the run command as an object (wire.standby).
# 4: run_started carries collection errors (no longer sent as error "tests"), the
#    tests that no longer exist and where pytest looked; run_finished says which
#    test was running when the run was stopped and for how long (issue #12).
# 5: `prepare`: files being saved, for the waiting standby to parse ahead.
VERSION = 5
PROTOCOL_VERSION = VERSION

# Captured output and tracebacks are cut to this size so one test cannot flood the
# pipe or the UI; the cut is said in the text.
TEXT_LIMIT = 64 * 1024


class ProtocolError(ValueError):
    """A line that is not a message of this protocol version."""


# -- commands (client -> server) -------------------------------------------------


@dataclass
class RunCommand:
    """Run tests: the affected ones, all, the failed ones, or the given node ids."""

    TYPE: ClassVar[str] = "run"
    run_id: str = ""
    args: list[str] = field(default_factory=list)  # extra pytest arguments
    trigger: Any = None  # free JSON: which files changed, or "manual"
    mode: RunMode = RunMode.AFFECTED
    nodeids: list[str] = field(default_factory=list)
    timeout: float | None = None  # seconds per test; None: no limit


@dataclass
class PrepareCommand:
    """Project files (relative paths) are being saved: a run will likely follow.

    Sent before the save's quiet period ends; the waiting standby child parses
    them meanwhile (wire.standby). A hint only: nothing runs, nothing answers.
    """

    TYPE: ClassVar[str] = "prepare"
    paths: list[str] = field(default_factory=list)


@dataclass
class CancelCommand:
    """Stop the run `run_id` now."""

    TYPE: ClassVar[str] = "cancel"
    run_id: str = ""


@dataclass
class ShutdownCommand:
    """End the server (and any running child)."""

    TYPE: ClassVar[str] = "shutdown"


@dataclass
class StatusCommand:
    """Ask the server what it has imported (answered by `worker_status`)."""

    TYPE: ClassVar[str] = "status"


# -- events (server -> client) ----------------------------------------------------


@dataclass
class WorkerReady:
    """The server has preloaded and waits for commands."""

    TYPE: ClassVar[str] = "worker_ready"
    pid: int = 0
    python: str = ""
    preloaded: int = 0  # modules imported at start (sys.modules size)
    import_seconds: float = 0.0


@dataclass
class WorkerRecycling:
    """The server restarts itself because its imports may be stale."""

    TYPE: ClassVar[str] = "worker_recycling"
    reason: str = ""


@dataclass
class WorkerStatus:
    """Answer to `status`: what the server process has imported."""

    TYPE: ClassVar[str] = "worker_status"
    pid: int = 0
    modules: list[str] = field(default_factory=list)
    project_modules: list[str] = field(default_factory=list)  # must stay empty


@dataclass
class ChildStarted:
    """A child process runs `run_id`; its pid is also its process group id."""

    TYPE: ClassVar[str] = "child_started"
    run_id: str = ""
    pid: int = 0


@dataclass
class StandbyReady:
    """The next run's child is configured and waits: a run started now starts warm."""

    TYPE: ClassVar[str] = "standby_ready"
    pid: int = 0


@dataclass
class SelectedTest:
    """One test a run will execute, and why it was selected."""

    __test__: ClassVar[bool] = False  # not a pytest test class
    nodeid: str = ""
    reasons: list[Reason] = field(default_factory=list)


@dataclass
class CollectionError:
    """A collector (a test module, or a class in one) that failed to import or collect.

    pytest runs none of its tests; unless told to continue on collection errors it
    runs no test at all (the run then ends with exit status 2).
    """

    nodeid: str = ""  # the collector's node id, e.g. "tests/test_shop.py"
    path: str = ""  # its file, relative to the rootdir, "/"-separated
    longrepr: str = ""  # what pytest prints for it (cut to TEXT_LIMIT)


@dataclass
class RunStarted:
    """Collection is done: what changed, which tests will run, and what could not be collected."""

    TYPE: ClassVar[str] = "run_started"
    run_id: str = ""
    trigger: Any = None
    changed: list[ChangedFile] = field(default_factory=list)
    selected: list[SelectedTest] = field(default_factory=list)
    deselected: int = 0  # tests that exist and were not selected (pytest's "deselected")
    started_at: float = 0.0  # wall-clock time the run command arrived
    collection_errors: list[CollectionError] = field(default_factory=list)
    # Tests the data file knew that no longer exist (function, class or file gone);
    # they have left the data file.
    removed: list[str] = field(default_factory=list)
    # Where pytest looked for tests (its arguments or testpaths, relative to the
    # rootdir): what an empty project tells the user.
    looked_in: list[str] = field(default_factory=list)

    def start(self, run: Run) -> None:
        """Fold this event into a run model (every follower of runs does the same)."""
        errors = {e.nodeid: e.longrepr for e in self.collection_errors}
        run.start((s.nodeid for s in self.selected), self.deselected, errors, self.removed)


@dataclass
class TestStarted:
    """A test's setup begins."""

    __test__: ClassVar[bool] = False
    TYPE: ClassVar[str] = "test_started"
    run_id: str = ""
    nodeid: str = ""


@dataclass
class TestFinished:
    """A test is done (after teardown), with one outcome for all its phases."""

    __test__: ClassVar[bool] = False
    TYPE: ClassVar[str] = "test_finished"
    run_id: str = ""
    nodeid: str = ""
    outcome: Outcome = Outcome.PASSED
    duration: float = 0.0
    longrepr: str = ""
    sections: list[list[str]] = field(default_factory=list)  # [[title, content], ...]
    location: list[Any] | None = None  # [path, 1-based lineno or None, name]


@dataclass
class RunFinished:
    """The run is over: pytest's exit status, or how the worker ended it."""

    TYPE: ClassVar[str] = "run_finished"
    run_id: str = ""
    exitstatus: ExitStatus = 0
    counts: dict[Outcome, int] = field(default_factory=dict)
    timing: dict[str, float | None] = field(default_factory=dict)
    crashed: str | None = None  # the test that crashed or timed out
    # Project files the run opened for writing: the watcher must not rerun for them.
    written: list[str] = field(default_factory=list)
    # The test that was running when the run was cancelled, and how long it had run
    # (a test that crashed or timed out has its time in its own test_finished).
    stopped: str | None = None
    stopped_after: float | None = None

    def finish(self, run: Run) -> None:
        """Fold this event into a run model (every follower of runs does the same)."""
        run.finish(self.exitstatus, self.crashed, self.stopped, self.stopped_after)


@dataclass
class Notice:
    """A one-line message for the user (restarted, recycled, preload failed...)."""

    TYPE: ClassVar[str] = "notice"
    text: str = ""


Message = (
    RunCommand
    | PrepareCommand
    | CancelCommand
    | ShutdownCommand
    | StatusCommand
    | WorkerReady
    | WorkerRecycling
    | WorkerStatus
    | ChildStarted
    | StandbyReady
    | RunStarted
    | TestStarted
    | TestFinished
    | RunFinished
    | Notice
)
MESSAGE_TYPES: dict[str, type[Any]] = {
    cls.TYPE: cls
    for cls in (
        RunCommand,
        PrepareCommand,
        CancelCommand,
        ShutdownCommand,
        StatusCommand,
        WorkerReady,
        WorkerRecycling,
        WorkerStatus,
        ChildStarted,
        StandbyReady,
        RunStarted,
        TestStarted,
        TestFinished,
        RunFinished,
        Notice,
    )
}


def encode(message: Message) -> bytes:
    """One JSON line (with the trailing newline) for `message`."""
    return json.dumps(to_json(message), separators=(",", ":"), default=str).encode("utf-8") + b"\n"


def to_json(message: Message) -> dict[str, Any]:
    """`message` as a JSON object with its version and type (what `encode` writes)."""
    body: dict[str, Any] = {"v": VERSION, "type": message.TYPE}
    body.update(_jsonable(message))
    return body


def _jsonable(value: Any) -> Any:
    """Fields as JSON: typed values by their own `to_json`, enums by value."""
    to_json = getattr(value, "to_json", None)
    if to_json is not None:
        return to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {_jsonable(key): _jsonable(item) for key, item in value.items()}
    return value


def decode(line: bytes | str) -> Message:
    """The message of one JSON line; ProtocolError says what is wrong with a bad one."""
    try:
        body = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}: {_preview(line)}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"not a JSON object: {_preview(line)}")
    return from_json(body)


def from_json(body: dict[str, Any]) -> Message:
    """The message of a JSON object written by `to_json`; ProtocolError when it is not one."""
    body = dict(body)
    version = body.pop("v", None)
    if version != VERSION:
        raise ProtocolError(
            f"protocol version {version!r}, expected {VERSION} "
            "(client and worker come from different testmon-watch versions)"
        )
    kind = body.pop("type", None)
    cls = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r}")
    # Fields unknown to this side are dropped: a newer peer may add optional fields.
    names = _FIELD_NAMES[cls]
    kwargs = {k: v for k, v in body.items() if k in names}
    try:
        for name, convert in _CONVERTERS.get(cls, {}).items():
            if name in kwargs:
                kwargs[name] = convert(kwargs[name])
        message: Message = cls(**kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise ProtocolError(f"bad {kind} message: {_one_line(exc)}") from None
    return message


def _selected_test(data: Any) -> SelectedTest:
    known = _known(SelectedTest, data)
    known["reasons"] = [Reason.from_json(r) for r in known.get("reasons", [])]
    return SelectedTest(**known)


def _collection_error(data: Any) -> CollectionError:
    known = _known(CollectionError, data)
    if not all(isinstance(value, str) for value in known.values()):
        raise ValueError(f"collection error fields must be strings, got {data!r}")
    return CollectionError(**known)


def _known(cls: type[Any], data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ProtocolError(f"expected an object for {cls.__name__}, got {data!r}")
    names = _FIELD_NAMES.get(cls) or {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _str_list(data: Any) -> list[str]:
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise ValueError(f"expected a list of strings, got {data!r}")
    return data


def _optional_seconds(data: Any) -> float | None:
    if data is None:
        return None
    if isinstance(data, bool) or not isinstance(data, (int, float)):
        raise ValueError(f"expected seconds or null, got {data!r}")
    return float(data)


def _exitstatus(data: Any) -> ExitStatus:
    """pytest's exit code (an int) or one of WorkerExit's words."""
    if isinstance(data, int) and not isinstance(data, bool):
        return data
    if isinstance(data, str):
        return WorkerExit(data)
    raise ValueError(f"exit status must be an int or a word, got {data!r}")


def _counts(data: Any) -> dict[Outcome, int]:
    if not isinstance(data, dict):
        raise ValueError(f"counts must be an object, got {data!r}")
    counts = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"count of {key!r} must be an int, got {value!r}")
        counts[Outcome(key)] = value
    return counts


# How the typed fields are read back from JSON; fields not named here are taken as they are.
_CONVERTERS: dict[type[Any], dict[str, Callable[[Any], Any]]] = {
    PrepareCommand: {"paths": _str_list},
    RunCommand: {
        "mode": RunMode,
        "args": _str_list,
        "nodeids": _str_list,
        "timeout": _optional_seconds,
    },
    RunStarted: {
        "selected": lambda items: [_selected_test(s) for s in items],
        "changed": lambda items: [ChangedFile.from_json(c) for c in items],
        "collection_errors": lambda items: [_collection_error(e) for e in items],
        "removed": _str_list,
        "looked_in": _str_list,
    },
    TestFinished: {"outcome": Outcome},
    RunFinished: {
        "exitstatus": _exitstatus,
        "counts": _counts,
        "stopped_after": _optional_seconds,
    },
}
_FIELD_NAMES: dict[type[Any], frozenset[str]] = {
    cls: frozenset(f.name for f in dataclasses.fields(cls))
    for cls in (*MESSAGE_TYPES.values(), SelectedTest, CollectionError)
}


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def trigger_text(trigger: Any) -> str:
    """A run's trigger (free JSON) as text: the string itself, else its `str()`."""
    return trigger if isinstance(trigger, str) else str(trigger or "")


def _preview(line: bytes | str) -> str:
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    return text[:200]


def truncate(text: str, limit: int = TEXT_LIMIT) -> str:
    """`text` cut to about `limit` characters, keeping head and tail, saying what was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[... testmon-watch: {cut} characters cut ...]\n{text[-half:]}"
