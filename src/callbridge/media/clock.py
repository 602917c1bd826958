"""The conference clock: a tick every 20 ms against absolute deadlines.

Sleeping 20 ms at a time drifts by the work done and the loop's latency; a
tick here is due at ``start + n × period`` on the loop's clock, so lateness
never accumulates. When the loop falls so far behind that ticks are missed
(a stalled process, a paused VM), the clock skips ahead instead of firing a
burst, and counts what it skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

PERIOD = 0.020
# Beyond this many periods late, catching up would be a burst: skip instead.
MAX_CATCH_UP = 5


class MediaClock:
    """Calls ``on_tick(n)`` every period; ``lateness`` keeps the recent lateness in seconds."""

    def __init__(
        self,
        on_tick: Callable[[int], None],
        period: float = PERIOD,
        loop: asyncio.AbstractEventLoop | None = None,
        history: int = 3000,
    ) -> None:
        self.on_tick = on_tick
        self.period = period
        self.loop = loop or asyncio.get_running_loop()
        self.lateness: deque[float] = deque(maxlen=history)
        self.ticks = 0
        self.skipped = 0
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
            self.ticks += missed
            log.warning("media clock %.0f ms late: skipped %d ticks", late * 1000, missed)
            late = now - self._deadline(self.ticks)
        self.lateness.append(late)
        try:
            self.on_tick(self.ticks)
        except Exception:
            # One bad tick must not stop the call for everyone.
            log.exception("media tick %d failed", self.ticks)
        if self._handle is not None:
            self._schedule()
