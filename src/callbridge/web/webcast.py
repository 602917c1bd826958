"""The webcast page: registration, the live player, the replay, the transcript.

The page itself is public. Whether it asks for a name, firm and email before
it plays is the event's ``registration`` setting. A registered browser holds
a cookie ``cb_wc_<event>``: the listener's random token and an HMAC of it
under the server's secret key, so the media routes check access without a
database read per playlist request (hundreds of listeners poll every part).
Listening time comes from beacons the page sends while it plays
(``store.audience``). A webcast that does not require registration hands
each browser a signed id of the same form with the page; a beacon counts
only with a cookie the server signed, only while the call is live (``live``)
or its replay is open (``replay``), and at most one per id per
``MIN_BEACON_GAP`` — so anonymous requests cannot inflate the audience.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from callbridge.events.schema import EventRecord, EventState, Registration
from callbridge.store.audience import (
    BEACON_INTERVAL,
    MIN_BEACON_GAP,
    Audience,
    AudienceFull,
    BeaconTooSoon,
    ListenMode,
    WebListener,
    new_token,
)
from callbridge.store.events import EventNotFound, EventStore, StoreError
from callbridge.transcript.transcribe import Hit, load_transcript, search
from callbridge.web.auth import CSRF_FIELD, csrf_token, csrf_valid
from callbridge.web.deps import TEMPLATES, event_store, settings
from callbridge.web.pages import clock, view_of

if TYPE_CHECKING:
    from callbridge.web.media import EventCache

router = APIRouter(include_in_schema=True, tags=["webcast"])

COOKIE_PREFIX = "cb_wc_"
COOKIE_MAX_AGE = 90 * 24 * 3600
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Now = Annotated[datetime, Depends(clock)]
Store = Annotated[EventStore, Depends(event_store)]


def audience(request: Request) -> Audience:
    value: Audience = request.app.state.audience
    return value


AudienceDep = Annotated[Audience, Depends(audience)]


# -- the access cookie -------------------------------------------------------------------------


def _signature(secret: str, event_id: int, token: str) -> str:
    message = f"{event_id}:{token}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def cookie_name(event_id: int) -> str:
    return f"{COOKIE_PREFIX}{event_id}"


def cookie_value(secret: str, event_id: int, token: str) -> str:
    return f"{token}.{_signature(secret, event_id, token)}"


def listener_token(request: Request, event_id: int) -> str | None:
    """The listener token in this request's cookie, if its signature holds."""
    value = request.cookies.get(cookie_name(event_id), "")
    token, _, signature = value.rpartition(".")
    if not token or not signature:
        return None
    secret = settings(request).secret_key
    if not hmac.compare_digest(signature, _signature(secret, event_id, token)):
        return None
    return token


def may_listen(request: Request, record: EventRecord) -> bool:
    """Whether this browser may fetch the event's media: registered, or none is asked."""
    if record.registration is not Registration.REQUIRED:
        return True
    return listener_token(request, record.id) is not None


def _set_cookie(response: Response, request: Request, event_id: int, token: str) -> None:
    response.set_cookie(
        cookie_name(event_id),
        cookie_value(settings(request).secret_key, event_id, token),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=settings(request).secure_cookies,
        path="/",
    )


# -- registration ------------------------------------------------------------------------------


class RegistrationError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _clean(value: str, field: str, *, required: bool, limit: int = 200) -> str | None:
    value = " ".join(value.split())
    if not value:
        if required:
            raise RegistrationError(field, "is needed to listen")
        return None
    if len(value) > limit:
        raise RegistrationError(field, f"is at most {limit} characters")
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise RegistrationError(field, "cannot hold control characters")
    return value


def validate_registration(
    name: str, firm: str, email: str, mode: Registration
) -> tuple[str | None, str | None, str | None]:
    """Name, firm, email as stored; raises ``RegistrationError`` naming the field."""
    required = mode is Registration.REQUIRED
    clean_name = _clean(name, "name", required=required)
    clean_firm = _clean(firm, "firm", required=False)
    clean_email = _clean(email, "email", required=required, limit=254)
    if clean_email is not None and not _EMAIL.match(clean_email):
        raise RegistrationError("email", "is not an email address such as ir@example.com")
    return clean_name, clean_firm, clean_email


async def _record(store: EventStore, event_id: int) -> EventRecord | None:
    try:
        return await run_in_threadpool(store.get, event_id)
    except EventNotFound:
        return None


async def _listener(request: Request, people: Audience, event_id: int) -> WebListener | None:
    token = listener_token(request, event_id)
    if token is None:
        return None
    return await run_in_threadpool(people.identify, event_id, token)


def _page(request: Request, context: dict[str, Any], status_code: int = 200) -> Response:
    return TEMPLATES.TemplateResponse(request, "webcast.html", context, status_code=status_code)


async def _webcast_page(
    request: Request,
    record: EventRecord,
    people: Audience,
    now: datetime,
    *,
    error: RegistrationError | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    listener = await _listener(request, people, record.id)
    needs_form = record.registration is not Registration.OFF and (
        listener is None or not listener.registered
    )
    return _page(
        request,
        {
            "event": view_of(record, now),
            "registration": record.registration.value,
            "show_form": needs_form,
            "may_listen": may_listen(request, record),
            "listener": listener,
            "error": error,
            "form": form or {},
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token(request),
            "beacon_interval": BEACON_INTERVAL,
            "transcript": await _transcript_view(request, record, now),
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if error else 200,
    )


@dataclass(frozen=True)
class SegmentView:
    start: float
    clock: str
    speaker: str | None
    html: Markup


@dataclass(frozen=True)
class TranscriptView:
    query: str
    segments: list[SegmentView]
    hits: list[Hit]

    @property
    def hit_indices(self) -> frozenset[int]:
        return frozenset(hit.segment for hit in self.hits)


def _clock(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


async def _transcript_view(
    request: Request, record: EventRecord, now: datetime
) -> TranscriptView | None:
    """The replay's transcript, searched for ``?q=``; None outside the replay window."""
    media = getattr(request.app.state, "webcast_media", None)
    if media is None or not record.replay_available(now) or not may_listen(request, record):
        return None
    found = await run_in_threadpool(media.replay, record.id)
    if found is None:
        return None
    transcript = await run_in_threadpool(load_transcript, found.directory)
    if transcript is None:
        return None
    query = request.query_params.get("q", "")[:200]
    hits = search(transcript, query) if query.strip() else []
    marked = {hit.segment: Markup(hit.marked()) for hit in hits}
    segments = [
        SegmentView(
            start=segment.start,
            clock=_clock(segment.start),
            speaker=segment.speaker,
            html=marked.get(index, Markup.escape(segment.text)),
        )
        for index, segment in enumerate(transcript.segments)
    ]
    return TranscriptView(query=query, segments=segments, hits=hits)


def _not_found(request: Request, event_id: int) -> Response:
    return TEMPLATES.TemplateResponse(
        request,
        "problem.html",
        {
            "heading": "Event not found",
            "message": f"There is no event {event_id}. It may have been cancelled.",
        },
        status_code=status.HTTP_404_NOT_FOUND,
    )


@router.get("/events/{event_id}/webcast", response_class=HTMLResponse, include_in_schema=False)
async def webcast_page(
    request: Request, event_id: int, store: Store, people: AudienceDep, now: Now
) -> Response:
    """The player, live or replay; or when the call begins; or the registration form."""
    record = await _record(store, event_id)
    if record is None:
        return _not_found(request, event_id)
    response = await _webcast_page(request, record, people, now)
    if (
        record.registration is not Registration.REQUIRED
        and listener_token(request, event_id) is None
    ):
        # The browser id its beacons will count under; no row until it plays.
        _set_cookie(response, request, event_id, new_token())
    return response


@router.post("/events/{event_id}/webcast/register", include_in_schema=False)
async def register(
    request: Request,
    event_id: int,
    store: Store,
    people: AudienceDep,
    now: Now,
    name: Annotated[str, Form()] = "",
    firm: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    """Register for the webcast; the browser keeps a cookie that lets it play."""
    record = await _record(store, event_id)
    if record is None:
        return _not_found(request, event_id)
    form = {"name": name, "firm": firm, "email": email}
    if not csrf_valid(request, csrf):
        error = RegistrationError("form", "expired; please send it again")
        return await _webcast_page(request, record, people, now, error=error, form=form)
    try:
        clean = validate_registration(name, firm, email, record.registration)
    except RegistrationError as error:
        return await _webcast_page(request, record, people, now, error=error, form=form)
    browser = listener_token(request, event_id)
    token, _ = await run_in_threadpool(
        lambda: people.register(
            event_id, name=clean[0], firm=clean[1], email=clean[2], now=now, browser=browser
        )
    )
    response = RedirectResponse(f"/events/{event_id}/webcast", status.HTTP_303_SEE_OTHER)
    _set_cookie(response, request, event_id, token)
    return response


# -- beacons and status ------------------------------------------------------------------------


class Beacon(BaseModel):
    mode: ListenMode = Field(description="What the page was playing: live or replay")


class WebcastStatus(BaseModel):
    """What the page needs to decide what to show; it polls this until the call begins."""

    state: EventState
    starts_at: datetime
    registration: Registration
    may_listen: bool
    live_playlist: str | None = Field(description="LL-HLS playlist while the call is live")
    replay: Literal["not_yet", "preparing", "ready", "expired", "none"]
    replay_playlist: str | None
    replay_download: str | None
    captions: str | None
    replay_until: str | None
    beacon_interval: int = BEACON_INTERVAL


def _beacon_events(request: Request, store: EventStore) -> EventCache:
    # The media routes' cache of events: a beacon reads no event from the
    # database, so a call that ends stops counting within the cache's TTL.
    from callbridge.web.media import EventCache  # media imports this module

    cache: EventCache | None = getattr(request.app.state, "beacon_events", None)
    if cache is None or cache.store is not store:
        cache = EventCache(store)
        request.app.state.beacon_events = cache
    return cache


@router.post("/api/events/{event_id}/webcast/beacon", status_code=status.HTTP_204_NO_CONTENT)
async def beacon(
    request: Request,
    event_id: int,
    body: Beacon,
    store: Store,
    people: AudienceDep,
    now: Now,
) -> Response:
    """Count listening time: the page sends this every ``beacon_interval`` s while it plays.

    204 when counted. 403 without a cookie this server signed (the page
    gives one; registration gives one), 409 when the event is not live
    (``live``) or its replay is not open (``replay``), 429 for a second
    beacon within ``MIN_BEACON_GAP`` s; none of these counts anything.
    A listener this process has heard before is counted in memory, on the
    event loop; its first beacon reads its row in a thread.
    """
    record = await _beacon_events(request, store).get(event_id)
    if record is None:
        return JSONResponse({"detail": "no such event"}, status.HTTP_404_NOT_FOUND)
    token = listener_token(request, event_id)
    if token is None:
        detail = (
            "register for the webcast first"
            if record.registration is Registration.REQUIRED
            else "open the webcast page first"
        )
        return JSONResponse({"detail": detail}, status.HTTP_403_FORBIDDEN)
    if body.mode is ListenMode.LIVE and record.state is not EventState.LIVE:
        return JSONResponse({"detail": "the call is not live"}, status.HTTP_409_CONFLICT)
    if body.mode is ListenMode.REPLAY and not record.replay_available(now):
        return JSONResponse({"detail": "the replay is not open"}, status.HTTP_409_CONFLICT)
    anonymous = record.registration is not Registration.REQUIRED
    try:
        if people.heard_held(event_id, token, body.mode, now) is None:
            await run_in_threadpool(
                lambda: people.heard(event_id, token, body.mode, now, anonymous=anonymous)
            )
    except BeaconTooSoon as error:
        return JSONResponse(
            {"detail": error.message},
            status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(max(1, round(MIN_BEACON_GAP)))},
        )
    except AudienceFull as error:
        return JSONResponse(
            {"detail": error.message},
            status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(BEACON_INTERVAL)},
        )
    except StoreError as error:
        return JSONResponse({"detail": error.message}, status.HTTP_403_FORBIDDEN)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def status_of(request: Request, record: EventRecord, now: datetime) -> WebcastStatus:
    """The webcast's state for the page; ``request.app.state.webcast_media`` knows the files."""
    media = getattr(request.app.state, "webcast_media", None)
    live = None
    replay: Literal["not_yet", "preparing", "ready", "expired", "none"] = "not_yet"
    replay_playlist = download = captions = None
    if record.state is EventState.LIVE and media is not None and media.live_ready(record.id):
        live = f"/webcast/{record.id}/live/{media.LIVE_PLAYLIST}"
    if record.state in (EventState.ENDED, EventState.ARCHIVED):
        if record.replay_until is None:
            replay = "none"
        elif not record.replay_available(now):
            replay = "expired"
        elif media is not None and (found := media.replay(record.id)) is not None:
            replay = "ready"
            replay_playlist = f"/webcast/{record.id}/replay/{found.playlist_name}"
            download = f"/webcast/{record.id}/replay.m4a"
            captions = f"/webcast/{record.id}/captions.vtt" if found.captions else None
        else:
            replay = "preparing"
    return WebcastStatus(
        state=record.state,
        starts_at=record.starts_at,
        registration=record.registration,
        may_listen=may_listen(request, record),
        live_playlist=live,
        replay=replay,
        replay_playlist=replay_playlist,
        replay_download=download,
        captions=captions,
        replay_until=record.replay_until.isoformat() if record.replay_until else None,
    )


@router.get("/api/events/{event_id}/webcast", response_model=WebcastStatus)
async def webcast_status(request: Request, event_id: int, store: Store, now: Now) -> Response:
    """Whether the webcast is live, where its playlist is, and whether the replay is ready."""
    record = await _record(store, event_id)
    if record is None:
        return JSONResponse({"detail": "no such event"}, status.HTTP_404_NOT_FOUND)
    body = status_of(request, record, now)
    return JSONResponse(body.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


def listening_since(now: datetime) -> datetime:
    """Browsers heard from after this are counted as listening now."""
    return now.astimezone(UTC) - timedelta(seconds=2 * BEACON_INTERVAL)
