"""Figures the benchmarks share: CPU time, percentiles, what a listener's RTP stream looked like."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

# (arrival in seconds, RTP sequence number, RTP timestamp) of one packet
Arrival = tuple[float, int, int]


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (``callbridge serve`` is a supervisor and two children)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process and its live children (all their threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / tick
        system += int(fields[12]) / tick
    return user, system


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its live children (KiB)."""
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total += sum(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
        )
    return total


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
