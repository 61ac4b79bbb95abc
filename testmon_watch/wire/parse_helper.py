"""The parse helper's lines: which file to parse, and the parsed state that comes back.

pytest (the parent) starts the helper with this format's version among its
arguments; a helper of another version exits at once (the parent then parses
everything itself). Then, over pipes, one line each way per file:

    parent -> helper   <kind>\\t<relpath>\\n          kind: "python", "data" or "dir"
    helper -> parent   JSON [relpath, kind, mtime_ns, size, digest, blocks, imports, error]\\n
                       blocks: [[name, first line, last line, checksum], ...]
                       imports: [dotted module name, ...]; error: str or null

The answer is a file's state as `core.db.FileRow` holds it (`ParsedFile` here).
The helper answers only files it could read, in request order.
"""

from __future__ import annotations

import json
from typing import NamedTuple

VERSION = 1

# One request must be written whole (pipe writes up to PIPE_BUF bytes are atomic).
MAX_REQUEST = 4000


def check_version(argument: str) -> None:
    """In the helper: its version argument; ValueError (one line) when it is not ours."""
    if argument != str(VERSION):
        raise ValueError(f"parse helper: asked for version {argument!r}, this is {VERSION}")


class ParseRequest(NamedTuple):
    kind: str
    relpath: str


def encode_request(request: ParseRequest) -> bytes | None:
    """The request line; None for a path this format cannot carry (a tab, a newline, too long)."""
    if "\n" in request.relpath or "\t" in request.relpath:
        return None
    line = f"{request.kind}\t{request.relpath}\n".encode("utf-8", "surrogateescape")
    return line if len(line) <= MAX_REQUEST else None


def decode_request(line: bytes) -> ParseRequest:
    kind, tab, relpath = line.decode("utf-8", "surrogateescape").rstrip("\n").partition("\t")
    if not tab:
        raise ValueError("parse helper: a request without a tab")
    return ParseRequest(kind, relpath)


BlockRow = tuple[str, int, int, int]  # name, first line, last line, checksum


class ParsedFile(NamedTuple):
    """A file's state as the helper read it (the fields of core.db.FileRow)."""

    path: str
    kind: str
    mtime_ns: int
    size: int
    digest: str
    blocks: list[BlockRow]
    imports: list[str]
    error: str | None


def encode_answer(parsed: ParsedFile) -> bytes:
    fields = [
        parsed.path,
        parsed.kind,
        parsed.mtime_ns,
        parsed.size,
        parsed.digest,
        parsed.blocks,
        parsed.imports,
        parsed.error,
    ]
    return json.dumps(fields).encode() + b"\n"


def decode_answer(line: bytes) -> ParsedFile:
    """ValueError when the line is not an answer."""
    try:
        path, kind, mtime_ns, size, digest, blocks, imports, error = json.loads(line)
        return ParsedFile(
            str(path),
            str(kind),
            int(mtime_ns),
            int(size),
            str(digest),
            [(str(n), int(s), int(e), int(c)) for n, s, e, c in blocks],
            [str(i) for i in imports],
            None if error is None else str(error),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"parse helper: not an answer ({exc})") from None
