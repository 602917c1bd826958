"""The console's transcript editor: correct words and speakers, mark sections, publish.

``/console/events/{id}/transcript`` lists the automatic transcript segment by
segment: each with a button that plays the recording from the segment's
start, its speaker, its words and an optional section mark (prepared
remarks, Q&A, a question and who asks it). The page's script
(``static/transcript_editor.js``) saves what changed as a draft and
publishes through the JSON API below (operator login, CSRF header), which
checks every change (``transcript.editing``) before the store keeps it with
its audit row (``store.transcripts``). Publishing freezes the draft as the
next version: the replay page, its captions and the downloads show it from
then on (``web.transcript_published``).

The recording plays from ``.../transcript/audio`` (the replay's M4A, for a
logged-in operator, whatever the replay window), so an editor can check a
word after the window has closed too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, status
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from callbridge.events.schema import EventRecord
from callbridge.store.events import EventNotFound, EventStore, StoreError
from callbridge.store.transcripts import Edit, EditIn, TranscriptEdits
from callbridge.store.users import Operator
from callbridge.transcript import editing
from callbridge.transcript.editing import Draft, EditError, EditField, GlossaryOffer, MarkKind
from callbridge.transcript.model import Transcript
from callbridge.transcript.transcribe import load_transcript
from callbridge.transcript.turns import OPERATOR, clock
from callbridge.web.auth import csrf_token, require_operator
from callbridge.web.deps import event_store
from callbridge.web.pages import Now, OperatorPage, _not_found, _page, _record, view_of

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/events/{event_id}/transcript", tags=["transcript"])

Store = Annotated[EventStore, Depends(event_store)]
OperatorDep = Annotated[Operator, Depends(require_operator)]
MARK_CHOICES = (
    ("", "No mark"),
    (MarkKind.REMARKS.value, "Prepared remarks start"),
    (MarkKind.QA.value, "Q&A starts"),
    (MarkKind.QUESTION.value, "A question starts"),
)


def _edits(request: Request) -> TranscriptEdits:
    value: TranscriptEdits = request.app.state.transcript_edits
    return value


@dataclass(frozen=True)
class Automatic:
    transcript: Transcript
    directory: Path


def _automatic_on_disk(request: Request, event_id: int) -> Automatic | None:
    media = getattr(request.app.state, "webcast_media", None)
    if media is None:
        return None
    found = media.replay(event_id)
    if found is None:
        return None
    transcript = load_transcript(found.directory)
    return None if transcript is None else Automatic(transcript, found.directory)


async def automatic(request: Request, event_id: int) -> Automatic | None:
    """The automatic transcript of the event's newest replay, or None before it is done."""
    return await run_in_threadpool(_automatic_on_disk, request, event_id)


def draft_of(transcript: Transcript, current: dict[tuple[int, str], Edit]) -> Draft:
    values = {(seg, EditField(name)): edit.value for (seg, name), edit in current.items()}
    starts = {edit.segment: edit.start for edit in current.values()}
    return editing.apply(transcript, values, starts)


def offers_of(transcript: Transcript, draft: Draft, glossary: list[str]) -> list[GlossaryOffer]:
    pairs = [
        (transcript.segments[i].text, draft.transcript.segments[i].text)
        for i in sorted(draft.corrected)
    ]
    return editing.glossary_offers(pairs, glossary)


def _offer_json(offer: GlossaryOffer) -> dict[str, Any]:
    return {"term": offer.term, "count": offer.count, "heard": list(offer.heard)}


@dataclass(frozen=True)
class SegmentRow:
    """One segment as the editor's page lists it."""

    index: int
    start: float
    clock: str
    speaker: str
    text: str
    automatic_speaker: str
    automatic_text: str
    mark: str  # the mark's kind, or ""
    mark_label: str
    corrected: bool


def _rows(transcript: Transcript, draft: Draft) -> list[SegmentRow]:
    marks = {m.segment: m for m in draft.marks}
    rows = []
    for index, (auto, now) in enumerate(
        zip(transcript.segments, draft.transcript.segments, strict=True)
    ):
        mark = marks.get(index)
        rows.append(
            SegmentRow(
                index=index,
                start=auto.start,
                clock=clock(auto.start),
                speaker=now.speaker or "",
                text=now.text,
                automatic_speaker=auto.speaker or "",
                automatic_text=auto.text,
                mark=mark.kind.value if mark else "",
                mark_label=mark.label if mark else "",
                corrected=index in draft.corrected,
            )
        )
    return rows


def speaker_choices(record: EventRecord, transcript: Transcript) -> list[str]:
    """The labels offered for a segment's speaker: the event's speakers, then who the
    transcript already names, then the operator."""
    found = [s.label for s in record.speakers]
    for segment in transcript.segments:
        if segment.speaker and segment.speaker not in found:
            found.append(segment.speaker)
    if OPERATOR not in found:
        found.append(OPERATOR)
    return found


@dataclass(frozen=True)
class _State:
    record: EventRecord
    automatic: Automatic
    current: dict[tuple[int, str], Edit]
    draft: Draft
    version: int | None


async def _state(request: Request, store: EventStore, event_id: int) -> _State | None:
    record = await _record(store, event_id)
    if record is None:
        return None
    found = await automatic(request, event_id)
    if found is None:
        return None
    edits = _edits(request)
    current = await run_in_threadpool(edits.current, event_id)
    version = await run_in_threadpool(edits.latest_version, event_id)
    return _State(record, found, current, draft_of(found.transcript, current), version)


# -- the page --------------------------------------------------------------------------


@router.get("/console/events/{event_id}/transcript")
async def editor_page(
    request: Request, event_id: int, store: Store, operator: OperatorPage, now: Now
) -> Response:
    """The editor: every segment, its audio a click away; save a draft, publish."""
    record = await _record(store, event_id)
    if record is None:
        return _not_found(request, event_id)
    state = await _state(request, store, event_id)
    revisions = await run_in_threadpool(_edits(request).revisions, event_id)
    context: dict[str, Any] = {
        "operator": operator,
        "event": view_of(record, now),
        "csrf_token": csrf_token(request),
        "ready": state is not None,
        "revisions": revisions,
        "mark_choices": MARK_CHOICES,
    }
    if state is not None:
        last_published = revisions[0].last_edit_id if revisions else 0
        unpublished = sum(1 for e in state.current.values() if e.id > last_published)
        context.update(
            rows=_rows(state.automatic.transcript, state.draft),
            speakers=speaker_choices(record, state.automatic.transcript),
            offers=offers_of(state.automatic.transcript, state.draft, record.glossary),
            glossary=record.glossary,
            corrected=len(state.draft.corrected),
            stale=state.draft.stale,
            unpublished=unpublished,
        )
    return _page(request, "transcript_editor.html", context)


@router.get("/console/events/{event_id}/transcript/audio")
async def editor_audio(request: Request, event_id: int, _: OperatorPage) -> Response:
    """The replay's recording for the editor (byte ranges, so the player seeks)."""
    media = getattr(request.app.state, "webcast_media", None)
    found = None if media is None else await run_in_threadpool(media.replay, event_id)
    if found is None or not found.m4a.is_file():
        return PlainTextResponse("the recording is not ready", status.HTTP_404_NOT_FOUND)
    return FileResponse(found.m4a, media_type="audio/mp4", headers={"Cache-Control": "private"})


# -- the API ---------------------------------------------------------------------------


def _not_ready(event_id: int) -> StoreError:
    error = StoreError(f"event {event_id} has no transcript yet")
    error.status = status.HTTP_404_NOT_FOUND
    return error


def _summary(state: _State, offers: list[GlossaryOffer]) -> dict[str, Any]:
    marks = {m.segment: m for m in state.draft.marks}
    return {
        "event": state.record.id,
        "version": state.version,
        "corrected": sorted(state.draft.corrected),
        "stale": list(state.draft.stale),
        "offers": [_offer_json(o) for o in offers],
        "segments": [
            {
                "segment": index,
                "start": now.start,
                "end": now.end,
                "speaker": now.speaker,
                "text": now.text,
                "automatic": {"speaker": auto.speaker, "text": auto.text},
                "mark": marks[index].value if index in marks else "",
            }
            for index, (auto, now) in enumerate(
                zip(
                    state.automatic.transcript.segments,
                    state.draft.transcript.segments,
                    strict=True,
                )
            )
        ],
    }


async def _loaded(request: Request, store: EventStore, event_id: int) -> _State:
    state = await _state(request, store, event_id)
    if state is None:
        record = await _record(store, event_id)
        if record is None:
            raise EventNotFound(f"there is no event {event_id}")
        raise _not_ready(event_id)
    return state


@api.get("")
async def draft(request: Request, event_id: int, store: Store, _: OperatorDep) -> dict[str, Any]:
    """The draft: each segment as corrected, beside the automatic one; glossary offers."""
    state = await _loaded(request, store, event_id)
    return _summary(
        state, offers_of(state.automatic.transcript, state.draft, state.record.glossary)
    )


@api.post("/edits")
async def save_edits(
    request: Request,
    event_id: int,
    store: Store,
    operator: OperatorDep,
    now: Now,
    edits: Annotated[Any, Body(embed=True)],
) -> dict[str, Any]:
    """Save changes as the draft: ``{"edits": [{"segment": 3, "text": "...",
    "speaker": "...", "mark": "question:Jane Roe, Example Securities"}]}``.

    Only what differs from the draft is stored, each with an audit row;
    answers how many were saved and the glossary offers now.
    """
    state = await _loaded(request, store, event_id)
    transcript = state.automatic.transcript
    try:
        changes = editing.parse_changes(edits, transcript)
    except EditError as error:
        raise StoreError(error.message, field=error.field) from None
    wanted = [
        EditIn(
            segment=c.segment,
            field=c.field.value,
            value=c.value,
            before=editing.automatic_value(transcript.segments[c.segment], c.field),
            start=transcript.segments[c.segment].start,
        )
        for c in changes
    ]
    saved = await run_in_threadpool(
        lambda: _edits(request).save(event_id, wanted, actor=operator.name, now=now)
    )
    state = await _loaded(request, store, event_id)
    offers = offers_of(transcript, state.draft, state.record.glossary)
    return {"saved": len(saved), **_summary(state, offers)}


@api.post("/publish")
async def publish(
    request: Request, event_id: int, store: Store, operator: OperatorDep, now: Now
) -> dict[str, Any]:
    """Publish the draft as the next version: listeners, captions and downloads show it."""
    state = await _loaded(request, store, event_id)
    last_edit_id = max((e.id for e in state.current.values()), default=0)

    def document(version: int) -> str:
        try:
            done = editing.publish(state.draft, version, now, operator.name)
        except EditError as error:
            raise StoreError(error.message, field=error.field) from None
        return json.dumps(done.to_json(), ensure_ascii=False)

    revision = await run_in_threadpool(
        lambda: _edits(request).publish(
            event_id,
            document,
            last_edit_id=last_edit_id,
            corrections=len(state.draft.corrected),
            actor=operator.name,
            now=now,
        )
    )
    return {
        "version": revision.version,
        "corrections": revision.corrections,
        "published_at": revision.published_at.isoformat(),
        "published_by": revision.published_by,
        "replay": f"/events/{event_id}/webcast",
    }


@api.get("/revisions")
async def revisions(
    request: Request, event_id: int, store: Store, _: OperatorDep
) -> list[dict[str, Any]]:
    """Every published version, newest first."""
    if await _record(store, event_id) is None:
        raise EventNotFound(f"there is no event {event_id}")
    found = await run_in_threadpool(_edits(request).revisions, event_id)
    return [
        {
            "version": r.version,
            "published_at": r.published_at.isoformat(),
            "published_by": r.published_by,
            "corrections": r.corrections,
        }
        for r in found
    ]


@api.post("/glossary")
async def add_to_glossary(
    request: Request,
    event_id: int,
    store: Store,
    operator: OperatorDep,
    now: Now,
    terms: Annotated[list[str], Body(embed=True, max_length=50)],
) -> dict[str, Any]:
    """Add terms to the event's glossary (audited): ``{"terms": ["Zyloprin"]}``."""
    added = await run_in_threadpool(
        lambda: _edits(request).add_to_glossary(event_id, terms, actor=operator.name, now=now)
    )
    record = await _record(store, event_id)
    return {"added": added, "glossary": record.glossary if record else []}
