"""The sender: takes due rows from the outbox, submits them, writes down what the server said.

It runs as a task in the web app's event loop (never the media plane's):
the database calls go to threads, the SMTP exchange is aiosmtplib's, so a
slow relay or an outage never holds a page, let alone a call.

What a crash or an outage can do, and why
-----------------------------------------
- Nothing is lost: a message is a row before anyone tries to send it, and
  a row leaves "queued"/"sending" only when a server's answer is written
  (sent, or failed on a 5xx or after ``core.MAX_ATTEMPTS`` tries).
- An outage (connection refused, 4xx, a timeout) puts the row back with a
  later ``due_at`` (``core.backoff``): 30 s doubling to an hour.
- Nothing is sent twice by two senders: ``Outbox.claim`` gives each row to
  one sender under a lease (``core.LEASE``), longer than any one exchange.
- **At least once, not exactly once**, in one window only: from the moment
  the server takes the message (the data's final dot; it may store it
  before its 250 reaches us) to the UPDATE that marks the row sent. A sender
  killed there (SIGKILL, power loss, a connection dropped before the 250
  arrives, the database gone at that moment) leaves the row "sending"; when
  its lease ends another claim sends it again, and the recipient may get it
  twice. SMTP gives a client no way to ask whether a message was taken, so
  this window cannot be closed from here; it is kept to one row per
  connection (each row is marked sent the moment its 250 comes, before the
  next is sent), and the resend is the same message with the same
  ``Message-ID``, which mail stores and clients use to fold duplicates. A
  kill at any other moment (before the final dot, or after the UPDATE)
  sends nothing twice (``tests/mail/test_delivery.py`` kills it in both).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from callbridge.mail.core import LEASE, Attempt, Outcome, settle
from callbridge.mail.planner import Planner
from callbridge.store.outbox import Claimed, Outbox

log = logging.getLogger(__name__)

BATCH = 20
CONNECTIONS = 2  # SMTP connections at once in serve's sender
POLL = 1.0  # seconds between looks at the outbox when nothing woke the sender
PLAN_EVERY = 15.0  # seconds between looks for reminders and replay notices


class Transport(Protocol):
    async def send(self, sender: str, recipient: str, message: bytes) -> Attempt: ...
    async def close(self) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class MailWorker:
    """The outbox's sender: one loop per SMTP connection (``transport``, or several); ``run``
    until ``stop``. Each connection sends one message at a time and marks it before the next.

    ``wake`` (from this event loop's thread) sends what was just enqueued
    without waiting for the next poll.
    """

    def __init__(
        self,
        outbox: Outbox,
        transport: Transport | Sequence[Transport],
        planner: Planner | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        batch: int = BATCH,
        poll: float = POLL,
        plan_every: float = PLAN_EVERY,
        lease: timedelta = LEASE,
    ) -> None:
        self.outbox = outbox
        self.transports = list(transport) if isinstance(transport, Sequence) else [transport]
        self.transport = self.transports[0]
        self.planner = planner
        self.clock = clock
        self.batch = batch
        self.poll = poll
        self.plan_every = plan_every
        # How long a claim holds: longer than one exchange can last (tests shorten it).
        self.lease = lease
        self.sent = 0
        self.exited = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = False
        self._last_plan: float | None = None

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Send until ``stop``; database and relay errors are logged and retried, never raised."""
        try:
            loops = [self._loop(t, first=i == 0) for i, t in enumerate(self.transports)]
            await asyncio.gather(*loops)
        finally:
            self.exited.set()

    async def _loop(self, transport: Transport, *, first: bool) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    if first:  # one loop plans
                        await self._plan_if_due(loop.time())
                    busy = await self.send_due(transport)
                except Exception:
                    log.exception("the mail sender failed; trying again shortly")
                    busy = False
                if busy:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll)
        finally:
            await transport.close()

    async def _plan_if_due(self, at: float) -> None:
        if self.planner is None:
            return
        if self._last_plan is not None and at - self._last_plan < self.plan_every:
            return
        self._last_plan = at
        written = await asyncio.to_thread(self.planner.plan, self.clock())
        if written:
            log.info("%d reminder or replay message(s) enqueued", written)

    async def send_due(self, transport: Transport | None = None) -> int:
        """Claim one batch of due rows and try each; returns how many were claimed."""
        transport = transport or self.transport
        now = self.clock()
        rows = await asyncio.to_thread(self.outbox.claim, now, now + self.lease, self.batch)
        for index, row in enumerate(rows):
            if self._stopping:
                # Not tried: back to the queue as it was, for the next start.
                await self._put_back(rows[index:])
                break
            attempt = await transport.send(row.sender, row.recipient, row.message)
            await self._settle(row, attempt)
            if attempt.outcome is Outcome.UNREACHABLE:
                # The rest of the batch waits out the same backoff, untried.
                untried = Attempt(Outcome.UNREACHABLE, "not tried: " + attempt.answer)
                for rest in rows[index + 1 :]:
                    await self._settle(rest, untried)
                break
        return len(rows)

    async def _settle(self, row: Claimed, attempt: Attempt) -> None:
        now = self.clock()
        decision = settle(row.attempts, attempt, now)
        ours = await asyncio.to_thread(
            self.outbox.settle,
            row.id,
            row.claim,
            decision.state,
            decision.due_at,
            decision.answer,
            now,
        )
        if attempt.outcome is Outcome.ACCEPTED:
            self.sent += 1
        elif ours:
            log.warning(
                "mail %s to %s: %s (%s)",
                row.message_id,
                row.recipient,
                attempt.answer,
                decision.state,
            )

    async def _put_back(self, rows: list[Claimed]) -> None:
        now = self.clock()
        for row in rows:
            await asyncio.to_thread(self.outbox.release, row.id, row.claim, now)
