"""How much of a call each origin's replay holds, on SQLite and on PostgreSQL."""

from __future__ import annotations

from callbridge.store.coverage import ReplayCoverage
from callbridge.store.db import Database


def test_the_origin_holding_clearly_more_is_named(database: Database) -> None:
    coverage = ReplayCoverage(database)
    assert coverage.better_elsewhere(7, "origin-a", 10.0, 2.0) is None  # nobody else recorded
    coverage.record(7, "origin-a", 41.0)  # killed mid-call, back as the standby: a gap
    coverage.record(7, "origin-b", 60.0)
    coverage.record(8, "origin-c", 900.0)  # another call
    assert coverage.better_elsewhere(7, "origin-a", 41.0, 2.0) == ("origin-b", 60.0)
    assert coverage.better_elsewhere(7, "origin-b", 60.0, 2.0) is None
    coverage.record(7, "origin-a", 59.0)  # counted again: within the margin
    assert coverage.better_elsewhere(7, "origin-a", 59.0, 2.0) is None
