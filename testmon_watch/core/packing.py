"""Compact binary encodings for id sets, executed lines and file blocks stored in SQLite.

Everything here is little-endian and independent of the machine that wrote it.
The encodings are chosen for size (a big project stores tens of thousands of
these blobs) while keeping the hot path, `unpack_ints` during selection, in C.
"""

from __future__ import annotations

import functools
import sys
import zlib
from array import array
from collections.abc import Iterable, Mapping

_BIG_ENDIAN = sys.byteorder == "big"

# pack_ints: one leading byte gives the width of the values that follow.
# Unsigned widths for ids (small, positive), signed 64-bit for anything else.
_WIDTHS: list[tuple[str, int]] = [
    (code, limit)
    for code, limit in (("B", 1 << 8), ("H", 1 << 16), ("I", 1 << 32))
    if array(code).itemsize * 8 == limit.bit_length() - 1
]
_INT64 = "q"
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_CODE_OF_WIDTH = {array(code).itemsize: code for code, _ in _WIDTHS} | {8: _INT64}

# pack_lines / pack_blocks: a blob longer than this is also tried zlib-compressed.
_COMPRESS_FROM = 96


def _to_bytes(values: array[int]) -> bytes:
    if _BIG_ENDIAN and values.itemsize > 1:
        values.byteswap()
    return values.tobytes()


def _from_bytes(code: str, data: bytes | memoryview) -> array[int]:
    values = array(code)
    values.frombytes(data)
    if _BIG_ENDIAN and values.itemsize > 1:
        values.byteswap()
    return values


def pack_ints(values: Iterable[int]) -> bytes:
    """A set of int64 as sorted, unique values of the narrowest width that holds them.

    Equal sets give equal bytes; the empty set is b"". Layout: one byte (the
    width in bytes: 1, 2, 4 unsigned or 8 signed), then the values.
    """
    ordered = sorted(set(values))
    if not ordered:
        return b""
    low, high = ordered[0], ordered[-1]
    if low < _INT64_MIN or high > _INT64_MAX:
        raise OverflowError("pack_ints: value out of the int64 range")
    code = _INT64
    if low >= 0:
        for candidate, limit in _WIDTHS:
            if high < limit:
                code = candidate
                break
    packed = array(code, ordered)
    return bytes((packed.itemsize,)) + _to_bytes(packed)


def unpack_ints(blob: bytes | None) -> array[int]:
    """Inverse of `pack_ints`."""
    if not blob:
        return array(_INT64)
    code = _CODE_OF_WIDTH.get(blob[0])
    if code is None or (len(blob) - 1) % blob[0]:
        raise ValueError("unpack_ints: not a packed int set")
    return _from_bytes(code, memoryview(blob)[1:])


def pack_checksums(values: Iterable[int]) -> bytes:
    """Sorted, unique int64 block checksums, 8 bytes each (they are random: no width gain)."""
    return _to_bytes(array(_INT64, sorted(set(values))))


def unpack_checksums(blob: bytes | None) -> array[int]:
    """Inverse of `pack_checksums`."""
    return _from_bytes(_INT64, blob or b"")


# -- varints ---------------------------------------------------------------


def _zigzag(value: int) -> int:
    return value * 2 if value >= 0 else -value * 2 - 1


def _unzigzag(value: int) -> int:
    return value >> 1 if not value & 1 else -((value + 1) >> 1)


def _put_varint(out: bytearray, value: int) -> None:
    """Unsigned LEB128."""
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _get_varint(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    result = byte & 0x7F
    shift = 7
    pos += 1
    while True:
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return result, pos
        shift += 7


def _finish(count: int, body: bytes) -> bytes:
    """Header varint (count << 1 | compressed) + body, compressed when that is smaller."""
    if len(body) >= _COMPRESS_FROM:
        squeezed = zlib.compress(body, 6)
        if len(squeezed) < len(body):
            head = bytearray()
            _put_varint(head, count << 1 | 1)
            return bytes(head) + squeezed
    head = bytearray()
    _put_varint(head, count << 1)
    return bytes(head) + body


def _start(blob: bytes) -> tuple[int, bytes]:
    """Inverse of `_finish`: (count, uncompressed body)."""
    header, pos = _get_varint(blob, 0)
    body = blob[pos:]
    if header & 1:
        body = zlib.decompress(body)
    return header >> 1, body


# -- executed lines ----------------------------------------------------------


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
    """{file id: lines} as varints of line ranges; files without lines are left out.

    Memoized when the lines are hashable (frozensets, as the store gives): the
    tests of a parametrized suite store the same mapping thousands of times, and
    packing it (sorting, encoding, compressing) cost more than the rest of saving.

    Layout: header varint (number of files << 1 | zlib flag), then per file in
    id order: the id (zigzag, as a difference from the previous file's id), the
    number of ranges, and per range the start (zigzag difference from the
    previous range's end, minus one) and its length minus one. `{}` is b"".
    """
    try:
        key = frozenset(lines_by_file.items())
    except TypeError:  # sets or lists of lines: not hashable, packed every time
        return _pack_lines(lines_by_file)
    return _pack_lines_memo(key)


@functools.lru_cache(maxsize=4096)
def _pack_lines_memo(items: frozenset[tuple[int, Iterable[int]]]) -> bytes:
    return _pack_lines(dict(items))


def _pack_lines(lines_by_file: Mapping[int, Iterable[int]]) -> bytes:
    """`pack_lines` without the memo."""
    body = bytearray()
    count = 0
    previous_file = 0
    for file_id in sorted(lines_by_file):
        lines = lines_by_file[file_id]
        encoded = _encoded_ranges(lines if isinstance(lines, frozenset) else frozenset(lines))
        if not encoded:
            continue
        count += 1
        _put_varint(body, _zigzag(file_id - previous_file))
        previous_file = file_id
        body += encoded
    if not count:
        return b""
    return _finish(count, bytes(body))


@functools.lru_cache(maxsize=8192)
def _encoded_ranges(lines: frozenset[int]) -> bytes:
    """One file's part of `pack_lines` after its id; b"" for no lines.

    Cached: parametrized tests store the same lines of a file thousands of times.
    """
    ranges = line_ranges(lines)
    if not ranges:
        return b""
    out = bytearray()
    _put_varint(out, len(ranges))
    previous_end = 0
    for first, last in ranges:
        _put_varint(out, _zigzag(first - previous_end - 1))
        _put_varint(out, last - first)
        previous_end = last
    return bytes(out)


def unpack_lines(blob: bytes | None) -> dict[int, set[int]]:
    """Inverse of `pack_lines`."""
    if not blob:
        return {}
    count, body = _start(blob)
    result: dict[int, set[int]] = {}
    pos = 0
    file_id = 0
    for _ in range(count):
        delta, pos = _get_varint(body, pos)
        file_id += _unzigzag(delta)
        n_ranges, pos = _get_varint(body, pos)
        lines: set[int] = set()
        end = 0
        for _ in range(n_ranges):
            gap, pos = _get_varint(body, pos)
            length, pos = _get_varint(body, pos)
            first = end + 1 + _unzigzag(gap)
            end = first + length
            lines.update(range(first, end + 1))
        result[file_id] = lines
    if pos != len(body):
        raise ValueError("unpack_lines: trailing bytes")
    return result


# -- file blocks ---------------------------------------------------------------

BlockTuple = tuple[str, int, int, int]  # name, start, end, checksum


def pack_blocks(blocks: Iterable[BlockTuple]) -> bytes:
    """[(name, start, end, checksum), ...] in order, as varints plus int64 checksums.

    Layout: header varint (number of blocks << 1 | zlib flag), then per block
    the UTF-8 name's length and bytes, start (zigzag) and end - start (zigzag);
    then every checksum as a little-endian int64.
    """
    body = bytearray()
    checksums = array(_INT64)
    for name, start, end, checksum in blocks:
        encoded = name.encode("utf-8", "surrogatepass")
        _put_varint(body, len(encoded))
        body += encoded
        _put_varint(body, _zigzag(start))
        _put_varint(body, _zigzag(end - start))
        checksums.append(checksum)
    if not checksums:
        return b""
    return _finish(len(checksums), bytes(body) + _to_bytes(checksums))


def unpack_blocks(blob: bytes | None) -> list[BlockTuple]:
    """Inverse of `pack_blocks`."""
    if not blob:
        return []
    count, body = _start(blob)
    table_end = len(body) - 8 * count
    checksums = _from_bytes(_INT64, memoryview(body)[table_end:])
    result: list[BlockTuple] = []
    pos = 0
    for checksum in checksums:
        size, pos = _get_varint(body, pos)
        name = body[pos : pos + size].decode("utf-8", "surrogatepass")
        pos += size
        start, pos = _get_varint(body, pos)
        span, pos = _get_varint(body, pos)
        first = _unzigzag(start)
        result.append((name, first, first + _unzigzag(span), checksum))
    if pos != table_end:
        raise ValueError("unpack_blocks: malformed blob")
    return result
