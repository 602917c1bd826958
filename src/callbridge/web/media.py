"""The webcast's media over HTTP: the live LL-HLS files, the replay, captions.

Both are plain files on disk; this module adds what a static server cannot:
blocking playlist reload for the live call (``_HLS_msn``/``_HLS_part``,
answered as soon as the part exists), the registration check, and the replay
window — after it closes every replay URL answers 410 Gone.

This is the **origin** of the webcast. A crowd is served by the cache tier in
front of it (``deploy/varnish/callbridge.vcl``, run by ``callbridge cache``):
each answer says in ``Surrogate-Control`` how long that tier may keep it
(``edge_ttl``), and ``/webcast/<id>/access`` answers the tier's registration
check once per listener cookie, so the tier serves the media without asking
here per request.

On disk, under the server's data folder (``store.layout`` names the folders)::

    webcast/event-<id>/live/           the live packager's output (LIVE_PLAYLIST)
    recordings/event-<id>/<stamp>/     one recording (media.recording), and after the call
        hls/                           the on-demand replay (REPLAY_PLAYLIST) of the whole
                                       call, every folder of it if a crash split it
        recording.m4a                  the download (replay.m4a when the call was split)
        captions.vtt, transcript.json  the transcript, when it is done
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from callbridge.bridge.control import LiveStream
from callbridge.events.schema import EventRecord, EventState
from callbridge.replay import library
from callbridge.replay.window import day_ends
from callbridge.store import layout
from callbridge.store.events import EventNotFound, EventStore
from callbridge.transcript import turns
from callbridge.transcript.transcribe import caption_cues
from callbridge.transcript.vtt import write_vtt
from callbridge.web import replay_source
from callbridge.web import transcript_published as published_docs
from callbridge.web.deps import event_store
from callbridge.web.gate_cookie import DECIDED_HEADER, tier_value
from callbridge.web.pages import clock
from callbridge.web.slide_marks import with_slides
from callbridge.web.tier import via_tier
from callbridge.web.transcript_published import published_for
from callbridge.web.webcast import may_listen
from callbridge.webcast import captions as live_captions
from callbridge.webcast import live, subtitles, vod
from callbridge.webcast.blocking import PlaylistTimeout
from callbridge.webcast.playlist import BlockingRequestError, parse_blocking_query

router = APIRouter(tags=["webcast"], include_in_schema=False)

LIVE_PLAYLIST = live.PLAYLIST
# Playlists of the live captions (webcast.subtitles): they change, so nobody keeps them.
LIVE_CAPTION_PLAYLISTS = frozenset({subtitles.MASTER, subtitles.SUBTITLES})
REPLAY_DIR = library.REPLAY_DIR
REPLAY_PLAYLIST = live.PLAYLIST
REPLAY_READY = vod.MARKER
# A blocking playlist request waits at most this long (the spec asks for three
# target durations; ours is short).
BLOCK_TIMEOUT = 6.0
SMALL_FILE = 256 * 1024
# How long the cache tier may keep an answer (Surrogate-Control, seconds).
# Parts and segments never change; a blocking playlist answers its own
# _HLS_msn/_HLS_part key, which nobody asks for again a few parts later; a
# plain playlist request (a player starting) may be a part behind.
EDGE_MEDIA_TTL = 300
EDGE_BLOCKING_TTL = 2
EDGE_PLAYLIST_TTL = 0.1
EDGE_ENDED_TTL = 1
# The registration check's answer per cookie: a cookie's signature does not
# change, so only a change of the event's registration setting waits this long.
EDGE_ACCESS_TTL = 300
EDGE_REPLAY_TTL = 3600
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

_CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mp4": "audio/mp4",
    ".m4s": "audio/mp4",
    ".m4a": "audio/mp4",
    ".vtt": "text/vtt; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
# The automatic transcript as written after the call (transcript.turns writes all three);
# the PDF, and every kind once the editor publishes, is made by web.transcript_published.
TRANSCRIPT_FILES = {"txt": turns.TEXT, "html": turns.HTML, "docx": turns.DOCX}

Now = Annotated[datetime, Depends(clock)]
Store = Annotated[EventStore, Depends(event_store)]


@dataclass(frozen=True)
class ReplayFiles:
    directory: Path

    @property
    def hls(self) -> Path:
        return self.directory / REPLAY_DIR

    @property
    def playlist_name(self) -> str:
        return REPLAY_PLAYLIST

    @property
    def m4a(self) -> Path:
        """The download: the whole call, joined when a crash split it (``library.call_parts``)."""
        joined = self.directory / library.JOINED_M4A
        return joined if joined.is_file() else self.directory / "recording.m4a"

    @property
    def captions(self) -> Path | None:
        """The offline pass's captions, or until they are done the live ones (live.vtt)."""
        for name in ("captions.vtt", live_captions.LIVE_VTT):
            path = self.directory / name
            if path.is_file():
                return path
        return None

    @property
    def transcript_dir(self) -> Path:
        return self.directory


class WebcastMedia:
    """Finds an event's live and replay files under the data folder."""

    LIVE_PLAYLIST = LIVE_PLAYLIST

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def live_dir(self, event_id: int) -> Path:
        return layout.live_dir(self.data_dir, event_id)

    def live_ready(self, event_id: int) -> bool:
        return (self.live_dir(event_id) / LIVE_PLAYLIST).is_file()

    def live_entry(self, event_id: int) -> str:
        """The playlist a player starts from: the multivariant one when there are live
        captions (audio and subtitles), else the audio's own."""
        master = self.live_dir(event_id) / subtitles.MASTER
        return subtitles.MASTER if master.is_file() else LIVE_PLAYLIST

    def live_transcript(
        self, event_id: int, query: str = "", after: int = 0
    ) -> list[dict[str, object]]:
        """The live captions so far (``webcast.captions.read_transcript``)."""
        return live_captions.read_transcript(
            layout.event_webcast(self.data_dir, event_id), query, after
        )

    def recordings(self, event_id: int) -> list[Path]:
        """The event's recording folders, newest first."""
        return library.recording_dirs(layout.recordings(self.data_dir), event_id)

    def replay(self, event_id: int) -> ReplayFiles | None:
        """The newest recording whose replay is packaged, if any."""
        for directory in self.recordings(event_id):
            if library.replay_ready(directory):
                return ReplayFiles(directory)
        return None

    def transcript_progress(self, event_id: int) -> library.Progress | None:
        directory = library.newest_assembled(layout.recordings(self.data_dir), event_id)
        return library.read_progress(directory) if directory is not None else None


def webcast_media(request: Request) -> WebcastMedia:
    value: WebcastMedia = request.app.state.webcast_media
    return value


MediaDep = Annotated[WebcastMedia, Depends(webcast_media)]


def edge_ttl(response: Response, seconds: float) -> Response:
    """Let the cache tier keep ``response`` for ``seconds`` (browsers see Cache-Control only)."""
    response.headers["Surrogate-Control"] = f"max-age={seconds:g}"
    return response


def _gone(what: str) -> Response:
    # An expired replay stays expired (unless its window is moved: a minute).
    return edge_ttl(PlainTextResponse(f"{what} has expired", status.HTTP_410_GONE), 60)


def _file(path: Path, *, cache: str) -> Response:
    media_type = _CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    headers = {"Cache-Control": cache}
    try:
        if not path.is_file():
            return PlainTextResponse("not found", status.HTTP_404_NOT_FOUND)
        if path.stat().st_size <= SMALL_FILE:
            # Parts are a few kilobytes in the page cache: reading them here
            # costs less than handing the file to a worker thread.
            return Response(path.read_bytes(), media_type=media_type, headers=headers)
    except OSError:
        return PlainTextResponse("not found", status.HTTP_404_NOT_FOUND)
    return FileResponse(path, media_type=media_type, headers=headers)


class EventCache:
    """Events as the media routes need them, kept for ``ttl`` seconds.

    Every listener asks for a playlist and a part several times a second;
    reading the event from the database for each would cost more than the
    media. A change of state (live, ended) or of the replay window shows
    within ``ttl``.
    """

    def __init__(self, store: EventStore, ttl: float = 2.0) -> None:
        self.store = store
        self.ttl = ttl
        self._entries: dict[int, tuple[float, EventRecord | None]] = {}
        # One database read per event at a time: the requests that find the
        # entry stale together wait for it instead of each reading.
        self._reading: dict[int, asyncio.Future[EventRecord | None]] = {}

    async def get(self, event_id: int) -> EventRecord | None:
        now = time.monotonic()
        entry = self._entries.get(event_id)
        if entry is not None and now - entry[0] < self.ttl:
            return entry[1]
        pending = self._reading.get(event_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[EventRecord | None] = asyncio.get_running_loop().create_future()
        self._reading[event_id] = future
        try:
            try:
                record: EventRecord | None = await run_in_threadpool(self.store.get, event_id)
            except EventNotFound:
                record = None
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved: a failed read with no other waiter is not an error
            raise
        finally:
            del self._reading[event_id]
        future.set_result(record)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[event_id] = (now, record)
        return record


def _cache(request: Request, store: EventStore) -> EventCache:
    cache: EventCache | None = getattr(request.app.state, "media_events", None)
    if cache is None or cache.store is not store:
        cache = EventCache(store)
        request.app.state.media_events = cache
    return cache


async def _gate(
    request: Request, store: EventStore, event_id: int
) -> tuple[EventRecord | None, Response | None]:
    record = await _cache(request, store).get(event_id)
    if record is None:
        return None, PlainTextResponse("no such event", status.HTTP_404_NOT_FOUND)
    if not may_listen(request, record):
        return record, PlainTextResponse(
            "register on the webcast page to listen", status.HTTP_403_FORBIDDEN
        )
    return record, None


@router.get("/webcast/{event_id}/access")
async def access(request: Request, event_id: int, store: Store) -> Response:
    """The cache tier's registration check: 204 when this browser may listen, else 403.

    The tier asks once per gate cookie value and keeps the answer
    ``EDGE_ACCESS_TTL`` seconds, so it serves the webcast's files to a crowd
    without a request here per file, and refuses the unregistered itself.
    From the tier the answer is decided on the value the tier keyed on
    (``gate_cookie.TIER_HEADER``) alone, and names it (``DECIDED_HEADER``):
    the tier keeps an answer only under the key it was decided for.
    """
    keyed = tier_value(request)
    if via_tier(request) and keyed is None:
        return PlainTextResponse(
            "the cache tier did not say which cookie it asks for",
            status.HTTP_403_FORBIDDEN,
            headers={"Cache-Control": "no-store"},
        )
    _, refused = await _gate(request, store, event_id)
    response = refused or Response(status_code=status.HTTP_204_NO_CONTENT)
    response.headers["Cache-Control"] = "no-store"
    if keyed is not None:
        response.headers[DECIDED_HEADER] = keyed
    ttl = EDGE_ACCESS_TTL if response.status_code in (204, 403) else 10
    return edge_ttl(response, ttl)


@router.get("/webcast/{event_id}/live/{name}")
async def live_file(
    request: Request,
    event_id: int,
    name: str,
    store: Store,
    media: MediaDep,
    _HLS_msn: str | None = None,
    _HLS_part: str | None = None,
) -> Response:
    """A live playlist (blocking reload when asked) or one of its init/part/segment files."""
    if not _SAFE_NAME.match(name) or name.startswith("."):
        return PlainTextResponse("not found", status.HTTP_404_NOT_FOUND)
    record, refused = await _gate(request, store, event_id)
    if refused is not None:
        return refused
    assert record is not None
    stream: LiveStream | None = None
    bridge = getattr(request.app.state, "bridge", None)
    if bridge is not None and record.state is EventState.LIVE:
        stream = bridge.live_stream(event_id)
    path = media.live_dir(event_id) / name
    if name in LIVE_CAPTION_PLAYLISTS:
        found = _file(path, cache="no-cache")
        return edge_ttl(found, EDGE_PLAYLIST_TTL) if found.status_code == 200 else found
    if name != LIVE_PLAYLIST:
        position = live.media_position(name)
        if stream is not None and position is not None and not path.is_file():
            # The preload hint names the next part before it exists: hold the
            # request until the packager writes it.
            try:
                await stream.wait_for(position[0], position[1], timeout=BLOCK_TIMEOUT)
            except BlockingRequestError as error:
                return PlainTextResponse(str(error), error.status)
            except PlaylistTimeout:
                return PlainTextResponse("not yet", status.HTTP_404_NOT_FOUND)
        # Parts and segments never change once written: caches may keep them.
        found = _file(path, cache="public, max-age=300")
        return edge_ttl(found, EDGE_MEDIA_TTL) if found.status_code == 200 else found
    if stream is None:
        found = _file(path, cache="no-cache")
        return edge_ttl(found, EDGE_ENDED_TTL) if found.status_code == 200 else found
    try:
        msn, part = parse_blocking_query(_HLS_msn, _HLS_part)
        text = await stream.wait_for(msn, part, timeout=BLOCK_TIMEOUT)
    except BlockingRequestError as error:
        return PlainTextResponse(str(error), error.status)
    except PlaylistTimeout:
        return PlainTextResponse(
            "the requested part did not arrive in time", status.HTTP_503_SERVICE_UNAVAILABLE
        )
    text = await with_slides(request, store, event_id, text)
    response = Response(
        text, media_type=_CONTENT_TYPES[".m3u8"], headers={"Cache-Control": "no-cache"}
    )
    return edge_ttl(response, EDGE_PLAYLIST_TTL if msn is None else EDGE_BLOCKING_TTL)


def replay_edge_ttl(last_day: date | None, timezone: str, now: datetime, longest: float) -> int:
    """Seconds a replay answer may be kept: ``longest``, but never past the replay window.

    ``last_day`` is the event's ``replay_until`` (inclusive, in ``timezone``).
    """
    if last_day is None:
        return 0
    left = (day_ends(last_day, timezone) - now.astimezone(UTC)).total_seconds()
    return max(0, int(min(longest, left)))


async def _replay(
    request: Request, store: EventStore, media: WebcastMedia, event_id: int, now: datetime
) -> tuple[ReplayFiles | None, Response | None, int]:
    """The replay's files, or the answer instead; and how long the cache tier may keep them."""
    record, refused = await _gate(request, store, event_id)
    if refused is not None:
        return None, refused, 0
    assert record is not None
    if record.state not in (EventState.ENDED, EventState.ARCHIVED):
        return None, PlainTextResponse("the call has not ended", status.HTTP_404_NOT_FOUND), 0
    if record.replay_until is None or not record.replay_available(now):
        return None, _gone("the replay"), 0
    found = media.replay(event_id)
    if found is None:
        return None, PlainTextResponse("the replay is being prepared", status.HTTP_404_NOT_FOUND), 0
    moved = await replay_source.elsewhere(request, store.database, event_id, found.hls)
    if moved is not None:
        return None, moved, 0
    ttl = replay_edge_ttl(record.replay_until, record.timezone, now, EDGE_REPLAY_TTL)
    return found, None, ttl


def _made(data: bytes, media_type: str, edge: int) -> Response:
    """A document made from the published transcript, kept as a replay file is (a minute)."""
    headers = {"Cache-Control": f"private, max-age={min(60, edge)}"}
    response = Response(data, media_type=media_type, headers=headers)
    return edge_ttl(response, min(edge, 60)) if edge > 0 else response


def _replay_file(path: Path, edge: int) -> Response:
    # Browsers keep it a minute at most, and never past the window either.
    response = _file(path, cache=f"private, max-age={min(60, edge)}")
    return edge_ttl(response, edge) if response.status_code == 200 and edge > 0 else response


@router.get("/webcast/{event_id}/replay/{name}")
async def replay_file(
    request: Request, event_id: int, name: str, store: Store, media: MediaDep, now: Now
) -> Response:
    """The on-demand replay's playlist and segments, within the replay window; 410 after."""
    if not _SAFE_NAME.match(name) or name.startswith(".") or name == REPLAY_READY:
        return PlainTextResponse("not found", status.HTTP_404_NOT_FOUND)
    found, refused, edge = await _replay(request, store, media, event_id, now)
    if refused is not None:
        return refused
    assert found is not None
    return _replay_file(found.hls / name, edge)


@router.get("/webcast/{event_id}/replay.m4a")
async def replay_download(
    request: Request, event_id: int, store: Store, media: MediaDep, now: Now
) -> Response:
    """The whole recording as one AAC file, within the replay window; 410 after."""
    found, refused, edge = await _replay(request, store, media, event_id, now)
    if refused is not None:
        return refused
    assert found is not None
    response = _replay_file(found.m4a, edge)
    response.headers["Content-Disposition"] = f'attachment; filename="event-{event_id}-replay.m4a"'
    return response


@router.get("/webcast/{event_id}/captions.vtt")
async def captions(
    request: Request, event_id: int, store: Store, media: MediaDep, now: Now
) -> Response:
    """WebVTT captions of the replay, from the transcript."""
    found, refused, edge = await _replay(request, store, media, event_id, now)
    if refused is not None:
        return refused
    assert found is not None
    published = await published_for(request, event_id)
    if published is not None:
        # The editor's published version: its cues, made from its corrected words.
        text = write_vtt(caption_cues(published.transcript))
        return _made(text.encode(), _CONTENT_TYPES[".vtt"], edge)
    if found.captions is None:
        return PlainTextResponse("the transcript is not ready", status.HTTP_404_NOT_FOUND)
    # Short at the tier: a transcript redone after the call replaces this file.
    return _replay_file(found.captions, min(edge, 60))


@router.get("/webcast/{event_id}/transcript.{kind}")
async def transcript_file(
    request: Request, event_id: int, kind: str, store: Store, media: MediaDep, now: Now
) -> Response:
    """The replay's transcript by speaker turn: plain text, a standalone HTML page, DOCX or PDF.

    The editor's published version once there is one (headed with the company,
    the call and its speakers); until then the automatic transcript's files.
    """
    if kind not in published_docs.KINDS:
        return PlainTextResponse("not found", status.HTTP_404_NOT_FOUND)
    found, refused, edge = await _replay(request, store, media, event_id, now)
    if refused is not None:
        return refused
    assert found is not None
    record = await _cache(request, store).get(event_id)
    assert record is not None  # _replay found it
    data = await published_docs.document(request, kind, record, found.directory)
    name = TRANSCRIPT_FILES.get(kind)
    if data is not None:
        response = _made(data, published_docs.MEDIA_TYPES[kind], edge)
    elif name is None or not (found.directory / name).is_file():
        return PlainTextResponse("the transcript is not ready", status.HTTP_404_NOT_FOUND)
    else:
        response = _replay_file(found.directory / name, min(edge, 60))
    if kind == "html":
        # A page of its own, with no script: nothing in it may run or be framed.
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'"
        )
    response.headers["Content-Disposition"] = (
        f'attachment; filename="event-{event_id}-transcript.{kind}"'
    )
    return response
