"""How much of each call each origin's replay holds, so that the one holding the most serves it.

With a hot standby (``cascade.lease``) each origin records the call on its
own disk. One that was down for a stretch (killed, then back as the
standby) holds a replay with that stretch missing; the other, which mixed
the call all along, holds all of it. Each origin's media plane writes how
many seconds its packaged replay holds (``record``); the web app of an
origin asked for the replay answers 503 when another holds clearly more
(``better_elsewhere``), and the cache tier tries that one instead
(``edge.varnish.failover_vcl``).
"""

from __future__ import annotations

from sqlalchemy import select

from callbridge.store.db import Database
from callbridge.store.models import ReplayCoverageRow


class ReplayCoverage:
    def __init__(self, database: Database) -> None:
        self.database = database

    def record(self, event_id: int, node_id: str, seconds: float) -> None:
        """``node_id``'s replay of the event holds ``seconds`` of the call (the latest count)."""
        with self.database.session() as session, session.begin():
            row = session.get(ReplayCoverageRow, (event_id, node_id))
            if row is None:
                session.add(ReplayCoverageRow(event_id=event_id, node_id=node_id, seconds=seconds))
            else:
                row.seconds = seconds

    def better_elsewhere(
        self, event_id: int, node_id: str, seconds: float, margin: float
    ) -> tuple[str, float] | None:
        """The node whose replay holds over ``seconds`` + ``margin``, with how much; or None."""
        with self.database.session() as session:
            row = session.scalars(
                select(ReplayCoverageRow)
                .where(ReplayCoverageRow.event_id == event_id)
                .where(ReplayCoverageRow.node_id != node_id)
                .order_by(ReplayCoverageRow.seconds.desc())
                .limit(1)
            ).first()
        if row is None or row.seconds <= seconds + margin:
            return None
        return row.node_id, row.seconds
