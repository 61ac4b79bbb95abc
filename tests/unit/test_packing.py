"""Unit tests for testmon_watch.core.packing."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from testmon_watch.core.packing import (
    line_ranges,
    pack_ints,
    pack_lines,
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
    blob = pack_lines({})
    assert isinstance(blob, bytes) and blob  # valid zlib of "{}"
    assert unpack_lines(blob) == {}
    assert unpack_lines(b"") == {}
    assert unpack_lines(None) == {}


def test_pack_lines_stores_ranges_not_every_line() -> None:
    blob = pack_lines({3: range(1, 10_001)})
    assert zlib.decompress(blob) == b'{"3":[[1,10000]]}'


@given(st.dictionaries(st.integers(0, 10_000), st.sets(st.integers(1, 5_000), min_size=1)))
def test_pack_lines_round_trip_property(data: dict[int, set[int]]) -> None:
    assert unpack_lines(pack_lines(data)) == data
