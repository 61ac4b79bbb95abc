"""Unit tests for testmon_watch.core.packing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from testmon_watch.core.packing import (
    line_ranges,
    pack_blocks,
    pack_checksums,
    pack_ints,
    pack_lines,
    unpack_blocks,
    unpack_checksums,
    unpack_ints,
    unpack_lines,
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@pytest.mark.parametrize(
    "values",
    [[], [0], [1, 2, 3], [3, 1, 2, 3, 1], [-(2**63), 2**63 - 1, 0, -1]],
)
def test_pack_ints_round_trip_is_sorted_unique(values: list[int]) -> None:
    assert list(unpack_ints(pack_ints(values))) == sorted(set(values))


def test_pack_ints_equal_sets_give_equal_bytes() -> None:
    assert pack_ints([5, 1, 3]) == pack_ints([3, 5, 1, 1])
    assert pack_ints([1, 2]) != pack_ints([1, 3])


def test_pack_ints_empty_is_empty_bytes() -> None:
    assert pack_ints([]) == b""
    assert list(unpack_ints(b"")) == []
    assert list(unpack_ints(None)) == []


def test_pack_ints_accepts_generators() -> None:
    assert list(unpack_ints(pack_ints(i for i in (4, 2, 4)))) == [2, 4]


def test_pack_ints_out_of_range_fails_loudly() -> None:
    with pytest.raises(OverflowError):
        pack_ints([2**63])


@given(st.sets(INT64))
def test_pack_ints_round_trip_property(values: set[int]) -> None:
    assert list(unpack_ints(pack_ints(values))) == sorted(values)


@pytest.mark.parametrize(
    ("lines", "ranges"),
    [
        ([], []),
        ([7], [[7, 7]]),
        ([3, 4, 5, 9], [[3, 5], [9, 9]]),
        ([9, 5, 3, 4, 4], [[3, 5], [9, 9]]),
        ([1, 3, 5], [[1, 1], [3, 3], [5, 5]]),
        ([10, 11, 12, 13], [[10, 13]]),
    ],
)
def test_line_ranges(lines: list[int], ranges: list[list[int]]) -> None:
    assert line_ranges(lines) == ranges


def test_pack_lines_round_trip() -> None:
    data = {1: {1, 2, 3, 10}, 42: {5}, 7: set(range(100, 200))}
    assert unpack_lines(pack_lines(data)) == data


def test_pack_lines_drops_files_without_lines() -> None:
    assert unpack_lines(pack_lines({1: set(), 2: [4, 5]})) == {2: {4, 5}}


def test_pack_lines_empty() -> None:
    assert pack_lines({}) == b""
    assert pack_lines({1: set(), 2: []}) == b""
    assert unpack_lines(b"") == {}
    assert unpack_lines(None) == {}


def test_pack_lines_stores_ranges_not_every_line() -> None:
    blob = pack_lines({3: range(1, 10_001)})
    # header (1 file, not compressed), file id 3, 1 range, starts at line 1, 9999 more
    assert blob == bytes([2, 6, 1, 0]) + bytes([0x8F, 0x4E])
    assert unpack_lines(blob) == {3: set(range(1, 10_001))}


def test_pack_lines_is_small_for_a_typical_test() -> None:
    blob = pack_lines({2003: {6}, 7: {10, 11, 12, 20}})
    assert len(blob) <= 12
    assert unpack_lines(blob) == {2003: {6}, 7: {10, 11, 12, 20}}


def test_pack_lines_compresses_when_that_is_smaller() -> None:
    data = {file_id: set(range(1, 400, 3)) for file_id in range(1, 30)}
    blob = pack_lines(data)
    assert blob[0] & 1  # the zlib flag
    assert len(blob) < 200
    assert unpack_lines(blob) == data


def test_pack_lines_keeps_odd_line_numbers() -> None:
    data = {-5: {0, -3, 1}, 0: {2**40, 1}, 2**62: {7}}
    assert unpack_lines(pack_lines(data)) == data


def test_pack_lines_rejects_trailing_garbage() -> None:
    with pytest.raises(ValueError, match="trailing bytes"):
        unpack_lines(pack_lines({1: {1}}) + b"\x00")


@given(
    st.dictionaries(st.integers(0, 10_000), st.sets(st.integers(1, 5_000), min_size=1), max_size=40)
)
def test_pack_lines_round_trip_property(data: dict[int, set[int]]) -> None:
    assert unpack_lines(pack_lines(data)) == data


@given(st.dictionaries(INT64, st.sets(st.integers(-(2**40), 2**40), min_size=1), max_size=5))
def test_pack_lines_round_trip_any_ints(data: dict[int, set[int]]) -> None:
    assert unpack_lines(pack_lines(data)) == data


# -- pack_ints widths ----------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "width"),
    [
        ([0, 255], 1),
        ([1, 256], 2),
        ([65_535], 2),
        ([65_536], 4),
        ([2**32 - 1], 4),
        ([2**32], 8),
        ([-1, 5], 8),
    ],
)
def test_pack_ints_uses_the_narrowest_width(values: list[int], width: int) -> None:
    blob = pack_ints(values)
    assert blob[0] == width and len(blob) == 1 + width * len(values)
    assert list(unpack_ints(blob)) == sorted(values)


def test_pack_ints_is_little_endian() -> None:
    assert pack_ints([1, 3002]) == bytes([2, 1, 0, 0xBA, 0x0B])
    assert pack_ints([-2]) == bytes([8]) + (-2).to_bytes(8, "little", signed=True)


def test_unpack_ints_rejects_a_bad_blob() -> None:
    with pytest.raises(ValueError, match="not a packed int set"):
        unpack_ints(bytes([3, 1, 2, 3]))
    with pytest.raises(ValueError, match="not a packed int set"):
        unpack_ints(bytes([2, 1, 2, 3]))


# -- checksums -----------------------------------------------------------------


def test_pack_checksums_is_eight_bytes_each_sorted() -> None:
    blob = pack_checksums([5, -1, 5])
    assert blob == (-1).to_bytes(8, "little", signed=True) + (5).to_bytes(8, "little")
    assert list(unpack_checksums(blob)) == [-1, 5]
    assert pack_checksums([]) == b"" and list(unpack_checksums(b"")) == []
    assert list(unpack_checksums(None)) == []


@given(st.sets(INT64))
def test_pack_checksums_round_trip_property(values: set[int]) -> None:
    assert list(unpack_checksums(pack_checksums(values))) == sorted(values)


# -- blocks --------------------------------------------------------------------


def test_pack_blocks_round_trip_keeps_order() -> None:
    blocks = [
        ("<module>", 1, 82, 7502521631784407953),
        ("Client.fetch", 6, 9, -(2**63)),
        ("f\u00e9\U0001f600", 10, 10, 2**63 - 1),
        ("<listing>", 0, 0, 0),
        ("", -3, -7, 1),
    ]
    assert unpack_blocks(pack_blocks(blocks)) == blocks


def test_pack_blocks_empty() -> None:
    assert pack_blocks([]) == b""
    assert unpack_blocks(b"") == [] and unpack_blocks(None) == []


def test_pack_blocks_is_smaller_than_json() -> None:
    blocks = [("<module>", 1, 400, -5)] + [
        (f"test_{i:02}", 6 + 4 * i, 8 + 4 * i, (i * 0x9E3779B97F4A7C15) % 2**63) for i in range(40)
    ]
    blob = pack_blocks(blocks)
    assert len(blob) < len(json.dumps(blocks)) / 2
    assert unpack_blocks(blob) == blocks


def test_unpack_blocks_rejects_a_malformed_blob() -> None:
    blob = bytearray(pack_blocks([("f", 1, 2, 3)]))
    blob[1] = 5  # the name claims 5 bytes
    with pytest.raises((ValueError, IndexError)):
        unpack_blocks(bytes(blob))


BLOCKS = st.lists(
    st.tuples(st.text(max_size=30), st.integers(-100, 10**6), st.integers(-100, 10**6), INT64),
    max_size=60,
)


@given(BLOCKS)
def test_pack_blocks_round_trip_property(blocks: list[tuple[str, int, int, int]]) -> None:
    assert unpack_blocks(pack_blocks(blocks)) == blocks


def test_pack_lines_of_equal_mappings_is_packed_once() -> None:
    first = {3: frozenset({1, 2, 3}), 1: frozenset({9})}
    second = {1: frozenset([9]), 3: frozenset(range(1, 4))}
    assert pack_lines(first) is pack_lines(second)  # the memo's bytes, not packed again
    assert unpack_lines(pack_lines(second)) == {1: {9}, 3: {1, 2, 3}}


def test_pack_lines_of_unhashable_lines_gives_the_same_bytes() -> None:
    frozen = {2: frozenset({4, 5}), 7: frozenset({1})}
    assert pack_lines({2: {4, 5}, 7: [1]}) == pack_lines(frozen)
