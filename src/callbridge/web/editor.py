"""The console's event editor: create, edit and duplicate an event with real form fields.

The pages render on the server and work without script (``editor.js`` adds
rows and shows the local time as one types). Every field is checked by the
same ``EventFile`` as the TOML file and the API; a refused field is shown
beside its input with the schema's reason, and the page keeps what was
typed (``events.form``).

Two operators editing one event: the form carries the version it was
opened at and the fields as they were then. A save against a version
someone else has moved past is refused (409) with what they changed, field
by field, and the typed values kept; the form then carries the new version,
so saving again is a decision, not an accident.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from callbridge.brand.colour import DEFAULT_ACCENT
from callbridge.brand.logo import MAX_BYTES, MAX_SIDE, Logo, LogoRefused, check_logo
from callbridge.events import form
from callbridge.events.duplicate import next_quarter
from callbridge.events.form import Change, Values
from callbridge.events.schema import (
    MAX_CONTACTS,
    MAX_DIAL_INS,
    MAX_SPEAKERS,
    EventKind,
    EventRecord,
    EventState,
    Registration,
)
from callbridge.store.events import EventNotFound, EventStore, StoreError, VersionConflict
from callbridge.store.users import Operator
from callbridge.web.auth import CSRF_FIELD, csrf_token, csrf_valid
from callbridge.web.brand import Brands
from callbridge.web.brand_view import logo_href
from callbridge.web.deps import TEMPLATES
from callbridge.web.pages import Now, OperatorPage, Store, _csrf_refused, _flash, _not_found

router = APIRouter(include_in_schema=False)

NEW_PATH = "/console/new-event"
DEFAULT_ZONE = "America/New_York"
# The zones most calls are held in, offered first; every IANA zone follows.
COMMON_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Toronto",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Paris",
    "Europe/Frankfurt" if "Europe/Frankfurt" in available_timezones() else "Europe/Berlin",
    "Europe/Zurich",
    "Asia/Tokyo",
    "Asia/Hong_Kong",
    "Asia/Singapore",
    "Australia/Sydney",
    "UTC",
)
ALL_ZONES = tuple(sorted(z for z in available_timezones() if "/" in z or z == "UTC"))
# Every row of every group at its limit is about 250 fields; the rest is refused (400).
MAX_FIELDS = 600
MAX_BASE = 256 * 1024  # the fields as opened, sent back for the conflict list
# The whole form: the fields, the base above and one logo, with room to spare. A bigger
# post is refused before it is read (the logo's own limit is checked after, with its name).
MAX_POST = 2 * 1024 * 1024
LOGO_LIMITS = f"PNG or SVG, at most {MAX_BYTES // 1024} KB and {MAX_SIDE}×{MAX_SIDE} pixels"
ROW_LIMITS = {
    "event.dial_in": MAX_DIAL_INS,
    "event.replay_dial_in": MAX_DIAL_INS,
    "event.speakers": MAX_SPEAKERS,
    "contacts": MAX_CONTACTS,
}


def _defaults(now: datetime, codes: tuple[str, str, str]) -> Values:
    day = (now + timedelta(days=14)).date()
    return {
        "event.kind": EventKind.EARNINGS.value,
        form.START_DATE: day.isoformat(),
        form.START_TIME: "16:30",
        "event.timezone": DEFAULT_ZONE,
        "event.duration_minutes": "60",
        "event.replay_until": (day + timedelta(days=14)).isoformat(),
        "event.registration": Registration.REQUIRED.value,
        "event.phone_requires_registration": "false",
        "event.passcode": codes[0],
        "event.speaker_passcode": codes[1],
        "event.replay_passcode": codes[2],
        # No row is prefilled: a row with a label and no number would be refused.
    }


def _shown_rows(values: Values) -> dict[str, list[int]]:
    """Each group's rows as typed, and one blank row more (the page's "add" without script)."""
    shown: dict[str, list[int]] = {}
    for group in form.ROWS:
        columns = form.ROWS[group]
        # Rows sent blank were dropped; showing them again would grow the page each time.
        indices = [
            i
            for i in form.row_indices(values, group)
            if any(values.get(f"{group}.{i}.{c}", "").strip() for c in columns)
        ]
        # A release has a toll-free and an international number: two rows to start with.
        wanted = max(len(indices) + 1, 2 if group == "event.dial_in" else 1)
        while len(indices) < min(wanted, ROW_LIMITS[group]):
            indices.append((indices[-1] + 1) if indices else 0)
        shown[group] = indices
    return shown


def _summary(errors: dict[str, list[str]]) -> list[dict[str, str]]:
    return [
        {"key": key, "label": form.label(key), "message": message}
        for key, messages in errors.items()
        for message in messages
    ]


async def _editor(
    request: Request,
    operator: Operator,
    values: Values,
    *,
    action: str,
    heading: str,
    record: EventRecord | None = None,
    version: int | None = None,
    base: Values | None = None,
    errors: dict[str, list[str]] | None = None,
    conflict: list[Change] | None = None,
    note: str | None = None,
    status_code: int = 200,
) -> Response:
    errors = errors or {}
    editable = record is None or record.state is EventState.SCHEDULED
    context: dict[str, Any] = {
        "operator": operator,
        "csrf_token": csrf_token(request),
        "values": values,
        "errors": errors,
        "summary": _summary(errors),
        "conflict": conflict,
        "note": note,
        "action": action,
        "heading": heading,
        "record": record,
        "editable": editable,
        "version": version,
        "base": json.dumps(base or values, sort_keys=True),
        "rows": _shown_rows(values),
        "row_limits": ROW_LIMITS,
        "common_zones": COMMON_ZONES,
        "all_zones": ALL_ZONES,
        "kinds": [k.value for k in EventKind],
        "registrations": [r.value for r in Registration],
        "preview": form.local_preview(
            values.get(form.START_DATE, ""),
            values.get(form.START_TIME, ""),
            values.get("event.timezone", ""),
        ),
        "label": form.label,
        "default_accent": DEFAULT_ACCENT,
        "logo_limits": LOGO_LIMITS,
        "logo_href": (
            logo_href(record.id, record.company.logo.digest)
            if record is not None and record.company.logo is not None
            else None
        ),
    }
    return TEMPLATES.TemplateResponse(request, "editor.html", context, status_code=status_code)


async def _posted(request: Request) -> tuple[bool, Values, Any]:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_POST:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"the form is over {MAX_POST // (1024 * 1024)} MB; a logo is at most "
            f"{MAX_BYTES // 1024} KB",
        )
    data = await request.form(max_fields=MAX_FIELDS, max_files=1)
    fields = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    token = data.get(CSRF_FIELD)
    valid = csrf_valid(request, token if isinstance(token, str) else None)
    return valid, form.from_form(fields), data


async def _logo(data: Any) -> tuple[Logo | None, bool, dict[str, list[str]]]:
    """The logo sent with the form, checked; whether to take the current one away; refusals.

    A file input cannot be filled again by the page, so a refusal says to choose it again.
    """
    remove = data.get(form.LOGO_REMOVE) == "on"
    upload = data.get(form.LOGO)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None, remove, {}
    raw = await upload.read(MAX_BYTES + 1)
    try:
        logo = await run_in_threadpool(check_logo, raw)
    except LogoRefused as exc:
        name = upload.filename[:80]
        return None, False, {form.LOGO: [f"the file “{name}” {exc}; nothing was saved"]}
    return logo, False, {}


async def _brand(brands: Brands, event_id: int, logo: Logo | None, remove: bool) -> None:
    if logo is not None:
        await run_in_threadpool(brands.set_logo, event_id, logo)
    elif remove:
        await run_in_threadpool(brands.set_logo, event_id, None)


def _store_refusal(exc: StoreError) -> dict[str, list[str]]:
    return {exc.field or "event": [exc.message]}


async def _get(store: EventStore, event_id: int) -> EventRecord | None:
    try:
        return await run_in_threadpool(store.get, event_id)
    except EventNotFound:
        return None


def _title(record: EventRecord) -> str:
    return f"{record.company.ticker} · {record.title}"


@router.get(NEW_PATH, response_class=HTMLResponse)
async def new_event(request: Request, store: Store, operator: OperatorPage, now: Now) -> Response:
    """A blank event with the usual defaults and three fresh passcodes."""
    codes = await run_in_threadpool(store.fresh_passcodes)
    return await _editor(
        request, operator, _defaults(now, codes), action=NEW_PATH, heading="New event"
    )


@router.post(NEW_PATH, response_class=HTMLResponse)
async def create_event(
    request: Request, store: Store, brands: Brands, operator: OperatorPage
) -> Response:
    """Create the event the form describes; on a refused field, the form again with why."""
    valid, values, data = await _posted(request)
    if not valid:
        return _csrf_refused(request)
    spec, errors = form.validate(values)
    logo, _, refused = await _logo(data)
    errors.update(refused)
    if spec is not None and not refused:
        try:
            record = await run_in_threadpool(store.create, spec)
        except StoreError as exc:
            errors = _store_refusal(exc)
        else:
            await _brand(brands, record.id, logo, False)
            _flash(request, "ok", f"Created event {record.id}: {_title(record)}.")
            return RedirectResponse(
                f"/console#console-event-{record.id}", status.HTTP_303_SEE_OTHER
            )
    return await _editor(
        request,
        operator,
        values,
        action=NEW_PATH,
        heading="New event",
        errors=errors,
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


@router.get("/console/events/{event_id}/edit", response_class=HTMLResponse)
async def edit_event(
    request: Request, event_id: int, store: Store, operator: OperatorPage
) -> Response:
    """The event's fields to change (a scheduled event), or to read (one whose call began)."""
    record = await _get(store, event_id)
    if record is None:
        return _not_found(request, event_id)
    return await _editor(
        request,
        operator,
        form.values_of(record),
        action=f"/console/events/{event_id}/edit",
        heading=f"Edit event {record.id}",
        record=record,
        version=record.version,
    )


@router.post("/console/events/{event_id}/edit", response_class=HTMLResponse)
async def save_event(
    request: Request, event_id: int, store: Store, brands: Brands, operator: OperatorPage
) -> Response:
    """Save the edited event unless someone else saved it since it was opened (409, with
    what they changed) or a field is refused (422, beside the field)."""
    valid, values, data = await _posted(request)
    if not valid:
        return _csrf_refused(request)
    record = await _get(store, event_id)
    if record is None:
        return _not_found(request, event_id)
    raw_version = data.get("version")
    version = int(raw_version) if isinstance(raw_version, str) and raw_version.isdigit() else 0
    raw_base = data.get("base")
    base: Values = {}
    if isinstance(raw_base, str) and len(raw_base) <= MAX_BASE:
        try:
            loaded = json.loads(raw_base)
        except ValueError:
            loaded = {}
        if isinstance(loaded, dict):
            base = {str(k): str(v) for k, v in loaded.items()}
    action = f"/console/events/{event_id}/edit"
    heading = f"Edit event {event_id}"
    spec, errors = form.validate(values)
    logo, remove, refused = await _logo(data)
    errors.update(refused)
    if spec is not None and not refused:
        try:
            saved = await run_in_threadpool(store.replace, event_id, spec, version)
        except VersionConflict as exc:
            current = form.values_of(exc.current)
            return await _editor(
                request,
                operator,
                values,
                action=action,
                heading=heading,
                record=exc.current,
                version=exc.current.version,
                base=current,
                conflict=form.changes(base, current),
                status_code=status.HTTP_409_CONFLICT,
            )
        except StoreError as exc:
            errors = _store_refusal(exc)
        else:
            await _brand(brands, saved.id, logo, remove)
            _flash(request, "ok", f"Saved event {saved.id}: {_title(saved)}.")
            return RedirectResponse(f"/console#console-event-{saved.id}", status.HTTP_303_SEE_OTHER)
    return await _editor(
        request,
        operator,
        values,
        action=action,
        heading=heading,
        record=record,
        version=version,
        base=base,
        errors=errors,
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


@router.get("/console/events/{event_id}/duplicate", response_class=HTMLResponse)
async def duplicate_event(
    request: Request, event_id: int, store: Store, operator: OperatorPage
) -> Response:
    """A new event's form filled from this one, a quarter on, with fresh passcodes."""
    record = await _get(store, event_id)
    if record is None:
        return _not_found(request, event_id)
    codes = await run_in_threadpool(store.fresh_passcodes)
    draft = next_quarter(form.values_of(record))
    draft.update(
        {
            "event.passcode": codes[0],
            "event.speaker_passcode": codes[1],
            "event.replay_passcode": codes[2],
        }
    )
    draft.pop("event.announced_on", None)  # announced when this one is created
    return await _editor(
        request,
        operator,
        draft,
        action=NEW_PATH,
        heading="New event",
        note=(
            f"A draft from event {record.id} ({_title(record)}): dates moved a quarter on, "
            "new passcodes; speakers, numbers, glossary and contacts kept. Check each field, "
            "then create it."
        ),
    )
