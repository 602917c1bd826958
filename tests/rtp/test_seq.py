from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from callbridge.rtp.seq import (
    ExtendedSequence,
    seq_add,
    seq_diff,
    seq_lt,
    ts_add,
    ts_diff,
    ts_lt,
)


def test_seq_diff_at_the_wrap() -> None:
    assert seq_diff(2, 65534) == 4
    assert seq_diff(65534, 2) == -4
    assert seq_diff(0, 65535) == 1
    assert seq_diff(5, 5) == 0
    # Half the space away is the furthest "behind" can be.
    assert seq_diff(32768, 0) == -32768
    assert seq_diff(32767, 0) == 32767


def test_seq_lt_at_the_wrap() -> None:
    assert seq_lt(65535, 0)
    assert not seq_lt(0, 65535)
    assert seq_lt(65000, 100)
    assert not seq_lt(7, 7)


def test_ts_at_the_wrap() -> None:
    assert ts_diff(100, 0xFFFFFF00) == 356
    assert ts_diff(0xFFFFFF00, 100) == -356
    assert ts_lt(0xFFFFFF60, 0)
    assert ts_add(0xFFFFFF60, 160) == 0
    assert seq_add(65535, 1) == 0
    assert seq_add(0, -1) == 65535


@given(st.integers(0, 0xFFFF), st.integers(-32768, 32767))
def test_seq_add_and_diff_are_inverse(a: int, n: int) -> None:
    assert seq_diff(seq_add(a, n), a) == n


@given(st.integers(0, 0xFFFFFFFF), st.integers(-(2**31), 2**31 - 1))
def test_ts_add_and_diff_are_inverse(a: int, n: int) -> None:
    assert ts_diff(ts_add(a, n), a) == n


def test_extended_sequence_counts_cycles() -> None:
    ext = ExtendedSequence()
    assert ext.highest is None and ext.cycles == 0
    got = [ext.extend(s) for s in (65534, 65535, 0, 1, 65535, 2)]
    # The late 65535 maps behind the wrap, not a whole cycle ahead.
    assert got == [65534, 65535, 65536, 65537, 65535, 65538]
    assert ext.highest == 65538
    assert ext.cycles == 1


def test_extended_sequence_over_many_wraps() -> None:
    ext = ExtendedSequence()
    start = 60000
    for n in range(200_000):
        assert ext.extend((start + n) % 65536) == start + n
    assert ext.cycles == (start + 199_999) // 65536


@given(st.integers(0, 0xFFFF), st.lists(st.integers(-50, 50), max_size=100))
def test_extended_sequence_recovers_the_true_count(start: int, steps: list[int]) -> None:
    # Any walk whose steps stay within half the space is recovered exactly.
    ext = ExtendedSequence()
    true = start
    assert ext.extend(start) == start
    for step in steps:
        true += step
        assert ext.extend(true % 65536) == true
