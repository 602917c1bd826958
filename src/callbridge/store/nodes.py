"""The bridge nodes' heartbeat rows: which nodes are up, in which role, with how many callers.

Each node of a cascade calls ``beat`` every ``HEARTBEAT_INTERVAL`` seconds
(from its database thread); the origin's console calls ``health``. A node
whose last beat is older than ``STALE_AFTER`` is shown as down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from callbridge.store.db import Database
from callbridge.store.models import BridgeNodeRow

HEARTBEAT_INTERVAL = 2.0
STALE_AFTER = timedelta(seconds=10)
MAX_NODES = 500


@dataclass(frozen=True)
class NodeHealth:
    node_id: str
    role: str
    sip: str
    callers: int
    started_at: datetime
    last_seen: datetime
    up: bool


class NodeStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def beat(
        self, node_id: str, role: str, sip: str, callers: int, started_at: datetime, now: datetime
    ) -> None:
        """Write this node's row as it stands ``now`` (insert it the first time)."""
        with self.database.session() as session, session.begin():
            row = session.get(BridgeNodeRow, node_id)
            if row is None:
                row = BridgeNodeRow(node_id=node_id)
                session.add(row)
            row.role, row.sip, row.callers = role, sip, callers
            row.started_at, row.last_seen = started_at, now

    def health(self, now: datetime) -> list[NodeHealth]:
        """Every node that ever beat (at most ``MAX_NODES``, freshest first), up or not."""
        with self.database.session() as session:
            rows = session.scalars(
                select(BridgeNodeRow).order_by(BridgeNodeRow.last_seen.desc()).limit(MAX_NODES)
            ).all()
            return [
                NodeHealth(
                    row.node_id,
                    row.role,
                    row.sip,
                    row.callers,
                    row.started_at,
                    row.last_seen,
                    up=now - row.last_seen <= STALE_AFTER,
                )
                for row in rows
            ]
