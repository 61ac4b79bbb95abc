"""The standby release: the line the server writes to a waiting standby child, and its exit codes.

A standby child (worker/standby.py) is the next run's pytest, forked ahead and
held at a gate. The server releases it by writing one JSON line to the gate's
pipe: the run command (a worker-protocol message, as an object) and when the
command reached the server. Before that, while a save is still settling, it may
write lines that name project files being written: the standby parses them
while it waits (core.changes.prepare), so the run does not. A standby that does
not run the command says why with its exit code alone, having sent nothing:

    {"v": 1, "prepare": ["src/pkg/mod.py"]}
    {"v": 1, "t0": 1712345678.25, "command": {"v": 5, "type": "run", ...}}

    exit 75  STALE   its early work is out of date: the server forks a fresh child
    exit 76  UNUSED  pytest ended before the gate (nothing was sent)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum

from testmon_watch.wire import worker_protocol
from testmon_watch.wire.worker_protocol import ProtocolError, RunCommand

VERSION = 1


class ReleaseError(ValueError):
    """A line that is not a standby release of this version."""


class StandbyExit(IntEnum):
    """Exit codes of a standby that did not run its command."""

    STALE = 75  # its early work is out of date: fork a fresh child instead
    UNUSED = 76  # pytest ended before the gate; nothing was sent


@dataclass(frozen=True)
class Release:
    """What a released standby runs, and when the command reached the server."""

    command: RunCommand
    t0: float  # time.time() at the command's arrival: the run's timings count from it


@dataclass(frozen=True)
class Prepare:
    """Project files (relative paths) being written now: parse them while waiting."""

    paths: tuple[str, ...]


def encode_prepare(prepare: Prepare) -> bytes:
    """One JSON line, with the trailing newline."""
    body = {"v": VERSION, "prepare": list(prepare.paths)}
    return json.dumps(body, separators=(",", ":")).encode("utf-8") + b"\n"


def encode(release: Release) -> bytes:
    """One JSON line, with the trailing newline."""
    body = {"v": VERSION, "t0": release.t0, "command": worker_protocol.to_json(release.command)}
    return json.dumps(body, separators=(",", ":")).encode("utf-8") + b"\n"


def decode(line: bytes | str) -> Release | Prepare:
    """The release or prepare line; ReleaseError says what is wrong with a bad one."""
    try:
        body = json.loads(line)
    except ValueError as exc:
        raise ReleaseError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ReleaseError("not a JSON object")
    if body.get("v") != VERSION:
        raise ReleaseError(f"standby release version {body.get('v')!r}, expected {VERSION}")
    if "prepare" in body:
        paths = body["prepare"]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ReleaseError(f"prepare must be a list of paths, got {paths!r}")
        return Prepare(tuple(paths))
    t0 = body.get("t0")
    if isinstance(t0, bool) or not isinstance(t0, (int, float)):
        raise ReleaseError(f"t0 must be a time in seconds, got {t0!r}")
    command = body.get("command")
    if not isinstance(command, dict):
        raise ReleaseError(f"command must be an object, got {command!r}")
    try:
        message = worker_protocol.from_json(command)
    except ProtocolError as exc:
        raise ReleaseError(f"bad command: {exc}") from None
    if not isinstance(message, RunCommand):
        raise ReleaseError(f"a standby runs a run command only, not {type(message).TYPE}")
    return Release(message, float(t0))
