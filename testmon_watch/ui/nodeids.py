"""Node ids and the files they belong to: a test's file and class, a collection error's file.

Pure string work on pytest's node ids ("tests/t.py::Class::test[param]").
"""

from __future__ import annotations

from testmon_watch.wire.worker_protocol import CollectionError


def split_nodeid(nodeid: str) -> tuple[str, str | None, str]:
    """'tests/t.py::C::test[a::b]' -> ('tests/t.py', 'C', 'test[a::b]')."""
    head, bracket, param = nodeid.partition("[")
    parts = head.split("::")
    name = parts[-1] + bracket + param
    if len(parts) == 1:
        return "", None, name
    cls = "::".join(parts[1:-1]) or None
    return parts[0], cls, name


def error_file(error: CollectionError) -> str:
    """The file a collection error belongs to."""
    return error.path or split_nodeid(error.nodeid)[0] or error.nodeid


def collects(error: CollectionError, nodeid: str) -> bool:
    """Whether the collector that failed (`error`) holds the test `nodeid`."""
    if nodeid.startswith(error.nodeid + "::"):
        return True
    return "::" not in error.nodeid and split_nodeid(nodeid)[0] == error_file(error)
