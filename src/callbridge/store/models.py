"""The tables. Alembic migrations in ``store/migrations`` create and change them.

Times are stored in UTC. SQLite keeps no zone with a timestamp, so
``UtcDateTime`` puts one back on every read: code above the store only ever
sees aware datetimes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a zone first")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class CompanyRow(Base):
    __tablename__ = "company"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    ticker: Mapped[str] = mapped_column(String(12), unique=True)
    exchange: Mapped[str] = mapped_column(String(200))
    website: Mapped[str | None] = mapped_column(String(500))
    city: Mapped[str] = mapped_column(String(200))
    about: Mapped[str] = mapped_column(Text)
    # The brand (brand/): the accent as #rrggbb; the logo's checked bytes, read only
    # when served (deferred), its type, digest and size read with every event.
    accent: Mapped[str | None] = mapped_column(String(7))
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    logo_type: Mapped[str | None] = mapped_column(String(32))
    logo_digest: Mapped[str | None] = mapped_column(String(16))
    logo_width: Mapped[int | None] = mapped_column(Integer)
    logo_height: Mapped[int | None] = mapped_column(Integer)

    events: Mapped[list[EventRow]] = relationship(back_populates="company")


class EventRow(Base):
    __tablename__ = "event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    timezone: Mapped[str] = mapped_column(String(64))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    announced_on: Mapped[date] = mapped_column(Date)
    passcode: Mapped[str] = mapped_column(String(12), index=True)
    speaker_passcode: Mapped[str] = mapped_column(String(12), index=True)
    replay_until: Mapped[date | None] = mapped_column(Date)
    replay_passcode: Mapped[str] = mapped_column(String(12))
    webcast_url: Mapped[str | None] = mapped_column(String(500))
    registration: Mapped[str] = mapped_column(String(16), default="required")
    # Phone callers need a registrant's personal PIN: the public listener code opens nothing.
    phone_requires_registration: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # One term a line: what the transcript engine is biased towards.
    glossary: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    # Optimistic concurrency: every UPDATE of the row adds one and carries
    # "WHERE version = <the one read>", so of two editors who read the same
    # version the second's write matches no row (``EventStore`` says so).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it once)

    company: Mapped[CompanyRow] = relationship(back_populates="events")
    contacts: Mapped[list[ContactRow]] = relationship(
        back_populates="event", cascade="all, delete-orphan", order_by="ContactRow.position"
    )
    dial_ins: Mapped[list[DialInRow]] = relationship(
        back_populates="event", cascade="all, delete-orphan", order_by="DialInRow.position"
    )
    claims: Mapped[list[PasscodeClaimRow]] = relationship(
        back_populates="event", cascade="all, delete-orphan"
    )
    speakers: Mapped[list[SpeakerRow]] = relationship(
        back_populates="event", cascade="all, delete-orphan", order_by="SpeakerRow.position"
    )


class ContactRow(Base):
    """A contact printed under a release; kept per event, as the release was issued."""

    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    group: Mapped[str] = mapped_column("contact_group", String(200))
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    organization: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))

    event: Mapped[EventRow] = relationship(back_populates="contacts")


class SpeakerRow(Base):
    """A listed speaker of an event: a caller from ``phone`` on the speaker passcode is named."""

    __tablename__ = "speaker"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))

    event: Mapped[EventRow] = relationship(back_populates="speakers")


class DialInRow(Base):
    """A number that reaches the event: ``live`` for the call, ``replay`` afterwards."""

    __tablename__ = "dial_in"
    __table_args__ = (UniqueConstraint("event_id", "purpose", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(8))
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))
    number: Mapped[str] = mapped_column(String(32), index=True)

    event: Mapped[EventRow] = relationship(back_populates="dial_ins")


class PasscodeClaimRow(Base):
    """A passcode in use by an event that is not archived.

    The primary key is the code: two events (or two roles of one event) can
    never hold the same code, however their writes interleave. Archiving an
    event deletes its claims, freeing its codes.
    """

    __tablename__ = "passcode_claim"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # "listener", "speaker" or "replay"

    event: Mapped[EventRow] = relationship(back_populates="claims")


class UserRow(Base):
    """An operator who may create events and moderate calls."""

    __tablename__ = "operator"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ApiTokenRow(Base):
    """A bearer token for the API; only its SHA-256 is kept."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("operator.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Written at most once a minute, so a busy script does not write on every call.
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # None: the token lasts until it is revoked or the password changes.
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    user: Mapped[UserRow] = relationship()


class SessionRow(Base):
    """An operator's login in one browser; the signed cookie holds a secret whose SHA-256 is here.

    Deleting the row ends the session, whatever cookie the browser still has.
    """

    __tablename__ = "operator_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("operator.id", ondelete="CASCADE"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)

    user: Mapped[UserRow] = relationship()


class CallLogRow(Base):
    """One thing that happened on a call: the audit trail and the attendance report read it."""

    __tablename__ = "call_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("event.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    participant_id: Mapped[str | None] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    caller_id: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    detail: Mapped[str] = mapped_column(Text, default="")


class WebcastListenerRow(Base):
    """One browser that registered for (or opened) an event's webcast, and how long it listened."""

    __tablename__ = "webcast_listener"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    # The listener's cookie holds a random token; only its SHA-256 is kept.
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    firm: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    first_heard_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_heard_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    live_seconds: Mapped[int] = mapped_column(Integer, default=0)
    replay_seconds: Mapped[int] = mapped_column(Integer, default=0)


class RegistrantPinRow(Base):
    """A registrant's personal PIN for the phone (``store.pins``): never the PIN itself.

    ``digest`` is the HMAC of the PIN under the server's PIN key, unique over
    every event (so a PIN names one registrant of one event); ``salt`` is
    what the PIN was drawn from, so it can be shown again (``pins.PinBook``).
    Deleting the registrant deletes the row, and the PIN opens nothing.
    """

    __tablename__ = "registrant_pin"

    listener_id: Mapped[int] = mapped_column(
        ForeignKey("webcast_listener.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    salt: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WrittenQuestionRow(Base):
    """A question a registered web listener typed, and what the moderator did with it."""

    __tablename__ = "written_question"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    listener_id: Mapped[int] = mapped_column(
        ForeignKey("webcast_listener.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    firm: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    asked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # bridge.queue.Asked: waiting, reading, answered, dismissed
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class BridgeNodeRow(Base):
    """One bridge node of a cascade (origin or edge) and when it was last heard of.

    Each node writes its own row every few seconds (``store.nodes``); the
    origin's console reads them all as the nodes' health.
    """

    __tablename__ = "bridge_node"

    node_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    sip: Mapped[str] = mapped_column(String(64))
    callers: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class SlideChangeRow(Base):
    """The moderator showed slide ``slide`` from ``at``: listeners see it when their audio does."""

    __tablename__ = "slide_change"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    slide: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(100))


class MailOutboxRow(Base):
    """One email, rendered whole before it is sent, and what became of it (``store.outbox``).

    ``message`` is the RFC 5322 message as it goes on the wire, its
    ``Message-ID`` (``message_id``) fixed when the row is written, so a resend
    after a crash is the same message. ``dedupe_key`` says which message it
    is ("reminder:w17:1440"): a second writer of the same one meets the
    unique constraint, so planning twice enqueues once. ``claim`` and
    ``claimed_until`` are the sender's lease (``state`` "sending").
    """

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("event.id", ondelete="CASCADE"), index=True
    )
    listener_id: Mapped[int | None] = mapped_column(
        ForeignKey("webcast_listener.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    sender: Mapped[str] = mapped_column(String(254))
    recipient: Mapped[str] = mapped_column(String(254))
    message: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    claim: Mapped[str | None] = mapped_column(String(32), index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The server's last answer ("250 2.0.0 queued as …", "451 4.3.0 try later"), or the error.
    answer: Mapped[str] = mapped_column(Text, default="")


class MailSettingsRow(Base):
    """Which emails an event sends; no row: every kind, reminders 24 h and 15 min before."""

    __tablename__ = "mail_settings"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("event.id", ondelete="CASCADE"), primary_key=True
    )
    confirmation: Mapped[bool] = mapped_column(Boolean, default=True)
    # Minutes before the start, comma-separated, largest first ("1440,15"); empty: none.
    reminders: Mapped[str] = mapped_column(String(100), default="1440,15")
    replay: Mapped[bool] = mapped_column(Boolean, default=True)


class MailConsentRow(Base):
    """What a registrant agreed to be sent, with the words they were shown, and any withdrawal."""

    __tablename__ = "mail_consent"

    listener_id: Mapped[int] = mapped_column(
        ForeignKey("webcast_listener.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    follow_up: Mapped[bool] = mapped_column(Boolean)
    wording: Mapped[str] = mapped_column(Text, default="")
    given_at: Mapped[datetime] = mapped_column(UtcDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class TranscriptEditRow(Base):
    """One thing an editor changed in an event's transcript (``store.transcripts``).

    ``field`` is "text", "speaker" or "mark"; ``value`` the new value, ``before``
    the one it replaced (the automatic transcript's, for a first change), and
    ``start`` the segment's start when it was made, so a change made on a
    transcript since made again is known as stale. Rows are never changed:
    the draft is each (segment, field)'s newest row.
    """

    __tablename__ = "transcript_edit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    segment: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)
    before: Mapped[str] = mapped_column(Text)
    start: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class TranscriptRevisionRow(Base):
    """A published version of an event's transcript: the whole document, as listeners read it.

    ``last_edit_id`` is the newest ``transcript_edit`` it includes: edits after it
    are the unpublished draft.
    """

    __tablename__ = "transcript_revision"
    __table_args__ = (UniqueConstraint("event_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text, deferred=True)
    last_edit_id: Mapped[int] = mapped_column(Integer, default=0)
    corrections: Mapped[int] = mapped_column(Integer, default=0)
    published_by: Mapped[str] = mapped_column(String(100))
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OriginLeaseRow(Base):
    """The lease the active origin holds (``store.lease``; why a row: ``cascade.lease``).

    ``expires`` is in seconds of the store's own clock (POSIX), so the
    origins' clocks never meet: each asks the store whether it has expired.
    """

    __tablename__ = "origin_lease"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64), default="")
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    expires: Mapped[float] = mapped_column(Float, default=0.0)


class ReplayCoverageRow(Base):
    """How much of a call each origin's replay holds (``store.coverage``): with a hot
    standby, each origin records the call on its own disk, and the one holding the
    most serves the replay."""

    __tablename__ = "replay_coverage"

    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    node_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
