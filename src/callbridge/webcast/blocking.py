"""Blocking playlist reload for asyncio web handlers.

A request for ``index.m3u8?_HLS_msn=M&_HLS_part=N`` must be held until the
playlist holds part N of segment M (draft-pantos-hls-rfc8216bis 6.2.5.2).
``PlaylistWaiter`` keeps the waiting handlers on one ``asyncio.Event`` that
the packager's update callback sets (through ``loop.call_soon_threadsafe``),
and decides with ``playlist.blocking_decision``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from callbridge.webcast.playlist import (
    Blocking,
    BlockingRequestError,
    RenderedPlaylist,
    blocking_decision,
)


class PlaylistSource(Protocol):
    """What a waiter reads: ``LiveWebcast`` is one."""

    def snapshot(self) -> RenderedPlaylist | None: ...


class UpdateNotifier(Protocol):
    """What ``attach`` sets its callback on: ``LiveWebcast`` is one."""

    on_update: Callable[[], None] | None


class PlaylistTimeout(TimeoutError):
    """The playlist did not reach the requested part in time (answer 503; the client retries)."""


class PlaylistWaiter:
    """Holds blocking playlist requests until the playlist is far enough along.

    Create one per live webcast on the event loop, and either call
    ``attach(webcast)`` (sets the webcast's ``on_update``) or arrange for
    ``notify()`` to run on the loop after each update. All methods run on the
    event loop's thread.
    """

    def __init__(self, source: PlaylistSource, max_waiters: int = 10_000) -> None:
        self.source = source
        self.max_waiters = max_waiters
        self.waiting = 0
        # Waits begun (a request waits again if woken short of its part), and requests
        # whose wait ran out: both since made.
        self.waited = 0
        self.timeouts = 0
        self._event = asyncio.Event()

    def attach(
        self,
        webcast: UpdateNotifier,
        loop: asyncio.AbstractEventLoop | None = None,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Make ``webcast`` wake this waiter after each playlist it publishes.

        ``then``, if given, runs on the loop right after each wake-up.
        """
        loop = loop or asyncio.get_running_loop()

        def published() -> None:
            self.notify()
            if then is not None:
                then()

        def on_update() -> None:
            # Runs on the packager's thread; a closed loop only means nobody waits.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(published)

        webcast.on_update = on_update

    def notify(self) -> None:
        """The playlist changed: wake every waiting request (call on the loop)."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_for(self, msn: int | None, part: int | None, timeout: float) -> str:
        """The playlist text once it holds segment ``msn`` (part ``part``), or later.

        ``msn``/``part`` are the ``_HLS_msn``/``_HLS_part`` query values
        (``playlist.parse_blocking_query`` reads them); with both None it
        answers at once, or waits for the first segment when there is no playlist
        yet. Raises ``BlockingRequestError`` (its ``status``: 400) for a request
        that cannot be satisfied, ``PlaylistTimeout`` after ``timeout`` seconds.
        A good timeout is three target durations.
        """
        if msn is None and part is not None:
            raise BlockingRequestError("_HLS_part without _HLS_msn")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            # Take the event before reading the state: an update in between
            # then sets the event we wait on instead of being missed.
            event = self._event
            snapshot = self.source.snapshot()
            if (
                snapshot is not None
                and blocking_decision(snapshot.playlist, msn, part) is Blocking.READY
            ):
                return snapshot.text
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.timeouts += 1
                raise PlaylistTimeout(f"no playlist with _HLS_msn={msn} _HLS_part={part} yet")
            if self.waiting >= self.max_waiters:
                raise BlockingRequestError("too many blocked playlist requests", status=503)
            self.waiting += 1
            self.waited += 1
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                self.timeouts += 1
                raise PlaylistTimeout(
                    f"no playlist with _HLS_msn={msn} _HLS_part={part} yet"
                ) from None
            finally:
                self.waiting -= 1
