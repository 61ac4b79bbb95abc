"""Protocol tests: round trips of typed fields, clear errors, and no engine on the client side."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from testmon_watch.core.outcomes import Outcome, RunMode
from testmon_watch.core.reasons import ChangedFile, Reason, ReasonKind
from testmon_watch.core.runs import WorkerExit
from testmon_watch.wire.worker_protocol import (
    MESSAGE_TYPES,
    VERSION,
    CollectionError,
    Notice,
    ProtocolError,
    RunCommand,
    RunFinished,
    RunStarted,
    SelectedTest,
    TestFinished,
    decode,
    encode,
    from_json,
    to_json,
    truncate,
)

CHANGED_F = Reason(ReasonKind.CHANGED, "a.py", blocks=("f",))


def test_round_trip_keeps_every_field() -> None:
    started = RunStarted(
        run_id="r1",
        trigger={"files": ["a.py"]},
        changed=[ChangedFile("a.py", ("f",))],
        selected=[SelectedTest("t.py::test_a", [CHANGED_F])],
        deselected=3,
        started_at=1.5,
        collection_errors=[CollectionError("t_broken.py", "t_broken.py", "E   SyntaxError")],
        removed=["t_gone.py::test_x"],
        looked_in=["tests"],
    )
    back = decode(encode(started))
    assert back == started
    assert isinstance(back, RunStarted)
    assert isinstance(back.collection_errors[0], CollectionError)
    stopped = RunFinished(
        run_id="r1", exitstatus=WorkerExit.CANCELLED, stopped="t::a", stopped_after=2.5
    )
    assert decode(encode(stopped)) == stopped
    run = RunCommand(
        run_id="r2", args=["-x"], mode=RunMode.NODEIDS, nodeids=["t.py::a"], timeout=2.0
    )
    assert decode(encode(run)) == run
    done = TestFinished(
        run_id="r",
        nodeid="t.py::a",
        outcome=Outcome.FAILED,
        sections=[["out", "x"]],
        location=["t.py", 3, "a"],
    )
    assert decode(encode(done)) == done


def test_every_message_type_round_trips() -> None:
    for cls in MESSAGE_TYPES.values():
        message = cls()
        assert decode(encode(message)) == message, cls.__name__
        assert from_json(to_json(message)) == message, cls.__name__


def test_decoded_values_have_their_types() -> None:
    run = decode(encode(RunCommand(run_id="r", mode=RunMode.FAILED)))
    assert isinstance(run, RunCommand) and run.mode is RunMode.FAILED
    done = decode(encode(TestFinished(run_id="r", nodeid="t", outcome=Outcome.XPASSED)))
    assert isinstance(done, TestFinished) and done.outcome is Outcome.XPASSED
    finished = RunFinished(
        run_id="r",
        exitstatus=WorkerExit.TIMEOUT,
        counts={Outcome.PASSED: 2, Outcome.TIMEOUT: 1},
        crashed="t",
    )
    back = decode(encode(finished))
    assert isinstance(back, RunFinished) and back == finished
    assert back.exitstatus is WorkerExit.TIMEOUT
    assert all(isinstance(key, Outcome) for key in back.counts)
    pytest_code = decode(encode(RunFinished(run_id="r", exitstatus=1)))
    assert isinstance(pytest_code, RunFinished) and pytest_code.exitstatus == 1


def test_every_message_is_one_line_with_version_and_type() -> None:
    line = encode(RunCommand(run_id="r", trigger="multi\nline"))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    body = json.loads(line)
    assert body["v"] == VERSION and body["type"] == "run"
    counts = json.loads(encode(RunFinished(counts={Outcome.ERROR: 1})))["counts"]
    assert counts == {"error": 1}


def json_line(kind: str, **fields: object) -> bytes:
    return json.dumps({"v": VERSION, "type": kind, **fields}).encode()


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b'{"v": 99, "type": "run"}', "protocol version 99"),
        (b'{"type": "run"}', "protocol version None"),
        (json_line("explode"), "unknown message type 'explode'"),
        (
            json_line("run_started", selected=[{"nodeid": "t", "reasons": ["x"]}]),
            "bad run_started message",
        ),
        (json_line("run", mode="sometimes"), "bad run message: 'sometimes' is not a valid RunMode"),
        (json_line("run", nodeids="t.py"), "bad run message: expected a list of strings"),
        (json_line("run", timeout="soon"), "bad run message: expected seconds or null"),
        (
            json_line("test_finished", outcome="exploded"),
            "bad test_finished message: 'exploded' is not a valid Outcome",
        ),
        (
            json_line("run_finished", exitstatus="melted"),
            "bad run_finished message: 'melted' is not a valid WorkerExit",
        ),
        (
            json_line("run_finished", exitstatus=1.5),
            "bad run_finished message: exit status must be",
        ),
        (
            json_line("run_finished", counts={"pased": 1}),
            "bad run_finished message: 'pased' is not a valid Outcome",
        ),
        (
            json_line("run_finished", counts={"passed": "1"}),
            "bad run_finished message: count of 'passed' must be an int",
        ),
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
    ],
)
def test_bad_lines_say_what_is_wrong_in_one_line(line: bytes, words: str) -> None:
    with pytest.raises(ProtocolError, match=words) as info:
        decode(line)
    assert "\n" not in str(info.value)


def test_unknown_fields_from_a_newer_peer_are_ignored() -> None:
    message = decode(json_line("notice", text="hi", colour="red"))
    assert isinstance(message, Notice) and message.text == "hi"


def test_truncate_keeps_head_and_tail_and_says_so() -> None:
    text = "a" * 100 + "b" * 100
    cut = truncate(text, 50)
    assert cut.startswith("a" * 25) and cut.endswith("b" * 25)
    assert "150 characters cut" in cut
    assert truncate("short", 50) == "short"


# What the front-end process must never import (the engine side of the worker does).
ENGINE_SIDE = (
    "pytest",
    "_pytest",
    "pluggy",
    "coverage",
    "textual",
    "testmon_watch.measure",
    "testmon_watch.pytest_plugin",
    "testmon_watch.core.db",
)


@pytest.mark.parametrize(
    "modules",
    [
        ("testmon_watch.worker.client", "testmon_watch.wire.worker_protocol"),
        ("testmon_watch.session", "testmon_watch.headless"),
        ("testmon_watch.ui.state", "testmon_watch.worker.processes"),
    ],
)
def test_the_client_side_imports_no_engine(modules: tuple[str, ...]) -> None:
    """The front-end process imports the client, the session and the printer: no engine."""
    code = (
        f"import sys, {', '.join(modules)}; "
        f"print(sorted(m for m in sys.modules if m.startswith({ENGINE_SIDE!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
