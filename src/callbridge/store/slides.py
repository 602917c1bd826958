"""Which slide was shown when: the moderator's changes, in order, for the webcast and replay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from callbridge.store.db import Database
from callbridge.store.models import SlideChangeRow


@dataclass(frozen=True)
class SlideChange:
    slide: int
    at: datetime
    actor: str


class SlideLog:
    def __init__(self, database: Database) -> None:
        self.database = database

    def show(self, event_id: int, slide: int, at: datetime, actor: str) -> SlideChange:
        """Record that ``slide`` (1-based) is shown from ``at``."""
        with self.database.session() as session:
            session.add(SlideChangeRow(event_id=event_id, slide=slide, at=at, actor=actor[:100]))
            session.commit()
        return SlideChange(slide, at, actor)

    def changes(self, event_id: int) -> list[SlideChange]:
        """Every change of the event, first first."""
        with self.database.session() as session:
            rows = session.scalars(
                select(SlideChangeRow)
                .where(SlideChangeRow.event_id == event_id)
                .order_by(SlideChangeRow.at, SlideChangeRow.id)
            ).all()
            return [SlideChange(row.slide, row.at, row.actor) for row in rows]
