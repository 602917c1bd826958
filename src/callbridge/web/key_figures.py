"""The call's key figures beside the replay.

``for_page`` gives the replay page the rows (``transcript.key_figures``) that
its partial ``_key_figures.html`` lays out as a table, each row's time a link
that plays the replay from there (``#t=<seconds>``, which ``static/webcast.js``
honours, the link's ``data-seek`` doing it in place). ``web.key_figures_files``
gives the same rows as JSON and CSV.

Its own module (and partial) so the replay page's other parts change apart; it
imports nothing of ``web.webcast``, which imports it.
"""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from callbridge.events.schema import EventRecord
from callbridge.transcript.key_figures import KeyFigure, key_figures
from callbridge.transcript.transcribe import load_transcript
from callbridge.web.transcript_published import published_for


async def rows(request: Request, event_id: int) -> list[KeyFigure] | None:
    """The replay's key figures, from the editor's published version once there is one
    (the table then matches the transcript listeners read); None while there is no
    transcript."""
    published = await published_for(request, event_id)
    if published is not None:
        return await run_in_threadpool(key_figures, published.transcript)
    media = getattr(request.app.state, "webcast_media", None)
    if media is None:
        return None
    found = await run_in_threadpool(media.replay, event_id)
    if found is None:
        return None
    transcript = await run_in_threadpool(load_transcript, found.directory)
    if transcript is None:
        return None
    return await run_in_threadpool(key_figures, transcript)


async def for_page(request: Request, record: EventRecord) -> list[KeyFigure]:
    """The rows the replay page shows; call it only where the page shows the transcript."""
    return await rows(request, record.id) or []
