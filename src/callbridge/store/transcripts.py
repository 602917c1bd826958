"""The editor's corrections of an event's transcript and its published versions.

Each change (a segment's text, speaker or section mark) is one row of
``transcript_edit``, never changed afterwards; the draft is each (segment,
field)'s newest row, laid over the automatic transcript (which stays on disk
as it was made). Publishing stores the whole document as a row of
``transcript_revision`` with the next version number. Every change, every
publication and every term added to the glossary writes its audit row in the
call log in the same transaction, with who and when: the trail holds the
automatic words each first change replaced.

Values only: what a document holds is ``transcript.editing``'s business
(the store sits below the transcript package).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from callbridge.events.schema import MAX_GLOSSARY
from callbridge.store.calllog import LogEntry, LogKind, log_row
from callbridge.store.db import Database
from callbridge.store.events import Conflict, EventNotFound, StoreError
from callbridge.store.models import CallLogRow, EventRow, TranscriptEditRow, TranscriptRevisionRow

MAX_TERM = 60  # events.schema.GlossaryTerm
# The audit row's copy of a text is cut here: the edit row keeps it whole.
AUDIT_TEXT = 500


def _audit(
    kind: LogKind, event_id: int, actor: str, now: datetime, detail: dict[str, Any]
) -> CallLogRow:
    """The audit trail's row for an editor's action, written in the action's transaction."""
    return log_row(LogEntry(kind, now, event_id, channel="console", actor=actor, detail=detail))


@dataclass(frozen=True)
class EditIn:
    """A change to save: ``before`` is what the field read when the editor changed it."""

    segment: int
    field: str
    value: str
    before: str
    start: float


@dataclass(frozen=True)
class Edit:
    id: int
    segment: int
    field: str
    value: str
    before: str
    start: float
    actor: str
    at: datetime


@dataclass(frozen=True)
class Revision:
    """A published version; ``document`` is its JSON (None when not asked for)."""

    version: int
    published_at: datetime
    published_by: str
    corrections: int
    last_edit_id: int
    document: str | None = None


def _edit(row: TranscriptEditRow) -> Edit:
    return Edit(row.id, row.segment, row.field, row.value, row.before, row.start, row.actor, row.at)


def _revision(row: TranscriptRevisionRow, with_document: bool) -> Revision:
    return Revision(
        row.version,
        row.published_at,
        row.published_by,
        row.corrections,
        row.last_edit_id,
        row.document if with_document else None,
    )


def _cut(text: str) -> str:
    return text if len(text) <= AUDIT_TEXT else text[: AUDIT_TEXT - 1] + "…"


class TranscriptEdits:
    """Save corrections, read the draft, publish versions, add glossary terms."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def _event(self, session: Session, event_id: int) -> EventRow:
        row = session.get(EventRow, event_id)
        if row is None:
            raise EventNotFound(f"there is no event {event_id}")
        return row

    def edits(self, event_id: int) -> list[Edit]:
        """Every change saved for the event, oldest first."""
        with self.database.session() as session:
            rows = session.scalars(
                select(TranscriptEditRow)
                .where(TranscriptEditRow.event_id == event_id)
                .order_by(TranscriptEditRow.id)
            )
            return [_edit(row) for row in rows]

    def current(self, event_id: int) -> dict[tuple[int, str], Edit]:
        """The draft: each (segment, field)'s newest change."""
        return {(e.segment, e.field): e for e in self.edits(event_id)}

    def save(
        self, event_id: int, changes: Sequence[EditIn], *, actor: str, now: datetime
    ) -> list[Edit]:
        """Store the changes that change something; each with its audit row. Returns them.

        A change equal to the field's current value (the newest change, or
        ``before`` when there is none) is no change and is not stored.
        """
        saved: list[Edit] = []
        with self.database.session() as session, session.begin():
            self._event(session, event_id)
            newest: dict[tuple[int, str], str] = {}
            for row in session.scalars(
                select(TranscriptEditRow)
                .where(TranscriptEditRow.event_id == event_id)
                .order_by(TranscriptEditRow.id)
            ):
                newest[(row.segment, row.field)] = row.value
            for change in changes:
                key = (change.segment, change.field)
                was = newest.get(key, change.before)
                if change.value == was:
                    continue
                row = TranscriptEditRow(
                    event_id=event_id,
                    segment=change.segment,
                    field=change.field,
                    value=change.value,
                    before=was,
                    start=change.start,
                    actor=actor,
                    at=now,
                )
                session.add(row)
                detail = {
                    "segment": change.segment,
                    "field": change.field,
                    "from": _cut(was),
                    "to": _cut(change.value),
                }
                session.add(_audit(LogKind.TRANSCRIPT_EDIT, event_id, actor, now, detail))
                newest[key] = change.value
                session.flush()
                saved.append(_edit(row))
        return saved

    def publish(
        self,
        event_id: int,
        document: Callable[[int], str],
        *,
        last_edit_id: int,
        corrections: int,
        actor: str,
        now: datetime,
    ) -> Revision:
        """Store the next version; ``document(version)`` writes its JSON. Audited.

        Raises ``Conflict`` when another editor published the same version first.
        """
        try:
            with self.database.session() as session, session.begin():
                self._event(session, event_id)
                latest = session.scalar(
                    select(func.max(TranscriptRevisionRow.version)).where(
                        TranscriptRevisionRow.event_id == event_id
                    )
                )
                version = (latest or 0) + 1
                row = TranscriptRevisionRow(
                    event_id=event_id,
                    version=version,
                    document=document(version),
                    last_edit_id=last_edit_id,
                    corrections=corrections,
                    published_by=actor,
                    published_at=now,
                )
                session.add(row)
                detail = {"version": version, "corrections": corrections}
                session.add(_audit(LogKind.TRANSCRIPT_PUBLISHED, event_id, actor, now, detail))
                session.flush()
                return _revision(row, with_document=False)
        except IntegrityError:
            raise Conflict("another editor published this version first; reload") from None

    def revisions(self, event_id: int) -> list[Revision]:
        """Every published version, newest first, without their documents."""
        with self.database.session() as session:
            rows = session.scalars(
                select(TranscriptRevisionRow)
                .where(TranscriptRevisionRow.event_id == event_id)
                .order_by(TranscriptRevisionRow.version.desc())
            )
            return [_revision(row, with_document=False) for row in rows]

    def latest_version(self, event_id: int) -> int | None:
        with self.database.session() as session:
            value = session.scalar(
                select(func.max(TranscriptRevisionRow.version)).where(
                    TranscriptRevisionRow.event_id == event_id
                )
            )
            return None if value is None else int(value)

    def revision(self, event_id: int, version: int) -> Revision | None:
        """One version with its document."""
        with self.database.session() as session:
            row = session.scalar(
                select(TranscriptRevisionRow)
                .where(
                    TranscriptRevisionRow.event_id == event_id,
                    TranscriptRevisionRow.version == version,
                )
                .options(undefer(TranscriptRevisionRow.document))
            )
            return None if row is None else _revision(row, with_document=True)

    def add_to_glossary(
        self, event_id: int, terms: Sequence[str], *, actor: str, now: datetime
    ) -> list[str]:
        """Add terms to the event's glossary (its next transcript and any copy of the event
        spell them so); returns those that were new. Raises ``StoreError`` naming ``terms``."""
        clean: list[str] = []
        for position, term in enumerate(terms):
            text = " ".join(term.split())
            if not text or len(text) > MAX_TERM:
                raise StoreError(
                    f"a term is 1 to {MAX_TERM} characters on one line", field=f"terms[{position}]"
                )
            clean.append(text)
        with self.database.session() as session, session.begin():
            row = self._event(session, event_id)
            glossary = [line for line in row.glossary.splitlines() if line]
            known = {t.casefold() for t in glossary}
            added = []
            for text in clean:
                if text.casefold() not in known:
                    known.add(text.casefold())
                    added.append(text)
            if not added:
                return []
            if len(glossary) + len(added) > MAX_GLOSSARY:
                raise StoreError(f"the glossary holds at most {MAX_GLOSSARY} terms", field="terms")
            row.glossary = "\n".join([*glossary, *added])
            session.add(_audit(LogKind.GLOSSARY_ADDED, event_id, actor, now, {"terms": added}))
            session.flush()
            return added
