"""Events in and out of the database.

``EventStore`` is the one place that writes events. It generates passcodes,
keeps them unique among events that are not archived, and writes an event
with its contacts and numbers in one transaction, so a refused event leaves
no row behind.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from callbridge.events.schema import (
    Company,
    Contact,
    DialIn,
    EventFile,
    EventPatch,
    EventRecord,
    EventState,
    EventSummary,
    Registration,
)
from callbridge.store.db import Database, valid_id
from callbridge.store.models import CompanyRow, ContactRow, DialInRow, EventRow, utcnow

PASSCODE_DIGITS = 7
LIVE = "live"
REPLAY = "replay"

# Which state may follow which; the bridge and the operator move events along it.
TRANSITIONS: dict[EventState, frozenset[EventState]] = {
    EventState.SCHEDULED: frozenset({EventState.LIVE, EventState.ENDED, EventState.ARCHIVED}),
    EventState.LIVE: frozenset({EventState.ENDED}),
    EventState.ENDED: frozenset({EventState.ARCHIVED}),
    EventState.ARCHIVED: frozenset(),
}


class StoreError(Exception):
    """A request the store refuses; ``field`` names the input at fault, if any."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class EventNotFound(StoreError):
    status = 404


class Conflict(StoreError):
    status = 409


@dataclass(frozen=True)
class PasscodeMatch:
    """What a dialled number plus a passcode opens."""

    event_id: int
    role: str  # "speaker", "listener" or "replay"


def _generate_code(taken: set[str], digits: int = PASSCODE_DIGITS) -> str:
    # 10^7 codes and a handful of live events: a collision is rare, but the
    # loop makes uniqueness a guarantee rather than a likelihood.
    while True:
        code = f"{secrets.randbelow(10**digits):0{digits}d}"
        if code not in taken and not code.startswith("0"):
            return code


def to_record(row: EventRow) -> EventRecord:
    company = row.company
    return EventRecord(
        id=row.id,
        company=Company(
            id=company.id,
            name=company.name,
            ticker=company.ticker,
            exchange=company.exchange,
            website=company.website,
            city=company.city,
            about=company.about,
        ),
        contacts=[
            Contact(
                group=c.group,
                name=c.name,
                title=c.title,
                organization=c.organization,
                phone=c.phone,
                email=c.email,
            )
            for c in row.contacts
        ],
        title=row.title,
        period=row.period,
        kind=row.kind,
        starts_at=row.starts_at,
        timezone=row.timezone,
        duration_minutes=row.duration_minutes,
        announced_on=row.announced_on,
        passcode=row.passcode,
        speaker_passcode=row.speaker_passcode,
        replay_until=row.replay_until,
        replay_passcode=row.replay_passcode,
        webcast_url=row.webcast_url,
        registration=Registration(row.registration),
        glossary=[line for line in row.glossary.splitlines() if line],
        dial_in=[DialIn(label=d.label, number=d.number) for d in row.dial_ins if d.purpose == LIVE],
        replay_dial_in=[
            DialIn(label=d.label, number=d.number) for d in row.dial_ins if d.purpose == REPLAY
        ],
        state=EventState(row.state),
    )


def _dial_in_rows(purpose: str, numbers: Iterable[DialIn]) -> list[DialInRow]:
    rows: list[DialInRow] = []
    seen: set[str] = set()
    for position, dial_in in enumerate(numbers):
        if dial_in.number in seen:
            field = "dial_in" if purpose == LIVE else "replay_dial_in"
            raise StoreError(f"{dial_in.number} is listed twice", field=f"event.{field}")
        seen.add(dial_in.number)
        rows.append(
            DialInRow(
                purpose=purpose, position=position, label=dial_in.label, number=dial_in.number
            )
        )
    return rows


class EventStore:
    """Create, read, change and delete events; look passcodes up for the IVR."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def _load(self, session: Session, event_id: int) -> EventRow:
        if not valid_id(event_id):
            raise EventNotFound(f"there is no event {event_id}")
        row = session.scalar(
            select(EventRow)
            .where(EventRow.id == event_id)
            .options(
                selectinload(EventRow.company),
                selectinload(EventRow.contacts),
                selectinload(EventRow.dial_ins),
            )
        )
        if row is None:
            raise EventNotFound(f"there is no event {event_id}")
        return row

    def _codes_in_use(self, session: Session, exclude_event: int | None = None) -> set[str]:
        query = select(
            EventRow.passcode, EventRow.speaker_passcode, EventRow.replay_passcode
        ).where(EventRow.state != EventState.ARCHIVED.value)
        if exclude_event is not None:
            query = query.where(EventRow.id != exclude_event)
        taken: set[str] = set()
        for row in session.execute(query):
            taken.update(row)
        return taken

    def create(self, spec: EventFile) -> EventRecord:
        """Store a validated event with its company and contacts; return it with its id.

        Raises Conflict naming the field when a given passcode is already in
        use by another event that is not archived.
        """
        with self.database.session() as session, session.begin():
            taken = self._codes_in_use(session)
            ev = spec.event
            for field in ("passcode", "speaker_passcode", "replay_passcode"):
                code = getattr(ev, field)
                if code is not None and code in taken:
                    raise Conflict("is already in use by another event", field=f"event.{field}")
            chosen: set[str] = set(taken)
            codes: dict[str, str] = {}
            for field in ("passcode", "speaker_passcode", "replay_passcode"):
                code = getattr(ev, field) or _generate_code(chosen)
                if field != "replay_passcode" and code in codes.values():
                    raise Conflict("must differ from the other passcodes", field=f"event.{field}")
                codes[field] = code
                chosen.add(code)

            company = session.scalar(
                select(CompanyRow).where(CompanyRow.ticker == spec.company.ticker.upper())
            )
            if company is None:
                company = CompanyRow(ticker=spec.company.ticker.upper())
                session.add(company)
            company.name = spec.company.name
            company.exchange = spec.company.exchange
            company.website = str(spec.company.website) if spec.company.website else None
            company.city = spec.company.city
            company.about = spec.company.about

            start = ev.start_utc()
            row = EventRow(
                company=company,
                title=ev.title,
                period=ev.period,
                kind=ev.kind.value,
                starts_at=start,
                timezone=ev.timezone,
                duration_minutes=ev.duration_minutes,
                announced_on=ev.announced_on or utcnow().astimezone(ZoneInfo(ev.timezone)).date(),
                passcode=codes["passcode"],
                speaker_passcode=codes["speaker_passcode"],
                replay_passcode=codes["replay_passcode"],
                replay_until=ev.replay_until,
                webcast_url=str(ev.webcast_url) if ev.webcast_url else None,
                registration=ev.registration.value,
                glossary="\n".join(ev.glossary),
                state=EventState.SCHEDULED.value,
                contacts=[
                    ContactRow(
                        position=i,
                        group=c.group,
                        name=c.name,
                        title=c.title,
                        organization=c.organization,
                        phone=c.phone,
                        email=c.email,
                    )
                    for i, c in enumerate(spec.contacts)
                ],
                dial_ins=_dial_in_rows(LIVE, ev.dial_in) + _dial_in_rows(REPLAY, ev.replay_dial_in),
            )
            session.add(row)
            session.flush()
            return to_record(self._load(session, row.id))

    def get(self, event_id: int) -> EventRecord:
        with self.database.session() as session:
            return to_record(self._load(session, event_id))

    def list_events(self, states: Iterable[EventState] | None = None) -> list[EventRecord]:
        """Every event, soonest first, optionally only those in ``states``."""
        with self.database.session() as session:
            query = (
                select(EventRow)
                .options(
                    selectinload(EventRow.company),
                    selectinload(EventRow.contacts),
                    selectinload(EventRow.dial_ins),
                )
                .order_by(EventRow.starts_at, EventRow.id)
            )
            if states is not None:
                query = query.where(EventRow.state.in_([s.value for s in states]))
            return [to_record(row) for row in session.scalars(query)]

    def summaries(self) -> list[EventSummary]:
        return [
            EventSummary(
                id=r.id,
                ticker=r.company.ticker,
                title=r.title,
                starts_at=r.starts_at,
                timezone=r.timezone,
                state=r.state,
            )
            for r in self.list_events()
        ]

    def update(self, event_id: int, patch: EventPatch) -> EventRecord:
        """Change a scheduled event; the result is validated as a whole before it is kept."""
        with self.database.session() as session, session.begin():
            row = self._load(session, event_id)
            if row.state != EventState.SCHEDULED.value:
                raise Conflict(f"event {event_id} is {row.state}; only scheduled events change")
            current = to_record(row)
            merged = current.model_dump(mode="python")
            changes = patch.model_dump(exclude_unset=True, mode="python")
            zone = ZoneInfo(changes.get("timezone", current.timezone))
            if "starts_at" not in changes:
                # Keep the wall-clock time when only the zone changes.
                changes["starts_at"] = current.starts_at.astimezone(
                    ZoneInfo(current.timezone)
                ).replace(tzinfo=None)
            merged.update(changes)
            # Re-validate through the input model so a patch obeys the same rules.
            spec = EventFile.model_validate(
                {
                    "company": {k: v for k, v in current.company.model_dump().items() if k != "id"},
                    "contacts": [c.model_dump(exclude_none=True) for c in current.contacts],
                    "event": {
                        "title": merged["title"],
                        "period": merged["period"],
                        "kind": merged["kind"],
                        "starts_at": merged["starts_at"],
                        "timezone": str(zone.key),
                        "duration_minutes": merged["duration_minutes"],
                        "announced_on": merged["announced_on"],
                        "passcode": current.passcode,
                        "speaker_passcode": current.speaker_passcode,
                        "replay_passcode": current.replay_passcode,
                        "replay_until": merged["replay_until"],
                        "webcast_url": merged["webcast_url"],
                        "registration": merged["registration"],
                        "glossary": merged["glossary"],
                        "dial_in": merged["dial_in"],
                        "replay_dial_in": merged["replay_dial_in"],
                    },
                }
            )
            ev = spec.event
            row.title = ev.title
            row.period = ev.period
            row.starts_at = ev.start_utc()
            row.timezone = ev.timezone
            row.duration_minutes = ev.duration_minutes
            row.replay_until = ev.replay_until
            row.webcast_url = str(ev.webcast_url) if ev.webcast_url else None
            row.registration = ev.registration.value
            row.glossary = "\n".join(ev.glossary)
            if "dial_in" in changes or "replay_dial_in" in changes:
                row.dial_ins.clear()
                session.flush()
                row.dial_ins.extend(
                    _dial_in_rows(LIVE, ev.dial_in) + _dial_in_rows(REPLAY, ev.replay_dial_in)
                )
            session.flush()
            return to_record(row)

    def delete(self, event_id: int) -> None:
        """Delete an event that has not yet happened; a held call is history and stays."""
        with self.database.session() as session, session.begin():
            row = self._load(session, event_id)
            if row.state != EventState.SCHEDULED.value:
                raise Conflict(f"event {event_id} is {row.state}; only scheduled events delete")
            session.delete(row)

    def set_state(self, event_id: int, state: EventState) -> EventRecord:
        """Move an event along its life; an unlisted move raises Conflict."""
        with self.database.session() as session, session.begin():
            row = self._load(session, event_id)
            current = EventState(row.state)
            if state not in TRANSITIONS[current]:
                raise Conflict(f"event {event_id} cannot go from {current} to {state}")
            row.state = state.value
            session.flush()
            return to_record(row)

    def match_passcode(self, dialled_e164: str | None, passcode: str) -> PasscodeMatch | None:
        """Find what ``passcode`` opens on the number dialled, or None.

        With ``dialled_e164`` None (a trunk that sends no usable number) the
        passcode alone decides, which is still unique among live events.
        """
        with self.database.session() as session:
            query = select(EventRow).where(
                EventRow.state != EventState.ARCHIVED.value,
                or_(
                    EventRow.passcode == passcode,
                    EventRow.speaker_passcode == passcode,
                    EventRow.replay_passcode == passcode,
                ),
            )
            if dialled_e164 is not None:
                query = query.join(DialInRow).where(DialInRow.number == dialled_e164)
            for row in session.scalars(query.options(selectinload(EventRow.dial_ins))):
                numbers = {d.number: d.purpose for d in row.dial_ins}
                purpose = numbers.get(dialled_e164, LIVE) if dialled_e164 else None
                if passcode == row.speaker_passcode and purpose in (LIVE, None):
                    return PasscodeMatch(row.id, "speaker")
                if passcode == row.passcode and purpose in (LIVE, None):
                    return PasscodeMatch(row.id, "listener")
                if passcode == row.replay_passcode and purpose in (REPLAY, None):
                    return PasscodeMatch(row.id, "replay")
            return None
