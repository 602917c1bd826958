"""The conference clock: a tick every 20 ms against absolute deadlines.

Sleeping 20 ms at a time drifts by the work done and the loop's latency; a
tick here is due at ``start + n × period`` on the loop's clock, so lateness
never accumulates. When the loop falls so far behind that ticks are missed
(a stalled process, a paused VM), the clock skips ahead instead of firing a
burst, and counts what it skipped.

Every tick's lateness also lands in a ``ClockStats`` (counts per bucket,
since start), which several clocks may share: the metrics read it as a
histogram at scrape time. A tick pays one bisect and two additions for it,
and nothing is locked: only the loop's thread writes, and a scrape reads
between ticks on the same loop.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

PERIOD = 0.020
# Beyond this many periods late, catching up would be a burst: skip instead.
MAX_CATCH_UP = 5
# Upper bounds (seconds) of the lateness histogram's buckets: a tick within a
# millisecond is on time; past 20 ms it is a whole period late.
LATENESS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.010, 0.020, 0.050, 0.100)


class ClockStats:
    """Lateness of every tick of the clocks that share it, and the ticks they skipped.

    ``counts[i]`` is the number of ticks whose lateness was at most
    ``bounds[i]`` and more than the bound before (the last slot: beyond all
    bounds); they only grow, so they are a Prometheus histogram as they are.
    """

    def __init__(self, bounds: tuple[float, ...] = LATENESS_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0  # seconds of lateness, all ticks together
        self.ticks = 0
        self.skipped = 0

    def observe(self, late: float) -> None:
        self.counts[bisect_left(self.bounds, late)] += 1
        self.total += late
        self.ticks += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, ticks at most that late) for each bucket, +Inf last."""
        running, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets


class MediaClock:
    """Calls ``on_tick(n)`` every period; ``lateness`` keeps the recent lateness in seconds."""

    def __init__(
        self,
        on_tick: Callable[[int], None],
        period: float = PERIOD,
        loop: asyncio.AbstractEventLoop | None = None,
        history: int = 3000,
        stats: ClockStats | None = None,
    ) -> None:
        self.on_tick = on_tick
        self.period = period
        self.loop = loop or asyncio.get_running_loop()
        self.lateness: deque[float] = deque(maxlen=history)
        self.ticks = 0
        self.skipped = 0
        # Shared with the node's other clocks of its kind (``bridge.media_plane``).
        self.stats = stats if stats is not None else ClockStats()
        self._start = 0.0
        self._handle: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        return self._handle is not None

    def start(self) -> None:
        if self._handle is not None:
            return
        self._start = self.loop.time()
        self.ticks = 0
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _deadline(self, n: int) -> float:
        return self._start + n * self.period

    def _schedule(self) -> None:
        self._handle = self.loop.call_at(self._deadline(self.ticks + 1), self._fire)

    def _fire(self) -> None:
        self.ticks += 1
        now = self.loop.time()
        late = now - self._deadline(self.ticks)
        if late > MAX_CATCH_UP * self.period:
            missed = int(late / self.period)
            self.skipped += missed
            self.stats.skipped += missed
            self.ticks += missed
            log.warning("media clock %.0f ms late: skipped %d ticks", late * 1000, missed)
            late = now - self._deadline(self.ticks)
        self.lateness.append(late)
        self.stats.observe(late)
        try:
            self.on_tick(self.ticks)
        except Exception:
            # One bad tick must not stop the call for everyone.
            log.exception("media tick %d failed", self.ticks)
        if self._handle is not None:
            self._schedule()
