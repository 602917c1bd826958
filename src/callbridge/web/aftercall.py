"""The console's changes after a call: the replay's last day, and archiving.

Both forms sit on the console's row of an event whose call has started
(``pages.ConsoleRow``); each post carries the session's CSRF token, goes to
``store.aftercall`` (which validates and writes the audit row) and comes back
to the console with what happened, the field at fault named.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from callbridge.announce import timefmt
from callbridge.store.aftercall import AfterCall
from callbridge.store.events import StoreError
from callbridge.web.auth import CSRF_FIELD, csrf_valid
from callbridge.web.deps import after_call
from callbridge.web.pages import Now, OperatorPage, _csrf_refused, _flash

router = APIRouter(include_in_schema=False)

AfterCallDep = Annotated[AfterCall, Depends(after_call)]


@router.post("/console/events/{event_id}/replay")
async def change_replay(
    request: Request,
    event_id: int,
    changes: AfterCallDep,
    operator: OperatorPage,
    now: Now,
    replay_until: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    """Move the replay's last day of an event whose call has started; back to the console."""
    if not csrf_valid(request, csrf):
        return _csrf_refused(request)
    try:
        last_day = date.fromisoformat(replay_until.strip())
    except ValueError:
        _flash(
            request,
            "error",
            f"The replay of event {event_id} was not changed: replay_until: "
            "give a date such as 2026-12-31.",
        )
        return RedirectResponse("/console", status.HTTP_303_SEE_OTHER)
    try:
        record = await run_in_threadpool(
            lambda: changes.change_replay(event_id, last_day, actor=operator.name, now=now)
        )
    except StoreError as exc:
        where = f"{exc.field}: " if exc.field else ""
        _flash(
            request,
            "error",
            f"The replay of event {event_id} was not changed: {where}{exc.message}.",
        )
    else:
        through = timefmt.weekday_date(last_day)
        _flash(
            request, "ok", f"The replay of event {record.id} is now available through {through}."
        )
    return RedirectResponse("/console", status.HTTP_303_SEE_OTHER)


@router.post("/console/events/{event_id}/archive")
async def archive_event(
    request: Request,
    event_id: int,
    changes: AfterCallDep,
    operator: OperatorPage,
    now: Now,
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    """Archive an ended event (its codes are freed); back to the console."""
    if not csrf_valid(request, csrf):
        return _csrf_refused(request)
    try:
        await run_in_threadpool(lambda: changes.archive(event_id, actor=operator.name, now=now))
    except StoreError as exc:
        _flash(request, "error", f"Event {event_id} was not archived: {exc.message}.")
    else:
        _flash(request, "ok", f"Archived event {event_id}.")
    return RedirectResponse("/console", status.HTTP_303_SEE_OTHER)
