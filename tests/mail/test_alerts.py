"""The operator's alerts: what the watch says once, and the feed's messages in the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from callbridge.mail.alert_feed import ALERT_INTERVAL, AlertFeed
from callbridge.mail.alerts import AlertWatch, Guessing, NodeSeen
from callbridge.mail.compose import Letterhead
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.store.db import Database
from callbridge.store.nodes import NodeStore
from callbridge.store.outbox import MailKind, Outbox
from callbridge.web.app import create_app
from tests.mail.conftest import PUBLIC_URL
from tests.support.smtp import SmtpServer
from tests.support.wait import wait_until
from tests.web.conftest import make_settings

T0 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
OPERATOR = "noc@northwind.example"


def test_the_watch_says_each_thing_once() -> None:
    watch = AlertWatch()
    refused = Guessing(41, 3, "guesser_refused", "user:+12125550100", 5, T0)
    (alert,) = watch.guessing([refused])
    assert alert.key == "alert:log:41"
    assert "user:+12125550100" in alert.subject and "refused" in alert.subject
    assert "Wrong codes so far: 5." in alert.lines
    # Nodes: the first look only learns; a node going quiet, then back, says so once each.
    up = NodeSeen("edge-a", "edge", T0, True)
    assert watch.nodes([up, NodeSeen("origin", "origin", T0, True)]) == []
    assert watch.nodes([up]) == []  # unchanged
    down = NodeSeen("edge-a", "edge", T0, False)
    (gone,) = watch.nodes([down])
    assert gone.subject == "Bridge node edge-a is down"
    assert gone.key == f"alert:node:edge-a:down:{T0.isoformat(timespec='seconds')}"
    assert watch.nodes([down]) == []
    (back,) = watch.nodes([NodeSeen("edge-a", "edge", T0 + timedelta(minutes=2), True)])
    assert back.subject == "Bridge node edge-a is back"
    assert back.key == f"alert:node:edge-a:back:{T0.isoformat(timespec='seconds')}"
    # Another watcher that saw the same heartbeats makes the same keys (enqueued once).
    other = AlertWatch()
    other.nodes([up])
    assert [a.key for a in other.nodes([down])] == [gone.key]


def test_the_feed_enqueues_guessing_and_a_lost_node_once(
    sqlite_database: Database, letterhead: Letterhead
) -> None:
    log, nodes, outbox = (
        CallLog(sqlite_database),
        NodeStore(sqlite_database),
        Outbox(sqlite_database),
    )
    now = [T0]
    # History is not news: an entry before the feed's first look is not sent.
    log.append([LogEntry(LogKind.GUESSER_SLOWED, T0, None, caller_id="user:+1999")])
    nodes.beat("edge-a", "edge", "127.0.0.1:5080", 3, T0, T0)
    feed = AlertFeed(log, nodes, outbox, letterhead, OPERATOR, clock=lambda: now[0])
    assert feed.look() == 0
    log.append(
        [
            LogEntry(
                LogKind.GUESSER_REFUSED,
                T0,
                None,
                caller_id="user:+12125550100",
                detail={"failures": 6},
            )
        ]
    )
    now[0] = T0 + timedelta(seconds=30)  # edge-a has not beaten since T0: down
    assert feed.look() == 2
    assert feed.look() == 0  # nothing new
    # A second web process (a new feed) enqueues nothing twice.
    twin = AlertFeed(log, nodes, outbox, letterhead, OPERATOR, clock=lambda: now[0])
    twin.look()
    entries = [e for e in outbox.entries() if e.kind is MailKind.ALERT]
    assert len(entries) == 2 and {e.recipient for e in entries} == {OPERATOR}


def test_alert_email_sends_through_the_relay(
    tmp_path: Path, sqlite_database: Database, smtp_server: SmtpServer
) -> None:
    """serve --alert-email: the feed runs with the app's sender, and its alert arrives."""
    settings = make_settings(
        tmp_path,
        sqlite_database,
        public_url=PUBLIC_URL,
        smtp_url=smtp_server.url,
        smtp_from="Northwind IR <ir@northwind.example>",
        smtp_ca_file=smtp_server.ca_file(),
        alert_email=OPERATOR,
    )
    app: FastAPI = create_app(settings, sqlite_database)
    with TestClient(app):
        feed: AlertFeed = app.state.alert_feed
        assert feed is not None and feed.to == OPERATOR
        # Once the app's feed has had its first look (history is not news), a guesser is
        # refused; its next look, a few seconds on, enqueues the alert and the sender sends.
        wait_until(lambda: feed.looks >= 1, 10, "the feed's first look")
        log = CallLog(sqlite_database)
        log.append([LogEntry(LogKind.GUESSER_REFUSED, T0, None, caller_id="user:+12125550100")])
        (got,) = wait_until(lambda: smtp_server.received, ALERT_INTERVAL + 10, "the alert")
    message = got.parsed()
    assert got.recipients == [OPERATOR]
    assert message["Subject"].startswith("[callbridge] Passcode guessing")
    body = message.get_body(("plain",))
    assert body is not None and f"{PUBLIC_URL}/console" in body.get_content()
