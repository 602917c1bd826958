"""Call me: a registered webcast listener has the bridge call their phone.

The listener's request carries their webcast cookie and a JSON body (as a
written question does: a cross-site form cannot send JSON without the
browser asking first, and the cookie is SameSite=Lax). Every decision is the
media plane's (``bridge.callme``: countries, number types, one pending call,
the per-registrant, per-event and global limits; ``bridge.callme_desk``
audits every refusal), so the limits hold in one place; this module turns
its answers into HTTP: 202 with the dial's id, 422 naming ``number``, 429
with ``Retry-After``, 409 when call-me is off or the call is over.

The page polls ``…/webcast/call-me/{dial_id}`` for the call's progress
(calling, ringing, answered, joined, failed, ended); only the registrant
who asked may read it. The operator turns call-me off or on for an event
with ``POST /api/events/{id}/call-me`` ``{"enabled": false}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from callbridge.bridge.control import BridgeError
from callbridge.events.schema import EventState
from callbridge.store.audience import WebListener
from callbridge.web.calls import BridgeDep, OperatorDep, Store
from callbridge.web.limits import client_source
from callbridge.web.webcast import AudienceDep, listener_token

router = APIRouter(prefix="/api/events/{event_id}", tags=["call-me"])

NO_STORE = {"Cache-Control": "no-store, private"}


class CallMeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The bound only keeps a flood of bytes out; the media plane judges the number.
    number: str = Field(min_length=1, max_length=40, description="E.164, e.g. +19135550100")


class CallMePlaced(BaseModel):
    dial_id: str
    number: str = Field(description="The number called, in E.164")
    status_url: str = Field(description="Poll this for the call's progress")


class CallMeState(BaseModel):
    state: str = Field(description="calling, ringing, answered, joined, failed or ended")
    detail: str = Field("", description="Why a call failed (the carrier's answer)")


class CallMeOffered(BaseModel):
    available: bool = Field(description="Whether the page offers the form now")


class CallMeSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


async def _registrant(request: Request, people: Any, event_id: int) -> WebListener:
    token = listener_token(request, event_id)
    listener = await run_in_threadpool(people.identify, event_id, token) if token else None
    if listener is None or not listener.registered:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "register for the webcast to be called")
    assert isinstance(listener, WebListener)
    return listener


def _refusal(refused: dict[str, Any]) -> JSONResponse:
    code = int(refused["status"])
    message = str(refused["message"])
    detail: object = message
    if refused.get("field"):
        # As FastAPI words a validation error: the page shows it beside the field.
        detail = [{"loc": ["body", refused["field"]], "msg": message, "type": "refused"}]
    headers = dict(NO_STORE)
    if refused.get("retry_after"):
        headers["Retry-After"] = str(int(refused["retry_after"]))
    return JSONResponse({"detail": detail}, code, headers=headers)


@router.post(
    "/webcast/call-me",
    response_model=CallMePlaced,
    status_code=status.HTTP_202_ACCEPTED,
    responses={403: {}, 409: {}, 422: {}, 429: {}},
)
async def call_me(
    event_id: int,
    body: CallMeRequest,
    request: Request,
    store: Store,
    people: AudienceDep,
    control: BridgeDep,
) -> Any:
    """Have the bridge call the registrant's number; they press 1 to join, named as themselves.

    202 once the call is placed (poll ``status_url``); 403 for a browser that
    has not registered; 422 for a number the bridge does not call (``number``
    named); 429 with ``Retry-After`` past a limit; 409 when call-me is off.
    """
    record = await run_in_threadpool(store.get, event_id)
    listener = await _registrant(request, people, event_id)
    if record.state in (EventState.ENDED, EventState.ARCHIVED):
        raise HTTPException(status.HTTP_409_CONFLICT, "the call is over")
    registrant = {
        "listener_id": listener.id,
        "name": listener.name,
        "firm": listener.firm,
        "email": listener.email,
    }
    try:
        answer = await control.call_me(event_id, registrant, body.number, client_source(request))
    except BridgeError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    if "refused" in answer:
        return _refusal(answer["refused"])
    dial_id = str(answer["dial_id"])
    placed = CallMePlaced(
        dial_id=dial_id,
        number=str(answer["number"]),
        status_url=f"/api/events/{event_id}/webcast/call-me/{dial_id}",
    )
    return JSONResponse(placed.model_dump(), status.HTTP_202_ACCEPTED, headers=NO_STORE)


@router.get("/webcast/call-me", response_model=CallMeOffered)
async def call_me_offered(
    event_id: int, request: Request, store: Store, people: AudienceDep, control: BridgeDep
) -> Any:
    """Whether a registrant may ask for a call now (the page shows its form only then)."""
    record = await run_in_threadpool(store.get, event_id)
    await _registrant(request, people, event_id)
    available = record.state not in (EventState.ENDED, EventState.ARCHIVED)
    if available:
        try:
            available = await control.call_me_switch(event_id, None, "registrant")
        except BridgeError:
            available = False  # no outbound trunk on this server
    return JSONResponse(CallMeOffered(available=available).model_dump(), headers=NO_STORE)


@router.get("/webcast/call-me/{dial_id}", response_model=CallMeState)
async def call_me_state(
    event_id: int,
    dial_id: str,
    request: Request,
    people: AudienceDep,
    control: BridgeDep,
) -> Any:
    """The progress of the registrant's own call; 404 for any other."""
    listener = await _registrant(request, people, event_id)
    try:
        found = await control.call_me_state(dial_id[:64])
    except BridgeError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    if found is None or found["event_id"] != event_id or found["registrant"] != listener.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such call of yours")
    view = CallMeState(state=str(found["state"]), detail=str(found.get("detail") or ""))
    return JSONResponse(view.model_dump(), headers=NO_STORE)


@router.get("/call-me", response_model=CallMeSwitch)
async def call_me_setting(
    event_id: int, store: Store, control: BridgeDep, operator: OperatorDep
) -> CallMeSwitch:
    """Whether registrants may ask the bridge to call them for this event."""
    await run_in_threadpool(store.get, event_id)
    try:
        enabled = await control.call_me_switch(event_id, None, operator.name)
    except BridgeError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    return CallMeSwitch(enabled=enabled)


@router.post("/call-me", response_model=CallMeSwitch)
async def switch_call_me(
    event_id: int, body: CallMeSwitch, store: Store, control: BridgeDep, operator: OperatorDep
) -> CallMeSwitch:
    """Turn call-me off (or on again) for the event, mid-call too; calls placed go on (audited)."""
    await run_in_threadpool(store.get, event_id)
    try:
        enabled = await control.call_me_switch(event_id, body.enabled, operator.name)
    except BridgeError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    return CallMeSwitch(enabled=enabled)
