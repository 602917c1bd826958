from __future__ import annotations

import asyncio
import time

import pytest

from callbridge.media.clock import MediaClock

# Timing-sensitive: runs alone, after the parallel part of the suite (scripts/test).
pytestmark = pytest.mark.serial


def test_ticks_do_not_drift() -> None:
    async def main() -> tuple[int, float, MediaClock]:
        ticks: list[int] = []
        clock = MediaClock(ticks.append, period=0.005)
        began = clock.loop.time()
        clock.start()
        # Burn time inside ticks to show the work does not push deadlines back.
        clock.on_tick = lambda n: (ticks.append(n), time.sleep(0.002))  # type: ignore[assignment,func-returns-value]
        await asyncio.sleep(0.5)
        clock.stop()
        return len(ticks), clock.loop.time() - began, clock

    count, elapsed, clock = asyncio.run(main())
    expected = elapsed / 0.005
    # Drift would lose 2 ms per 5 ms tick (40 %); allow only scheduling noise.
    assert count + clock.skipped >= expected * 0.9
    assert max(clock.lateness) < 0.2


def test_a_stall_skips_ahead_instead_of_bursting() -> None:
    async def main() -> MediaClock:
        seen: list[int] = []
        clock = MediaClock(seen.append, period=0.005)
        clock.start()
        await asyncio.sleep(0.02)
        time.sleep(0.1)  # the loop stalls for 20 periods
        await asyncio.sleep(0.02)
        clock.stop()
        return clock

    clock = asyncio.run(main())
    assert clock.skipped >= 10


def test_a_failing_tick_does_not_stop_the_clock() -> None:
    async def main() -> int:
        seen: list[int] = []

        def tick(n: int) -> None:
            seen.append(n)
            if n == 2:
                raise RuntimeError("boom")

        clock = MediaClock(tick, period=0.005)
        clock.start()
        await asyncio.sleep(0.1)
        clock.stop()
        return len(seen)

    assert asyncio.run(main()) > 5
