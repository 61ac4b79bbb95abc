"""The command lines of the worker processes: the server's (with carried-over commands), a child's.

The client starts the server, and the server re-executes itself when it
recycles, with:

    python -m testmon_watch.worker.server --args-version 1 --root R
        [--python-path P]... [--resume JSON]

`--resume` carries what a recycling server had not handled yet: whole command
lines (the run that caused the recycle first) and a partial line, whose rest is
still in the stdin pipe: `{"lines": ["{...}", ...], "partial": "..."}`.

Where fork does not exist, the server starts each run's child as a new process:

    python -m testmon_watch.worker.child --args-version 1 --event-fd N --root R
        [--preload-path P] --t0 T --command JSON

with the run command as a worker-protocol line. `--args-version` may be left out
by a person starting a process by hand; given, it must match `VERSION`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from testmon_watch.wire import worker_protocol
from testmon_watch.wire.worker_protocol import ProtocolError, RunCommand

VERSION = 1
SERVER_MODULE = "testmon_watch.worker.server"
CHILD_MODULE = "testmon_watch.worker.child"


class ArgsError(ValueError):
    """A command line that is not one of these, or of another version."""


@dataclass(frozen=True)
class Resume:
    """Commands a recycling server carries over to its next incarnation."""

    lines: tuple[str, ...] = ()  # whole protocol lines, in the order they are to be handled
    partial: str = ""  # the start of a line whose rest is still in the pipe


@dataclass(frozen=True)
class ServerArgs:
    root: Path
    python_path: tuple[str, ...] = ()  # prepended to sys.path, in this order
    resume: Resume | None = None


@dataclass(frozen=True)
class ChildArgs:
    """A fresh-process child: where to send events and what to run."""

    event_fd: int
    root: Path
    preload_path: Path | None
    t0: float  # when the run command reached the server (time.time())
    command: RunCommand


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ArgsError(message)


def _version_arg() -> list[str]:
    return ["--args-version", str(VERSION)]


def _check_version(version: int | None, what: str) -> None:
    if version is not None and version != VERSION:
        raise ArgsError(f"{what} arguments version {version}, expected {VERSION}")


def encode_server(args: ServerArgs) -> list[str]:
    """The server's arguments (after `python -m testmon_watch.worker.server`)."""
    argv = [*_version_arg(), "--root", str(args.root)]
    for entry in args.python_path:
        argv += ["--python-path", entry]
    if args.resume is not None:
        resume = {"lines": list(args.resume.lines), "partial": args.resume.partial}
        argv += ["--resume", json.dumps(resume)]
    return argv


def server_command(python: str, args: ServerArgs) -> list[str]:
    """The whole command line that starts a server with `python`."""
    return [python, "-m", SERVER_MODULE, *encode_server(args)]


def decode_server(argv: list[str]) -> ServerArgs:
    parser = _Parser(prog=f"python -m {SERVER_MODULE}")
    parser.add_argument("--args-version", type=int, default=None)
    parser.add_argument("--root", required=True)
    parser.add_argument("--python-path", action="append", default=[])
    parser.add_argument("--resume", default=None)
    ns = parser.parse_args(argv)
    _check_version(ns.args_version, "server")
    resume = None
    if ns.resume is not None:
        try:
            data = json.loads(ns.resume)
        except ValueError as exc:
            raise ArgsError(f"--resume is not JSON: {exc}") from None
        lines = data.get("lines", []) if isinstance(data, dict) else None
        partial = data.get("partial", "") if isinstance(data, dict) else None
        if (
            not isinstance(lines, list)
            or not all(isinstance(line, str) for line in lines)
            or not isinstance(partial, str)
        ):
            raise ArgsError(f"--resume must hold lines and a partial line, got {ns.resume!r}")
        resume = Resume(tuple(lines), partial)
    return ServerArgs(Path(ns.root), tuple(ns.python_path), resume)


def encode_child(args: ChildArgs) -> list[str]:
    """A fresh child's arguments (after `python -m testmon_watch.worker.child`)."""
    argv = [*_version_arg(), "--event-fd", str(args.event_fd), "--root", str(args.root)]
    if args.preload_path is not None:
        argv += ["--preload-path", str(args.preload_path)]
    command = worker_protocol.encode(args.command).decode().strip()
    return [*argv, "--t0", repr(args.t0), "--command", command]


def child_command(python: str, args: ChildArgs) -> list[str]:
    return [python, "-m", CHILD_MODULE, *encode_child(args)]


def decode_child(argv: list[str]) -> ChildArgs:
    parser = _Parser(prog=f"python -m {CHILD_MODULE}")
    parser.add_argument("--args-version", type=int, default=None)
    parser.add_argument("--event-fd", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--preload-path", default=None)
    parser.add_argument("--t0", type=float, required=True)
    parser.add_argument("--command", required=True, help="the run command as a JSON line")
    ns = parser.parse_args(argv)
    _check_version(ns.args_version, "child")
    try:
        command = worker_protocol.decode(ns.command)
    except ProtocolError as exc:
        raise ArgsError(f"--command: {exc}") from None
    if not isinstance(command, RunCommand):
        raise ArgsError(f"--command must be a run command, not {type(command).TYPE}")
    preload = Path(ns.preload_path) if ns.preload_path else None
    return ChildArgs(ns.event_fd, Path(ns.root), preload, ns.t0, command)
