"""Deleting a registrant: their data gone, their PIN dead, their listening kept anonymously.

``DELETE /api/events/{id}/registrants/{listener_id}`` (an operator) answers a
registrant's request to be forgotten. Their name, firm and email leave the
listener row, whose cookie token is replaced, so the browser's cookie names
nobody (its beacons count nothing; where registration is required it must
register again); their personal PIN stops working at once; reminders and
replay notices not yet sent are cancelled and their consent marked withdrawn.
What remains is an anonymous row with its live and replay seconds, so the
engagement report's totals do not change. The deletion is in the audit trail,
without the name.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.web import pages
from callbridge.web.calls import OperatorDep, Store

router = APIRouter(prefix="/api/events/{event_id}", tags=["calls"])


@router.delete("/registrants/{listener_id}", status_code=status.HTTP_204_NO_CONTENT)
async def erase_registrant(
    event_id: int, listener_id: int, request: Request, store: Store, operator: OperatorDep
) -> Response:
    """Delete a registrant's data: 204, or 404 when the event has no such registrant."""
    await run_in_threadpool(store.get, event_id)
    now: datetime = request.app.dependency_overrides.get(pages.clock, pages.clock)()
    state = request.app.state
    erased = await run_in_threadpool(state.audience.erase, event_id, listener_id)
    if erased is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such registrant for this event")
    pins = getattr(state, "pins", None)
    if pins is not None:
        await run_in_threadpool(pins.revoke, listener_id)
    desk = getattr(state, "mail", None)
    if desk is not None:
        await run_in_threadpool(desk.outbox.withdraw, listener_id, now)
        await run_in_threadpool(desk.outbox.cancel_follow_ups, listener_id)
    log: CallLog = state.call_log
    entry = LogEntry(
        LogKind.REGISTRANT_ERASED,
        now,
        event_id,
        channel="web",
        actor=operator.name,
        detail={"listener": listener_id},
    )
    await run_in_threadpool(log.append, [entry])
    return Response(status_code=status.HTTP_204_NO_CONTENT)
