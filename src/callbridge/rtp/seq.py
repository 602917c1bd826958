"""Wrap-around arithmetic for RTP sequence numbers (16 bit) and timestamps (32 bit)."""

from __future__ import annotations

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32


def seq_diff(a: int, b: int) -> int:
    """``a − b`` for sequence numbers, in [−32768, 32767], correct across the wrap."""
    d = (a - b) % SEQ_MOD
    return d - SEQ_MOD if d >= SEQ_MOD // 2 else d


def seq_lt(a: int, b: int) -> bool:
    """True if ``a`` comes before ``b`` (RFC 1982 serial number order)."""
    return seq_diff(a, b) < 0


def ts_diff(a: int, b: int) -> int:
    """``a − b`` for timestamps, signed, correct across the 32-bit wrap."""
    d = (a - b) % TS_MOD
    return d - TS_MOD if d >= TS_MOD // 2 else d


class ExtendedSequence:
    """Extends 16-bit sequence numbers to a monotonic count (RFC 3550 A.1, simplified)."""

    def __init__(self) -> None:
        self._highest: int | None = None

    def extend(self, seq: int) -> int:
        """The extended number of ``seq``; late packets map behind the highest seen."""
        if self._highest is None:
            self._highest = seq
            return seq
        candidate = self._highest + seq_diff(seq, self._highest % SEQ_MOD)
        if candidate > self._highest:
            self._highest = candidate
        return candidate
