"""The operator's own alerts by email: what is worth waking someone for, sans IO.

``serve --alert-email ADDR`` (with ``--smtp``) sends the operator a message
when a caller is slowed or refused for guessing passcodes (the guard's
entries in the call log) and when a bridge node stops beating or comes back
(``store.nodes``). ``AlertWatch`` decides from what it is shown; the feed
(``alert_feed``) reads the database every few seconds and enqueues what it
says into the outbox, which sends it like any message, retried and never
twice: each alert's key is made of what it is about (a call log row, a node
and the heartbeat it went quiet after), so a web process started again, or
two of them, enqueue it once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Guessing:
    """A guard entry of the call log: a caller (or a number's budget) slowed or refused."""

    row_id: int
    event_id: int | None
    kind: str  # "guesser_slowed" or "guesser_refused"
    identity: str | None
    failures: int | None
    at: datetime


@dataclass(frozen=True)
class NodeSeen:
    """A node as its heartbeat shows it now."""

    node_id: str
    role: str
    last_seen: datetime
    up: bool


@dataclass(frozen=True)
class Alert:
    """One message to send: ``key`` makes it once, whoever enqueues it."""

    key: str
    subject: str
    lines: tuple[str, ...]


class AlertWatch:
    """Turns what the database shows into alerts, each once.

    ``guessing`` takes the guard's new call log entries (the feed keeps the
    cursor); ``nodes`` the heartbeats. The first look at the nodes only
    learns their state: a node already down when the watch starts was
    reported by whoever watched then (the key would find it enqueued).
    """

    def __init__(self) -> None:
        self._seen: dict[str, NodeSeen] | None = None

    def guessing(self, entries: Iterable[Guessing]) -> list[Alert]:
        alerts = []
        for entry in entries:
            refused = entry.kind == "guesser_refused"
            what = "refused for a while" if refused else "slowed down"
            who = entry.identity or "a caller"
            where = f"event {entry.event_id}" if entry.event_id is not None else "the bridge"
            failures = entry.failures if entry.failures is not None else "?"
            alerts.append(
                Alert(
                    key=f"alert:log:{entry.row_id}",
                    subject=f"Passcode guessing on {where}: {who} {what}",
                    lines=(
                        f"{who} keyed wrong codes on {where} and is {what}.",
                        f"Wrong codes so far: {failures}.",
                        f"At {entry.at.isoformat(timespec='seconds')}.",
                        "The console's passcode-guessing card shows who is slowed or refused now.",
                    ),
                )
            )
        return alerts

    def nodes(self, seen: Iterable[NodeSeen]) -> list[Alert]:
        """Alerts for nodes that went down or came back since the last look.

        Keys name the heartbeat the node went quiet after, which every
        watcher saw alike: its "down" and the "back" that follows it.
        """
        now = {node.node_id: node for node in seen}
        before, self._seen = self._seen, now
        if before is None:
            return []
        alerts = []
        for node_id, node in sorted(now.items()):
            was = before.get(node_id)
            if was is None or was.up == node.up:
                continue
            if node.up:
                quiet = was.last_seen.isoformat(timespec="seconds")
                alerts.append(
                    Alert(
                        key=f"alert:node:{node_id}:back:{quiet}",
                        subject=f"Bridge node {node_id} is back",
                        lines=(
                            f"The {node.role} node {node_id} beats again; it was quiet after "
                            f"{quiet}.",
                        ),
                    )
                )
            else:
                quiet = node.last_seen.isoformat(timespec="seconds")
                alerts.append(
                    Alert(
                        key=f"alert:node:{node_id}:down:{quiet}",
                        subject=f"Bridge node {node_id} is down",
                        lines=(
                            f"The {node.role} node {node_id} has not been heard since {quiet}.",
                            "Its callers are lost with it; the console lists them, and they can "
                            "redial.",
                        ),
                    )
                )
        return alerts
