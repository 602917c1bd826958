"""Written questions: what registered web listeners typed, and what became of each.

The web app stores a question (``ask``) before the media plane's call
controller puts it in the call's queue beside the ``*1`` callers; the
controller's ``SetQuestionState`` commands come back here (``settle``). The
rules a question must meet are checked here, where they are stored, so that
every way in (the page, the API) refuses the same things with the same
words: the text's length, how often one listener may ask, and whether the
moderator has silenced them.

Silencing an asker (``silence``) is one call-log row (``asker_silenced``,
the audit trail's entry and the state at once; ``unsilence`` writes
``asker_unsilenced``, and the latest row wins). It stops the listener who
asked, and anyone on the event who registers again with the same email.
How often one address or the whole event may ask is the web app's
(``web.limits``), which knows addresses; this store does not keep them.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callbridge.store.audience import WebListener
from callbridge.store.calllog import LogEntry, LogKind, log_row
from callbridge.store.db import Database
from callbridge.store.events import StoreError
from callbridge.store.models import CallLogRow, WebcastListenerRow, WrittenQuestionRow

MAX_TEXT = 1000  # characters: a question, not a statement
# One listener: one question at a time, a handful a call.
MIN_GAP = timedelta(seconds=20)
MAX_PER_CALL = 10


SILENCED = "the moderator is not taking further questions from you on this call"


class QuestionNotFound(StoreError):
    status = 404


class QuestionRefused(StoreError):
    """A question the rules refuse; ``retry_after`` (seconds) when asking later would do."""

    def __init__(
        self, message: str, status: int = 422, field: str | None = "text", retry_after: int = 0
    ) -> None:
        super().__init__(message, field=field)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class WrittenQuestion:
    id: int
    event_id: int
    name: str
    firm: str | None
    text: str
    asked_at: datetime
    state: str
    settled_at: datetime | None

    @property
    def key(self) -> str:
        """Its id in the call's queue (participant ids are "p…")."""
        return f"q{self.id}"

    @property
    def asker(self) -> str:
        return ", ".join(x for x in (self.name, self.firm) if x)


def question_id(key: str) -> int | None:
    """The stored id behind a queue key ("q17" → 17), or None for anything else."""
    if key.startswith("q") and key[1:].isdigit() and len(key) < 20:
        return int(key[1:])
    return None


def clean_text(text: str) -> str:
    """The question as it will be shown: spaces tidied, line breaks kept, nothing invisible.

    Raises ``QuestionRefused`` (field ``text``) for an empty or overlong one.
    """
    kept = "".join(
        c
        for c in text.replace("\r\n", "\n")
        if c == "\n" or unicodedata.category(c) not in ("Cc", "Cf", "Cn", "Co", "Cs")
    )
    lines = [" ".join(line.split()) for line in kept.split("\n")]
    cleaned = "\n".join(line for line in lines if line).strip()
    if not cleaned:
        raise QuestionRefused("a question cannot be empty")
    if len(cleaned) > MAX_TEXT:
        raise QuestionRefused(f"a question is at most {MAX_TEXT} characters ({len(cleaned)} given)")
    return cleaned


def _view(row: WrittenQuestionRow) -> WrittenQuestion:
    return WrittenQuestion(
        row.id,
        row.event_id,
        row.name,
        row.firm,
        row.text,
        row.asked_at,
        row.state,
        row.settled_at,
    )


class QuestionStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def ask(self, listener: WebListener, text: str, now: datetime) -> WrittenQuestion:
        """Store a registered listener's question; ``QuestionRefused`` says why one is not."""
        if listener.name is None:
            raise QuestionRefused(
                "register with your name to ask a question", status=403, field=None
            )
        cleaned = clean_text(text)
        with self.database.session() as session:
            if _is_silenced(session, listener):
                raise QuestionRefused(SILENCED, status=403, field=None)
            asked = session.scalars(
                select(WrittenQuestionRow.asked_at)
                .where(WrittenQuestionRow.listener_id == listener.id)
                .order_by(WrittenQuestionRow.asked_at.desc())
            ).all()
            if len(asked) >= MAX_PER_CALL:
                raise QuestionRefused(
                    f"you have asked {MAX_PER_CALL} questions on this call already",
                    status=429,
                    field=None,
                )
            if asked and now - asked[0] < MIN_GAP:
                wait = int((MIN_GAP - (now - asked[0])).total_seconds()) + 1
                raise QuestionRefused(
                    f"one question at a time: ask again in {wait} s",
                    status=429,
                    field=None,
                    retry_after=wait,
                )
            row = WrittenQuestionRow(
                event_id=listener.event_id,
                listener_id=listener.id,
                name=listener.name,
                firm=listener.firm,
                text=cleaned,
                asked_at=now,
                state="waiting",
            )
            session.add(row)
            session.commit()
            return _view(row)

    def silence(self, event_id: int, key: str, *, actor: str, now: datetime) -> WrittenQuestion:
        """Refuse the further questions of whoever asked ``key``; returns that question.

        Audited (``asker_silenced``, with the question and the moderator);
        silencing a silenced asker writes nothing. Raises ``QuestionNotFound``.
        """
        return self._set_silenced(event_id, key, True, actor=actor, now=now)

    def unsilence(self, event_id: int, key: str, *, actor: str, now: datetime) -> WrittenQuestion:
        """Take questions from the asker of ``key`` again (``asker_unsilenced``)."""
        return self._set_silenced(event_id, key, False, actor=actor, now=now)

    def _set_silenced(
        self, event_id: int, key: str, silenced: bool, *, actor: str, now: datetime
    ) -> WrittenQuestion:
        ident = question_id(key)
        with self.database.session() as session, session.begin():
            row = session.get(WrittenQuestionRow, ident) if ident is not None else None
            if row is None or row.event_id != event_id:
                raise QuestionNotFound(f"event {event_id} has no written question {key!r}")
            asker = f"w{row.listener_id}"
            if (asker in _silenced_askers(session, event_id)) != silenced:
                kind = LogKind.ASKER_SILENCED if silenced else LogKind.ASKER_UNSILENCED
                detail = {"question": f"q{row.id}", "name": row.name}
                entry = LogEntry(kind, now, event_id, asker, "console", actor=actor, detail=detail)
                session.add(log_row(entry))
            return _view(row)

    def is_silenced(self, listener: WebListener) -> bool:
        """Whether the moderator silenced this listener (or one with the same email)."""
        with self.database.session() as session:
            return _is_silenced(session, listener)

    def settle(self, key: str, state: str, at: datetime) -> None:
        """Record where the question stands now (the call controller decided it)."""
        ident = question_id(key)
        if ident is None:
            return
        with self.database.session() as session:
            row = session.get(WrittenQuestionRow, ident)
            if row is None:
                return
            row.state = state
            if state in ("answered", "dismissed"):
                row.settled_at = at
            session.commit()

    def of_event(self, event_id: int) -> list[WrittenQuestion]:
        """The event's questions, first asked first."""
        with self.database.session() as session:
            rows = session.scalars(
                select(WrittenQuestionRow)
                .where(WrittenQuestionRow.event_id == event_id)
                .order_by(WrittenQuestionRow.asked_at, WrittenQuestionRow.id)
            ).all()
            return [_view(row) for row in rows]

    def count(self, event_id: int) -> int:
        with self.database.session() as session:
            found = session.scalar(
                select(func.count())
                .select_from(WrittenQuestionRow)
                .where(WrittenQuestionRow.event_id == event_id)
            )
            return int(found or 0)


def _silenced_askers(session: Session, event_id: int) -> set[str]:
    """The event's silenced askers as "w<listener id>": each one's latest row decides."""
    rows = session.execute(
        select(CallLogRow.participant_id, CallLogRow.kind)
        .where(
            CallLogRow.event_id == event_id,
            CallLogRow.kind.in_([LogKind.ASKER_SILENCED.value, LogKind.ASKER_UNSILENCED.value]),
        )
        .order_by(CallLogRow.at, CallLogRow.id)
    ).all()
    state: dict[str, bool] = {}
    for asker, kind in rows:
        if asker is not None:
            state[asker] = kind == LogKind.ASKER_SILENCED.value
    return {asker for asker, silenced in state.items() if silenced}


def _is_silenced(session: Session, listener: WebListener) -> bool:
    askers = _silenced_askers(session, listener.event_id)
    if not askers:
        return False
    if f"w{listener.id}" in askers:
        return True
    if listener.email is None:
        return False
    # Registering again with the same email does not lift a silence.
    ids = [int(asker[1:]) for asker in askers if asker[1:].isdigit()]
    emails = session.scalars(
        select(WebcastListenerRow.email).where(WebcastListenerRow.id.in_(ids))
    ).all()
    return listener.email.casefold() in {e.casefold() for e in emails if e}
