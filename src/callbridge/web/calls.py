"""Live calls through the API: participants, start, end. Operators only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from callbridge.bridge.control import BridgeControl, BridgeError, ParticipantView
from callbridge.events.schema import EventRecord
from callbridge.store.events import EventStore
from callbridge.store.users import Operator
from callbridge.web.auth import require_operator
from callbridge.web.deps import event_store

router = APIRouter(prefix="/api/events/{event_id}", tags=["calls"])

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


@router.get("/participants", response_model=list[ParticipantView])
async def participants(
    event_id: int, store: Store, control: BridgeDep, _: OperatorDep, include_left: bool = False
) -> list[ParticipantView]:
    """Who is on the call: id, role, caller id, joined at, state."""
    await run_in_threadpool(store.get, event_id)
    return control.participants(event_id, include_left=include_left)


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
