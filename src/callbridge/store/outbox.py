"""The mail outbox, each event's mail settings and registrants' consent, in the database.

Every email is a row here before any SMTP server sees it (``enqueue``). A
sender takes rows with ``claim``: one UPDATE marks up to ``limit`` due rows
"sending" under a fresh claim id and a lease, and only the rows that UPDATE
changed are its own, so two senders (two processes, two nodes on one
PostgreSQL) never take the same row. ``settle`` writes the result, and only
under the claim that took the row. A row still "sending" after its lease
ended had a sender that died: the next ``claim`` takes it again. What this
store writes is decided in ``mail.core``; it decides nothing itself.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from callbridge.store.db import Database
from callbridge.store.events import StoreError
from callbridge.store.models import (
    EventRow,
    MailConsentRow,
    MailOutboxRow,
    MailSettingsRow,
    WebcastListenerRow,
)

DEFAULT_REMINDERS = "1440,15"


class OutboxState(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class MailKind(enum.StrEnum):
    CONFIRMATION = "confirmation"
    REMINDER = "reminder"
    REPLAY = "replay"
    ALERT = "alert"  # to the operator (mail.alerts), not to a registrant


@dataclass(frozen=True)
class NewMail:
    """A rendered message to enqueue."""

    kind: MailKind
    dedupe_key: str
    message_id: str
    sender: str
    recipient: str
    message: bytes
    event_id: int | None = None
    listener_id: int | None = None


@dataclass(frozen=True)
class Claimed:
    """A row a sender holds: send ``message`` from ``sender`` to ``recipient``."""

    id: int
    claim: str
    attempts: int  # this try included
    sender: str
    recipient: str
    message: bytes
    message_id: str


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    kind: MailKind
    event_id: int | None
    listener_id: int | None
    dedupe_key: str
    message_id: str
    recipient: str
    state: OutboxState
    attempts: int
    due_at: datetime
    sent_at: datetime | None
    answer: str


@dataclass(frozen=True)
class MailSettings:
    """Which emails an event sends (``mail_settings``; defaults when it has no row)."""

    confirmation: bool = True
    reminders: str = DEFAULT_REMINDERS  # minutes before the start, largest first
    replay: bool = True


@dataclass(frozen=True)
class Consent:
    listener_id: int
    event_id: int
    follow_up: bool  # reminders and the replay notice
    wording: str
    given_at: datetime
    withdrawn_at: datetime | None

    @property
    def active(self) -> bool:
        return self.follow_up and self.withdrawn_at is None

    def describe(self) -> str:
        """For exports: what they agreed to and when, and a withdrawal."""
        if not self.follow_up:
            said = f"confirmation only ({self.given_at.isoformat()})"
        else:
            said = f"reminders and replay notice ({self.given_at.isoformat()})"
        if self.withdrawn_at is not None:
            said += f"; unsubscribed {self.withdrawn_at.isoformat()}"
        return said


@dataclass(frozen=True)
class Recipient:
    """A registrant the planner may write to."""

    listener_id: int
    event_id: int
    name: str | None
    firm: str | None
    email: str
    registered_at: datetime


def _claimable(now: datetime) -> ColumnElement[bool]:
    row = MailOutboxRow
    return or_(
        and_(row.state == OutboxState.QUEUED.value, row.due_at <= now),
        and_(row.state == OutboxState.SENDING.value, row.claimed_until < now),
    )


def _entry(row: MailOutboxRow) -> OutboxEntry:
    return OutboxEntry(
        id=row.id,
        kind=MailKind(row.kind),
        event_id=row.event_id,
        listener_id=row.listener_id,
        dedupe_key=row.dedupe_key,
        message_id=row.message_id,
        recipient=row.recipient,
        state=OutboxState(row.state),
        attempts=row.attempts,
        due_at=row.due_at,
        sent_at=row.sent_at,
        answer=row.answer,
    )


def _consent(row: MailConsentRow) -> Consent:
    return Consent(
        listener_id=row.listener_id,
        event_id=row.event_id,
        follow_up=row.follow_up,
        wording=row.wording,
        given_at=row.given_at,
        withdrawn_at=row.withdrawn_at,
    )


class Outbox:
    """The outbox table and the mail settings beside it; safe from several threads."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- writing messages ------------------------------------------------------------------------

    def enqueue(self, mails: Sequence[NewMail], now: datetime) -> int:
        """Write messages to send from ``now``; one already there (its ``dedupe_key``) is skipped.

        Returns how many were new. All in one transaction when none is there
        yet (the usual case); else one at a time, so the others still go in.
        """
        rows = [self._row(mail, now) for mail in mails]
        if not rows:
            return 0
        try:
            # One executemany, not the ORM's unit of work: the planner writes thousands.
            with self.database.engine.begin() as connection:
                connection.execute(insert(MailOutboxRow), rows)
            return len(rows)
        except IntegrityError:
            pass
        added = 0
        for row in rows:
            try:
                with self.database.engine.begin() as connection:
                    connection.execute(insert(MailOutboxRow), [row])
                added += 1
            except IntegrityError:
                continue  # enqueued already, by us or by another process
        return added

    @staticmethod
    def _row(mail: NewMail, now: datetime) -> dict[str, object]:
        return dict(
            event_id=mail.event_id,
            listener_id=mail.listener_id,
            kind=mail.kind.value,
            dedupe_key=mail.dedupe_key,
            message_id=mail.message_id,
            sender=mail.sender,
            recipient=mail.recipient,
            message=mail.message,
            state=OutboxState.QUEUED.value,
            attempts=0,
            due_at=now,
            created_at=now,
            answer="",
        )

    def enqueued_keys(self, event_id: int, kind: MailKind) -> set[str]:
        """The event's dedupe keys of ``kind``: what the planner need not write again."""
        with self.database.session() as session:
            return set(
                session.scalars(
                    select(MailOutboxRow.dedupe_key).where(
                        MailOutboxRow.event_id == event_id, MailOutboxRow.kind == kind.value
                    )
                )
            )

    # -- sending ---------------------------------------------------------------------------------

    def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        """Take up to ``limit`` due rows (oldest due first) for one sender until ``lease_until``.

        Each try is counted here, before it is made: a sender that dies
        mid-send has still spent it.
        """
        claim = secrets.token_hex(16)
        row = MailOutboxRow
        with self.database.session() as session, session.begin():
            ids = list(
                session.scalars(
                    select(row.id).where(_claimable(now)).order_by(row.due_at, row.id).limit(limit)
                )
            )
            if not ids:
                return []
            # The condition again: a row another sender claimed meanwhile is not matched.
            session.execute(
                update(row)
                .where(row.id.in_(ids), _claimable(now))
                .values(
                    state=OutboxState.SENDING.value,
                    claim=claim,
                    claimed_until=lease_until,
                    attempts=row.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            taken = session.scalars(
                select(row).where(row.claim == claim).order_by(row.due_at, row.id)
            ).all()
            return [
                Claimed(
                    id=r.id,
                    claim=claim,
                    attempts=r.attempts,
                    sender=r.sender,
                    recipient=r.recipient,
                    message=r.message,
                    message_id=r.message_id,
                )
                for r in taken
            ]

    def settle(
        self,
        row_id: int,
        claim: str,
        state: OutboxState,
        due_at: datetime | None,
        answer: str,
        now: datetime,
    ) -> bool:
        """Write how a claimed row's try ended; False if the claim was no longer ours."""
        row = MailOutboxRow
        values: dict[str, object] = {"state": state.value, "answer": answer[:2000], "claim": None}
        values["claimed_until"] = None
        if state is OutboxState.SENT:
            values["sent_at"] = now
        if due_at is not None:
            values["due_at"] = due_at
        with self.database.engine.begin() as connection:
            done = connection.execute(
                update(row).where(row.id == row_id, row.claim == claim).values(**values)
            )
            return bool(done.rowcount)

    def release(self, row_id: int, claim: str, now: datetime) -> None:
        """Give back a claimed row not tried (the sender stops): queued, due now, uncounted."""
        row = MailOutboxRow
        with self.database.engine.begin() as connection:
            connection.execute(
                update(row)
                .where(row.id == row_id, row.claim == claim)
                .values(
                    state=OutboxState.QUEUED.value,
                    claim=None,
                    claimed_until=None,
                    due_at=now,
                    attempts=row.attempts - 1,
                )
            )

    def next_due(self) -> datetime | None:
        """When the earliest queued row is due (the sender sleeps until then), or None."""
        with self.database.session() as session:
            return session.scalar(
                select(func.min(MailOutboxRow.due_at)).where(
                    MailOutboxRow.state == OutboxState.QUEUED.value
                )
            )

    def counts(self, event_id: int | None = None) -> dict[str, int]:
        """Rows by state (of one event's mail, or all)."""
        query = select(MailOutboxRow.state, func.count()).group_by(MailOutboxRow.state)
        if event_id is not None:
            query = query.where(MailOutboxRow.event_id == event_id)
        with self.database.session() as session:
            rows = session.execute(query).all()
            return {str(state): int(n) for state, n in rows}

    def entries(self, event_id: int | None = None) -> list[OutboxEntry]:
        with self.database.session() as session:
            query = select(MailOutboxRow).order_by(MailOutboxRow.id)
            if event_id is not None:
                query = query.where(MailOutboxRow.event_id == event_id)
            return [_entry(r) for r in session.scalars(query)]

    def cancel_follow_ups(self, listener_id: int) -> int:
        """Cancel a registrant's queued reminders and replay notice (they unsubscribed)."""
        row = MailOutboxRow
        with self.database.engine.begin() as connection:
            done = connection.execute(
                update(row)
                .where(
                    row.listener_id == listener_id,
                    row.state == OutboxState.QUEUED.value,
                    row.kind.in_([MailKind.REMINDER.value, MailKind.REPLAY.value]),
                )
                .values(state=OutboxState.CANCELLED.value, answer="unsubscribed")
            )
            return int(done.rowcount)

    # -- settings and consent --------------------------------------------------------------------

    def settings(self, event_id: int) -> MailSettings:
        with self.database.session() as session:
            row = session.get(MailSettingsRow, event_id)
            if row is None:
                return MailSettings()
            return MailSettings(row.confirmation, row.reminders, row.replay)

    def set_settings(self, event_id: int, settings: MailSettings) -> None:
        with self.database.session() as session, session.begin():
            if session.get(EventRow, event_id) is None:
                raise StoreError(f"no event {event_id}", field="event_id")
            row = session.get(MailSettingsRow, event_id)
            if row is None:
                row = MailSettingsRow(event_id=event_id)
                session.add(row)
            row.confirmation = settings.confirmation
            row.reminders = settings.reminders
            row.replay = settings.replay

    def record_consent(
        self, listener_id: int, event_id: int, follow_up: bool, wording: str, now: datetime
    ) -> None:
        """What a registrant agreed to as they registered (again: the newer answer holds)."""
        with self.database.session() as session, session.begin():
            row = session.get(MailConsentRow, listener_id)
            if row is None:
                row = MailConsentRow(listener_id=listener_id, event_id=event_id)
                session.add(row)
            row.follow_up = follow_up
            row.wording = wording
            row.given_at = now
            row.withdrawn_at = None

    def withdraw(self, listener_id: int, now: datetime) -> Consent | None:
        """Unsubscribe: follow-ups stop and queued ones are cancelled; None: no such registrant."""
        with self.database.session() as session, session.begin():
            row = session.get(MailConsentRow, listener_id)
            if row is None:
                listener = session.get(WebcastListenerRow, listener_id)
                if listener is None:
                    return None
                row = MailConsentRow(
                    listener_id=listener_id,
                    event_id=listener.event_id,
                    follow_up=False,
                    wording="",
                    given_at=now,
                )
                session.add(row)
            if row.withdrawn_at is None:
                row.withdrawn_at = now
            session.flush()
            consent = _consent(row)
        self.cancel_follow_ups(listener_id)
        return consent

    def consents(self, event_id: int) -> dict[int, Consent]:
        """Every registrant's consent for the event, by listener id (for exports)."""
        with self.database.session() as session:
            rows = session.scalars(
                select(MailConsentRow).where(MailConsentRow.event_id == event_id)
            )
            return {r.listener_id: _consent(r) for r in rows}

    def consenting(self, event_id: int) -> list[Recipient]:
        """Registrants of the event with an email who agreed to follow-ups and did not withdraw."""
        listener, consent = WebcastListenerRow, MailConsentRow
        with self.database.session() as session:
            rows = session.execute(
                select(listener)
                .join(consent, consent.listener_id == listener.id)
                .where(
                    listener.event_id == event_id,
                    listener.email.is_not(None),
                    consent.follow_up.is_(True),
                    consent.withdrawn_at.is_(None),
                )
                .order_by(listener.id)
            ).scalars()
            return [
                Recipient(r.id, r.event_id, r.name, r.firm, r.email or "", r.registered_at)
                for r in rows
            ]

    def recipient(self, listener_id: int) -> Recipient | None:
        with self.database.session() as session:
            r = session.get(WebcastListenerRow, listener_id)
            if r is None or r.email is None:
                return None
            return Recipient(r.id, r.event_id, r.name, r.firm, r.email, r.registered_at)

    def unconfirmed(self, since: datetime, states: Sequence[str]) -> list[Recipient]:
        """Registrants with an email since ``since``, of events in ``states``, with no confirmation
        in the outbox: what a crash between registering and enqueueing left without one."""
        listener, row = WebcastListenerRow, MailOutboxRow
        with self.database.session() as session:
            rows = session.scalars(
                select(listener)
                .join(EventRow, EventRow.id == listener.event_id)
                .where(
                    listener.registered_at >= since,
                    listener.email.is_not(None),
                    EventRow.state.in_(list(states)),
                    ~select(row.id)
                    .where(
                        row.listener_id == listener.id,
                        row.kind == MailKind.CONFIRMATION.value,
                    )
                    .exists(),
                )
                .order_by(listener.id)
            )
            return [
                Recipient(r.id, r.event_id, r.name, r.firm, r.email or "", r.registered_at)
                for r in rows
            ]

    def events_to_plan(self, states: Sequence[str]) -> list[int]:
        """Events in ``states`` with at least one consenting registrant."""
        with self.database.session() as session:
            return list(
                session.scalars(
                    select(EventRow.id)
                    .where(
                        EventRow.state.in_(list(states)),
                        EventRow.id.in_(
                            select(MailConsentRow.event_id).where(
                                MailConsentRow.follow_up.is_(True),
                                MailConsentRow.withdrawn_at.is_(None),
                            )
                        ),
                    )
                    .order_by(EventRow.id)
                )
            )
