"""The outbox table on SQLite and PostgreSQL: claims are exclusive, leases end, keys dedupe."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from callbridge.store.db import Database
from callbridge.store.outbox import MailKind, NewMail, Outbox, OutboxState

T0 = datetime(2030, 7, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _mail(n: int) -> NewMail:
    return NewMail(
        kind=MailKind.REMINDER,
        dedupe_key=f"test:{n}",
        message_id=f"<{n}.test@x.example>",
        sender="ir@x.example",
        recipient=f"r{n}@y.example",
        message=b"Subject: x\r\n\r\nbody\r\n",
    )


def test_a_key_is_enqueued_once(database: Database) -> None:
    outbox = Outbox(database)
    assert outbox.enqueue([_mail(1), _mail(2)], T0) == 2
    assert outbox.enqueue([_mail(2), _mail(3)], T0) == 1  # 2 is there: 3 still goes in
    assert [e.dedupe_key for e in outbox.entries()] == ["test:1", "test:2", "test:3"]


def test_two_senders_never_claim_one_row(database: Database) -> None:
    outbox = Outbox(database)
    outbox.enqueue([_mail(n) for n in range(60)], T0)
    taken: list[list[int]] = [[], [], []]

    def sender(index: int) -> None:
        while rows := outbox.claim(T0, T0 + LEASE, 7):
            taken[index].extend(row.id for row in rows)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [row_id for ids in taken for row_id in ids]
    assert len(every) == 60 and len(set(every)) == 60


def test_a_lapsed_lease_is_claimed_again_and_a_stale_claim_writes_nothing(
    database: Database,
) -> None:
    outbox = Outbox(database)
    outbox.enqueue([_mail(1)], T0)
    (first,) = outbox.claim(T0, T0 + LEASE, 10)
    assert first.attempts == 1
    assert outbox.claim(T0 + LEASE - timedelta(seconds=1), T0 + 2 * LEASE, 10) == []
    (again,) = outbox.claim(T0 + LEASE + timedelta(seconds=1), T0 + 2 * LEASE, 10)
    assert again.id == first.id and again.attempts == 2 and again.claim != first.claim
    assert again.message_id == first.message_id  # a resend is the same message
    assert not outbox.settle(first.id, first.claim, OutboxState.SENT, None, "250 late", T0)
    assert outbox.settle(again.id, again.claim, OutboxState.SENT, None, "250 ok", T0)
    (entry,) = outbox.entries()
    assert entry.state is OutboxState.SENT and entry.answer == "250 ok"
    assert outbox.claim(T0 + 10 * LEASE, T0 + 11 * LEASE, 10) == []


def test_a_retry_waits_for_its_time_and_a_release_gives_the_try_back(database: Database) -> None:
    outbox = Outbox(database)
    outbox.enqueue([_mail(1), _mail(2)], T0)
    one, two = outbox.claim(T0, T0 + LEASE, 10)
    later = T0 + timedelta(seconds=30)
    outbox.settle(one.id, one.claim, OutboxState.QUEUED, later, "451 later", T0)
    outbox.release(two.id, two.claim, T0)
    (first,) = outbox.claim(T0, T0 + LEASE, 10)
    assert first.id == two.id and first.attempts == 1
    assert outbox.next_due() == later
    (retry,) = outbox.claim(later, later + LEASE, 10)
    assert retry.id == one.id and retry.attempts == 2
    assert outbox.counts() == {"sending": 2}


def test_consent_and_who_is_unconfirmed(database: Database) -> None:
    from callbridge.events.schema import EventFile
    from callbridge.store.audience import Audience
    from callbridge.store.events import EventStore
    from tests.mail.conftest import event_data

    event = EventStore(database).create(EventFile.model_validate(event_data(T0)))
    people = Audience(database)
    _, ada = people.register(event.id, name="Ada", firm=None, email="ada@x.example", now=T0)
    _, bo = people.register(event.id, name="Bo", firm=None, email="bo@x.example", now=T0)
    people.register(event.id, name="Cy", firm=None, email=None, now=T0)  # no address
    outbox = Outbox(database)
    outbox.record_consent(ada.id, event.id, True, "words", T0)
    outbox.record_consent(bo.id, event.id, False, "words", T0)
    assert [r.listener_id for r in outbox.consenting(event.id)] == [ada.id]
    assert outbox.events_to_plan(["scheduled"]) == [event.id]
    since = T0 - timedelta(minutes=1)
    assert [r.listener_id for r in outbox.unconfirmed(since, ["scheduled"])] == [ada.id, bo.id]
    confirmation = NewMail(
        MailKind.CONFIRMATION,
        "c",
        "<c@x>",
        "a@x.example",
        "ada@x.example",
        b"x",
        event.id,
        ada.id,
    )
    outbox.enqueue([confirmation], T0)
    assert [r.listener_id for r in outbox.unconfirmed(since, ["scheduled"])] == [bo.id]
    withdrawn = outbox.withdraw(ada.id, T0 + LEASE)
    assert withdrawn is not None and withdrawn.withdrawn_at == T0 + LEASE
    assert outbox.consenting(event.id) == [] and outbox.events_to_plan(["scheduled"]) == []
    assert outbox.withdraw(10**9, T0) is None
