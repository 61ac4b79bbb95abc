"""The worker's other wire formats: standby release, process arguments, preload list.

Each round-trips its typed value and refuses other versions and bad input with
a one-line error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testmon_watch.core.outcomes import RunMode
from testmon_watch.wire import preload, server_args, standby
from testmon_watch.wire.preload import PreloadError, PreloadList
from testmon_watch.wire.server_args import ArgsError, ChildArgs, Resume, ServerArgs
from testmon_watch.wire.standby import Prepare, Release, ReleaseError, StandbyExit
from testmon_watch.wire.worker_protocol import VERSION as V
from testmon_watch.wire.worker_protocol import RunCommand, encode
from testmon_watch.worker.preload import read_preload_list

COMMAND = RunCommand(
    run_id="run-7", args=["-x"], trigger={"changed": ["a.py"]}, mode=RunMode.AFFECTED, timeout=3
)


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> bool:
    return "\n" not in str(exc.value)


# -- standby release -----------------------------------------------------------------


def test_release_round_trip_is_one_line_of_plain_json() -> None:
    data = standby.encode(Release(COMMAND, 1712345678.25))
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    body = json.loads(data)
    assert body["v"] == standby.VERSION and isinstance(body["command"], dict)  # no JSON in JSON
    assert standby.decode(data) == Release(COMMAND, 1712345678.25)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b'{"v": 9, "t0": 1, "command": {}}', "standby release version 9, expected 1"),
        (b'{"v": 1, "t0": "now", "command": {}}', "t0 must be a time"),
        (b'{"v": 1, "t0": 1, "command": "run"}', "command must be an object"),
        (f'{{"v": 1, "t0": 1, "command": {{"v": {V}, "type": "status"}}}}', "run command only"),
        (f'{{"v": 1, "t0": 1, "command": {{"v": {V}, "type": "run", "mode": 0}}}}', "bad command"),
        (b"nonsense", "not JSON"),
        (b'{"v": 1, "prepare": "src/a.py"}', "prepare must be a list of paths"),
        (b'{"v": 1, "prepare": [1]}', "prepare must be a list of paths"),
    ],
)
def test_bad_release_lines(line: bytes | str, words: str) -> None:
    with pytest.raises(ReleaseError, match=words) as info:
        standby.decode(line)
    assert one_line(info)


def test_prepare_line_round_trip() -> None:
    data = standby.encode_prepare(Prepare(("src/pkg/mod.py", "tests/test_mod.py")))
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert standby.decode(data) == Prepare(("src/pkg/mod.py", "tests/test_mod.py"))


def test_standby_exit_codes_are_fixed() -> None:
    # The server tells a stale standby from a crash by these codes alone.
    assert (StandbyExit.STALE, StandbyExit.UNUSED) == (75, 76)


# -- server and child arguments ----------------------------------------------------------


def test_server_args_round_trip(tmp_path: Path) -> None:
    plain = ServerArgs(tmp_path)
    assert server_args.decode_server(server_args.encode_server(plain)) == plain
    resumed = ServerArgs(
        tmp_path,
        ("/src", "/lib"),
        Resume((encode(COMMAND).decode().strip(), '{"v":4,"type":"status"}'), '{"v":4,"ty'),
    )
    argv = server_args.encode_server(resumed)
    assert server_args.decode_server(argv) == resumed
    command = server_args.server_command("/usr/bin/python3", resumed)
    assert command[:3] == ["/usr/bin/python3", "-m", "testmon_watch.worker.server"]
    assert command[3:] == argv


def test_server_args_by_hand_need_no_version(tmp_path: Path) -> None:
    assert server_args.decode_server(["--root", str(tmp_path)]) == ServerArgs(tmp_path)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--args-version", "2", "--root", "/r"], "server arguments version 2, expected 1"),
        (["--python-path", "/x"], "the following arguments are required: --root"),
        (["--root", "/r", "--resume", "{"], "--resume is not JSON"),
        (["--root", "/r", "--resume", '{"lines": [1]}'], "--resume must hold lines"),
    ],
)
def test_bad_server_args(argv: list[str], words: str) -> None:
    with pytest.raises(ArgsError, match=words) as info:
        server_args.decode_server(argv)
    assert one_line(info)


def test_child_args_round_trip(tmp_path: Path) -> None:
    args = ChildArgs(5, tmp_path, tmp_path / ".testmondata-preload.json", 1712345678.5, COMMAND)
    argv = server_args.encode_child(args)
    assert server_args.decode_child(argv) == args
    without_preload = ChildArgs(5, tmp_path, None, 2.0, COMMAND)
    assert server_args.decode_child(server_args.encode_child(without_preload)) == without_preload
    command = server_args.child_command("py", args)
    assert command[:3] == ["py", "-m", "testmon_watch.worker.child"]


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (f'{{"v":{V},"type":"status"}}', "--command must be a run command, not status"),
        ('{"v":2,"type":"run"}', "--command: protocol version 2"),
    ],
)
def test_bad_child_args(command: str, words: str) -> None:
    argv = ["--event-fd", "3", "--root", "/r", "--t0", "1.0", "--command", command]
    with pytest.raises(ArgsError, match=words) as info:
        server_args.decode_child(argv)
    assert one_line(info)


# -- preload list ----------------------------------------------------------------------------


def test_preload_list_round_trip(tmp_path: Path) -> None:
    value = PreloadList(
        ("fractions", "requests"), ("/p/conftest.py",), ("/p/test_a.py",), ("/p/a.py", "/p/b.py")
    )
    text = preload.encode(value)
    assert json.loads(text)["version"] == preload.VERSION
    assert preload.decode(text) == value
    path = tmp_path / "list.json"
    path.write_text(text)
    assert read_preload_list(path) == value


def test_a_preload_list_from_before_the_project_code_lists_has_none() -> None:
    text = '{"version": 1, "modules": ["fractions"], "conftests": ["/p/conftest.py"]}'
    assert preload.decode(text) == PreloadList(("fractions",), ("/p/conftest.py",), (), ())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"version": 2, "modules": []}', "preload list version 2, expected 1"),
        ('{"version": 1, "modules": "requests"}', "modules must be a list of strings"),
        ('{"version": 1, "conftests": [1]}', "conftests must be a list of strings"),
        ('{"version": 1, "compiled": "/p/a.py"}', "compiled must be a list of strings"),
        ("[]", "not a JSON object"),
        ("{", "not JSON"),
    ],
)
def test_bad_preload_lists(text: str, words: str, tmp_path: Path) -> None:
    with pytest.raises(PreloadError, match=words) as info:
        preload.decode(text)
    assert one_line(info)
    path = tmp_path / "list.json"
    path.write_text(text)
    assert read_preload_list(path) == PreloadList()  # the worker just preloads less
    assert read_preload_list(tmp_path / "missing.json") == PreloadList()
