"""The call log: every join, leave, role change, mute, queue move and failed passcode.

The bridge appends to it (from a writer task, off the media path); the audit
trail and the attendance report read it. Entries are never changed.
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from callbridge.store.db import Database
from callbridge.store.models import CallLogRow


class LogKind(enum.StrEnum):
    JOIN = "join"
    LEAVE = "leave"
    ROLE = "role"
    MUTE = "mute"
    UNMUTE = "unmute"
    QUEUE = "queue"
    WITHDRAW = "withdraw"
    LINE_OPEN = "line_open"
    LINE_CLOSE = "line_close"
    QUEUE_MOVE = "queue_move"
    PASSCODE_FAILED = "passcode_failed"
    BLOCKED = "blocked"  # a call refused at the INVITE: its caller guessed too often
    GUESSER_SLOWED = "guesser_slowed"  # a caller's answers now wait (repeated wrong codes)
    GUESSER_REFUSED = "guesser_refused"  # a caller is refused for a while
    START = "start"
    END = "end"
    LOCK = "lock"
    UNLOCK = "unlock"
    NAME = "name"  # the moderator named a participant
    QUESTION_WRITTEN = "question_written"  # a web listener's written question (store.questions)
    QUESTION_READ = "question_read"
    QUESTION_ANSWERED = "question_answered"
    QUESTION_DISMISSED = "question_dismissed"
    ASKER_SILENCED = "asker_silenced"  # the moderator refused a web listener's further questions
    ASKER_UNSILENCED = "asker_unsilenced"
    SLIDE = "slide"  # the moderator showed a slide (store.slides)
    REPLAY_CHANGED = "replay_changed"  # the replay window moved after the call (store.aftercall)
    ARCHIVE = "archive"
    DIAL = "dial"  # an operator had the bridge call a number (bridge.dialout)
    DIAL_FAILED = "dial_failed"  # ... and no trunk got it answered
    CALL_ME_REFUSED = "call_me_refused"  # a registrant's call-me refused (bridge.callme)
    CALL_ME_SWITCHED = "call_me_switched"  # the operator turned call-me on or off
    REGISTRANT_ERASED = "registrant_erased"  # a registrant's data deleted (web.registrants)
    # The editor's pass over the transcript (store.transcripts): each change, with the
    # automatic text it replaced; each published version; terms added to the glossary.
    TRANSCRIPT_EDIT = "transcript_edit"
    TRANSCRIPT_PUBLISHED = "transcript_published"
    GLOSSARY_ADDED = "glossary_added"


@dataclass(frozen=True)
class LogEntry:
    kind: LogKind
    at: datetime
    event_id: int | None = None
    participant_id: str | None = None
    channel: str = "phone"
    caller_id: str | None = None
    role: str | None = None
    actor: str = "system"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Attendance:
    """One participant's time on the call."""

    participant_id: str
    channel: str
    caller_id: str | None
    role: str | None
    joined_at: datetime
    left_at: datetime | None
    reason: str | None

    @property
    def duration(self) -> timedelta | None:
        return None if self.left_at is None else self.left_at - self.joined_at


EntryKey = tuple[object, ...]


def log_row(e: LogEntry) -> CallLogRow:
    """``e`` as its row: for a store that writes an audit entry in its own transaction."""
    return CallLogRow(
        event_id=e.event_id,
        at=e.at,
        kind=e.kind.value,
        participant_id=e.participant_id,
        channel=e.channel,
        caller_id=e.caller_id,
        role=e.role,
        actor=e.actor,
        detail=json.dumps(e.detail, sort_keys=True) if e.detail else "",
    )


def entry_key(entry: LogEntry) -> EntryKey:
    """Everything an entry says, comparable across backends (the time in UTC, to the µs)."""
    return (
        entry.kind.value,
        entry.at.astimezone(UTC).isoformat(),
        entry.event_id,
        entry.participant_id,
        entry.channel,
        entry.caller_id,
        entry.role,
        entry.actor,
        json.dumps(entry.detail, sort_keys=True),
    )


def unwritten(entries: Sequence[LogEntry], present: Iterable[EntryKey]) -> list[LogEntry]:
    """``entries`` less those the log holds (``present``), counted: two alike, one held: one."""
    held = Counter(present)
    out: list[LogEntry] = []
    for entry in entries:
        key = entry_key(entry)
        if held[key] > 0:
            held[key] -= 1
        else:
            out.append(entry)
    return out


class CallLog:
    """Append entries; read them back as an audit trail or an attendance report."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def append(self, entries: Iterable[LogEntry]) -> int:
        """Write entries in one transaction; returns how many."""
        rows = [log_row(e) for e in entries]
        if not rows:
            return 0
        with self.database.session() as session, session.begin():
            session.add_all(rows)
        return len(rows)

    def append_once(self, entries: Sequence[LogEntry]) -> int:
        """Write those of ``entries`` not in the log yet, in one transaction; returns how many.

        For a writer that may have written them already and cannot know
        (``bridge.journal``: the database committed, the journal did not
        hear it). An entry is its own key: the same kind, event, participant,
        caller, role, actor, channel and detail at the same microsecond is the
        same entry (``unwritten``). The log's index on ``at`` finds them.
        """
        if not entries:
            return 0
        low, high = min(e.at for e in entries), max(e.at for e in entries)
        with self.database.session() as session, session.begin():
            present = [
                entry_key(self._entry(r))
                for r in session.scalars(
                    select(CallLogRow).where(CallLogRow.at >= low, CallLogRow.at <= high)
                )
            ]
            rows = [log_row(e) for e in unwritten(entries, present)]
            session.add_all(rows)
        return len(rows)

    def last_row(self) -> int:
        """The newest entry's row id (0 when the log is empty): a cursor for ``since``."""
        with self.database.session() as session:
            return int(session.scalar(select(func.max(CallLogRow.id))) or 0)

    def since(
        self, row_id: int, kinds: Iterable[LogKind], limit: int = 500
    ) -> list[tuple[int, LogEntry]]:
        """Entries of ``kinds`` after row ``row_id``, oldest first, with their row ids."""
        with self.database.session() as session:
            rows = session.scalars(
                select(CallLogRow)
                .where(CallLogRow.id > row_id, CallLogRow.kind.in_([k.value for k in kinds]))
                .order_by(CallLogRow.id)
                .limit(limit)
            ).all()
            return [(r.id, self._entry(r)) for r in rows]

    def entries(self, event_id: int) -> list[LogEntry]:
        """The event's log in the order it happened."""
        with self.database.session() as session:
            rows = session.scalars(
                select(CallLogRow)
                .where(CallLogRow.event_id == event_id)
                .order_by(CallLogRow.at, CallLogRow.id)
            ).all()
        return [self._entry(r) for r in rows]

    @staticmethod
    def _entry(r: CallLogRow) -> LogEntry:
        return LogEntry(
            kind=LogKind(r.kind),
            at=r.at,
            event_id=r.event_id,
            participant_id=r.participant_id,
            channel=r.channel,
            caller_id=r.caller_id,
            role=r.role,
            actor=r.actor,
            detail=json.loads(r.detail) if r.detail else {},
        )

    def first(self, event_id: int, kind: LogKind) -> datetime | None:
        """When the event's first entry of ``kind`` was made (its start, its end), or None."""
        with self.database.session() as session:
            at: datetime | None = session.scalar(
                select(CallLogRow.at)
                .where(CallLogRow.event_id == event_id, CallLogRow.kind == kind.value)
                .order_by(CallLogRow.at, CallLogRow.id)
                .limit(1)
            )
        return at

    def attendance(self, event_id: int) -> list[Attendance]:
        """Per participant: when they joined, when they left, and why, phone and web alike."""
        report: dict[str, Attendance] = {}
        for entry in self.entries(event_id):
            if entry.participant_id is None:
                continue
            if entry.kind is LogKind.JOIN:
                report[entry.participant_id] = Attendance(
                    participant_id=entry.participant_id,
                    channel=entry.channel,
                    caller_id=entry.caller_id,
                    role=entry.role,
                    joined_at=entry.at,
                    left_at=None,
                    reason=None,
                )
            elif entry.kind is LogKind.LEAVE and entry.participant_id in report:
                row = report[entry.participant_id]
                row.left_at = entry.at
                row.reason = str(entry.detail.get("reason", "")) or None
            elif (
                entry.kind in (LogKind.ROLE, LogKind.LINE_OPEN, LogKind.LINE_CLOSE)
                and entry.participant_id in report
                and entry.role
            ):
                # The report shows the part someone ended up playing: an analyst
                # whose line was opened spoke on the call.
                report[entry.participant_id].role = entry.role
        return sorted(report.values(), key=lambda a: (a.joined_at, a.participant_id))
