"""Slide changes on the live playlist's timeline: ``EXT-X-DATERANGE`` tags, from memory.

``web.slides`` records a change; the live playlist route (``web.media``)
marks each playlist it serves with the latest few, so a listener's page
learns of a change with its next part and shows it when the audio it plays
reaches the tag's ``START-DATE`` (the parts carry the same clock in
``EXT-X-PROGRAM-DATE-TIME``).
"""

from __future__ import annotations

from datetime import UTC

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from callbridge.store.events import EventStore
from callbridge.store.slides import SlideChange, SlideLog

# The changes the live playlist carries (the rest come from /api/events/{id}/slides).
PLAYLIST_CHANGES = 3


class SlideBoard:
    """The live playlists' slide changes, per event, held by the web process.

    Every listener reloads the live playlist several times a second, so the
    changes it carries (``EXT-X-DATERANGE``) come from memory: read from the
    store once per event, then kept up to date by ``show_slide`` in this same
    process. A page learns of a change with the next part, not with its next
    poll of the API.
    """

    def __init__(self) -> None:
        self._tags: dict[int, list[str]] = {}

    def known(self, event_id: int) -> bool:
        return event_id in self._tags

    def load(self, event_id: int, changes: list[SlideChange]) -> None:
        self._tags[event_id] = [_daterange(event_id, c) for c in changes][-PLAYLIST_CHANGES:]

    def add(self, event_id: int, change: SlideChange) -> None:
        tags = self._tags.setdefault(event_id, [])
        tags.append(_daterange(event_id, change))
        del tags[:-PLAYLIST_CHANGES]

    def mark(self, event_id: int, playlist: str) -> str:
        """``playlist`` with the event's latest slide changes, after its media sequence."""
        tags = self._tags.get(event_id)
        if not tags:
            return playlist
        head, found, rest = playlist.partition("\n#EXT-X-MEDIA-SEQUENCE:")
        if not found:
            return playlist
        line, _, tail = rest.partition("\n")
        return head + found + line + "\n" + "\n".join(tags) + "\n" + tail


def _daterange(event_id: int, change: SlideChange) -> str:
    start = change.at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    ident = f"slide-{event_id}-{int(change.at.timestamp() * 1000)}"
    return (
        f'#EXT-X-DATERANGE:ID="{ident}",CLASS="com.callbridge.slide",'
        f'START-DATE="{start}",X-CB-SLIDE={change.slide}'
    )


def slide_board(request: Request) -> SlideBoard:
    board: SlideBoard | None = getattr(request.app.state, "slide_board", None)
    if board is None:
        board = request.app.state.slide_board = SlideBoard()
    return board


async def with_slides(request: Request, store: EventStore, event_id: int, playlist: str) -> str:
    """The live ``playlist`` marked with the event's slide changes (``SlideBoard``)."""
    board = slide_board(request)
    if not board.known(event_id):
        changes = await run_in_threadpool(SlideLog(store.database).changes, event_id)
        board.load(event_id, changes)
    return board.mark(event_id, playlist)
