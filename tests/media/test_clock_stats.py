"""The clocks' lateness buckets (``ClockStats``): what the metrics read as a histogram."""

from __future__ import annotations

import math

from callbridge.media.clock import LATENESS_BUCKETS, ClockStats


def test_each_tick_lands_in_its_bucket_and_the_counts_add_up() -> None:
    stats = ClockStats()
    for late in (0.0, 0.0004, 0.0005, 0.003, 0.021, 0.5):
        stats.observe(late)
    buckets = dict(stats.cumulative())
    # A bound is inclusive (Prometheus's "le"): 0.5 ms lands in the 0.5 ms bucket.
    assert buckets[0.0005] == 3
    assert buckets[0.001] == 3
    assert buckets[0.005] == 4
    assert buckets[0.05] == 5
    assert buckets[math.inf] == 6 == stats.ticks
    assert math.isclose(stats.total, 0.5249)
    assert [b for b, _ in stats.cumulative()][:-1] == list(LATENESS_BUCKETS)


def test_counts_never_go_down() -> None:
    stats = ClockStats(bounds=(0.001,))
    seen = []
    for late in (0.002, 0.0, 0.002):
        stats.observe(late)
        seen.append([n for _, n in stats.cumulative()])
    assert seen == [[0, 1], [1, 2], [1, 3]]
