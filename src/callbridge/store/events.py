"""Events in and out of the database.

``EventStore`` is the one place that writes events. It generates passcodes,
keeps them unique among events that are not archived, and writes an event
with its contacts and numbers in one transaction, so a refused event leaves
no row behind.

Uniqueness is the database's: every code of an event that is not archived
is a row of ``passcode_claim`` whose primary key is the code. The check
before the insert only names the field at fault; two creates that race past
it meet at the primary key, and the loser's transaction is retried, where
the check then names the field (a 409).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from callbridge.events.schema import (
    Company,
    Contact,
    DialIn,
    EventFile,
    EventPatch,
    EventRecord,
    EventState,
    EventSummary,
    LogoInfo,
    Registration,
    Speaker,
    SpeakerIn,
)
from callbridge.store.db import Database, valid_id
from callbridge.store.models import (
    CompanyRow,
    ContactRow,
    DialInRow,
    EventRow,
    PasscodeClaimRow,
    SpeakerRow,
    utcnow,
)

PASSCODE_DIGITS = 7
# A create that lost a race (a claimed code, a company inserted meanwhile,
# SQLite's stale snapshot) is run again this many times before it gives up.
CREATE_ATTEMPTS = 3
ROLE_OF_FIELD = {"passcode": "listener", "speaker_passcode": "speaker", "replay_passcode": "replay"}
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


class VersionConflict(Conflict):
    """The event changed since the version the caller read; ``current`` is what it is now.

    Raised instead of writing over someone else's change: the caller shows
    ``current`` (what changed) and lets its user decide.
    """

    status = 412

    def __init__(self, current: EventRecord, expected: int) -> None:
        super().__init__(
            f"event {current.id} was changed by someone else (version {expected} was read, "
            f"it is now version {current.version})",
            field="version",
        )
        self.current = current
        self.expected = expected


@dataclass(frozen=True)
class DialPlan:
    """What a dialled number opens: the events on it, the lengths of their codes, their speakers.

    ``speaker_phones`` are the listed speakers' phones (E.164) of the events
    on the number: the passcode guard never refuses those callers
    (``ivr/guard.py``, ``Vouch``).
    """

    event_ids: tuple[int, ...]
    code_lengths: frozenset[int]
    speaker_phones: frozenset[str] = frozenset()


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
            accent=company.accent,
            logo=LogoInfo(
                media_type=company.logo_type,
                digest=company.logo_digest or "",
                width=company.logo_width or 0,
                height=company.logo_height or 0,
            )
            if company.logo_type
            else None,
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
        phone_requires_registration=bool(row.phone_requires_registration),
        glossary=[line for line in row.glossary.splitlines() if line],
        dial_in=[DialIn(label=d.label, number=d.number) for d in row.dial_ins if d.purpose == LIVE],
        replay_dial_in=[
            DialIn(label=d.label, number=d.number) for d in row.dial_ins if d.purpose == REPLAY
        ],
        speakers=[Speaker(name=s.name, title=s.title, phone=s.phone) for s in row.speakers],
        state=EventState(row.state),
        version=row.version,
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


def _contact_rows(spec: EventFile) -> list[ContactRow]:
    return [
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
    ]


def _speaker_rows(speakers: Iterable[SpeakerIn]) -> list[SpeakerRow]:
    return [
        SpeakerRow(position=i, name=s.name, title=s.title, phone=s.phone)
        for i, s in enumerate(speakers)
    ]


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
                selectinload(EventRow.speakers),
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
        use by another event that is not archived, also when another create
        took it a moment earlier.
        """
        for attempt in range(CREATE_ATTEMPTS):
            try:
                return self._create(spec)
            except (IntegrityError, OperationalError) as error:
                if isinstance(error, OperationalError) and "locked" not in str(error):
                    raise
                if attempt == CREATE_ATTEMPTS - 1:
                    raise Conflict(
                        "another event took a passcode or the company at the same moment; try again"
                    ) from None
        raise AssertionError("unreachable")

    def _create(self, spec: EventFile) -> EventRecord:
        with self.database.session() as session, session.begin():
            codes = self._choose_codes(session, spec, exclude_event=None)
            ev = spec.event
            row = EventRow(
                announced_on=ev.announced_on or utcnow().astimezone(ZoneInfo(ev.timezone)).date(),
                state=EventState.SCHEDULED.value,
                claims=[
                    PasscodeClaimRow(code=code, role=ROLE_OF_FIELD[field])
                    for field, code in codes.items()
                ],
            )
            self._fill(session, row, spec, codes)
            row.dial_ins = _dial_in_rows(LIVE, ev.dial_in) + _dial_in_rows(
                REPLAY, ev.replay_dial_in
            )
            row.speakers = _speaker_rows(ev.speakers)
            row.contacts = _contact_rows(spec)
            session.add(row)
            session.flush()
            return to_record(self._load(session, row.id))

    def _choose_codes(
        self, session: Session, spec: EventFile, exclude_event: int | None
    ) -> dict[str, str]:
        """The three passcodes: those given (unless another live event holds one), or new."""
        taken = self._codes_in_use(session, exclude_event)
        ev = spec.event
        for field in ("passcode", "speaker_passcode", "replay_passcode"):
            code = getattr(ev, field)
            if code is not None and code in taken:
                raise Conflict("is already in use by another event", field=f"event.{field}")
        given = {getattr(ev, f) for f in ROLE_OF_FIELD if getattr(ev, f) is not None}
        chosen: set[str] = taken | given
        codes: dict[str, str] = {}
        for field in ("passcode", "speaker_passcode", "replay_passcode"):
            code = getattr(ev, field) or _generate_code(chosen)
            if code in codes.values():
                raise Conflict("must differ from the other passcodes", field=f"event.{field}")
            codes[field] = code
            chosen.add(code)
        return codes

    @staticmethod
    def _fill(session: Session, row: EventRow, spec: EventFile, codes: dict[str, str]) -> None:
        """Write the company and the event's own columns of ``spec`` into ``row``."""
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
        company.accent = spec.company.accent
        ev = spec.event
        row.company = company
        row.title = ev.title
        row.period = ev.period
        row.kind = ev.kind.value
        row.starts_at = ev.start_utc()
        row.timezone = ev.timezone
        row.duration_minutes = ev.duration_minutes
        row.passcode = codes["passcode"]
        row.speaker_passcode = codes["speaker_passcode"]
        row.replay_passcode = codes["replay_passcode"]
        row.replay_until = ev.replay_until
        row.webcast_url = str(ev.webcast_url) if ev.webcast_url else None
        row.registration = ev.registration.value
        row.phone_requires_registration = ev.phone_requires_registration
        row.glossary = "\n".join(ev.glossary)

    def fresh_passcodes(self) -> tuple[str, str, str]:
        """Three distinct codes no event that is not archived holds: the editor's suggestions.

        Nothing is claimed: a create or change that meets one taken meanwhile
        is refused naming the field, as with any typed code.
        """
        with self.database.session() as session:
            taken = self._codes_in_use(session)
        listener = _generate_code(taken)
        speaker = _generate_code(taken | {listener})
        return listener, speaker, _generate_code(taken | {listener, speaker})

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
                    selectinload(EventRow.speakers),
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

    def update(
        self, event_id: int, patch: EventPatch, expected_version: int | None = None
    ) -> EventRecord:
        """Change a scheduled event; the result is validated as a whole before it is kept.

        With ``expected_version`` (what the caller read), a change made since
        raises VersionConflict instead of being overwritten.
        """
        return self._guarded(event_id, expected_version, lambda s, r: self._update(s, r, patch))

    def _update(self, session: Session, row: EventRow, patch: EventPatch) -> EventRecord:
        event_id = row.id
        if row.state != EventState.SCHEDULED.value:
            raise Conflict(f"event {event_id} is {row.state}; only scheduled events change")
        current = to_record(row)
        merged = current.model_dump(mode="python")
        changes = patch.model_dump(exclude_unset=True, mode="python")
        zone = ZoneInfo(changes.get("timezone", current.timezone))
        if "starts_at" not in changes:
            # Keep the wall-clock time when only the zone changes.
            changes["starts_at"] = current.starts_at.astimezone(ZoneInfo(current.timezone)).replace(
                tzinfo=None
            )
        merged.update(changes)
        # Re-validate through the input model so a patch obeys the same rules.
        spec = EventFile.model_validate(
            {
                "company": current.company.model_dump(exclude={"id", "logo"}),
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
                    "phone_requires_registration": merged["phone_requires_registration"],
                    "glossary": merged["glossary"],
                    "dial_in": merged["dial_in"],
                    "replay_dial_in": merged["replay_dial_in"],
                    "speakers": merged["speakers"],
                },
            }
        )
        ev = spec.event
        # Children to replace go first, in a flush that leaves the event row
        # alone: its one UPDATE (one version step) comes last.
        if "dial_in" in changes or "replay_dial_in" in changes:
            row.dial_ins.clear()
        if "speakers" in changes:
            row.speakers.clear()
        session.flush()
        row.title = ev.title
        row.period = ev.period
        row.starts_at = ev.start_utc()
        row.timezone = ev.timezone
        row.duration_minutes = ev.duration_minutes
        row.replay_until = ev.replay_until
        row.webcast_url = str(ev.webcast_url) if ev.webcast_url else None
        row.registration = ev.registration.value
        row.phone_requires_registration = ev.phone_requires_registration
        row.glossary = "\n".join(ev.glossary)
        if "dial_in" in changes or "replay_dial_in" in changes:
            row.dial_ins.extend(
                _dial_in_rows(LIVE, ev.dial_in) + _dial_in_rows(REPLAY, ev.replay_dial_in)
            )
        if "speakers" in changes:
            row.speakers.extend(_speaker_rows(ev.speakers))
        row.updated_at = utcnow()
        session.flush()
        return to_record(row)

    def replace(self, event_id: int, spec: EventFile, expected_version: int) -> EventRecord:
        """Write a whole edited event (the console's editor) over a scheduled one.

        Every field of ``spec`` is kept, passcodes left out are generated
        anew; raises VersionConflict when the event is no longer at
        ``expected_version``, Conflict once its call has started.
        """
        return self._guarded(event_id, expected_version, lambda s, r: self._replace(s, r, spec))

    def _replace(self, session: Session, row: EventRow, spec: EventFile) -> EventRecord:
        if row.state != EventState.SCHEDULED.value:
            raise Conflict(f"event {row.id} is {row.state}; only scheduled events change")
        codes = self._choose_codes(session, spec, exclude_event=row.id)
        ev = spec.event
        # The old children go first, in a flush of their own that leaves the
        # event row alone: its one UPDATE (one version step) comes last.
        row.claims.clear()
        row.dial_ins.clear()
        row.contacts.clear()
        row.speakers.clear()
        session.flush()
        self._fill(session, row, spec, codes)
        if ev.announced_on is not None:
            row.announced_on = ev.announced_on
        row.claims.extend(
            PasscodeClaimRow(code=code, role=ROLE_OF_FIELD[field]) for field, code in codes.items()
        )
        row.dial_ins.extend(
            _dial_in_rows(LIVE, ev.dial_in) + _dial_in_rows(REPLAY, ev.replay_dial_in)
        )
        row.contacts.extend(_contact_rows(spec))
        row.speakers.extend(_speaker_rows(ev.speakers))
        row.updated_at = utcnow()
        session.flush()
        return to_record(row)

    def _guarded(
        self,
        event_id: int,
        expected_version: int | None,
        change: Callable[[Session, EventRow], EventRecord],
    ) -> EventRecord:
        """Run ``change`` in one transaction, refusing it when the event moved past the
        version the caller read (checked on read, and by the UPDATE's own WHERE)."""
        try:
            with self.database.session() as session, session.begin():
                row = self._load(session, event_id)
                if expected_version is not None and row.version != expected_version:
                    raise VersionConflict(to_record(row), expected_version)
                return change(session, row)
        except StaleDataError:
            # Another writer committed between our read and our UPDATE.
            raise VersionConflict(self.get(event_id), expected_version or 0) from None

    def set_speakers(self, event_id: int, speakers: list[SpeakerIn]) -> EventRecord:
        """Replace the speaker list of a scheduled or live event (a late speaker joins the list).

        ``speakers`` come validated (``EventPatch``: no number listed twice);
        raises Conflict once the call is over.
        """
        with self.database.session() as session, session.begin():
            row = self._load(session, event_id)
            if row.state not in (EventState.SCHEDULED.value, EventState.LIVE.value):
                raise Conflict(f"event {event_id} is {row.state}; its speakers no longer change")
            self._replace_speakers(session, row, speakers)
            session.flush()
            return to_record(row)

    @staticmethod
    def _replace_speakers(session: Session, row: EventRow, speakers: list[SpeakerIn]) -> None:
        row.speakers.clear()
        # Touching the row makes its UPDATE (and so the version) follow a change
        # that is only in the speaker table.
        row.updated_at = utcnow()
        session.flush()
        row.speakers.extend(_speaker_rows(speakers))

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
            if state is EventState.ARCHIVED:
                row.claims.clear()  # an archived event's codes open nothing: free them
            session.flush()
            return to_record(row)

    def dial_plan(self, dialled_e164: str | None) -> DialPlan:
        """The events a caller of ``dialled_e164`` may reach, and the lengths of their codes.

        The IVR ends a code on the longest length (``ivr/machine.py``); the
        guard files its alerts under these events and never refuses their
        listed speakers' phones. None: every event.
        """
        with self.database.session() as session:
            query = select(EventRow).where(EventRow.state != EventState.ARCHIVED.value)
            if dialled_e164 is not None:
                query = query.join(DialInRow).where(DialInRow.number == dialled_e164)
            ids: list[int] = []
            lengths: set[int] = set()
            phones: set[str] = set()
            options = (selectinload(EventRow.dial_ins), selectinload(EventRow.speakers))
            for row in session.scalars(query.options(*options).distinct()):
                ids.append(row.id)
                phones.update(s.phone for s in row.speakers if s.phone)
                purposes = {d.purpose for d in row.dial_ins if d.number == dialled_e164}
                if dialled_e164 is None or LIVE in purposes:
                    lengths.update((len(row.passcode), len(row.speaker_passcode)))
                if dialled_e164 is None or REPLAY in purposes:
                    lengths.add(len(row.replay_passcode))
            return DialPlan(tuple(sorted(ids)), frozenset(lengths), frozenset(phones))

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
