"""xdist output: what an xdist worker recorded, as the builtins execnet carries to the controller.

A worker stores nothing; the controller does. Two carriers, both under the
key `pytest_plugin.names.PAYLOAD_KEY`:

    carrier                                 when                 value
    attribute of a test's teardown report   after each test      encode_test(TestRecording)
    the worker's `workeroutput` dict        at the session end   encode_session(SessionRecording)

Shapes (JSON-able: dicts, lists, str, int, float, bool):

    test recording     {"version": 2, "test": <test>, "units": [<execution>...], "modules": {...}}
    session recording  {"version": 2, "units": [<execution>...], "modules": {...},
                        "late": [<execution>...]}
    <test>             {"nodeid", "path", "outcome": <Outcome value>, "duration",
                        "units": [<context key>...], "roots": [<path>...], "complete",
                        "execution": <execution>}
    <execution>        {"key": <context key>, "lines": {<path>: [<line>...]}, "reads": [...],
                        "listings": [...], "imported": [...], "incomplete_children": <int>,
                        "distributions": [<canonical name>...], "lists_distributions": <bool>}
    "modules"          {<dotted module name>: <path>}

Context keys travel as their text (`str(ContextKey)`), outcomes as their value.
"""

from __future__ import annotations

from typing import Any

from testmon_watch.core.keys import ContextKey
from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.records import Execution, SessionRecording, TestRecord, TestRecording

VERSION = 2

# The builtins execnet carries: what encode_* returns and decode_* reads.
Carried = dict[str, object]


# -- encoding ------------------------------------------------------------------------


def _execution(execution: Execution) -> dict[str, Any]:
    return {
        "key": str(execution.key),
        "lines": {path: sorted(lines) for path, lines in execution.lines.items()},
        "reads": sorted(execution.reads),
        "listings": sorted(execution.listings),
        "imported": sorted(execution.imported),
        "incomplete_children": execution.incomplete_children,
        "distributions": sorted(execution.distributions),
        "lists_distributions": execution.lists_distributions,
    }


def _test(test: TestRecord) -> dict[str, Any]:
    return {
        "nodeid": test.nodeid,
        "path": test.path,
        "outcome": test.outcome.value,
        "duration": test.duration,
        "units": [str(key) for key in test.units],
        "roots": list(test.roots),
        "complete": test.complete,
        "execution": _execution(test.execution),
    }


def encode_test(recording: TestRecording) -> Carried:
    return {
        "version": VERSION,
        "test": _test(recording.test),
        "units": [_execution(unit) for unit in recording.units],
        "modules": dict(recording.modules),
    }


def encode_session(recording: SessionRecording) -> Carried:
    return {
        "version": VERSION,
        "units": [_execution(unit) for unit in recording.units],
        "modules": dict(recording.modules),
        "late": [_execution(late) for late in recording.late],
    }


# -- decoding ------------------------------------------------------------------------


def _read_execution(data: Any) -> Execution:
    return Execution(
        ContextKey.parse(data["key"]),
        {str(path): {int(n) for n in lines} for path, lines in data["lines"].items()},
        {str(path) for path in data["reads"]},
        {str(path) for path in data["listings"]},
        {str(path) for path in data["imported"]},
        int(data["incomplete_children"]),
        {str(name) for name in data["distributions"]},
        bool(data["lists_distributions"]),
    )


def _read_test(data: Any) -> TestRecord:
    return TestRecord(
        nodeid=str(data["nodeid"]),
        path=str(data["path"]),
        outcome=Outcome.parse(data["outcome"]),
        duration=float(data["duration"]),
        units=[ContextKey.parse(key) for key in data["units"]],
        roots=[str(path) for path in data["roots"]],
        execution=_read_execution(data["execution"]),
        complete=bool(data["complete"]),
    )


def _read_modules(data: Any) -> dict[str, str]:
    return {str(name): str(path) for name, path in data.items()}


def _checked(what: str, data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"xdist {what}: not a dict")
    found = data.get("version")
    if found != VERSION:
        raise ValueError(f"xdist {what}: version {found!r}, this reader reads version {VERSION}")
    return data


def decode_test(data: object) -> TestRecording:
    """ValueError when `data` is not a test recording of this version."""
    checked = _checked("test recording", data)
    try:
        return TestRecording(
            _read_test(checked["test"]),
            [_read_execution(unit) for unit in checked["units"]],
            _read_modules(checked["modules"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"xdist test recording: malformed ({exc!r})") from None


def decode_session(data: object) -> SessionRecording:
    """ValueError when `data` is not a session recording of this version."""
    checked = _checked("session recording", data)
    try:
        return SessionRecording(
            [_read_execution(unit) for unit in checked["units"]],
            _read_modules(checked["modules"]),
            [_read_execution(late) for late in checked["late"]],
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"xdist session recording: malformed ({exc!r})") from None
