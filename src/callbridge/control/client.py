"""The web app's end of the control channel: ``BridgeControl`` over the media plane's socket.

``RemoteBridge`` keeps one connection to ``control.server`` open (and
reconnects, with a growing pause, whenever the media plane restarts), sends
the console's questions and the moderator's actions as JSON-RPC requests, and
keeps the latest playlist of every live webcast that the media plane pushes,
so that blocking playlist requests wait here, in the web process, and never
in the media plane. While a console watches a call (``watch_live``), the media
plane pushes the call's view whenever it changes; one subscription serves every
console of that call in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from callbridge.bridge.control import (
    Action,
    BridgeError,
    BridgeStats,
    BridgeUnavailable,
    LiveView,
    ParticipantView,
)
from callbridge.control import rpc
from callbridge.webcast.blocking import PlaylistWaiter
from callbridge.webcast.playlist import PlaylistError, RenderedPlaylist, parse

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0
RECONNECT_MIN = 0.05
RECONNECT_MAX = 2.0


class RemotePlaylist:
    """The live playlist of one event as the media plane last pushed it (a ``PlaylistSource``)."""

    def __init__(self) -> None:
        self._snapshot: RenderedPlaylist | None = None

    def snapshot(self) -> RenderedPlaylist | None:
        return self._snapshot

    def update(self, text: str) -> None:
        try:
            self._snapshot = RenderedPlaylist(parse(text), text)
        except PlaylistError as error:
            log.warning("control: the media plane pushed a playlist that does not parse: %s", error)


class LiveWatch:
    """The console view of one call, as the media plane last pushed it (a ``LiveFeed``)."""

    def __init__(self) -> None:
        self.view: LiveView | None = None
        self.version = 0
        self.watchers = 0
        self._moved = asyncio.Event()

    def update(self, view: LiveView) -> None:
        self.view = view
        self.version += 1
        self._moved.set()
        self._moved = asyncio.Event()

    async def wait(self, seen: int, timeout: float) -> int:
        if self.version == seen:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), timeout)
        return self.version


class RemoteBridge:
    """``BridgeControl`` for a web process, answered by the media plane over a Unix socket.

    Start ``run()`` as a task on the web process's loop; ``close()`` stops it.
    Calls made while the media plane is away raise ``BridgeUnavailable``.
    """

    def __init__(self, path: Path, timeout: float = REQUEST_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._writer: asyncio.StreamWriter | None = None
        self._connection = rpc.RpcConnection()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._streams: dict[int, tuple[RemotePlaylist, PlaylistWaiter]] = {}
        self._watches: dict[int, LiveWatch] = {}
        self._connected = asyncio.Event()
        self._closing = False
        # The blocking reloads of webcasts that have ended: waits begun, timed out.
        self._ended_waits = (0, 0)

    # -- BridgeControl ----------------------------------------------------------------------

    async def participants(
        self, event_id: int, include_left: bool = False
    ) -> list[ParticipantView]:
        found = await self._call(
            "participants", {"event_id": event_id, "include_left": include_left}
        )
        return [ParticipantView.model_validate(p) for p in found]

    async def stats(self) -> BridgeStats:
        return BridgeStats.model_validate(await self._call("stats"))

    async def live(self, event_id: int) -> LiveView:
        return LiveView.model_validate(await self._call("live", {"event_id": event_id}))

    async def act(self, event_id: int, action: Action, actor: str) -> LiveView:
        params = {"event_id": event_id, "action": action.model_dump(mode="json"), "actor": actor}
        return LiveView.model_validate(await self._call("act", params))

    async def question_written(
        self, event_id: int, question_id: str, asker: str, text: str
    ) -> None:
        params = {"event_id": event_id, "question_id": question_id, "asker": asker, "text": text}
        await self._call("question_written", params)

    async def start_call(self, event_id: int) -> None:
        await self._call("start_call", {"event_id": event_id})

    async def end_call(self, event_id: int) -> None:
        await self._call("end_call", {"event_id": event_id})

    async def dial(self, event_id: int, number: str, as_role: str, actor: str) -> str:
        params = {"event_id": event_id, "number": number, "as_role": as_role, "actor": actor}
        return str(await self._call("dial", params))

    async def call_me(
        self, event_id: int, registrant: dict[str, Any], number: str, source: str
    ) -> dict[str, Any]:
        params = {
            "event_id": event_id,
            "registrant": registrant,
            "number": number,
            "source": source,
        }
        answer: dict[str, Any] = await self._call("call_me", params)
        return answer

    async def call_me_state(self, dial_id: str) -> dict[str, Any] | None:
        answer: dict[str, Any] | None = await self._call("call_me_state", {"dial_id": dial_id})
        return answer

    async def call_me_switch(self, event_id: int, enabled: bool | None, actor: str) -> bool:
        params = {"event_id": event_id, "enabled": enabled, "actor": actor}
        return bool(await self._call("call_me_switch", params))

    def live_stream(self, event_id: int) -> PlaylistWaiter | None:
        """The waiter for the event's live playlist, while its webcast runs."""
        found = self._streams.get(event_id)
        return found[1] if found is not None else None

    @property
    def connected(self) -> bool:
        """The media plane is reachable now."""
        return self._connected.is_set()

    async def health(self) -> dict[str, Any]:
        """The media plane's answer to a health check: ``{"draining": bool}``."""
        found: dict[str, Any] = await self._call("health")
        return found

    async def metrics(self) -> dict[str, Any]:
        """The media plane's counters for the metrics (``bridge.metrics.MediaMetrics``)."""
        found: dict[str, Any] = await self._call("metrics")
        return found

    def reload_counts(self) -> tuple[int, int, int]:
        """Blocking playlist reloads in this process: waiting now, waits begun, timed out."""
        waiters = [waiter for _, waiter in self._streams.values()]
        waits, timeouts = self._ended_waits
        return (
            sum(w.waiting for w in waiters),
            waits + sum(w.waited for w in waiters),
            timeouts + sum(w.timeouts for w in waiters),
        )

    @contextlib.asynccontextmanager
    async def watch_live(self, event_id: int) -> AsyncIterator[LiveWatch]:
        watch = self._watches.get(event_id)
        if watch is None:
            watch = self._watches[event_id] = LiveWatch()
        watch.watchers += 1
        try:
            if watch.view is None:
                # Unreachable now: the watch is renewed when the media plane is back.
                with contextlib.suppress(BridgeUnavailable):
                    await self._watch(event_id, watch)
            yield watch
        finally:
            watch.watchers -= 1
            if watch.watchers == 0 and self._watches.get(event_id) is watch:
                del self._watches[event_id]
                with contextlib.suppress(BridgeUnavailable, BridgeError, RuntimeError):
                    await self._call("watch", {"event_id": event_id, "watching": False})

    async def _watch(self, event_id: int, watch: LiveWatch) -> None:
        """Ask for the call's view to be pushed; the answer is the view now."""
        view = await self._call("watch", {"event_id": event_id, "watching": True})
        watch.update(LiveView.model_validate(view))

    # -- the connection ---------------------------------------------------------------------

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout)
        return self._connected.is_set()

    async def run(self) -> None:
        """Stay connected to the media plane until ``close()``."""
        pause = RECONNECT_MIN
        while not self._closing:
            try:
                reader, writer = await asyncio.open_unix_connection(str(self.path))
            except OSError:
                await asyncio.sleep(pause)
                pause = min(RECONNECT_MAX, pause * 2)
                continue
            pause = RECONNECT_MIN
            self._writer = writer
            self._connection = rpc.RpcConnection()
            self._connected.set()
            log.info("control: connected to the media plane")
            sync = asyncio.create_task(self._sync())
            try:
                while data := await reader.read(256 * 1024):
                    for message in self._connection.receive_data(data):
                        self._dispatch(message)
            except rpc.RpcProtocolError as error:
                log.error("control: the media plane broke the protocol: %s", error)
            except ConnectionError:
                pass
            finally:
                sync.cancel()
                self._connected.clear()
                self._writer = None
                writer.close()
                self._fail_pending()
                self._end_streams()
            if not self._closing:
                log.warning("control: lost the media plane; reconnecting")

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None:
            self._writer.close()

    async def _sync(self) -> None:
        """After a (re)connect: the playlists of the webcasts already running, the watches."""
        try:
            for item in await self._call("playlists"):
                self._playlist(item)
            for event_id, watch in list(self._watches.items()):
                await self._watch(event_id, watch)
        except (BridgeUnavailable, BridgeError) as error:
            log.warning("control: could not catch up with the media plane: %s", error)

    def _dispatch(self, message: rpc.Message) -> None:
        if isinstance(message, rpc.Notification):
            if message.method == "playlist":
                self._playlist(message.params)
            elif message.method == "live":
                watch = self._watches.get(int(message.params["event_id"]))
                if watch is not None:
                    watch.update(LiveView.model_validate(message.params["view"]))
            return
        if isinstance(message, rpc.Request):
            return  # the media plane asks the web nothing
        future = self._pending.pop(message.id, None) if message.id is not None else None
        if future is None or future.done():
            return
        if isinstance(message, rpc.Result):
            future.set_result(message.value)
        elif message.code == rpc.REFUSED:
            future.set_exception(BridgeError(message.message))
        else:
            future.set_exception(RuntimeError(f"the media plane failed: {message.message}"))

    def _playlist(self, params: dict[str, Any]) -> None:
        event_id = int(params["event_id"])
        text = params.get("text")
        found = self._streams.get(event_id)
        if found is None:
            if not params.get("live", True):
                return
            found = (source := RemotePlaylist(), PlaylistWaiter(source))
            self._streams[event_id] = found
        if isinstance(text, str):
            found[0].update(text)
        found[1].notify()
        if not params.get("live", True):
            self._retire(self._streams.pop(event_id)[1])

    def _retire(self, waiter: PlaylistWaiter) -> None:
        waits, timeouts = self._ended_waits
        self._ended_waits = (waits + waiter.waited, timeouts + waiter.timeouts)

    async def _call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise BridgeUnavailable("the media plane is not reachable (starting or restarting)")
        request_id, data = self._connection.request(method, params)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        writer.write(data)
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise BridgeUnavailable(f"the media plane did not answer {method} in time") from None
        finally:
            self._pending.pop(request_id, None)

    def _fail_pending(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BridgeUnavailable("the media plane went away"))
        self._pending.clear()

    def _end_streams(self) -> None:
        # Waiting listeners get an answer (their timeout) rather than a stale playlist forever.
        for _, waiter in self._streams.values():
            waiter.notify()
            self._retire(waiter)
        self._streams.clear()
