"""Slides on the webcast: the operator uploads the deck and advances it; listeners follow.

A slide change is stamped with the wall clock when the moderator makes it,
which is when the speaker's words reach the bridge (the moderator hears the
phone line). The live webcast's parts carry the same clock
(``EXT-X-PROGRAM-DATE-TIME``), so the page shows a slide once the audio it
plays reaches the change (``static/slides.js``), about 1.3 s after the click,
not when the click happened. The replay maps each change to its offset into
the recording (the recording's ``started_at``), so a seek lands on the right
slide.

Listeners get the deck's images, the changes and the PDF under the same
registration gate as the audio (the cache tier checks it too, except for the
PDF, which it passes to the origin as it does every page): where the event
asks listeners to register, the deck is theirs, not the public's.

A deck is rendered in a confined child process (``slides.sandbox``), one
upload at a time per web process (``deck_pool``): each child may take a
gigabyte of memory, so they do not run side by side; one more upload may wait,
and any beyond that gets 503 with Retry-After.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, UploadFile, status
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from callbridge.events.schema import EventState
from callbridge.media.mixer import FRAME_MS
from callbridge.media.recording import MANIFEST, MARKER
from callbridge.slides.deck import (
    DECK_PDF,
    MAX_BYTES,
    Deck,
    DeckError,
    render_deck,
    slide_name,
)
from callbridge.store import layout
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.store.slides import SlideLog
from callbridge.store.users import Operator
from callbridge.web.auth import optional_operator
from callbridge.web.calls import OperatorDep, Store
from callbridge.web.deps import settings
from callbridge.web.media import MediaDep, WebcastMedia, _gate, edge_ttl
from callbridge.web.slide_marks import slide_board
from callbridge.web.webcast import Now
from callbridge.web.workpool import BoundedPool, PoolBusy

router = APIRouter(tags=["slides"])


# Listeners poll the changes every two seconds while live; the tier keeps one answer a second.
EDGE_SLIDES_TTL = 1


def deck_pool(request: Request) -> BoundedPool:
    """The app's one deck renderer at a time (made with the first upload)."""
    state = request.app.state
    pool: BoundedPool | None = getattr(state, "deck_pool", None)
    if pool is None:
        pool = state.deck_pool = BoundedPool(workers=1, queue=1, name="deck")
    return pool


def deck_folder(request: Request, event_id: int) -> Path:
    return layout.deck_dir(settings(request).data_dir, event_id)


class DeckView(BaseModel):
    pages: int
    filename: str
    size: int
    render_seconds: float
    download: str
    current: int | None = None  # the slide shown now, if the call has shown one


class ShowSlide(BaseModel):
    slide: int = Field(ge=1, le=10_000)


class ChangeView(BaseModel):
    slide: int
    at: datetime
    offset: float | None  # seconds into the replay's recording, once there is one


class SlidesView(BaseModel):
    pages: int
    image: str  # the image of slide N: replace {n}
    changes: list[ChangeView]


def _deck_view(event_id: int, deck: Deck) -> DeckView:
    return DeckView(
        pages=deck.pages,
        filename=deck.filename,
        size=deck.size,
        render_seconds=deck.render_seconds,
        download=f"/events/{event_id}/deck.pdf",
    )


async def _read_upload(upload: UploadFile) -> bytes:
    """The upload's bytes, refusing it (413) when it passes the limit.

    Read in one piece from the file the form parser spooled it to: the web
    process holds it once (chunks joined held it twice: 70 MB for 34 MB).
    """
    data = b""
    if upload.size is None or upload.size <= MAX_BYTES:
        data = await upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES or (upload.size or 0) > MAX_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"the deck is over {MAX_BYTES // 2**20} MB; export it smaller",
        )
    return data


@router.post("/api/events/{event_id}/deck", status_code=201, response_model=DeckView)
async def upload_deck(
    request: Request, event_id: int, deck: UploadFile, store: Store, _: OperatorDep, now: Now
) -> DeckView:
    """The presenters' deck (PDF), rendered for the webcast; refused once the call has begun."""
    record = await run_in_threadpool(store.get, event_id)
    if record.state is not EventState.SCHEDULED:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "the call has begun: its slide changes name this deck's pages",
        )
    data = await _read_upload(deck)
    try:
        rendered = await deck_pool(request).run(
            render_deck, data, deck_folder(request, event_id), deck.filename or DECK_PDF, now
        )
    except PoolBusy:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "another deck is being rendered; try again in a minute",
            headers={"Retry-After": "30"},
        ) from None
    except DeckError as error:
        detail = [{"loc": ["body", "deck"], "msg": str(error), "type": "deck"}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
    return _deck_view(event_id, rendered)


@router.get("/api/events/{event_id}/deck", response_model=DeckView)
async def deck_info(request: Request, event_id: int, store: Store, _: OperatorDep) -> DeckView:
    await run_in_threadpool(store.get, event_id)
    deck = Deck.load(deck_folder(request, event_id))
    if deck is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no deck has been uploaded")
    changes = await run_in_threadpool(SlideLog(store.database).changes, event_id)
    view = _deck_view(event_id, deck)
    view.current = changes[-1].slide if changes else None
    return view


@router.post("/api/events/{event_id}/slides", response_model=ChangeView)
async def show_slide(
    request: Request, event_id: int, body: ShowSlide, store: Store, operator: OperatorDep, now: Now
) -> ChangeView:
    """Show slide N from now on: listeners see it when their audio reaches this moment."""
    record = await run_in_threadpool(store.get, event_id)
    if record.state is not EventState.LIVE:
        raise HTTPException(status.HTTP_409_CONFLICT, "slides are shown while the call is live")
    deck = Deck.load(deck_folder(request, event_id))
    if deck is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "no deck has been uploaded")
    if body.slide > deck.pages:
        detail = [
            {"loc": ["body", "slide"], "msg": f"the deck has {deck.pages} slides", "type": "range"}
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)
    database = store.database
    change = await run_in_threadpool(
        SlideLog(database).show, event_id, body.slide, now, operator.name
    )
    entry = LogEntry(
        LogKind.SLIDE, now, event_id, actor=operator.name, detail={"slide": body.slide}
    )
    await run_in_threadpool(CallLog(database).append, [entry])
    board = slide_board(request)
    if board.known(event_id):
        board.add(event_id, change)
    return ChangeView(slide=change.slide, at=change.at, offset=None)


def _recording_start(media: WebcastMedia, event_id: int) -> datetime | None:
    """The wall-clock time of the replay's first sample.

    The recorder starts with the call (``started_at``); the files it assembles
    begin at their first recorded frame (``first_frame``, 20 ms each), which is
    later when the first caller joined after the start.
    """
    found = media.replay(event_id)
    if found is None:
        return None
    try:
        started = json.loads((found.directory / MANIFEST).read_text())["started_at"]
        first = json.loads((found.directory / MARKER).read_text())["first_frame"]
        return datetime.fromisoformat(started) + timedelta(milliseconds=FRAME_MS * int(first))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@router.get("/api/events/{event_id}/slides", response_model=SlidesView)
async def slides(
    request: Request, event_id: int, store: Store, media: MediaDep
) -> Response | SlidesView:
    """The deck's size and every slide change, for the webcast page (registered listeners)."""
    _, refused = await _gate(request, store, event_id)
    if refused is not None:
        return refused
    deck = Deck.load(deck_folder(request, event_id))
    if deck is None:
        return PlainTextResponse("no deck", status.HTTP_404_NOT_FOUND)
    changes = await run_in_threadpool(SlideLog(store.database).changes, event_id)
    started = await run_in_threadpool(_recording_start, media, event_id)
    view = SlidesView(
        pages=deck.pages,
        image=f"/webcast/{event_id}/slides/{{n}}.png",
        changes=[
            ChangeView(
                slide=c.slide,
                at=c.at,
                offset=round((c.at - started).total_seconds(), 3) if started else None,
            )
            for c in changes
        ],
    )
    response = Response(view.model_dump_json(), media_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return edge_ttl(response, EDGE_SLIDES_TTL)


@router.get("/webcast/{event_id}/slides/{number}.png", include_in_schema=False)
async def slide_image(request: Request, event_id: int, number: int, store: Store) -> Response:
    """One slide's image, for registered listeners (the tier keeps it as long as the deck)."""
    _, refused = await _gate(request, store, event_id)
    if refused is not None:
        return refused
    path = deck_folder(request, event_id) / slide_name(number)
    if number < 1 or not path.is_file():
        return PlainTextResponse("no such slide", status.HTTP_404_NOT_FOUND)
    response = FileResponse(
        path, media_type="image/png", headers={"Cache-Control": "private, max-age=300"}
    )
    return edge_ttl(response, 300)


@router.get("/api/events/{event_id}/deck/slides/{number}.png", include_in_schema=False)
async def deck_slide_image(
    request: Request, event_id: int, number: int, store: Store, _: OperatorDep
) -> Response:
    """One slide's image for the moderator's desk (listeners' copies are behind their gate)."""
    await run_in_threadpool(store.get, event_id)
    path = deck_folder(request, event_id) / slide_name(number)
    if number < 1 or not path.is_file():
        return PlainTextResponse("no such slide", status.HTTP_404_NOT_FOUND)
    return FileResponse(
        path, media_type="image/png", headers={"Cache-Control": "private, max-age=300"}
    )


@router.get("/events/{event_id}/deck.pdf", include_in_schema=False)
async def deck_pdf(
    request: Request,
    event_id: int,
    store: Store,
    operator: Annotated[Operator | None, Depends(optional_operator)],
) -> Response:
    """The deck as uploaded: for a listener who may listen (registered where the event asks)
    and for operators; 403 for anyone else."""
    await run_in_threadpool(store.get, event_id)
    if operator is None:
        _, refused = await _gate(request, store, event_id)
        if refused is not None:
            return refused
    folder = deck_folder(request, event_id)
    deck = Deck.load(folder)
    if deck is None:
        return PlainTextResponse("no deck", status.HTTP_404_NOT_FOUND)
    return FileResponse(
        folder / DECK_PDF,
        media_type="application/pdf",
        filename=deck.filename if deck.filename.endswith(".pdf") else f"{deck.filename}.pdf",
        # Private: it is not everyone's where the event asks listeners to register.
        headers={"Cache-Control": "private, max-age=300"},
    )
