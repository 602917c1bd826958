"""The bus between bridge nodes: PostgreSQL ``LISTEN/NOTIFY`` on the store every node shares.

One connection per node listens on ``CHANNEL``; another sends. Every
message goes to every node (PostgreSQL has no addressing); each keeps the
ones its ``Envelope`` names it in (``messages.Envelope.for_node``). A lost
connection is opened again with a growing backoff (``BACKOFF``), and
messages sent meanwhile are dropped and counted: the senders repeat what
matters (``Subscribe`` every second, the heartbeat row), the rest (a key, a
directive) is lost as a packet on a lost link is.

Only PostgreSQL has a bus: a node on SQLite is alone, and never builds one.

What guards it: the seal (``cascade.seal``), not PostgreSQL. Anyone who
logs in to the store's database can ``LISTEN`` and ``NOTIFY`` on any
channel (PostgreSQL has no privilege that stops either; the web app holds
those credentials too), so every payload is sealed by its sender with the
key the nodes share (``--bus-key-file``), stamped with the sender's
incarnation, a counter and the time. What comes in is read as untrusted:
a payload that is not sealed, whose seal does not match, that was taken
before (a replay) or whose time is more than ``seal.WINDOW`` seconds off
is dropped, counted (``stats.unsigned``, ``forged``, ``replayed``,
``stale``) and logged; one that is sealed but does not decode (malformed,
oversized, another version, an unknown kind) likewise (``stats.rejected``).
Each kind is logged as a warning the first time and every
``REJECTED_LOG_EVERY``-th, so a flood cannot flood the log, and the node
goes on. The payloads are signed, not encrypted: whoever can LISTEN reads
them (caller ids among them), as they can read the store's tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import psycopg
from sqlalchemy.engine import make_url

from callbridge.cascade.messages import BusError, Envelope, Message, decode, encode
from callbridge.cascade.seal import (
    KEY_BYTES,
    Reason,
    Refused,
    ReplayGuard,
    Stamper,
    seal,
    unseal,
)

log = logging.getLogger(__name__)

CHANNEL = "callbridge_bus"
BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)
# Messages waiting to be sent; past this, the newest are dropped (and counted).
MAX_OUTBOX = 10_000
# A refused payload is logged as a warning the first time and every this many after
# (counted for each reason apart).
REJECTED_LOG_EVERY = 100
# Why a payload was refused: its seal's reasons, not a message at all, or a
# sender the node's logic does not take it from.
Refusal = Reason | Literal["rejected", "unregistered", "superseded"]


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
    rejected: int = 0  # received and sealed, but not a message (BusError)
    reconnects: int = 0
    # Received and dropped for their seal (``cascade.seal``): none, not ours,
    # taken before, or too far off this node's clock.
    unsigned: int = 0
    forged: int = 0
    replayed: int = 0
    stale: int = 0
    # Messages a node's logic refused for their sender (``Bus.refuse``): a
    # Subscribe from a node no operator registered.
    unregistered: int = 0
    # A directive or call state from an origin the edge does not follow: a
    # standby's, or a stale active's (a lower lease epoch: ``cascade.origins``).
    superseded: int = 0
    # Refusals by reason so far, for logging every REJECTED_LOG_EVERY-th.
    _logged: dict[str, int] = field(default_factory=dict, repr=False)

    def counters(self) -> dict[str, int]:
        """Every counter by name (the bridge's stats)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class Bus:
    """One node's end of the bus; ``on_message(sender, message)`` gets what is meant for it.

    ``on_listening()`` is called each time the node starts listening, the
    first time and after each lost connection: what was sent to the node
    meanwhile never reached it, and it may ask to be told again.

    ``key`` seals what the node sends and opens what it receives
    (``cascade.seal``); ``clock`` gives the POSIX time stamped and checked.
    """

    def __init__(
        self,
        url: str,
        node_id: str,
        is_origin: bool,
        on_message: Callable[[str, Message], None],
        on_listening: Callable[[], None] = lambda: None,
        *,
        key: bytes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError(f"the bus's key is {KEY_BYTES} bytes, not {len(key)}")
        self.url = libpq_url(url)
        self.node_id = node_id
        self.is_origin = is_origin
        self.on_message = on_message
        self.on_listening = on_listening
        self.stats = BusStats()
        self.listening = asyncio.Event()
        self._key = key
        self._clock = clock
        self._stamper = Stamper()
        self._guard = ReplayGuard()
        # Envelopes (messages.encode's text), sealed as they go: the stamp's
        # time is when it left, however long it waited for a connection.
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

    def refuse(self, reason: Refusal, why: object) -> None:
        """Count a refused payload under ``reason`` (a ``BusStats`` counter) and log it.

        A warning the first time and every ``REJECTED_LOG_EVERY``-th time for
        each reason, debug otherwise: a flood of forgeries cannot flood the log.
        """
        count = getattr(self.stats, reason) + 1
        setattr(self.stats, reason, count)
        logged = self.stats._logged.get(reason, 0) + 1
        self.stats._logged[reason] = logged
        level = logging.WARNING if logged % REJECTED_LOG_EVERY == 1 else logging.DEBUG
        log.log(level, "bus: refused a payload (%s, %d so far): %s", reason, count, why)

    def _deliver(self, payload: str) -> None:
        now = self._clock()
        try:
            stamp, text = unseal(self._key, payload)
            envelope = decode(text)
            # Every message a sender seals goes by every node: each node's
            # guard sees all its numbers, not only those meant for it.
            self._guard.check(envelope.sender, stamp, now)
        except Refused as error:
            self.refuse(error.reason, error)
            return
        except BusError as error:
            self.refuse("rejected", error)
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
                        text = await self._outbox.get()
                        payload = seal(self._key, self._stamper.next(self._clock()), text)
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
