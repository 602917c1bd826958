"""The nodes' heartbeat rows, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callbridge.store.db import Database
from callbridge.store.nodes import STALE_AFTER, NodeStore


def test_beats_and_health(database: Database) -> None:
    nodes = NodeStore(database)
    t0 = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)
    nodes.beat("origin", "origin", "10.0.0.2:5060", 3, t0, t0)
    nodes.beat("edge-a", "edge", "10.0.0.3:5060", 0, t0, t0)
    nodes.beat("edge-a", "edge", "10.0.0.3:5060", 250, t0, t0 + timedelta(seconds=20))
    health = nodes.health(t0 + timedelta(seconds=21))
    assert [(h.node_id, h.callers, h.up) for h in health] == [
        ("edge-a", 250, True),
        ("origin", 3, False),  # silent for longer than STALE_AFTER
    ]
    assert health[1].last_seen == t0
    assert timedelta(seconds=1) < STALE_AFTER < timedelta(seconds=21)
