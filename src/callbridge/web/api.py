"""The JSON API: events in and out, and their announcements.

Reads of a single event's public parts (the announcement) are open; the
event record itself carries the speaker passcode and needs an operator.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from callbridge.announce import render as announce
from callbridge.events.schema import EventFile, EventPatch, EventRecord, EventState, EventSummary
from callbridge.store.aftercall import AfterCall
from callbridge.store.events import Conflict, EventStore, StoreError, VersionConflict
from callbridge.store.users import Operator
from callbridge.web.auth import require_operator
from callbridge.web.brand import brand_store
from callbridge.web.deps import after_call, event_store, settings
from callbridge.web.pages import clock

router = APIRouter(prefix="/api", tags=["events"])

Store = Annotated[EventStore, Depends(event_store)]
OperatorDep = Annotated[Operator, Depends(require_operator)]
AfterCallDep = Annotated[AfterCall, Depends(after_call)]
Now = Annotated[datetime, Depends(clock)]

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


def etag(record: EventRecord) -> str:
    """The event's version as a strong entity tag: what ``If-Match`` sends back."""
    return f'"{record.version}"'


def _expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` names; None for no header or ``*`` (any version).

    A tag that names no version of ours can match none: -1.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    return int(tag) if tag.isdigit() and len(tag) < 12 else -1


def _precondition_failed(refused: VersionConflict) -> JSONResponse:
    return JSONResponse(
        {
            "detail": [
                {"loc": ["header", "If-Match"], "msg": refused.message, "type": "VersionConflict"}
            ],
            "current": jsonable_encoder(refused.current),
        },
        status_code=status.HTTP_412_PRECONDITION_FAILED,
        headers={"ETag": etag(refused.current)},
    )


@router.get("/events/{event_id}", response_model=EventRecord)
async def get_event(event_id: int, store: Store, _: OperatorDep, response: Response) -> EventRecord:
    """The event with its version, also as the ``ETag`` to send back in ``If-Match``."""
    record = await run_in_threadpool(store.get, event_id)
    response.headers["ETag"] = etag(record)
    return record


@router.patch(
    "/events/{event_id}",
    response_model=EventRecord,
    responses={412: {"description": "If-Match names a version the event has moved past"}},
)
async def update_event(
    event_id: int,
    patch: EventPatch,
    store: Store,
    changes: AfterCallDep,
    operator: OperatorDep,
    now: Now,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> EventRecord | JSONResponse:
    """Change a scheduled event; once its call has started, only ``replay_until`` changes.

    With ``If-Match: "<version>"`` (the ``ETag`` of the GET), a change someone
    else made since is never written over: 412 with the event as it is now
    under ``current``. Without it the change applies to whatever is stored.

    While the call is live its ``speakers`` may still change (alone), so a
    late speaker is named as they dial in. After the call the replay's last
    day may move later or earlier, but not before the day the call ended
    (422 naming ``replay_until``); every such change is in the audit trail.
    Any other field of a live or past event: 409.
    """
    expected = _expected_version(if_match)
    try:
        changed = await _update(event_id, patch, store, changes, operator, now, expected)
    except VersionConflict as refused:
        return _precondition_failed(refused)
    response.headers["ETag"] = etag(changed)
    return changed


async def _update(
    event_id: int,
    patch: EventPatch,
    store: EventStore,
    changes: AfterCall,
    operator: Operator,
    now: datetime,
    expected: int | None,
) -> EventRecord:
    record = await run_in_threadpool(store.get, event_id)
    if expected is not None and record.version != expected:
        raise VersionConflict(record, expected)
    if record.state is EventState.SCHEDULED:
        return await run_in_threadpool(store.update, event_id, patch, expected)
    fields = patch.model_dump(exclude_unset=True)
    if (
        record.state is EventState.LIVE
        and set(fields) == {"speakers"}
        and patch.speakers is not None
    ):
        return await run_in_threadpool(store.set_speakers, event_id, patch.speakers)
    others = sorted(set(fields) - {"replay_until"})
    if others:
        raise Conflict(
            f"event {event_id} is {record.state}; only replay_until changes after the call "
            f"starts (not {', '.join(others)})"
        )
    if patch.replay_until is None:
        raise StoreError(
            "give the replay's last day; to end the replay now, give the day the call ended",
            field="replay_until",
        )
    last_day = patch.replay_until
    return await run_in_threadpool(
        lambda: changes.change_replay(event_id, last_day, actor=operator.name, now=now)
    )


@router.post("/events/{event_id}/archive", response_model=EventRecord)
async def archive_event(
    event_id: int, changes: AfterCallDep, operator: OperatorDep, now: Now
) -> EventRecord:
    """Archive an ended event: its passcodes are freed and open nothing; 409 unless ended."""
    return await run_in_threadpool(lambda: changes.archive(event_id, actor=operator.name, now=now))


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
    event_id: int, fmt: Literal["txt", "html", "md", "ics"], store: Store, request: Request
) -> Response:
    """The press release (text, HTML, Markdown) or the calendar invite (.ics). Public.

    The webcast's address is the event's ``webcast_url``, else this server's
    own webcast page under ``serve --public-url``.
    """
    record = await run_in_threadpool(store.get, event_id)
    public_url = settings(request).public_url
    body: str | bytes
    headers: dict[str, str] = {}
    if fmt == "ics":
        body = announce.render_ics(record, datetime.now(UTC), public_url)
        headers["Content-Disposition"] = (
            f'attachment; filename="{record.company.ticker.lower()}-event-{record.id}.ics"'
        )
    elif fmt == "html":
        logo = await run_in_threadpool(brand_store(request).logo, event_id)
        body = announce.render_html(record, public_url, logo)
    elif fmt == "md":
        body = announce.render_markdown(record, public_url)
    else:
        body = announce.render_text(record, public_url)
    return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)
