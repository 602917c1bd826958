"""Feeds the operator's alerts (``alerts.AlertWatch``) from the database into the outbox.

Every ``ALERT_INTERVAL`` seconds it reads the guard's new call log entries
(from a cursor that starts at the log's end: history is not news) and the
nodes' heartbeats, and enqueues what the watch says for ``--alert-email``.
The outbox's unique keys make an alert once however many web processes
watch. A database that cannot be read is tried again at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool

from callbridge.mail.alerts import Alert, AlertWatch, Guessing, NodeSeen
from callbridge.mail.compose import Letterhead, operator_alert
from callbridge.store.calllog import CallLog, LogKind
from callbridge.store.nodes import NodeStore
from callbridge.store.outbox import Outbox

log = logging.getLogger(__name__)

ALERT_INTERVAL = 2.0  # two small reads of the database: cheap, and an alert is soon
GUARD_KINDS = (LogKind.GUESSER_SLOWED, LogKind.GUESSER_REFUSED)


class AlertFeed:
    """Reads, decides (the watch), enqueues; ``run`` until ``stop``."""

    def __init__(
        self,
        call_log: CallLog,
        nodes: NodeStore,
        outbox: Outbox,
        letterhead: Letterhead,
        to: str,
        *,
        on_enqueued: Callable[[], None] = lambda: None,
        interval: float = ALERT_INTERVAL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.call_log, self.node_store, self.outbox = call_log, nodes, outbox
        self.letterhead, self.to = letterhead, to
        self.on_enqueued = on_enqueued
        self.interval = interval
        self.clock = clock
        self.watch = AlertWatch()
        self._cursor: int | None = None
        self._stopping = asyncio.Event()
        self.looks = 0  # looks done, for tests and the curious

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await run_in_threadpool(self.look)
            except Exception:
                log.exception("operator alerts: could not look; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    def look(self) -> int:
        """One look at the log and the nodes; returns how many alerts were enqueued."""
        now = self.clock()
        if self._cursor is None:
            self._cursor = self.call_log.last_row()
        found = self.call_log.since(self._cursor, GUARD_KINDS)
        entries = [
            Guessing(
                row_id,
                entry.event_id,
                entry.kind.value,
                entry.caller_id,
                entry.detail.get("failures"),
                entry.at,
            )
            for row_id, entry in found
        ]
        alerts: list[Alert] = self.watch.guessing(entries)
        health = self.node_store.health(now)
        alerts += self.watch.nodes(NodeSeen(n.node_id, n.role, n.last_seen, n.up) for n in health)
        if alerts:
            mails = [operator_alert(alert, self.to, self.letterhead, now) for alert in alerts]
            self.outbox.enqueue(mails, now)
            self.on_enqueued()
        if found:
            self._cursor = found[-1][0]
        self.looks += 1
        return len(alerts)
