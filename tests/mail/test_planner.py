"""Which reminders and replay notices are written, and when: the planner against a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callbridge.events.schema import EventRecord, EventState
from callbridge.mail.compose import Letterhead
from callbridge.mail.planner import MailDesk, Planner
from callbridge.store.audience import Audience
from callbridge.store.db import Database
from callbridge.store.events import EventStore
from callbridge.store.outbox import MailKind, MailSettings, Outbox, OutboxState
from tests.mail.conftest import make_event

START = datetime(2030, 6, 3, 14, 0, tzinfo=UTC)


def _register(
    database: Database, desk: MailDesk, event: EventRecord, who: str, at: datetime, consent: bool
) -> int:
    _, listener = Audience(database).register(
        event.id, name=who.title(), firm=None, email=f"{who}@acme.example", now=at
    )
    desk.registered(event, listener.id, follow_up=consent, now=at)
    return listener.id


def test_reminders_once_each_to_those_who_agreed(
    sqlite_database: Database, letterhead: Letterhead
) -> None:
    event = make_event(sqlite_database, START)
    outbox = Outbox(sqlite_database)
    desk = MailDesk(outbox, letterhead)
    early = START - timedelta(days=3)
    ada = _register(sqlite_database, desk, event, "ada", early, consent=True)
    _register(sqlite_database, desk, event, "bo", early, consent=False)
    late = _register(sqlite_database, desk, event, "cy", START - timedelta(hours=2), True)
    planner = Planner(outbox, EventStore(sqlite_database), letterhead, lambda _: False)
    # Three confirmations, one each, whatever the consent.
    confirmations = [e for e in outbox.entries() if e.kind is MailKind.CONFIRMATION]
    assert len(confirmations) == 3

    assert planner.plan(START - timedelta(hours=25)) == 0
    assert planner.plan(START - timedelta(hours=23)) == 1
    assert planner.plan(START - timedelta(hours=22)) == 0  # planned once
    assert planner.plan(START - timedelta(minutes=14)) == 2  # Ada's and Cy's 15-minute ones
    reminders = {
        (e.listener_id, e.dedupe_key) for e in outbox.entries() if e.kind is MailKind.REMINDER
    }
    assert reminders == {
        (ada, f"reminder:w{ada}:1440"),
        (ada, f"reminder:w{ada}:15"),
        (late, f"reminder:w{late}:15"),
    }


def test_unsubscribing_cancels_what_is_queued_and_stops_the_rest(
    sqlite_database: Database, letterhead: Letterhead
) -> None:
    event = make_event(sqlite_database, START)
    outbox = Outbox(sqlite_database)
    desk = MailDesk(outbox, letterhead)
    ada = _register(sqlite_database, desk, event, "ada", START - timedelta(days=3), True)
    planner = Planner(outbox, EventStore(sqlite_database), letterhead, lambda _: False)
    assert planner.plan(START - timedelta(hours=23)) == 1
    consent = outbox.withdraw(ada, START - timedelta(hours=20))
    assert consent is not None and not consent.active
    assert "unsubscribed" in consent.describe()
    states = {e.kind: e.state for e in outbox.entries()}
    assert states[MailKind.REMINDER] is OutboxState.CANCELLED
    assert states[MailKind.CONFIRMATION] is OutboxState.QUEUED  # already asked for
    assert planner.plan(START - timedelta(minutes=10)) == 0


def test_the_replay_notice_waits_for_the_replay_and_each_kind_can_be_off(
    sqlite_database: Database, letterhead: Letterhead
) -> None:
    event = make_event(sqlite_database, START)
    outbox = Outbox(sqlite_database)
    desk = MailDesk(outbox, letterhead)
    outbox.set_settings(event.id, MailSettings(confirmation=False, reminders="", replay=True))
    _register(sqlite_database, desk, event, "ada", START - timedelta(days=3), True)
    assert outbox.entries() == []  # no confirmation for this event
    ready = {"packaged": False}
    store = EventStore(sqlite_database)
    planner = Planner(outbox, store, letterhead, lambda _: ready["packaged"])
    assert planner.plan(START - timedelta(minutes=10)) == 0  # reminders off
    store.set_state(event.id, EventState.LIVE)
    store.set_state(event.id, EventState.ENDED)
    after = START + timedelta(hours=2)
    assert planner.plan(after) == 0  # not packaged yet
    ready["packaged"] = True
    assert planner.plan(after) == 1
    assert planner.plan(after) == 0
    assert event.replay_until is not None
    past_window = datetime.combine(event.replay_until, datetime.min.time(), UTC) + timedelta(days=2)
    outbox.set_settings(event.id, MailSettings(replay=True))
    assert planner.plan(past_window) == 0
    (notice,) = outbox.entries()
    assert notice.kind is MailKind.REPLAY


def test_no_relay_records_consent_and_writes_nothing(
    sqlite_database: Database, letterhead: Letterhead
) -> None:
    event = make_event(sqlite_database, START)
    outbox = Outbox(sqlite_database)
    desk = MailDesk(outbox, None)
    ada = _register(sqlite_database, desk, event, "ada", START - timedelta(days=1), True)
    assert outbox.entries() == []
    assert outbox.consents(event.id)[ada].active


def test_a_confirmation_lost_in_a_crash_is_written_by_the_planner(
    sqlite_database: Database, letterhead: Letterhead
) -> None:
    event = make_event(sqlite_database, START)
    outbox = Outbox(sqlite_database)
    people = Audience(sqlite_database)
    at = START - timedelta(days=1)
    # Registered, then the process died before the confirmation was written.
    _, recent = people.register(event.id, name="Ada", firm=None, email="ada@acme.example", now=at)
    old = at - timedelta(hours=3)
    people.register(event.id, name="Bo", firm=None, email="bo@acme.example", now=old)
    planner = Planner(outbox, EventStore(sqlite_database), letterhead, lambda _: False)
    assert planner.plan(at + timedelta(minutes=5)) == 1
    (entry,) = outbox.entries()
    assert entry.kind is MailKind.CONFIRMATION and entry.listener_id == recent.id
    assert planner.plan(at + timedelta(minutes=6)) == 0
