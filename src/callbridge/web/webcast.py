"""The webcast page: registration, the live player, the replay, the transcript.

The page itself is public. Whether it asks for a name, firm and email before
it plays is the event's ``registration`` setting. A registered browser holds
a cookie ``cb_wc_<event>``: the listener's random token and an HMAC of it
under the server's secret key, so the media routes check access without a
database read per playlist request (hundreds of listeners poll every part).
Listening time comes from beacons the page sends while it plays
(``store.audience``). A webcast that does not require registration gives
a browser a signed id of the same form with its first beacon, which the
page sends when the audio starts playing (never with a page load), and
only ``web.limits.BROWSER_IDS_PER_ADDRESS`` per address; a beacon counts
only with a cookie the server signed, only while the call is live (``live``)
or its replay is open (``replay``), and at most one per id per
``MIN_BEACON_GAP``; and a browser is a listener (console, attendance,
report) only once a later beacon has credited it time — so anonymous
requests cannot inflate the audience. Registrations are limited per
address and per event too (``web.limits``).

Over 500 lines since the beacon got its fast way in (``BeaconRoute``,
``BeaconEvents``: the one request every listener sends that a cache tier
cannot absorb); that part is the first to move to a module of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import re
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from callbridge.events.errors import normalise_errors
from callbridge.events.schema import EventRecord, EventState, Registration
from callbridge.mail.compose import InvalidAddress, valid_address
from callbridge.mail.planner import CONSENT_WORDING, MailDesk, follow_ups_offered
from callbridge.slides.deck import Deck
from callbridge.store import layout
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
from callbridge.store.pins import PinBook
from callbridge.web import key_figures, listener_page
from callbridge.web.auth import CSRF_FIELD, csrf_token, csrf_valid
from callbridge.web.deps import TEMPLATES, event_store, settings
from callbridge.web.gate_cookie import COOKIE_PREFIX, MalformedGateCookie, gate_value
from callbridge.web.limits import WebLimits, client_source
from callbridge.web.pages import clock, view_of

router = APIRouter(include_in_schema=True, tags=["webcast"])

COOKIE_MAX_AGE = 90 * 24 * 3600
# How often a waiting page asks for the status: sooner from a few minutes before the start,
# so the audio starts within seconds of the call (the cache tier answers most of them).
POLL_S = 5.0
POLL_NEAR_START_S = 2.0
NEAR_START = timedelta(minutes=10)

Now = Annotated[datetime, Depends(clock)]
Store = Annotated[EventStore, Depends(event_store)]


def audience(request: Request) -> Audience:
    value: Audience = request.app.state.audience
    return value


AudienceDep = Annotated[Audience, Depends(audience)]


def pins(request: Request) -> PinBook:
    value: PinBook = request.app.state.pins
    return value


PinsDep = Annotated[PinBook, Depends(pins)]


def personal_pin(book: PinBook, listener: WebListener | None) -> str | None:
    """The registrant's personal PIN for the phone, drawn on first asking (blocking).

    None for a browser that did not register, or once the event has given
    all its PINs (``store.pins.PIN_REGISTRANTS``): they dial the passcode.
    """
    if listener is None or not listener.registered:
        return None
    try:
        return book.issue(listener.event_id, listener.id, datetime.now(UTC))
    except StoreError:
        return None


def shown_pin(pin: str | None) -> str | None:
    """A PIN as the page prints it, in two groups of five ("12345 67890"), never broken."""
    return None if pin is None else f"{pin[:5]}\u00a0{pin[5:]}"


# -- the access cookie -------------------------------------------------------------------------


def _signature(secret: str, event_id: int, token: str) -> str:
    message = f"{event_id}:{token}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def cookie_name(event_id: int) -> str:
    return f"{COOKIE_PREFIX}{event_id}"


def cookie_value(secret: str, event_id: int, token: str) -> str:
    return f"{token}.{_signature(secret, event_id, token)}"


def _verified(request: Request, event_id: int, value: str) -> str | None:
    token, _, signature = value.rpartition(".")
    if not token or not signature:
        return None
    secret = settings(request).secret_key
    if not hmac.compare_digest(signature, _signature(secret, event_id, token)):
        return None
    return token


def listener_token(request: Request, event_id: int) -> str | None:
    """The listener token in this request's gate cookie, if its signature holds.

    The cookie is read as the cache tier reads it (``gate_cookie``): a
    malformed one holds no token.
    """
    try:
        value = gate_value(request, event_id)
    except MalformedGateCookie:
        return None
    return _verified(request, event_id, value)


def may_listen(request: Request, record: EventRecord) -> bool:
    """Whether this browser may fetch the event's media: registered, or none is asked.

    Never with a malformed gate cookie, which the cache tier refuses whatever
    the event asks: the origin's answer and the tier's agree.
    """
    try:
        value = gate_value(request, record.id)
    except MalformedGateCookie:
        return False
    if record.registration is not Registration.REQUIRED:
        return True
    return _verified(request, record.id, value) is not None


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
    if clean_email is not None:
        try:
            clean_email = valid_address(clean_email)
        except InvalidAddress:
            raise RegistrationError(
                "email", "is not an email address such as ir@example.com"
            ) from None
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
    status_code: int | None = None,
) -> Response:
    listener = await _listener(request, people, record.id)
    desk: MailDesk = request.app.state.mail
    needs_form = record.registration is not Registration.OFF and (
        listener is None or not listener.registered
    )
    allowed = may_listen(request, record)
    replay_open = record.replay_available(now)
    transcript = None
    if allowed and replay_open:
        query = request.query_params.get("q", "")
        transcript = await listener_page.transcript_view(request, record, query)
    asks = needs_form and await run_in_threadpool(follow_ups_offered, desk.outbox, record.id)
    pin = await run_in_threadpool(personal_pin, pins(request), listener)
    return _page(
        request,
        {
            "event": view_of(record, now),
            "registration": record.registration.value,
            "show_form": needs_form,
            "may_listen": allowed,
            "deck": Deck.load(layout.deck_dir(settings(request).data_dir, record.id)),
            "listener": listener,
            "pin": shown_pin(pin),
            "error": error,
            "form": form or {},
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token(request),
            # The consent checkbox's words, when the event sends reminders or a replay notice.
            "follow_up_wording": CONSENT_WORDING if asks else None,
            "beacon_interval": BEACON_INTERVAL,
            "transcript": transcript,
            "key_figures": await key_figures.for_page(request, record) if transcript else [],
            "files": await listener_page.files(request, record, replay_open) if allowed else None,
            "privacy": listener_page.privacy_line(record),
        },
        status_code=status_code or (status.HTTP_422_UNPROCESSABLE_CONTENT if error else 200),
    )


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
    # No browser id here: the first beacon (the audio plays) brings one.
    return await _webcast_page(request, record, people, now)


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
    follow_up: Annotated[str, Form()] = "",
) -> Response:
    """Register for the webcast; the browser keeps a cookie that lets it play.

    With an email, the confirmation is written to the outbox (``mail``),
    with what the registrant agreed to (``follow_up``: reminders, replay notice).
    """
    record = await _record(store, event_id)
    if record is None:
        return _not_found(request, event_id)
    form = {"name": name, "firm": firm, "email": email, "follow_up": follow_up}
    if not csrf_valid(request, csrf):
        error = RegistrationError("form", "expired; please send it again")
        return await _webcast_page(request, record, people, now, error=error, form=form)
    try:
        clean = validate_registration(name, firm, email, record.registration)
    except RegistrationError as error:
        return await _webcast_page(request, record, people, now, error=error, form=form)
    limits: WebLimits = request.app.state.limits
    too_many = limits.registrations.take(event_id, client_source(request), time.monotonic())
    if too_many is not None:
        wait = math.ceil(too_many.retry_after)
        refusal = RegistrationError("form", f"{too_many.message}; try again in {wait} seconds")
        response = await _webcast_page(
            request, record, people, now, error=refusal, form=form, status_code=429
        )
        response.headers["Retry-After"] = str(wait)
        return response
    browser = listener_token(request, event_id)
    token, listener = await run_in_threadpool(
        lambda: people.register(
            event_id, name=clean[0], firm=clean[1], email=clean[2], now=now, browser=browser
        )
    )
    # Drawn now, so the confirmation (and the page it lands on) can show it.
    pin = await run_in_threadpool(personal_pin, pins(request), listener)
    if listener.email is not None:
        desk: MailDesk = request.app.state.mail
        await run_in_threadpool(
            lambda: desk.registered(
                record, listener.id, follow_up=bool(follow_up), now=now, pin=shown_pin(pin)
            )
        )
    response = RedirectResponse(f"/events/{event_id}/webcast", status.HTTP_303_SEE_OTHER)
    _set_cookie(response, request, event_id, token)
    return response


class PersonalPin(BaseModel):
    """A registrant's personal PIN: keyed at the dial-in numbers instead of the passcode."""

    pin: str = Field(description="Digits only; key them, then #")
    dial_in: list[str] = Field(description="The live call's numbers (E.164)")


@router.get("/api/events/{event_id}/webcast/pin", response_model=PersonalPin)
async def personal_pin_api(
    request: Request, event_id: int, store: Store, people: AudienceDep, book: PinsDep
) -> Response:
    """The registered browser's personal PIN (its gate cookie says who it is); never cached.

    403 for a browser that has not registered for this event, 404 for no
    such event, 409 when the event has given all its PINs.
    """
    record = await _record(store, event_id)
    if record is None:
        return JSONResponse({"detail": "no such event"}, status.HTTP_404_NOT_FOUND)
    listener = await _listener(request, people, event_id)
    if listener is None or not listener.registered:
        return JSONResponse({"detail": "register for the webcast first"}, status.HTTP_403_FORBIDDEN)
    pin = await run_in_threadpool(personal_pin, book, listener)
    if pin is None:
        return JSONResponse(
            {"detail": "no personal PIN is left for this event; dial the passcode"},
            status.HTTP_409_CONFLICT,
        )
    body = PersonalPin(pin=pin, dial_in=[d.number for d in record.dial_in])
    return JSONResponse(
        body.model_dump(mode="json"), headers={"Cache-Control": "no-store, private"}
    )


# -- beacons and status ------------------------------------------------------------------------


class Beacon(BaseModel):
    mode: ListenMode = Field(description="What the page was playing: live or replay")
    resumed: bool = Field(
        default=False,
        description="The first beacon after a pause: the gap was the pause, not listening",
    )


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
    poll_s: float = Field(
        default=POLL_S, description="Ask again after this many seconds (sooner near the start)"
    )


class BeaconEvents:
    """Events as the beacon route needs them: read at most once per ``ttl`` s per event.

    Hundreds of beacons a second ask for the same event. Past ``ttl`` the
    first one starts a read and every beacon meanwhile is answered from the
    entry it replaces, so a busy webcast costs one database read per ``ttl``
    however many beacons arrive; a change of state (live, ended) or of the
    replay window shows within ``ttl`` and one read.
    """

    def __init__(self, store: EventStore, ttl: float = 2.0, limit: int = 10_000) -> None:
        self.store = store
        self.ttl = ttl
        self.limit = limit
        self._entries: dict[int, tuple[float, EventRecord | None]] = {}
        self._reading: dict[int, asyncio.Future[EventRecord | None]] = {}

    async def get(self, event_id: int) -> EventRecord | None:
        """The event, or None if there is none; from memory while it is fresh enough."""
        entry = self._entries.get(event_id)
        if entry is not None and time.monotonic() - entry[0] < self.ttl:
            return entry[1]
        reading = self._reading.get(event_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read(event_id))
            self._reading[event_id] = reading
        if entry is not None:
            return entry[1]  # the read refreshes it for the beacons after this one
        return await asyncio.shield(reading)

    async def _read(self, event_id: int) -> EventRecord | None:
        try:
            record: EventRecord | None = await run_in_threadpool(self.store.get, event_id)
        except EventNotFound:
            record = None
        finally:
            del self._reading[event_id]
        if len(self._entries) >= self.limit:
            self._entries.clear()  # ids that name nothing must not fill memory
        self._entries[event_id] = (time.monotonic(), record)
        return record


def _beacon_events(request: Request) -> BeaconEvents:
    store: EventStore = request.app.state.events
    cache: BeaconEvents | None = getattr(request.app.state, "beacon_events", None)
    if cache is None or cache.store is not store:
        cache = BeaconEvents(store)
        request.app.state.beacon_events = cache
    return cache


# A beacon's body is {"mode": "live"}; anything much longer is not one.
BEACON_BODY_LIMIT = 256
_BEACON_PATH = re.compile(r"/api/events/([0-9]{1,20})/webcast/beacon")


async def _beacon_body(request: Request) -> Beacon | Response:
    """The beacon's JSON body, or the 422 that names what is wrong with it."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > BEACON_BODY_LIMIT:
            problem = {"type": "too_long", "loc": ["body"], "msg": "not a beacon"}
            return JSONResponse({"detail": [problem]}, status.HTTP_422_UNPROCESSABLE_CONTENT)
    try:
        return Beacon.model_validate_json(body)
    except ValidationError as error:
        problems = [{**item, "loc": ("body", *item["loc"])} for item in error.errors()]
        return JSONResponse(
            {"detail": jsonable_encoder(normalise_errors(problems))},
            status.HTTP_422_UNPROCESSABLE_CONTENT,
        )


async def count_beacon(request: Request, event_id: int) -> Response:
    """Count one beacon; the answer for the page (see ``beacon``). Used by both ways in."""
    people: Audience = request.app.state.audience
    # pages.clock, as the app's overrides have it (tests fix the time there).
    now: datetime = request.app.dependency_overrides.get(clock, clock)()
    body = await _beacon_body(request)
    if isinstance(body, Response):
        return body
    record = await _beacon_events(request).get(event_id)
    if record is None:
        return JSONResponse({"detail": "no such event"}, status.HTTP_404_NOT_FOUND)
    token = listener_token(request, event_id)
    anonymous = record.registration is not Registration.REQUIRED
    if token is None and not anonymous:
        return JSONResponse({"detail": "register for the webcast first"}, status.HTTP_403_FORBIDDEN)
    if body.mode is ListenMode.LIVE and record.state is not EventState.LIVE:
        return JSONResponse({"detail": "the call is not live"}, status.HTTP_409_CONFLICT)
    if body.mode is ListenMode.REPLAY and not record.replay_available(now):
        return JSONResponse({"detail": "the replay is not open"}, status.HTTP_409_CONFLICT)
    issued = None
    if token is None:
        # The audio plays in a browser without an id: give it one, at the
        # address's rate (a script's fresh clients get no more than that).
        limits: WebLimits = request.app.state.limits
        too_many = limits.browser_id(client_source(request), time.monotonic())
        if too_many is not None:
            wait = max(1, math.ceil(too_many.retry_after))
            return JSONResponse(
                {"detail": f"{too_many.message}; try again in {wait} s"},
                status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(wait)},
            )
        token = issued = new_token()
    mode, resumed = body.mode, body.resumed
    try:
        if people.heard_held(event_id, token, mode, now, resumed=resumed) is None:
            await run_in_threadpool(
                lambda: people.heard(
                    event_id, token, mode, now, anonymous=anonymous, resumed=resumed
                )
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
    counted = Response(status_code=status.HTTP_204_NO_CONTENT)
    if issued is not None:
        _set_cookie(counted, request, event_id, issued)
    return counted


@router.post(
    "/api/events/{event_id}/webcast/beacon",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": Beacon.model_json_schema()}},
        }
    },
)
async def beacon(request: Request, event_id: int) -> Response:
    """Count listening time: the page sends this every ``beacon_interval`` s while it plays.

    The body is ``{"mode": "live"}`` or ``{"mode": "replay"}``. 204 when
    counted; without a browser id (registration not required) the answer
    sets one, or is 429 when the address had its share of new ids. 403
    without a cookie this server signed where registration is required,
    409 when the event is not live (``live``) or its replay is not open
    (``replay``), 429 for a second beacon within ``MIN_BEACON_GAP`` s; none
    of these counts anything. A browser counts as a listener from the
    first beacon that credits it time (its second, seconds later). In the app
    ``BeaconRoute`` answers it before the router; this route documents it.
    """
    return await count_beacon(request, event_id)


class BeaconRoute:
    """The beacon route ahead of the session and the router, as a pure ASGI middleware.

    Every listener sends a beacon each interval and a cache tier passes them
    all to the origin (they are POSTs), so they are the origin's one cost
    that grows with the audience. Matching ~40 routes, resolving
    dependencies (each sync one a hop to the threadpool) and opening the
    session cost several times the beacon itself; here a beacon costs a
    path match, the event from memory (``BeaconEvents``) and, for a
    listener this process has heard before, a count in memory on the event
    loop. Add it inside ``SecurityHeaders``, so its answers carry them.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _BEACON_PATH.fullmatch(scope["path"])
            if match is not None:
                response = await count_beacon(Request(scope, receive), int(match.group(1)))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def status_of(request: Request, record: EventRecord, now: datetime) -> WebcastStatus:
    """The webcast's state for the page; ``request.app.state.webcast_media`` knows the files."""
    media = getattr(request.app.state, "webcast_media", None)
    live = None
    replay: Literal["not_yet", "preparing", "ready", "expired", "none"] = "not_yet"
    replay_playlist = download = captions = None
    if record.state is EventState.LIVE and media is not None and media.live_ready(record.id):
        live = f"/webcast/{record.id}/live/{media.live_entry(record.id)}"
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
        poll_s=poll_after(record, now),
    )


def poll_after(record: EventRecord, now: datetime) -> float:
    """Seconds until the page asks again: ``POLL_NEAR_START_S`` once the start is near."""
    near = record.state is EventState.SCHEDULED and now >= record.starts_at - NEAR_START
    return POLL_NEAR_START_S if near else POLL_S


@router.get("/api/events/{event_id}/webcast", response_model=WebcastStatus)
async def webcast_status(request: Request, event_id: int, store: Store, now: Now) -> Response:
    """Whether the webcast is live, where its playlist is, and whether the replay is ready."""
    record = await _record(store, event_id)
    if record is None:
        return JSONResponse({"detail": "no such event"}, status.HTTP_404_NOT_FOUND)
    body = status_of(request, record, now)
    # Every waiting page polls this: the cache tier answers it for a second
    # (once per access answer, see deploy/varnish/callbridge.vcl).
    return JSONResponse(
        body.model_dump(mode="json"),
        headers={"Cache-Control": "no-store", "Surrogate-Control": "max-age=1"},
    )


def listening_since(now: datetime) -> datetime:
    """Browsers heard from after this are counted as listening now."""
    return now.astimezone(UTC) - timedelta(seconds=2 * BEACON_INTERVAL)
