"""The sender against a real SMTP server (aiosmtpd: STARTTLS, AUTH): delivered, retried, never lost.

The sender's clock is the test's, so backoffs pass without waiting; the
server and its TLS are real. The crash tests run the sender as a process
of its own (``python -m callbridge.mail``) and SIGKILL it mid-send.
"""

from __future__ import annotations

import asyncio
import email
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

from callbridge.events.schema import EventRecord
from callbridge.mail import compose
from callbridge.mail.compose import Letterhead
from callbridge.mail.smtp import SmtpConfig, SmtpSender
from callbridge.mail.worker import MailWorker
from callbridge.store.audience import Audience
from callbridge.store.db import Database
from callbridge.store.outbox import Outbox, OutboxState, Recipient
from tests.support.smtp import SmtpServer
from tests.support.wait import wait_until

T0 = datetime(2030, 5, 6, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _recipients(database: Database, event: EventRecord, count: int) -> list[Recipient]:
    """``count`` registrants of the event, a0@acme.example and on."""
    people = Audience(database)
    found = []
    for i in range(count):
        _, listener = people.register(
            event.id, name=f"Analyst {i}", firm="Acme", email=f"a{i}@acme.example", now=T0
        )
        found.append(
            Recipient(listener.id, event.id, listener.name, "Acme", f"a{i}@acme.example", T0)
        )
    return found


def _enqueue(
    outbox: Outbox,
    event: EventRecord,
    letterhead: Letterhead,
    recipients: list[Recipient],
    now: datetime = T0,
) -> list[str]:
    mails = [compose.reminder(event, r, 15, letterhead, now) for r in recipients]
    assert outbox.enqueue(mails, now) == len(mails)
    return [m.message_id for m in mails]


def _worker(outbox: Outbox, server: SmtpServer, clock: Clock, url: str | None = None) -> MailWorker:
    config = SmtpConfig.parse(url or server.url, server.ca_file())
    return MailWorker(outbox, SmtpSender(config), clock=clock)


async def _send(worker: MailWorker) -> int:
    try:
        return await worker.send_due()
    finally:
        await worker.transport.close()


def test_delivered_over_starttls_with_auth_and_marked_sent(
    sqlite_database: Database, event: EventRecord, letterhead: Letterhead, smtp_server: SmtpServer
) -> None:
    outbox = Outbox(sqlite_database)
    recipient = _recipients(sqlite_database, event, 1)[0]
    mail = compose.confirmation(event, recipient, letterhead, T0)
    assert outbox.enqueue([mail], T0) == 1
    assert asyncio.run(_send(_worker(outbox, smtp_server, Clock(T0)))) == 1
    (got,) = smtp_server.received
    assert got.tls and got.authenticated
    assert got.sender == "ir@northwind.example" and got.recipients == ["a0@acme.example"]
    message = got.parsed()
    assert message["Message-ID"] == mail.message_id
    assert [a.get_content_type() for a in message.iter_attachments()] == ["text/calendar"]
    (entry,) = outbox.entries()
    assert entry.state is OutboxState.SENT and entry.attempts == 1
    assert entry.answer.startswith("250 ") and entry.sent_at == T0


def test_a_wrong_password_is_retried_later_not_failed(
    sqlite_database: Database, event: EventRecord, letterhead: Letterhead, smtp_server: SmtpServer
) -> None:
    outbox = Outbox(sqlite_database)
    _enqueue(outbox, event, letterhead, _recipients(sqlite_database, event, 2))
    bad = f"smtp://relay-user:wrong@127.0.0.1:{smtp_server.port}"
    asyncio.run(_send(_worker(outbox, smtp_server, Clock(T0), bad)))
    assert smtp_server.received == []
    for entry in outbox.entries():
        assert entry.state is OutboxState.QUEUED and entry.due_at == T0 + timedelta(seconds=30)
        assert "535" in entry.answer or "not tried" in entry.answer


def test_refused_then_recovered_delivers_once(
    sqlite_database: Database, event: EventRecord, letterhead: Letterhead, smtp_server: SmtpServer
) -> None:
    outbox = Outbox(sqlite_database)
    (message_id,) = _enqueue(outbox, event, letterhead, _recipients(sqlite_database, event, 1))
    smtp_server.handler.refuse = 2  # 451 to the first two tries
    clock = Clock(T0)
    worker = _worker(outbox, smtp_server, clock)

    async def retries() -> list[int]:
        claimed = []
        try:
            for wait in (0, 10, 21, 30, 61):  # the backoff: 30 s, then 60 s
                clock.advance(wait)
                claimed.append(await worker.send_due())
        finally:
            await worker.transport.close()
        return claimed

    assert asyncio.run(retries()) == [1, 0, 1, 0, 1]
    assert [r.message_id for r in smtp_server.received] == [message_id]
    (entry,) = outbox.entries()
    assert entry.state is OutboxState.SENT and entry.attempts == 3


def test_an_outage_loses_nothing(
    sqlite_database: Database,
    event: EventRecord,
    letterhead: Letterhead,
    certificate: tuple[Path, Path],
) -> None:
    from tests.support.ports import free_port

    outbox = Outbox(sqlite_database)
    ids = _enqueue(outbox, event, letterhead, _recipients(sqlite_database, event, 5))
    server = SmtpServer(free_port(), *certificate)  # not started: the port refuses
    clock = Clock(T0)
    worker = _worker(outbox, server, clock)
    assert asyncio.run(_send(worker)) == 5
    states = {(e.state, e.due_at) for e in outbox.entries()}
    assert states == {(OutboxState.QUEUED, T0 + timedelta(seconds=30))}
    server.start()
    try:
        clock.advance(31)
        assert asyncio.run(_send(worker)) == 5
        assert sorted(r.message_id for r in server.received) == sorted(ids)
    finally:
        server.stop()
    assert {e.state for e in outbox.entries()} == {OutboxState.SENT}


def test_a_5xx_for_one_recipient_fails_that_message_alone(
    sqlite_database: Database, event: EventRecord, letterhead: Letterhead, smtp_server: SmtpServer
) -> None:
    outbox = Outbox(sqlite_database)
    ids = _enqueue(outbox, event, letterhead, _recipients(sqlite_database, event, 3))
    smtp_server.handler.reject = {"a1@acme.example"}
    asyncio.run(_send(_worker(outbox, smtp_server, Clock(T0))))
    assert sorted(r.message_id for r in smtp_server.received) == sorted([ids[0], ids[2]])
    states = {e.recipient: (e.state, e.answer) for e in outbox.entries()}
    assert states["a0@acme.example"][0] is OutboxState.SENT
    assert states["a2@acme.example"][0] is OutboxState.SENT
    assert states["a1@acme.example"][0] is OutboxState.FAILED
    assert states["a1@acme.example"][1].startswith("550 5.1.1")


def _sender_process(database: Database, server: SmtpServer, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "callbridge.mail",
            "--db",
            database.url,
            "--smtp",
            server.url,
            "--smtp-ca",
            str(server.ca_file()),
            "--lease",
            "1",
            "--poll",
            "0.1",
            "--batch",
            "4",
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )


def test_a_sender_killed_mid_send_loses_nothing(
    sqlite_database: Database,
    event: EventRecord,
    letterhead: Letterhead,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """SIGKILL the sender twice mid-send, starting it again each time.

    Killed while the 3rd message's recipient is in the server's hands (it has
    no data yet), that message arrives once, after the restart. Killed after
    the server stored the 6th but before its 250 reached the sender, that one
    message arrives twice with the same Message-ID: the at-least-once window
    ``mail.worker`` describes. Nothing is lost and nothing else is doubled.
    """
    outbox = Outbox(sqlite_database)
    # Due by the real clock: the sender process reads it.
    now = datetime.now(UTC)
    ids = _enqueue(outbox, event, letterhead, _recipients(sqlite_database, event, 8), now)
    handler = smtp_server.handler
    log = tmp_path / "sender.log"
    for stage, nth in (("rcpt", 3), ("data", 3)):
        handler.hold, handler.hold_at = 30.0, stage
        handler.hold_nth = (handler.rcpts if stage == "rcpt" else handler.datas) + nth
        handler.held.clear()
        sender = _sender_process(sqlite_database, smtp_server, log)
        try:
            wait_until(handler.held.is_set, 20, f"a message held at {stage}", log.read_text)
        finally:
            sender.send_signal(signal.SIGKILL)
            sender.wait()
        handler.hold = 0
        # Claimed with its batch and never marked: the next sender takes it when the lease ends.
        assert any(e.state is OutboxState.SENDING for e in outbox.entries())
    last = _sender_process(sqlite_database, smtp_server, log)
    try:
        wait_until(
            lambda: {e.state for e in outbox.entries()} == {OutboxState.SENT},
            20,
            "every message sent after the restarts",
            log.read_text,
        )
    finally:
        last.send_signal(signal.SIGTERM)
        last.wait(10)
    copies = Counter(r.message_id for r in smtp_server.received)
    assert set(copies) == set(ids)  # nothing lost
    doubled = {message_id for message_id, n in copies.items() if n > 1}
    held = email.message_from_bytes(handler.held_data, policy=policy.default)["Message-ID"]
    assert doubled == {held} and copies[held] == 2, copies
