"""Every format that crosses a process boundary, each in one module here, each versioned.

Like pytest-xdist's list of events: if bytes leave one process and another
reads them, their shape is defined in exactly one module of this package, with
typed values on both sides, a version number, and one encode/decode pair.
Nothing outside this package builds or parses these bytes by hand.

    format            module           from -> to (carrier)
    worker protocol   worker_protocol  client <-> warm worker server (stdin/stdout JSON lines);
                                       worker child -> server (event pipe JSON lines)
    standby release   standby          server -> waiting standby child (gate pipe, one line)
    server arguments  server_args      client -> server, server -> itself on recycle (argv)
    preload list      preload          worker child -> next server (.testmondata-preload.json)
    parse helper      parse_helper     pytest <-> parse helper (pipes, one line per file)
    child reports     child_report     recorded child process -> pytest (env vars, marker files)
    xdist output      xdist            xdist worker -> controller (report attribute, workeroutput)
    coverage report   coverage_report  coverage subprocess -> app (stdout, one JSON document)

The shared value types (outcomes, reasons, context keys, executions) are
defined in `testmon_watch.core`; the modules here only put them into bytes and
back. Bump a module's `VERSION` on any change a peer of the old version would
misread; a reader refuses other versions with a one-line error.
"""

from __future__ import annotations

from typing import NamedTuple


class WireFormat(NamedTuple):  # not a dataclass: every recorded child imports this package
    name: str
    module: str  # testmon_watch.wire.<module>, which defines VERSION


FORMATS = (
    WireFormat("worker protocol", "worker_protocol"),
    WireFormat("standby release", "standby"),
    WireFormat("server arguments", "server_args"),
    WireFormat("preload list", "preload"),
    WireFormat("parse helper", "parse_helper"),
    WireFormat("child reports", "child_report"),
    WireFormat("xdist output", "xdist"),
    WireFormat("coverage report", "coverage_report"),
)
