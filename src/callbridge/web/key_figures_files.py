"""The call's key figures as downloads: ``/webcast/<event>/key-figures.json`` and ``.csv``.

The rows the replay page shows beside the player (``web.key_figures``), to a
browser that may listen, within the replay window, as the transcript's own
files are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from callbridge.events.schema import EventState
from callbridge.store.events import EventNotFound, EventStore
from callbridge.transcript.key_figures import KeyFigure, as_csv
from callbridge.web.deps import event_store
from callbridge.web.key_figures import rows as replay_rows
from callbridge.web.pages import clock
from callbridge.web.webcast import may_listen

router = APIRouter(tags=["webcast"])

Now = Annotated[datetime, Depends(clock)]
Store = Annotated[EventStore, Depends(event_store)]


async def _allowed(
    request: Request, store: EventStore, event_id: int, now: datetime
) -> list[KeyFigure] | Response:
    try:
        record = await run_in_threadpool(store.get, event_id)
    except EventNotFound:
        return PlainTextResponse("no such event", status.HTTP_404_NOT_FOUND)
    if not may_listen(request, record):
        return PlainTextResponse(
            "register on the webcast page to listen", status.HTTP_403_FORBIDDEN
        )
    if not record.replay_available(now):
        ended = record.state in (EventState.ENDED, EventState.ARCHIVED)
        if ended and record.replay_until is not None:
            return PlainTextResponse("the replay has expired", status.HTTP_410_GONE)
        return PlainTextResponse("there is no replay", status.HTTP_404_NOT_FOUND)
    rows = await replay_rows(request, event_id)
    if rows is None:
        return PlainTextResponse("the transcript is not ready", status.HTTP_404_NOT_FOUND)
    return rows


@router.get("/webcast/{event_id}/key-figures.json")
async def key_figures_json(request: Request, event_id: int, store: Store, now: Now) -> Response:
    """The figures said in the call: what, value, period, and the time in the replay."""
    rows = await _allowed(request, store, event_id, now)
    if isinstance(rows, Response):
        return rows
    return JSONResponse(
        {"event": event_id, "key_figures": [row.to_json() for row in rows]},
        headers={"Cache-Control": "private, max-age=60"},
    )


@router.get("/webcast/{event_id}/key-figures.csv")
async def key_figures_csv(request: Request, event_id: int, store: Store, now: Now) -> Response:
    """The key figures as a spreadsheet reads them."""
    rows = await _allowed(request, store, event_id, now)
    if isinstance(rows, Response):
        return rows
    return Response(
        as_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={
            "Cache-Control": "private, max-age=60",
            "Content-Disposition": f'attachment; filename="event-{event_id}-key-figures.csv"',
        },
    )
