"""Protocol tests: round trips, clear errors, and no pytest on the client side."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from testmon_watch.core.reasons import ChangedFile, Reason, ReasonKind
from testmon_watch.worker.protocol import (
    PROTOCOL_VERSION,
    ProtocolError,
    RunCommand,
    RunStarted,
    SelectedTest,
    TestFinished,
    decode,
    encode,
    truncate,
)

CHANGED_F = Reason(ReasonKind.CHANGED, "a.py", blocks=("f",))


def test_round_trip_keeps_every_field() -> None:
    started = RunStarted(
        run_id="r1",
        trigger={"files": ["a.py"]},
        changed=[ChangedFile("a.py", ("f",))],
        selected=[
            SelectedTest("t.py::test_a", [Reason(ReasonKind.CHANGED, "a.py", blocks=("f",))])
        ],
        deselected=3,
        started_at=1.5,
    )
    assert decode(encode(started)) == started
    run = RunCommand(run_id="r2", args=["-x"], mode="nodeids", nodeids=["t.py::a"], timeout=2.0)
    assert decode(encode(run)) == run
    done = TestFinished(
        run_id="r",
        nodeid="t.py::a",
        outcome="failed",
        sections=[["out", "x"]],
        location=["t.py", 3, "a"],
    )
    assert decode(encode(done)) == done


def test_every_message_is_one_line_with_version_and_type() -> None:
    line = encode(RunCommand(run_id="r", trigger="multi\nline"))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    body = json.loads(line)
    assert body["v"] == PROTOCOL_VERSION and body["type"] == "run"


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b'{"v": 99, "type": "run"}', "protocol version 99"),
        (b'{"type": "run"}', "protocol version None"),
        (b'{"v": 2, "type": "explode"}', "unknown message type 'explode'"),
        (
            b'{"v": 2, "type": "run_started", "selected": [{"nodeid": "t", "reasons": ["x"]}]}',
            "bad run_started message",
        ),
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
    ],
)
def test_bad_lines_say_what_is_wrong(line: bytes, words: str) -> None:
    with pytest.raises(ProtocolError, match=words):
        decode(line)


def test_unknown_fields_from_a_newer_peer_are_ignored() -> None:
    message = decode(b'{"v": 2, "type": "notice", "text": "hi", "colour": "red"}')
    assert message.text == "hi"  # type: ignore[union-attr]


def test_truncate_keeps_head_and_tail_and_says_so() -> None:
    text = "a" * 100 + "b" * 100
    cut = truncate(text, 50)
    assert cut.startswith("a" * 25) and cut.endswith("b" * 25)
    assert "150 characters cut" in cut
    assert truncate("short", 50) == "short"


def test_client_side_imports_no_pytest() -> None:
    """The UI process imports the client and protocol; they must not pull in pytest."""
    code = (
        "import sys, testmon_watch.worker.client, testmon_watch.worker.protocol; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pytest', '_pytest', 'pluggy', 'textual', 'testmon_watch.pytest_plugin')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
