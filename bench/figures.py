"""Figures the benchmarks share: CPU time, percentiles, what a listener's RTP stream looked like.

CPU and memory of a process tree come from ``tests.support.procs`` (the tests measure
the same way); they are re-exported here for the benches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from tests.support.procs import cpu_seconds, process_tree, rss_kib

__all__ = ["cpu_seconds", "process_tree", "rss_kib"]

# (arrival in seconds, RTP sequence number, RTP timestamp) of one packet
Arrival = tuple[float, int, int]


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"p50 {at(0.5):.2f}, p99 {at(0.99):.2f}, max {ordered[-1]:.2f}"


@dataclass
class StreamFigures:
    """Listener streams as they arrived: interval deviation, RFC 3550 jitter, loss."""

    deviations_ms: list[float] = field(default_factory=list)  # |interval - 20 ms × gap|
    jitter_ms: list[float] = field(default_factory=list)  # RFC 3550 6.4.1, one per stream
    lost: int = 0
    expected: int = 0

    @property
    def streams(self) -> int:
        return len(self.jitter_ms)


def stream_figures(streams: Iterable[list[Arrival]], minimum: int = 50) -> StreamFigures:
    """Figures of the streams with at least ``minimum`` packets (8 kHz clock, 20 ms frames)."""
    figures = StreamFigures()
    for packets in streams:
        if len(packets) < minimum:
            continue
        packets = sorted(packets)
        jitter = 0.0
        for (t0, s0, ts0), (t1, s1, ts1) in pairwise(packets):
            gap = (s1 - s0) % 65536
            if gap >= 3000:
                continue  # reordered: not an interval
            figures.lost += gap - 1
            figures.deviations_ms.append(abs((t1 - t0) - 0.020 * gap) * 1000)
            transit = (t1 - t0) - ((ts1 - ts0) % (1 << 32)) / 8000
            jitter += (abs(transit) - jitter) / 16
        figures.expected += (packets[-1][1] - packets[0][1]) % 65536 + 1
        figures.jitter_ms.append(jitter * 1000)
    return figures
