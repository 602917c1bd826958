"""The media plane's end of the control channel: a Unix socket the web processes connect to.

The media plane (SIP, RTP, the mixer clocks, the recorder, the webcast
packager) runs in a process of its own so that nothing on the web side —
a burst of logins, a thousand webcast requests a second, a slow query —
can take the event loop from the media clock. The web app reaches the
bridge only through this socket: the console's questions and the
moderator's actions as JSON-RPC requests, and the live webcast's playlist
pushed to it as notifications, which its blocking playlist requests wait on.

What this costs the media loop is kept small and bounded: a console's view
of a call is built at most once per ``LIVE_VIEW_TTL`` whatever the number of
consoles, and each participant's row is encoded once and again only when it
changes (a thousand rows built afresh took 30-40 ms, two media ticks); a web
process that stops reading is cut off rather than buffered for; and only
the owner may open the socket (it is created 0600 inside a 0700 folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from callbridge.bridge.callme_desk import CallMeDesk
from callbridge.bridge.commands import Registrant
from callbridge.bridge.control import (
    Action,
    BridgeError,
    BridgeStats,
    LiveView,
    ParticipantRow,
    ParticipantView,
)
from callbridge.bridge.metrics import MediaMetrics
from callbridge.control import rpc

log = logging.getLogger(__name__)

# Two consoles on one call share one view: it is built at most this often.
LIVE_VIEW_TTL = 0.1
# A call's view is pushed at once when it changes, then at most this often while it
# keeps changing (talk indicators flip many times a second): the last change always
# goes out, at most this late.
PUSH_INTERVAL = 0.1
# A web process this far behind in reading is dropped (it reconnects and catches up).
MAX_WRITE_BUFFER = 8 * 1024 * 1024
MAX_CONNECTIONS = 64
# Encoded participant rows kept (a row is dropped when its participant changes).
MAX_ROWS = 20_000


class ControlledBridge(Protocol):
    """What the control server asks of the bridge (``bridge.service.Bridge`` is one)."""

    def participants(self, event_id: int, include_left: bool = False) -> list[ParticipantView]: ...

    def stats(self) -> BridgeStats: ...

    async def metrics(self) -> MediaMetrics: ...

    # Set once the media plane is stopping its calls: health checks answer 503.
    draining: bool

    def live_parts(self, event_id: int) -> tuple[LiveView, Sequence[ParticipantRow]]: ...

    async def act(self, event_id: int, action: Action, actor: str) -> LiveView: ...

    async def question_written(
        self, event_id: int, question_id: str, asker: str, text: str
    ) -> None: ...

    async def start_call(self, event_id: int) -> None: ...

    async def end_call(self, event_id: int) -> None: ...

    async def dial(self, event_id: int, number: str, as_role: str, actor: str) -> str: ...

    @property
    def callme(self) -> CallMeDesk | None: ...

    def live_playlists(self) -> dict[int, str | None]: ...


class _Peer:
    """One connected web process."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.connection = rpc.RpcConnection()
        # The calls whose console view this web process wants pushed.
        self.watching: set[int] = set()

    def send(self, data: bytes) -> bool:
        """Queue ``data``; False (and the connection closed) when the peer has stopped reading."""
        if self.writer.is_closing():
            return False
        transport = self.writer.transport
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("control: a web process stopped reading; disconnecting it")
            transport.abort()
            return False
        self.writer.write(data)
        return True


class ControlServer:
    """Serves ``BridgeControl`` on a Unix socket and pushes live playlists to every web process.

    ``start()`` binds the socket (replacing a stale one); ``playlist_updated``
    is the bridge's ``on_playlist`` hook; ``close()`` ends every connection.
    """

    def __init__(self, bridge: ControlledBridge, path: Path) -> None:
        self.bridge = bridge
        self.path = path
        self._server: asyncio.Server | None = None
        self._peers: set[_Peer] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._live_cache: dict[int, tuple[float, bytes]] = {}
        self._rows: dict[ParticipantRow, bytes] = {}
        # Per call: when its view was last pushed, and the push waiting for PUSH_INTERVAL.
        self._pushed_at: dict[int, float] = {}
        self._push_later: dict[int, asyncio.Handle] = {}

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old_umask)
        log.info("control channel on %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for peer in list(self._peers):
            peer.writer.close()
        for task in list(self._tasks):
            task.cancel()
        for handle in self._push_later.values():
            handle.cancel()
        self._push_later.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def playlist_updated(self, event_id: int, text: str | None, live: bool) -> None:
        """Push the event's playlist to every web process (``live`` False: the webcast ended)."""
        data = rpc.RpcConnection.notify(
            "playlist", {"event_id": event_id, "text": text, "live": live}
        )
        for peer in list(self._peers):
            if not peer.send(data):
                self._peers.discard(peer)

    def view_changed(self, event_id: int) -> None:
        """The bridge's ``on_changed`` hook: push the call's new view to whoever watches it.

        The first change is pushed as soon as the bridge has carried out the
        commands it came with (``call_soon``: the view is built from the whole
        decision, not half of it); changes that follow within PUSH_INTERVAL go
        out together at its end, so a burst costs one view.
        """
        self._live_cache.pop(event_id, None)
        if event_id in self._push_later or not any(
            event_id in peer.watching for peer in self._peers
        ):
            return
        loop = asyncio.get_running_loop()
        wait = self._pushed_at.get(event_id, -PUSH_INTERVAL) + PUSH_INTERVAL - loop.time()
        self._push_later[event_id] = (
            loop.call_soon(self._push, event_id)
            if wait <= 0
            else loop.call_later(wait, self._push, event_id)
        )

    def _push(self, event_id: int) -> None:
        self._push_later.pop(event_id, None)
        self._pushed_at[event_id] = asyncio.get_running_loop().time()
        watchers = [peer for peer in self._peers if event_id in peer.watching]
        if not watchers:
            return
        try:
            view = self._live(event_id)
        except Exception:  # the console keeps its last view; the bridge goes on
            log.exception("control: the view of event %d could not be built", event_id)
            return
        data = b'{"jsonrpc":"2.0","method":"live","params":{"event_id":%d,"view":%s}}\n' % (
            event_id,
            view,
        )
        for peer in watchers:
            if not peer.send(data):
                self._peers.discard(peer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._peers) >= MAX_CONNECTIONS:
            writer.close()
            return
        peer = _Peer(writer)
        self._peers.add(peer)
        try:
            while data := await reader.read(256 * 1024):
                for message in peer.connection.receive_data(data):
                    if isinstance(message, rpc.Request):
                        task = asyncio.create_task(self._answer(peer, message))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
        except rpc.RpcProtocolError as error:
            log.warning("control: closing a connection that broke the protocol: %s", error)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._peers.discard(peer)
            writer.close()

    async def _answer(self, peer: _Peer, request: rpc.Request) -> None:
        try:
            if request.method == "live":
                encoded = self._live(int(request.params["event_id"]))
                peer.send(rpc.RpcConnection.result_json(request.id, encoded))
                return
            if request.method == "watch":
                # The answer is the view now; every change after it is pushed.
                event_id = int(request.params["event_id"])
                if request.params.get("watching", True):
                    peer.watching.add(event_id)
                    encoded = self._live(event_id)
                    peer.send(rpc.RpcConnection.result_json(request.id, encoded))
                else:
                    peer.watching.discard(event_id)
                    peer.send(rpc.RpcConnection.result(request.id, None))
                return
            value = await self._call(request.method, request.params)
        except BridgeError as error:
            peer.send(rpc.RpcConnection.error(request.id, rpc.REFUSED, str(error)))
        except (KeyError, TypeError, ValueError, ValidationError) as error:
            peer.send(rpc.RpcConnection.error(request.id, rpc.INVALID_PARAMS, repr(error)))
        except LookupError as error:
            peer.send(rpc.RpcConnection.error(request.id, rpc.METHOD_NOT_FOUND, str(error)))
        except Exception as error:  # the web process gets a 500; the media plane goes on
            log.exception("control: %s failed", request.method)
            peer.send(rpc.RpcConnection.error(request.id, rpc.INTERNAL_ERROR, repr(error)))
        else:
            peer.send(rpc.RpcConnection.result(request.id, value))

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        bridge = self.bridge
        if method == "participants":
            people = bridge.participants(
                int(params["event_id"]), include_left=bool(params.get("include_left", False))
            )
            return [p.model_dump(mode="json") for p in people]
        if method == "stats":
            return bridge.stats().model_dump(mode="json")
        if method == "metrics":
            # Read on this loop between ticks, the guard a slice at a time (``bridge.metrics``).
            return (await bridge.metrics()).model_dump(mode="json")
        if method == "act":
            action = Action.model_validate(params["action"])
            view = await bridge.act(int(params["event_id"]), action, str(params["actor"]))
            self._live_cache.pop(view.event_id, None)
            return view.model_dump(mode="json")
        if method == "question_written":
            await bridge.question_written(
                event_id := int(params["event_id"]),
                str(params["question_id"]),
                str(params["asker"]),
                str(params["text"]),
            )
            self._live_cache.pop(event_id, None)
            return None
        if method == "start_call":
            await bridge.start_call(event_id := int(params["event_id"]))
            self._live_cache.pop(event_id, None)
            return None
        if method == "end_call":
            await bridge.end_call(event_id := int(params["event_id"]))
            self._live_cache.pop(event_id, None)
            return None
        if method == "dial":
            return await bridge.dial(
                int(params["event_id"]),
                str(params["number"]),
                str(params["as_role"]),
                str(params["actor"]),
            )
        if method.startswith("call_me"):
            return await self._call_me(method, params)
        if method == "playlists":
            return [
                {"event_id": event_id, "text": text, "live": True}
                for event_id, text in bridge.live_playlists().items()
            ]
        if method == "ping":
            return "pong"
        if method == "health":
            return {"draining": bridge.draining}
        raise LookupError(f"no method {method!r}")

    async def _call_me(self, method: str, params: dict[str, Any]) -> Any:
        """Call me (``bridge.callme_desk``): a request, a dial's progress, the operator's switch."""
        desk = self.bridge.callme
        if desk is None:
            raise BridgeError("call-me needs an outbound trunk (serve --trunks FILE)")
        if method == "call_me":
            who = params["registrant"]
            registrant = Registrant(
                int(who["listener_id"]),
                str(who["name"]),
                None if who.get("firm") is None else str(who["firm"]),
                None if who.get("email") is None else str(who["email"]),
            )
            return await desk.request(
                int(params["event_id"]),
                registrant,
                str(params["number"]),
                str(params.get("source", "")),
            )
        if method == "call_me_state":
            return desk.state(str(params["dial_id"]))
        if method == "call_me_switch":
            event_id = int(params["event_id"])
            enabled = params.get("enabled")
            if enabled is None:
                return desk.enabled(event_id)
            return desk.switch(event_id, bool(enabled), str(params["actor"]))
        raise LookupError(f"no method {method!r}")

    def _live(self, event_id: int) -> bytes:
        """The console's view as JSON: at most once per LIVE_VIEW_TTL, rows from their cache."""
        loop = asyncio.get_running_loop()
        cached = self._live_cache.get(event_id)
        if cached is not None and loop.time() - cached[0] < LIVE_VIEW_TTL:
            return cached[1]
        view, active = self.bridge.live_parts(event_id)
        if len(self._rows) > MAX_ROWS:
            self._rows.clear()
        rows = b",".join(self._row(p) for p in active)
        head = view.model_dump_json(exclude={"participants"}).encode()
        encoded = head[:-1] + b',"participants":[' + rows + b"]}"
        if len(self._live_cache) > 1000:
            self._live_cache.clear()
        self._live_cache[event_id] = (loop.time(), encoded)
        return encoded

    def _row(self, participant: ParticipantRow) -> bytes:
        # The row itself is the key (``bridge.views.Row`` is frozen): no field can be left out.
        row = self._rows.get(participant)
        if row is None:
            row = ParticipantView.of(participant).model_dump_json().encode()
            self._rows[participant] = row
        return row
