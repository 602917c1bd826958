"""The transcript listeners get: the editor's published version once there is one.

The replay page (``listener_page``), the captions and the downloads
(``media``) ask here first: ``published_for`` reads the newest version from
the store (one small query; the document itself is read once per version and
kept), and ``render`` makes a document of it, headed with ``masthead`` (the
company, the call's title and date, the event's speakers and their titles).

``key_figures`` gives the table of figures said in the call
(``transcript.key_figures``, read from the version being rendered, so a
corrected figure is the one printed): rows, header first, that every document
prints under "Key figures".

Imports nothing of ``web.media`` or ``web.webcast``, so both may use it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from callbridge.announce import timefmt
from callbridge.events.schema import EventRecord
from callbridge.store.transcripts import TranscriptEdits
from callbridge.transcript import key_figures as figures
from callbridge.transcript import published as docs
from callbridge.transcript.editing import Published
from callbridge.transcript.model import Transcript
from callbridge.transcript.transcribe import load_transcript
from callbridge.web.pages import moment_in_zone

KINDS = ("txt", "html", "docx", "pdf")
MEDIA_TYPES = {
    "txt": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
}
# Rendered documents kept in memory, newest versions of the busiest events (a DOCX or a
# PDF of an hour's call takes a few hundred milliseconds to make; a crowd asks at once).
MAX_KEPT = 64


def edits_of(request: Request) -> TranscriptEdits | None:
    value: TranscriptEdits | None = getattr(request.app.state, "transcript_edits", None)
    return value


def _kept(request: Request) -> dict[tuple[object, ...], object]:
    kept: dict[tuple[object, ...], object] | None = getattr(
        request.app.state, "published_transcripts", None
    )
    if kept is None:
        kept = request.app.state.published_transcripts = {}
    return kept


def _keep(kept: dict[tuple[object, ...], object], key: tuple[object, ...], value: object) -> None:
    if len(kept) >= MAX_KEPT:
        kept.pop(next(iter(kept)))
    kept[key] = value


async def published_for(request: Request, event_id: int) -> Published | None:
    """The newest published version of the event's transcript, or None."""
    store = edits_of(request)
    if store is None:
        return None
    version = await run_in_threadpool(store.latest_version, event_id)
    if version is None:
        return None
    kept = _kept(request)
    key = ("document", event_id, version)
    found = kept.get(key)
    if isinstance(found, Published):
        return found
    revision = await run_in_threadpool(store.revision, event_id, version)
    if revision is None or revision.document is None:
        return None
    document = Published.from_json(json.loads(revision.document))
    _keep(kept, key, document)
    return document


def unreviewed(transcript: Transcript) -> Published:
    """The automatic transcript in a published document's form (version 0), for its PDF."""
    return Published(transcript, (), 0, datetime(1970, 1, 1, tzinfo=UTC), "")


def masthead(record: EventRecord, published: Published) -> docs.Masthead:
    """The company, the call's title and date, the speakers; and which version this is."""
    if published.version:
        day = published.published_at.astimezone(record.zone).date()
        note = docs.note_for(published, f"on {timefmt.long_date(day)}")
    else:
        note = "Made by speech recognition after the call; not yet reviewed."
    return docs.Masthead(
        company=record.company.name,
        title=record.title,
        date=moment_in_zone(record.starts_at, record.timezone),
        speakers=tuple((s.name, s.title) for s in record.speakers),
        note=note,
    )


def key_figures(record: EventRecord, published: Published) -> docs.KeyFigureRows:
    """The call's key figures (time, what, value, period): rows, header first; none when
    the call said no figure (the documents then leave the section out)."""
    found = figures.key_figures(published.transcript)
    return [figures.HEAD, *(figures.cells(row) for row in found)] if found else ()


def render(kind: str, record: EventRecord, published: Published) -> bytes:
    """The document of ``kind`` ("txt", "html", "docx", "pdf"); KeyError for another kind."""
    head = masthead(record, published)
    figures = key_figures(record, published)
    if kind in docs.RENDERERS:
        return docs.RENDERERS[kind](published, head, figures).encode()
    return docs.BINARY_RENDERERS[kind](published, head, figures)


async def document(
    request: Request, kind: str, record: EventRecord, directory: Path
) -> bytes | None:
    """The download of ``kind`` made from the published version; None: serve the file the
    transcription wrote. A PDF is never written, so before publishing it is made from the
    automatic transcript in ``directory`` (None when there is none yet)."""
    published = await published_for(request, record.id)
    if published is None and kind == "pdf":
        automatic = await run_in_threadpool(load_transcript, directory)
        if automatic is not None:
            published = unreviewed(automatic)
    return None if published is None else await rendered(request, kind, record, published)


async def rendered(request: Request, kind: str, record: EventRecord, published: Published) -> bytes:
    """``render``, made once per (event, version, kind) and kept."""
    kept = _kept(request)
    key = ("file", record.id, published.version, kind, record.version)
    found = kept.get(key)
    if isinstance(found, bytes):
        return found
    data = await run_in_threadpool(render, kind, record, published)
    if published.version:
        _keep(kept, key, data)
    return data
