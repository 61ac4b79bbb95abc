"""Compact binary encodings for id sets and executed-line sets stored in SQLite."""

from __future__ import annotations

import json
import zlib
from array import array
from collections.abc import Iterable, Mapping

_INT64 = "q"


def pack_ints(values: Iterable[int]) -> bytes:
    """Sorted, de-duplicated int64 array: equal sets give equal bytes (used in UNIQUE keys)."""
    return array(_INT64, sorted(set(values))).tobytes()


def unpack_ints(blob: bytes | None) -> array[int]:
    """Inverse of `pack_ints`."""
    result = array(_INT64)
    if blob:
        result.frombytes(blob)
    return result


def line_ranges(lines: Iterable[int]) -> list[list[int]]:
    """[3, 4, 5, 9] -> [[3, 5], [9, 9]]: executed lines come in runs."""
    ranges: list[list[int]] = []
    for line in sorted(set(lines)):
        if ranges and line == ranges[-1][1] + 1:
            ranges[-1][1] = line
        else:
            ranges.append([line, line])
    return ranges


def pack_lines(lines_by_file: Mapping[int, Iterable[int]]) -> bytes:
    """{file id: lines} as zlib-compressed JSON of line ranges."""
    data = {str(file_id): line_ranges(lines) for file_id, lines in lines_by_file.items() if lines}
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)


def unpack_lines(blob: bytes | None) -> dict[int, set[int]]:
    """Inverse of `pack_lines`."""
    if not blob:
        return {}
    data: dict[str, list[list[int]]] = json.loads(zlib.decompress(blob))
    return {
        int(file_id): {line for first, last in ranges for line in range(first, last + 1)}
        for file_id, ranges in data.items()
    }
