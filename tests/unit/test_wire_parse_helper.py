"""The parse helper's lines: requests and answers round-trip; what cannot travel is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testmon_watch.wire import parse_helper as wire
from testmon_watch.wire.parse_helper import ParsedFile, ParseRequest


@pytest.mark.parametrize(
    "request_",
    [
        ParseRequest("python", "pkg/shop.py"),
        ParseRequest("data", "data/prix à la carte.json"),
        ParseRequest("dir", "plugins"),
    ],
)
def test_request_round_trip(request_: ParseRequest) -> None:
    line = wire.encode_request(request_)
    assert line is not None and line.endswith(b"\n") and line.count(b"\n") == 1
    assert wire.decode_request(line) == request_


def test_paths_a_line_cannot_carry_are_not_sent() -> None:
    assert wire.encode_request(ParseRequest("python", "a\nb.py")) is None
    assert wire.encode_request(ParseRequest("python", "a\tb.py")) is None
    assert wire.encode_request(ParseRequest("python", "x" * wire.MAX_REQUEST + ".py")) is None
    with pytest.raises(ValueError, match="a request without a tab"):
        wire.decode_request(b"python pkg/shop.py\n")


@pytest.mark.parametrize("error", [None, "invalid syntax (line 3)"])
def test_answer_round_trip(error: str | None) -> None:
    parsed = ParsedFile(
        "pkg/shop.py",
        "python",
        1_700_000_000_123_456_789,
        321,
        "ab" * 16,
        [("<module>", 1, 12, -5), ("price", 6, 7, 2**63 - 1)],
        ["pkg.sibling", "os"],
        error,
    )
    line = wire.encode_answer(parsed)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert wire.decode_answer(line) == parsed


def test_a_line_that_is_no_answer_is_refused() -> None:
    for line in (b"garbage\n", b"[1, 2]\n", json.dumps(["a", "python"] * 4).encode()):
        with pytest.raises(ValueError, match="not an answer"):
            wire.decode_answer(line)


def test_a_helper_of_another_version_exits_with_one_line(tmp_path: Path) -> None:
    wire.check_version(str(wire.VERSION))
    code = "from testmon_watch.measure.parse_helper import main; main()"
    other = str(wire.VERSION + 1)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), other],
        input=b"python a.py\n",
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode != 0 and proc.stdout == b""
    assert proc.stderr.decode().strip().count("\n") == 0
    assert "version" in proc.stderr.decode()
