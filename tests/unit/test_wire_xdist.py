"""The xdist output format: recordings survive the trip as builtins, other versions are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from testmon_watch.core.keys import SESSION, ContextKey
from testmon_watch.core.outcomes import Outcome
from testmon_watch.core.records import Execution, SessionRecording, TestRecord, TestRecording
from testmon_watch.wire import xdist

FIXTURE = ContextKey.fixture("session", "", "conftest.py", "db", 0)


def execution(key: ContextKey, children: int = 0) -> Execution:
    return Execution(
        key,
        {"src/shop.py": {5, 1, 9}, "tests/test_a.py": {3}},
        {"data/prices.json"},
        {"plugins"},
        {"src/shop.py"},
        children,
        {"numpy", "absent-one"},
        True,
    )


def only_builtins(value: Any) -> bool:
    """What execnet can carry (and JSON too)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and only_builtins(v) for k, v in value.items())
    if isinstance(value, list):
        return all(only_builtins(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


@pytest.mark.parametrize("outcome", list(Outcome))
def test_test_recording_round_trip(outcome: Outcome) -> None:
    nodeid = "tests/test_a.py::test_x[1-2]"
    recording = TestRecording(
        TestRecord(
            nodeid=nodeid,
            path="tests/test_a.py",
            outcome=outcome,
            duration=0.125,
            units=[SESSION, ContextKey.collection("tests/test_a.py"), FIXTURE],
            roots=["tests/test_a.py", "conftest.py"],
            execution=execution(ContextKey.test(nodeid), children=2),
            complete=False,
        ),
        [execution(FIXTURE), execution(ContextKey.import_of("src/shop.py"))],
        {"src.shop": "src/shop.py"},
    )
    encoded = xdist.encode_test(recording)
    assert only_builtins(encoded)
    assert xdist.decode_test(json.loads(json.dumps(encoded))) == recording


def test_session_recording_round_trip() -> None:
    recording = SessionRecording(
        [execution(SESSION)],
        {"conftest": "conftest.py"},
        [execution(ContextKey.test("t.py::late"), children=1)],
    )
    encoded = xdist.encode_session(recording)
    assert only_builtins(encoded)
    assert xdist.decode_session(json.loads(json.dumps(encoded))) == recording
    assert xdist.decode_session(xdist.encode_session(SessionRecording())) == SessionRecording()


def test_other_versions_and_shapes_are_refused_in_one_line() -> None:
    encoded = xdist.encode_session(SessionRecording())
    with pytest.raises(ValueError, match="version") as info:
        xdist.decode_session({**encoded, "version": xdist.VERSION + 1})
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="malformed"):
        xdist.decode_session({"version": xdist.VERSION, "units": []})
    with pytest.raises(ValueError, match="not a dict"):
        xdist.decode_test(["not", "a", "dict"])
    bad_key = xdist.encode_session(SessionRecording([execution(SESSION)]))
    units = bad_key["units"]
    assert isinstance(units, list)
    units[0]["key"] = "nonsense"
    with pytest.raises(ValueError, match="not a context key"):
        xdist.decode_session(bad_key)
