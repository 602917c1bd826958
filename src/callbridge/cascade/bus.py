"""The bus between bridge nodes: PostgreSQL ``LISTEN/NOTIFY`` on the store every node shares.

One connection per node listens on ``CHANNEL``; another sends. Every
message goes to every node (PostgreSQL has no addressing); each keeps the
ones its ``Envelope`` names it in (``messages.Envelope.for_node``). A lost
connection is opened again with a growing backoff (``BACKOFF``), and
messages sent meanwhile are dropped and counted: the senders repeat what
matters (``Subscribe`` every second, the heartbeat row), the rest (a key, a
directive) is lost as a packet on a lost link is.

Only PostgreSQL has a bus: a node on SQLite is alone, and never builds one.

What guards it: PostgreSQL's own authentication. Only a client that logs
in to the store's database can ``LISTEN`` or ``NOTIFY`` there (NOTIFY
needs no privilege beyond that), so the nodes trust every payload on the
channel to come from a holder of the store's credentials: another node, or
whoever else holds them (the web app does). Keep the database on a network
the nodes alone reach, with a password or certificate per deployment. What
comes in is still read as untrusted: a payload that does not decode
(malformed, oversized, another version, an unknown kind) is dropped,
counted in ``stats.rejected`` and logged (a warning for the first and
every ``REJECTED_LOG_EVERY``-th, so a flood cannot flood the log), and the
node goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import make_url

from callbridge.cascade.messages import BusError, Envelope, Message, decode, encode

log = logging.getLogger(__name__)

CHANNEL = "callbridge_bus"
BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)
# Messages waiting to be sent; past this, the newest are dropped (and counted).
MAX_OUTBOX = 10_000
# A refused payload is logged as a warning the first time and every this many after.
REJECTED_LOG_EVERY = 100


def libpq_url(url: str) -> str:
    """The store's SQLAlchemy URL as psycopg connects with it; ValueError if not PostgreSQL."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError(f"the bus needs PostgreSQL, not {parsed.drivername}")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class BusStats:
    sent: int = 0
    received: int = 0
    dropped: int = 0  # could not be sent (no connection, outbox full)
    rejected: int = 0  # received, but not a message (BusError)
    reconnects: int = 0


class Bus:
    """One node's end of the bus; ``on_message(sender, message)`` gets what is meant for it.

    ``on_listening()`` is called each time the node starts listening, the
    first time and after each lost connection: what was sent to the node
    meanwhile never reached it, and it may ask to be told again.
    """

    def __init__(
        self,
        url: str,
        node_id: str,
        is_origin: bool,
        on_message: Callable[[str, Message], None],
        on_listening: Callable[[], None] = lambda: None,
    ) -> None:
        self.url = libpq_url(url)
        self.node_id = node_id
        self.is_origin = is_origin
        self.on_message = on_message
        self.on_listening = on_listening
        self.stats = BusStats()
        self.listening = asyncio.Event()
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=MAX_OUTBOX)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start listening and sending (in the running loop); returns at once."""
        self._tasks = [
            asyncio.create_task(self._listen(), name="bus-listen"),
            asyncio.create_task(self._send(), name="bus-send"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def send(self, to: str, message: Message) -> None:
        """Queue ``message`` for ``to`` (a node id, ``ORIGIN`` or ``EVERYONE``); never blocks."""
        try:
            payload = encode(Envelope(self.node_id, to, message))
        except BusError:
            log.exception("bus: not sent")
            self.stats.dropped += 1
            return
        try:
            self._outbox.put_nowait(payload)
        except asyncio.QueueFull:
            self.stats.dropped += 1

    def _deliver(self, payload: str) -> None:
        try:
            envelope = decode(payload)
        except BusError as error:
            self.stats.rejected += 1
            level = (
                logging.WARNING if self.stats.rejected % REJECTED_LOG_EVERY == 1 else logging.DEBUG
            )
            log.log(level, "bus: refused a payload (%d so far): %s", self.stats.rejected, error)
            return
        if not envelope.for_node(self.node_id, self.is_origin):
            return
        self.stats.received += 1
        try:
            self.on_message(envelope.sender, envelope.message)
        except Exception:
            log.exception("bus: %s from %s failed", envelope.message.kind, envelope.sender)

    async def _listen(self) -> None:
        attempt = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    attempt = 0
                    try:
                        self.on_listening()
                    except Exception:
                        log.exception("bus: on_listening failed")
                    async for notify in connection.notifies():
                        self._deliver(notify.payload)
            except (psycopg.Error, OSError) as error:
                self.listening.clear()
                self.stats.reconnects += 1
                delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
                attempt += 1
                log.warning("bus: listening failed (%s); again in %.1f s", error, delay)
                await asyncio.sleep(delay)

    async def _send(self) -> None:
        attempt = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True
                ) as connection:
                    attempt = 0
                    while True:
                        payload = await self._outbox.get()
                        try:
                            await connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                        except (psycopg.Error, OSError):
                            self.stats.dropped += 1
                            raise
                        self.stats.sent += 1
            except (psycopg.Error, OSError) as error:
                self.stats.reconnects += 1
                delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
                attempt += 1
                log.warning("bus: sending failed (%s); again in %.1f s", error, delay)
                await asyncio.sleep(delay)
