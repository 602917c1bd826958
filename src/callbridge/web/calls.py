"""Live calls through the API: participants, start, end. Operators only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import phonenumbers
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from callbridge.bridge.control import (
    Action,
    BridgeControl,
    BridgeError,
    BridgeStats,
    LiveView,
    ParticipantView,
)
from callbridge.events.schema import EventRecord
from callbridge.store.audience import Audience
from callbridge.store.calllog import CallLog, LogKind
from callbridge.store.events import EventStore
from callbridge.store.users import Operator
from callbridge.web.auth import require_operator
from callbridge.web.deps import event_store
from callbridge.web.folder_watch import FolderWatches
from callbridge.web.webcast import listening_since

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/events/{event_id}", tags=["calls"])

# Web listeners are counted from the web's database, every so often.
WEB_COUNT_INTERVAL = 5.0
# A quiet stream says it is still there this often (proxies close idle connections).
KEEP_ALIVE = 15.0

OperatorDep = Annotated[Operator, Depends(require_operator)]
Store = Annotated[EventStore, Depends(event_store)]


def bridge(request: Request) -> BridgeControl:
    value: BridgeControl | None = getattr(request.app.state, "bridge", None)
    if value is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the telephony bridge is not running here"
        )
    return value


BridgeDep = Annotated[BridgeControl, Depends(bridge)]


stats_router = APIRouter(prefix="/api/bridge", tags=["calls"])


@stats_router.get("/stats", response_model=BridgeStats)
async def bridge_stats(control: BridgeDep, _: OperatorDep) -> BridgeStats:
    """Legs, conferences, join latency and media clock lateness of the running bridge."""
    return await control.stats()


@router.get("/participants", response_model=list[ParticipantView])
async def participants(
    event_id: int, store: Store, control: BridgeDep, _: OperatorDep, include_left: bool = False
) -> list[ParticipantView]:
    """Who is on the call: id, role, caller id, joined at, state."""
    await run_in_threadpool(store.get, event_id)
    return await control.participants(event_id, include_left=include_left)


@router.get("/live", response_model=LiveView)
async def live(
    event_id: int, request: Request, store: Store, control: BridgeDep, _: OperatorDep
) -> LiveView:
    """The console's view of the call: participants, question queue, counts, lock."""
    await run_in_threadpool(store.get, event_id)
    return _with_web(await control.live(event_id), await _web_listeners(request, event_id))


async def _web_listeners(request: Request, event_id: int) -> int:
    people: Audience = request.app.state.audience
    since = listening_since(datetime.now(UTC))
    return await run_in_threadpool(people.count_listening, event_id, since)


def _with_web(view: LiveView, web: int) -> LiveView:
    """The bridge counts phone legs; the webcast's beacons count browsers."""
    view.listeners_by_channel["web"] = web
    return view


@router.get("/live/stream", response_class=StreamingResponse)
async def live_stream(
    event_id: int, request: Request, store: Store, control: BridgeDep, _: OperatorDep
) -> StreamingResponse:
    """Server-Sent Events: a new LiveView whenever anything on the call changes.

    The media plane pushes the view when it changes (``BridgeControl.watch_live``);
    nothing here asks it again. Only the web listener count, which the web's
    own database holds, is read every WEB_COUNT_INTERVAL.
    """
    await run_in_threadpool(store.get, event_id)

    async def events() -> AsyncIterator[str]:
        last = ""
        web = 0
        loop = asyncio.get_running_loop()
        web_checked = -WEB_COUNT_INTERVAL
        sent_at = loop.time()
        async with control.watch_live(event_id) as feed:
            while not await request.is_disconnected():
                now = loop.time()
                if now - web_checked >= WEB_COUNT_INTERVAL:
                    web_checked = now
                    try:
                        web = await _web_listeners(request, event_id)
                    except SQLAlchemyError:
                        # The database is away (the pushed view says so): the stream,
                        # and the console's banner, go on with the last count.
                        log.warning("live stream: web listeners not counted", exc_info=True)
                pushed, seen = feed.view, feed.version
                if pushed is not None:
                    # The pushed view is shared by every console in this process: copied.
                    channels = {**pushed.listeners_by_channel, "web": web}
                    view = pushed.model_copy(
                        update={"listeners_by_channel": channels}
                    ).model_dump_json()
                    if view != last:
                        last = view
                        sent_at = now
                        yield f"data: {view}\n\n"
                if now - sent_at >= KEEP_ALIVE:
                    sent_at = now
                    yield ": keep-alive\n\n"
                # A view pushed while the last one was being sent is not missed: `seen`.
                await feed.wait(seen, timeout=max(0.05, WEB_COUNT_INTERVAL - (now - web_checked)))

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/actions", response_model=LiveView)
async def act(
    event_id: int, action: Action, store: Store, control: BridgeDep, operator: OperatorDep
) -> LiveView:
    """Moderate: mute, lock, open and close lines, reorder or clear the queue, disconnect."""
    await run_in_threadpool(store.get, event_id)
    try:
        return await control.act(event_id, action, operator.name)
    except BridgeError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.post("/start", response_model=EventRecord)
async def start_call(
    event_id: int, store: Store, control: BridgeDep, _: OperatorDep
) -> EventRecord:
    """Open the call: callers waiting on hold are connected, and the event is live."""
    try:
        await control.start_call(event_id)
    except BridgeError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return await run_in_threadpool(store.get, event_id)


@router.post("/end", response_model=EventRecord)
async def end_call(event_id: int, store: Store, control: BridgeDep, _: OperatorDep) -> EventRecord:
    """End the call for everyone with a closing prompt; the event is ended."""
    try:
        await control.end_call(event_id)
    except BridgeError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return await run_in_threadpool(store.get, event_id)


class DialRequest(BaseModel):
    """Whom to call, and what they join as once they press 1."""

    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=2, max_length=32, description="E.164, e.g. +19135550100")
    as_role: Literal["speaker", "listener"] = "speaker"

    @field_validator("number")
    @classmethod
    def _e164(cls, value: str) -> str:
        """A valid number in E.164 form (the bridge checks the countries its trunks allow)."""
        if not value.startswith("+"):
            raise ValueError("give the number in E.164 form, starting with + and the country code")
        try:
            parsed = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as error:
            raise ValueError(f"not a phone number: {error}") from None
        if not phonenumbers.is_valid_number(parsed):
            raise ValueError("not a valid phone number")
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class DialAnswer(BaseModel):
    dial_id: str
    number: str
    as_role: str


@router.post("/dial", response_model=DialAnswer, status_code=status.HTTP_202_ACCEPTED)
async def dial(
    event_id: int, body: DialRequest, store: Store, control: BridgeDep, operator: OperatorDep
) -> DialAnswer:
    """Dial a speaker: the bridge calls the number through its trunks; on '1' they join.

    202 once the call is placed (it may still ring or fail: the console's
    participants show the callee once they press 1); 422 for a number that is
    not valid E.164; 409 when the bridge refuses (a country not allowed, no trunk).
    """
    await run_in_threadpool(store.get, event_id)
    try:
        dial_id = await control.dial(event_id, body.number, body.as_role, operator.name)
    except BridgeError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return DialAnswer(dial_id=dial_id, number=body.number, as_role=body.as_role)


# A cell a spreadsheet would read as a formula (OWASP, "CSV Injection"): a
# registrant named "=HYPERLINK(...)" must not run in the IR team's Excel.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """``value`` as a CSV cell no spreadsheet evaluates: a leading ``'`` if it could be a formula.

    Phone numbers such as ``+19135550100`` get the quote too, as OWASP advises:
    a spreadsheet shows them as text, which is what they are.
    """
    return "'" + value if value.startswith(_FORMULA_START) else value


class TranscriptProgress(BaseModel):
    state: str = Field(description="running, done or failed")
    fraction: float
    detail: str = ""


@router.get("/transcript/progress", response_model=TranscriptProgress)
async def transcript_progress(
    event_id: int, request: Request, store: Store, _: OperatorDep
) -> TranscriptProgress:
    """How far the transcript of the call's recording has got (the console's progress bar)."""
    await run_in_threadpool(store.get, event_id)
    media = request.app.state.webcast_media
    progress = await run_in_threadpool(media.transcript_progress, event_id)
    if progress is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no transcript has started for this call")
    return TranscriptProgress(
        state=progress.state, fraction=progress.fraction, detail=progress.detail
    )


class LiveCaption(BaseModel):
    index: int = Field(description="position in the live transcript; ask with after=index+1")
    start: float = Field(description="seconds from the start of the call")
    end: float
    speaker: str | None = Field(description='"Speaker" (the mix names nobody); None for a note')
    text: str
    delay: float | None = Field(
        None, description="seconds from the words' end to the cue; None for a revision"
    )
    revises: list[int] | None = Field(
        None,
        description="a settled reading: the indices of the cues it replaces (shown in their "
        "place); None for a first reading",
    )


class LiveCaptions(BaseModel):
    cues: list[LiveCaption]
    next: int = Field(description="the after= that asks for only what is new")


@router.get("/captions/live", response_model=LiveCaptions)
async def live_captions(
    event_id: int,
    request: Request,
    store: Store,
    _: OperatorDep,
    q: Annotated[str, Query(max_length=200)] = "",
    after: Annotated[int, Query(ge=0)] = 0,
) -> LiveCaptions:
    """The live captions of the call so far, those matching ``q`` (whole words) if given.

    ``after`` set to the last ``next`` gives only the newer cues; the console
    follows them as they come on ``/captions/live/stream``.
    """
    await run_in_threadpool(store.get, event_id)
    media = request.app.state.webcast_media
    found = await run_in_threadpool(media.live_transcript, event_id, q, after)
    cues = [LiveCaption.model_validate(cue) for cue in found]
    last = max((cue.index for cue in cues), default=after - 1)
    if q.strip():
        # A search reads everything; "next" still moves past the whole transcript.
        everything = await run_in_threadpool(media.live_transcript, event_id, "", after)
        last = max((int(cue["index"]) for cue in everything), default=last)
    return LiveCaptions(cues=cues, next=max(after, last + 1))


@router.get("/captions/live/stream", response_class=StreamingResponse)
async def live_captions_stream(
    event_id: int,
    request: Request,
    store: Store,
    _: OperatorDep,
    after: Annotated[int, Query(ge=0)] = 0,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
) -> StreamingResponse:
    """Server-Sent Events: the live captions from ``after`` on, each new cue as it is made.

    Each message is a ``LiveCaptions`` whose ``next`` is also its SSE id, so a
    browser that reconnects (``Last-Event-ID``) goes on where it was. The
    stream waits on the transcript's folder (``web.folder_watch``), not a timer.
    """
    await run_in_threadpool(store.get, event_id)
    media = request.app.state.webcast_media
    watches: FolderWatches = request.app.state.folder_watches
    start = last_event_id if last_event_id is not None else after

    async def events() -> AsyncIterator[str]:
        position = start
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        async with watches.watch(media.live_dir(event_id).parent) as folder:
            while not await request.is_disconnected():
                seen = folder.version
                found = await run_in_threadpool(media.live_transcript, event_id, "", position)
                if found:
                    cues = [LiveCaption.model_validate(cue) for cue in found]
                    position = max(position, max(cue.index for cue in cues) + 1)
                    message = LiveCaptions(cues=cues, next=position).model_dump_json()
                    sent_at = loop.time()
                    yield f"id: {position}\ndata: {message}\n\n"
                elif loop.time() - sent_at >= KEEP_ALIVE:
                    sent_at = loop.time()
                    yield ": keep-alive\n\n"
                await folder.wait(seen, timeout=KEEP_ALIVE)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class LogEntryView(BaseModel):
    kind: LogKind
    at: datetime
    participant_id: str | None
    channel: str
    caller_id: str | None
    role: str | None
    actor: str
    detail: dict[str, Any]


@router.get("/audit", response_model=list[LogEntryView])
async def audit(
    event_id: int, store: Store, request: Request, _: OperatorDep
) -> list[LogEntryView]:
    """The call's audit trail: every join, leave, role change, mute, queue move, failed code."""
    await run_in_threadpool(store.get, event_id)
    log: CallLog = request.app.state.call_log
    entries = await run_in_threadpool(log.entries, event_id)
    return [
        LogEntryView(
            kind=e.kind,
            at=e.at,
            participant_id=e.participant_id,
            channel=e.channel,
            caller_id=e.caller_id,
            role=e.role,
            actor=e.actor,
            detail=e.detail,
        )
        for e in entries
    ]
