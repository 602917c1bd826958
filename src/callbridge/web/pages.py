"""Server-rendered pages: the public investor events page and the operator console.

The public pages show what the release already prints (the listener and
replay passcodes, the dial-in numbers) and nothing more: they are built from
``EventView``, which has no field for the speaker passcode. The console,
behind an operator login, also shows the speaker passcode and creates events
from the same TOML document ``callbridge event create`` reads.

Every form that changes something carries the session's CSRF token; a post
without it is refused with 403 before anything is read from the form.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from callbridge.announce import render as announce
from callbridge.announce import timefmt
from callbridge.events.errors import describe
from callbridge.events.names import MAX_NAME
from callbridge.events.phones import dial_in_display
from callbridge.events.schema import MAX_SPEAKERS, DialIn, EventFile, EventRecord, EventState
from callbridge.store.aftercall import AFTER_START
from callbridge.store.calllog import CallLog, LogKind
from callbridge.store.events import EventNotFound, EventStore, StoreError
from callbridge.store.users import Operator
from callbridge.web.auth import CSRF_FIELD, csrf_token, csrf_valid, require_operator_page
from callbridge.web.brand_view import BrandView, brand_of
from callbridge.web.deps import TEMPLATES, event_store, settings
from callbridge.web.downloads import downloads_for

router = APIRouter(include_in_schema=False)

# An event file is a few kilobytes; anything near this is not one.
MAX_EVENT_TOML = 64 * 1024

UPCOMING = (EventState.SCHEDULED, EventState.LIVE)
PAST = (EventState.ENDED, EventState.ARCHIVED)

# A call may start late; one still not started this long after its scheduled
# end did not take place, and the pages stop calling it upcoming.
NOT_HELD_AFTER = timedelta(hours=12)

# Prefilled in the console's "New event" form; passcodes are left out so that
# the store generates unique ones.
NEW_EVENT_TEMPLATE = string.Template('''\
[company]
name = "Northwind Biologics, Inc."
ticker = "NWBX"
exchange = "Nasdaq"
website = "https://www.northwind.example"
city = "CAMBRIDGE, Mass."            # the dateline
about = """Northwind Biologics, Inc. develops targeted biologic therapies."""

[[contacts]]
group = "Investors"
name = "Dana Whitfield"
title = "Director, Investor Relations"
phone = "+1 617-555-0142"
email = "ir@northwind.example"

[event]
title = "Fourth Quarter Fiscal Year $year Financial Results"
period = "the three-month period ended December 31, $year"
starts_at = ${starts_at}T16:30:00      # wall-clock time in `timezone`
timezone = "America/New_York"
duration_minutes = 60
replay_until = $replay_until            # last day of the replay, inclusive
# passcode, speaker_passcode and replay_passcode are generated when left out

[[event.dial_in]]
label = "U.S./Canada"
number = "+1 866-555-0199"

[[event.dial_in]]
label = "International"
number = "+1 913-555-0123"

[[event.replay_dial_in]]
label = "U.S./Canada"
number = "+1 866-555-0188"

# Who speaks: a caller on the speaker passcode from `phone` is named "name, title".
[[event.speakers]]
name = "Mark Chen"
title = "Chief Financial Officer"
phone = "+1 617-555-0147"             # optional: the number they will call from
''')

_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.DOTALL | re.IGNORECASE)


def clock() -> datetime:
    """The current time, aware; a dependency so that tests can fix it."""
    return datetime.now(UTC)


Now = Annotated[datetime, Depends(clock)]
Store = Annotated[EventStore, Depends(event_store)]
OperatorPage = Annotated[Operator, Depends(require_operator_page)]


@dataclass(frozen=True)
class Phone:
    """A number as a reader dials it: label, national display, E.164 for tel: links."""

    label: str
    display: str
    e164: str


@dataclass(frozen=True)
class EventView:
    """What the public pages print about one event; built by ``view_of``.

    There is deliberately no speaker passcode here: a template cannot print
    what it is not given.
    """

    id: int
    company: str
    ticker: str
    exchange: str
    title: str
    state: EventState
    when: str
    start_clock: str
    start_date: str
    zone: str
    start_iso: str
    start_utc: str
    dial_ins: tuple[Phone, ...]
    passcode: str
    webcast_href: str
    webcast_external: bool
    announcement_href: str
    ics_href: str
    start_passed: bool
    replay_until: str | None
    replay_available: bool
    replay_dial_ins: tuple[Phone, ...]
    replay_passcode: str
    not_held: bool
    brand: BrandView | None = None  # the company's logo and colour (templates/_brand.html)

    @property
    def live(self) -> bool:
        return self.state is EventState.LIVE

    @property
    def over(self) -> bool:
        return self.state in PAST

    @property
    def upcoming(self) -> bool:
        """Live, or scheduled and not yet given up on; the events page lists it first."""
        return self.state in UPCOMING and not self.not_held


def _phones(numbers: list[DialIn]) -> tuple[Phone, ...]:
    """As the release prints them: a number for callers abroad with its country code."""
    return tuple(Phone(n.label, dial_in_display(n.number, n.label), n.number) for n in numbers)


def _zone_abbreviation(moment: datetime, timezone: str) -> str:
    # tzdata's own abbreviation ("EST", "CET") reads best; where it has none it
    # writes an offset ("+08"), which timefmt turns into "UTC+8".
    abbreviation = moment.tzname() or ""
    if abbreviation.isalpha():
        return abbreviation
    return timefmt.zone_label(moment, timezone)


def clock_in_zone(moment: datetime, timezone: str) -> str:
    """ "4:30 p.m. EST": the time of day of ``moment`` (aware) in ``timezone``, zone named."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{timefmt.clock(local)} {_zone_abbreviation(local, timezone)}"


def moment_in_zone(moment: datetime, timezone: str) -> str:
    """ "Thursday, November 5, 2026, 4:30 p.m. EST": ``moment`` (aware) in ``timezone``."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{timefmt.weekday_date(local.date())}, {clock_in_zone(moment, timezone)}"


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def not_held(record: EventRecord, now: datetime) -> bool:
    """True when ``record`` was never started and its scheduled end is ``NOT_HELD_AFTER`` past."""
    return record.state is EventState.SCHEDULED and now >= record.ends_at + NOT_HELD_AFTER


def view_of(record: EventRecord, now: datetime) -> EventView:
    """The public view of ``record``; ``now`` decides whether the replay is still open."""
    replay_until: date | None = record.replay_until
    return EventView(
        id=record.id,
        company=record.company.name,
        ticker=record.company.ticker,
        exchange=record.company.exchange,
        title=record.title,
        state=record.state,
        when=moment_in_zone(record.starts_at, record.timezone),
        start_clock=clock_in_zone(record.starts_at, record.timezone),
        start_date=timefmt.weekday_date(record.local_start.date()),
        zone=record.timezone,
        start_iso=_utc_iso(record.starts_at),
        start_utc=moment_in_zone(record.starts_at, "UTC"),
        dial_ins=_phones(record.dial_in),
        passcode=record.passcode,
        webcast_href=record.webcast_url or f"/events/{record.id}/webcast",
        webcast_external=record.webcast_url is not None,
        announcement_href=f"/events/{record.id}/announcement",
        ics_href=f"/api/events/{record.id}/announcement.ics",
        start_passed=now >= record.starts_at,
        replay_until=timefmt.weekday_date(replay_until) if replay_until is not None else None,
        replay_available=record.replay_available(now),
        replay_dial_ins=_phones(record.replay_dial_in),
        replay_passcode=record.replay_passcode,
        not_held=not_held(record, now),
        brand=brand_of(record),
    )


@dataclass(frozen=True)
class ConsoleRow:
    """One event in the console: the public view plus what only operators see."""

    view: EventView
    speaker_passcode: str
    deletable: bool
    replay_until_iso: str = ""
    replay_changeable: bool = False  # the call has started: the replay window moves alone
    archivable: bool = False


def _page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)


def _problem(request: Request, status_code: int, heading: str, message: str) -> Response:
    return _page(
        request, "problem.html", {"heading": heading, "message": message}, status_code=status_code
    )


def _not_found(request: Request, event_id: int) -> Response:
    return _problem(
        request,
        status.HTTP_404_NOT_FOUND,
        "Event not found",
        f"There is no event {event_id}. It may have been cancelled.",
    )


def _csrf_refused(request: Request) -> Response:
    return _problem(
        request,
        status.HTTP_403_FORBIDDEN,
        "The form expired",
        "This form was not sent from the current session. Reload the page and try again.",
    )


async def _record(store: EventStore, event_id: int) -> EventRecord | None:
    try:
        return await run_in_threadpool(store.get, event_id)
    except EventNotFound:
        return None


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/events", status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/events", response_class=HTMLResponse)
async def events_page(request: Request, store: Store, now: Now) -> Response:
    """Upcoming events (live, or scheduled and not long past), soonest first; past events
    (held, or scheduled long ago and never started), newest first."""
    records = await run_in_threadpool(store.list_events)
    views = [view_of(r, now) for r in records]
    upcoming = [v for v in views if v.upcoming]
    past = [v for v in reversed(views) if not v.upcoming]
    return _page(request, "events.html", {"upcoming": upcoming, "past": past})


@router.get("/events/{event_id}/announcement", response_class=HTMLResponse)
async def announcement_page(request: Request, event_id: int, store: Store, now: Now) -> Response:
    """The press release inside the site's frame, with its download links."""
    record = await _record(store, event_id)
    if record is None:
        return _not_found(request, event_id)
    document = announce.render_html(record, settings(request).public_url)
    match = _BODY.search(document)
    # The renderer escapes every value it prints, so its body is safe to embed.
    body = Markup(match.group(1) if match else document)
    downloads = {fmt: f"/api/events/{record.id}/announcement.{fmt}" for fmt in ("txt", "md", "ics")}
    return _page(
        request,
        "announcement.html",
        {"event": view_of(record, now), "release": body, "downloads": downloads},
    )


def _new_event_text(now: datetime) -> str:
    day = (now + timedelta(days=14)).date()
    return NEW_EVENT_TEMPLATE.substitute(
        year=day.year,
        starts_at=day.isoformat(),
        replay_until=(day + timedelta(days=7)).isoformat(),
    )


def _flash(request: Request, kind: str, text: str) -> None:
    # Shown once by the next console page; survives the post-redirect-get.
    request.session["flash"] = {"kind": kind, "text": text}


async def _console(
    request: Request,
    store: EventStore,
    operator: Operator,
    now: datetime,
    *,
    event_toml: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    records = await run_in_threadpool(store.list_events)
    rows = [
        ConsoleRow(
            view_of(r, now),
            r.speaker_passcode,
            r.state is EventState.SCHEDULED,
            replay_until_iso=r.replay_until.isoformat() if r.replay_until else "",
            replay_changeable=r.state in AFTER_START,
            archivable=r.state is EventState.ENDED,
        )
        for r in records
    ]
    flash = request.session.pop("flash", None)
    if not (isinstance(flash, dict) and {"kind", "text"} <= flash.keys()):
        flash = None
    return _page(
        request,
        "console.html",
        {
            "operator": operator,
            "rows": rows,
            "csrf_token": csrf_token(request),
            "event_toml": event_toml if event_toml is not None else _new_event_text(now),
            "error": error,
            "flash": flash,
            "max_event_toml": MAX_EVENT_TOML,
        },
        status_code=status_code,
    )


@router.get("/console", response_class=HTMLResponse)
async def console(request: Request, store: Store, operator: OperatorPage, now: Now) -> Response:
    """The operator console: every event with its passcodes, and the new-event form."""
    return await _console(request, store, operator, now)


@router.get("/console/events/{event_id}", response_class=HTMLResponse)
async def moderate_page(
    request: Request, event_id: int, store: Store, operator: OperatorPage, now: Now
) -> Response:
    """The moderator's desk: on air, the call timer, queue, participants, slides, captions."""
    record = await _record(store, event_id)
    if record is None:
        return _not_found(request, event_id)
    log: CallLog = request.app.state.call_log
    # The timer runs from the call's actual start (the log), not the scheduled one.
    started = await run_in_threadpool(log.first, event_id, LogKind.START)
    ended = await run_in_threadpool(log.first, event_id, LogKind.END) if started else None
    return _page(
        request,
        "moderate.html",
        {
            "operator": operator,
            "event": view_of(record, now),
            "csrf_token": csrf_token(request),
            # The speaker list: named at join from their numbers, offered in the name dialog.
            "speakers": record.speakers,
            "speakers_editable": record.state in (EventState.SCHEDULED, EventState.LIVE),
            "max_speakers": MAX_SPEAKERS,
            "max_name": MAX_NAME,
            "downloads": await downloads_for(request, event_id),
            "started_iso": started.isoformat() if started else "",
            "ended_iso": ended.isoformat() if ended else "",
            # The browser's clock may be off: the timer corrects by the server's.
            "now_iso": now.isoformat(),
        },
    )


def _parse_event(text: str) -> EventFile:
    """The console's TOML as an event; ValueError says which field is wrong and why."""
    if len(text) > MAX_EVENT_TOML:
        raise ValueError(f"the event is longer than {MAX_EVENT_TOML // 1024} KiB")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML ({exc})") from None
    try:
        return EventFile.model_validate(data)
    except ValidationError as exc:
        raise ValueError(describe(exc.errors())) from None


@router.post("/console/events", response_class=HTMLResponse)
async def create_event(
    request: Request,
    store: Store,
    operator: OperatorPage,
    now: Now,
    event_toml: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    """Create an event from the form's TOML; on a bad field, show why and keep the text."""
    if not csrf_valid(request, csrf):
        return _csrf_refused(request)
    try:
        spec = _parse_event(event_toml)
        record = await run_in_threadpool(store.create, spec)
    except ValueError as exc:
        error = str(exc)
    except StoreError as exc:
        error = f"{exc.field}: {exc.message}" if exc.field else exc.message
    else:
        _flash(request, "ok", f"Created event {record.id}: {record.company.ticker} {record.title}.")
        return RedirectResponse("/console", status.HTTP_303_SEE_OTHER)
    return await _console(
        request,
        store,
        operator,
        now,
        event_toml=event_toml,
        error=error,
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


@router.post("/console/events/{event_id}/delete")
async def delete_event(
    request: Request,
    event_id: int,
    store: Store,
    _: OperatorPage,
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    """Delete a scheduled event and go back to the console with what happened."""
    if not csrf_valid(request, csrf):
        return _csrf_refused(request)
    try:
        await run_in_threadpool(store.delete, event_id)
    except StoreError as exc:
        _flash(request, "error", f"Event {event_id} was not deleted: {exc.message}.")
    else:
        _flash(request, "ok", f"Deleted event {event_id}.")
    return RedirectResponse("/console", status.HTTP_303_SEE_OTHER)
