"""Changing an event after its call: the replay window, and archiving.

A scheduled event changes through ``EventStore.update``. Once the call has
started, the only things an IR team still changes are how long the replay
stays up (extend it, shorten it) and, at last, archiving the event. Each
change is one transaction with its audit row in the call log, so the trail
never shows a change that did not happen, nor misses one that did.

The window cannot end before the call ended: the last day (``replay_until``,
inclusive, in the event's zone) is at least the day of the call's ``end``
entry in the call log, or, for a call still live or ended without one, the
day it started. The events page, the announcement, the webcast page and the
replay routes read ``replay_until`` from the event, and the bridge reads it
per replay caller, so each follows the new date as soon as it is written
(the media routes within their two-second event cache; the cache tier keeps
a replay answer at most until the old window's end or an hour, whichever is
sooner, so a shortened window reaches it within that).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select

from callbridge.events.schema import EventRecord, EventState
from callbridge.store.calllog import LogEntry, LogKind, log_row
from callbridge.store.db import Database
from callbridge.store.events import TRANSITIONS, Conflict, EventStore, StoreError, to_record
from callbridge.store.models import CallLogRow, EventRow

# States in which the call has started: only the replay window changes now.
AFTER_START = frozenset({EventState.LIVE, EventState.ENDED, EventState.ARCHIVED})


class AfterCall:
    """The replay window and archiving of events whose call has started."""

    def __init__(self, database: Database, events: EventStore | None = None) -> None:
        self.database = database
        self.events = events or EventStore(database)

    def earliest_last_day(self, record: EventRecord, ended_at: datetime | None) -> date:
        """The first date ``replay_until`` may take: the day the call ended, in its zone."""
        moment = ended_at if ended_at is not None else record.starts_at
        return moment.astimezone(record.zone).date()

    def change_replay(
        self, event_id: int, replay_until: date, *, actor: str, now: datetime
    ) -> EventRecord:
        """Move the last day of the replay (extend or shorten); returns the event.

        Raises ``Conflict`` for an event whose call has not started (change
        it with ``EventStore.update``) and ``StoreError`` naming
        ``replay_until`` for a day before the call ended. Writes a
        ``replay_changed`` audit row with the old and new day.
        """
        with self.database.session() as session, session.begin():
            row = self.events._load(session, event_id)
            state = EventState(row.state)
            if state not in AFTER_START:
                raise Conflict(
                    f"event {event_id} is {state}; change it as a whole until its call starts"
                )
            record = to_record(row)
            ended_at = session.scalar(
                select(func.max(CallLogRow.at)).where(
                    CallLogRow.event_id == event_id, CallLogRow.kind == LogKind.END.value
                )
            )
            first = self.earliest_last_day(
                record, ended_at if state is not EventState.LIVE else None
            )
            if replay_until < first:
                raise StoreError(
                    f"the replay cannot end before the call ended ({first.isoformat()})",
                    field="replay_until",
                )
            before = row.replay_until
            row.replay_until = replay_until
            session.add(
                log_row(
                    LogEntry(
                        LogKind.REPLAY_CHANGED,
                        now,
                        event_id,
                        channel="console",
                        actor=actor,
                        detail=_detail(before, replay_until),
                    )
                )
            )
            session.flush()
            return to_record(row)

    def archive(self, event_id: int, *, actor: str, now: datetime) -> EventRecord:
        """Archive an event whose call is over; its codes are freed and open nothing.

        Raises ``Conflict`` unless the event is ended (an unheld scheduled
        event is deleted or archived through ``EventStore.set_state``).
        """
        with self.database.session() as session, session.begin():
            row: EventRow = self.events._load(session, event_id)
            current = EventState(row.state)
            if current is not EventState.ENDED:
                raise Conflict(f"event {event_id} is {current}; only an ended event is archived")
            assert EventState.ARCHIVED in TRANSITIONS[current]
            row.state = EventState.ARCHIVED.value
            row.claims.clear()  # an archived event's codes open nothing: free them
            session.add(
                log_row(LogEntry(LogKind.ARCHIVE, now, event_id, channel="console", actor=actor))
            )
            session.flush()
            return to_record(row)


def _detail(before: date | None, after: date) -> dict[str, str | None]:
    return {"from": before.isoformat() if before else None, "to": after.isoformat()}
