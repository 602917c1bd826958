"""The JSON API: events in and out, and their announcements.

Reads of a single event's public parts (the announcement) are open; the
event record itself carries the speaker passcode and needs an operator.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response, status
from starlette.concurrency import run_in_threadpool

from callbridge.announce import render as announce
from callbridge.events.schema import EventFile, EventPatch, EventRecord, EventSummary
from callbridge.store.events import EventStore
from callbridge.store.users import Operator
from callbridge.web.auth import require_operator
from callbridge.web.deps import event_store

router = APIRouter(prefix="/api", tags=["events"])

Store = Annotated[EventStore, Depends(event_store)]
OperatorDep = Annotated[Operator, Depends(require_operator)]

MEDIA_TYPES: dict[str, str] = {
    "txt": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "ics": "text/calendar; charset=utf-8",
}


@router.get("/events", response_model=list[EventSummary])
async def list_events(store: Store, _: OperatorDep) -> list[EventSummary]:
    """Every event, soonest first."""
    return await run_in_threadpool(store.summaries)


@router.post("/events", response_model=EventRecord, status_code=status.HTTP_201_CREATED)
async def create_event(spec: EventFile, store: Store, _: OperatorDep) -> EventRecord:
    """Create an event from the same document as the TOML event file.

    Passcodes left out are generated. A refused event leaves nothing behind.
    """
    return await run_in_threadpool(store.create, spec)


@router.get("/events/{event_id}", response_model=EventRecord)
async def get_event(event_id: int, store: Store, _: OperatorDep) -> EventRecord:
    return await run_in_threadpool(store.get, event_id)


@router.patch("/events/{event_id}", response_model=EventRecord)
async def update_event(
    event_id: int, patch: EventPatch, store: Store, _: OperatorDep
) -> EventRecord:
    """Change a scheduled event; 409 once it is live or over."""
    return await run_in_threadpool(store.update, event_id, patch)


@router.delete("/events/{event_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_event(event_id: int, store: Store, _: OperatorDep) -> Response:
    """Delete an event that is still scheduled; 409 once it is live or over."""
    await run_in_threadpool(store.delete, event_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/events/{event_id}/announcement.{fmt}",
    responses={200: {"content": {t.split(";")[0]: {} for t in MEDIA_TYPES.values()}}},
)
async def announcement(
    event_id: int, fmt: Literal["txt", "html", "md", "ics"], store: Store
) -> Response:
    """The press release (text, HTML, Markdown) or the calendar invite (.ics). Public."""
    record = await run_in_threadpool(store.get, event_id)
    body: str | bytes
    headers: dict[str, str] = {}
    if fmt == "ics":
        body = announce.render_ics(record, datetime.now(UTC))
        headers["Content-Disposition"] = (
            f'attachment; filename="{record.company.ticker.lower()}-event-{record.id}.ics"'
        )
    elif fmt == "html":
        body = announce.render_html(record)
    elif fmt == "md":
        body = announce.render_markdown(record)
    else:
        body = announce.render_text(record)
    return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)
