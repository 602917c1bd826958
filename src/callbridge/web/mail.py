"""Email on the web: unsubscribing without logging in, and each event's mail settings (API).

``GET``/``PUT /api/events/{id}/mail`` (operators): which emails the event
sends (confirmation, reminders as "24h"/"15m", replay notice) and its
outbox's rows by state.

Unsubscribing from an event's reminders and replay notice needs no login.

The link in each reminder holds a signed token naming the registrant
(``mail.compose.unsubscribe_token``): the page (GET) asks, its button (POST)
unsubscribes. A mail client's one-click unsubscribe (RFC 8058) POSTs
``List-Unsubscribe=One-Click`` to the same address, and is answered
without a page. A GET never unsubscribes: link scanners open links.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from callbridge.mail.compose import read_unsubscribe_token
from callbridge.mail.core import parse_offsets, reminders_setting, show_offset
from callbridge.mail.planner import MailDesk
from callbridge.store.events import EventNotFound, EventStore, StoreError
from callbridge.store.outbox import MailSettings
from callbridge.web.calls import OperatorDep, Store
from callbridge.web.deps import TEMPLATES, event_store, settings
from callbridge.web.pages import Now

router = APIRouter()

MAX_TOKEN = 200
MAX_BODY = 4096


def _desk(request: Request) -> MailDesk:
    value: MailDesk = request.app.state.mail
    return value


def _listener(request: Request, token: str) -> int | None:
    if len(token) > MAX_TOKEN:
        return None
    return read_unsubscribe_token(settings(request).secret_key, token)


def _bad_link(request: Request) -> Response:
    return TEMPLATES.TemplateResponse(
        request,
        "problem.html",
        {
            "heading": "This link does not work",
            "message": "The unsubscribe link is incomplete or was not sent by us. "
            "Copy the whole link from the email, or reply to the email to be removed.",
        },
        status_code=status.HTTP_404_NOT_FOUND,
    )


async def _head(request: Request) -> bytes:
    """The body's first ``MAX_BODY`` bytes: a one-click POST is one short form field."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) >= MAX_BODY:
            break
    return body[:MAX_BODY]


async def _title(store: EventStore, event_id: int) -> str | None:
    try:
        record = await run_in_threadpool(store.get, event_id)
    except EventNotFound:
        return None
    return f"{record.company.name} {record.title}"


@router.get("/mail/unsubscribe/{token}", response_class=HTMLResponse, include_in_schema=False)
async def unsubscribe_page(
    request: Request, token: str, store: Annotated[EventStore, Depends(event_store)]
) -> Response:
    """Asks whether to stop this call's reminders and replay notice."""
    listener_id = _listener(request, token)
    recipient = (
        await run_in_threadpool(_desk(request).outbox.recipient, listener_id)
        if listener_id is not None
        else None
    )
    if recipient is None:
        return _bad_link(request)
    return TEMPLATES.TemplateResponse(
        request,
        "unsubscribe.html",
        {"done": False, "title": await _title(store, recipient.event_id), "token": token},
    )


@router.post("/mail/unsubscribe/{token}", include_in_schema=False)
async def unsubscribe(
    request: Request,
    token: str,
    store: Annotated[EventStore, Depends(event_store)],
    now: Now,
) -> Response:
    """Unsubscribe: no more reminders or replay notice for this call; queued ones are cancelled."""
    listener_id = _listener(request, token)
    if listener_id is None:
        return _bad_link(request)
    one_click = b"List-Unsubscribe=One-Click" in await _head(request)
    outbox = _desk(request).outbox
    consent = await run_in_threadpool(outbox.withdraw, listener_id, now)
    if consent is None:
        return _bad_link(request)
    if one_click:
        return PlainTextResponse("Unsubscribed.\n")
    return TEMPLATES.TemplateResponse(
        request,
        "unsubscribe.html",
        {"done": True, "title": await _title(store, consent.event_id), "token": token},
    )


# -- each event's settings -----------------------------------------------------------------------


class MailSettingsIn(BaseModel):
    """What to change; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    confirmation: bool | None = None
    reminders: list[str] | None = Field(
        default=None, max_length=5, description='Before the start: ["24h", "15m"]; [] for none'
    )
    replay: bool | None = None


class MailSettingsView(BaseModel):
    confirmation: bool
    reminders: list[str]
    replay: bool
    outbox: dict[str, int] = Field(description="The event's messages by state")


async def _view(desk: MailDesk, event_id: int) -> MailSettingsView:
    chosen = await run_in_threadpool(desk.outbox.settings, event_id)
    counts = await run_in_threadpool(desk.outbox.counts, event_id)
    return MailSettingsView(
        confirmation=chosen.confirmation,
        reminders=[show_offset(m) for m in parse_offsets(chosen.reminders)],
        replay=chosen.replay,
        outbox=counts,
    )


@router.get("/api/events/{event_id}/mail", response_model=MailSettingsView, tags=["mail"])
async def mail_settings(
    request: Request, event_id: int, store: Store, _: OperatorDep
) -> MailSettingsView:
    """Which emails the event sends, and its outbox by state (queued, sent, failed, ...)."""
    await run_in_threadpool(store.get, event_id)
    return await _view(_desk(request), event_id)


@router.put("/api/events/{event_id}/mail", response_model=MailSettingsView, tags=["mail"])
async def change_mail_settings(
    request: Request, event_id: int, body: MailSettingsIn, store: Store, _: OperatorDep
) -> MailSettingsView:
    """Turn each kind on or off, set the reminders; 422 names a reminder that is not a duration."""
    await run_in_threadpool(store.get, event_id)
    desk = _desk(request)
    current = await run_in_threadpool(desk.outbox.settings, event_id)
    reminders = current.reminders
    if body.reminders is not None:
        try:
            reminders = reminders_setting(body.reminders)
        except ValueError as error:
            raise StoreError(str(error), field="reminders") from None
    chosen = MailSettings(
        confirmation=current.confirmation if body.confirmation is None else body.confirmation,
        reminders=reminders,
        replay=current.replay if body.replay is None else body.replay,
    )
    await run_in_threadpool(desk.outbox.set_settings, event_id, chosen)
    return await _view(desk, event_id)
