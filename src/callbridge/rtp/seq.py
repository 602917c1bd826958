"""Wrap-around arithmetic for RTP sequence numbers (16 bit) and timestamps (32 bit).

Every comparison of sequence numbers or timestamps in callbridge goes
through these helpers: a plain ``a < b`` is wrong once per 65,536 packets
(22 minutes of 20 ms audio) and once per 2^32 samples, and that is exactly
the bug a long earnings call finds.
"""

from __future__ import annotations

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32

# RFC 3550 A.1: how far a sequence number may jump before it is a new
# source rather than loss, and how far back before it is a restart rather
# than a late packet.
MAX_DROPOUT = 3000
MAX_MISORDER = 100


def seq_diff(a: int, b: int) -> int:
    """``a − b`` for sequence numbers, in [−32768, 32767], correct across the wrap."""
    d = (a - b) % SEQ_MOD
    return d - SEQ_MOD if d >= SEQ_MOD // 2 else d


def seq_lt(a: int, b: int) -> bool:
    """True if ``a`` comes before ``b`` (RFC 1982 serial number order)."""
    return seq_diff(a, b) < 0


def seq_add(a: int, n: int) -> int:
    """The sequence number ``n`` packets after ``a`` (``n`` may be negative)."""
    return (a + n) % SEQ_MOD


def ts_diff(a: int, b: int) -> int:
    """``a − b`` for timestamps, in [−2^31, 2^31), correct across the 32-bit wrap."""
    d = (a - b) % TS_MOD
    return d - TS_MOD if d >= TS_MOD // 2 else d


def ts_lt(a: int, b: int) -> bool:
    """True if timestamp ``a`` comes before ``b``."""
    return ts_diff(a, b) < 0


def ts_add(a: int, n: int) -> int:
    """The timestamp ``n`` samples after ``a``."""
    return (a + n) % TS_MOD


class ExtendedSequence:
    """Extends 16-bit sequence numbers to a monotonic count (RFC 3550 A.1).

    Call ``extend`` with every received sequence number, in arrival order. A
    packet up to half the sequence space behind the highest seen maps behind
    it (a late packet), so the count goes negative only for packets older
    than the very first one.
    """

    def __init__(self) -> None:
        self._highest: int | None = None

    @property
    def highest(self) -> int | None:
        """The highest extended sequence number seen, or None before the first packet."""
        return self._highest

    @property
    def cycles(self) -> int:
        """How many times the 16-bit counter has wrapped (RFC 3550's ``cycles`` / 65536)."""
        return 0 if self._highest is None else self._highest // SEQ_MOD

    def extend(self, seq: int) -> int:
        """The extended number of ``seq``; updates the highest seen if it is newer."""
        if self._highest is None:
            self._highest = seq
            return seq
        candidate = self._highest + seq_diff(seq, self._highest % SEQ_MOD)
        if candidate > self._highest:
            self._highest = candidate
        return candidate
