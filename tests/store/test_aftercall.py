"""Changing the replay window and archiving after the call, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from callbridge.events.schema import EventFile, EventState
from callbridge.replay.window import ReplayStatus, replay_window_of
from callbridge.store.aftercall import AfterCall
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.store.db import Database
from callbridge.store.events import Conflict, EventStore, StoreError

# The example call: Thursday November 5, 2026, 4:30 p.m. in New York; replay through the 12th.
ENDED_AT = datetime(2026, 11, 5, 22, 40, tzinfo=UTC)
NOW = datetime(2026, 11, 6, 15, 0, tzinfo=UTC)


def _ended(database: Database, spec: EventFile, ended_at: datetime = ENDED_AT) -> int:
    events = EventStore(database)
    record = events.create(spec)
    events.set_state(record.id, EventState.LIVE)
    events.set_state(record.id, EventState.ENDED)
    CallLog(database).append([LogEntry(LogKind.END, ended_at, record.id, actor="operator")])
    return record.id


def test_an_ended_events_replay_is_extended_and_audited(
    database: Database, example_spec: EventFile
) -> None:
    event_id = _ended(database, example_spec)
    changed = AfterCall(database).change_replay(event_id, date(2026, 11, 30), actor="dana", now=NOW)
    assert changed.replay_until == date(2026, 11, 30)
    assert EventStore(database).get(event_id).replay_until == date(2026, 11, 30)
    # The window follows: open on the extended days, closed at midnight after the 30th in New York.
    window = replay_window_of(changed, ENDED_AT)
    assert window.status(datetime(2026, 11, 20, tzinfo=UTC)) is ReplayStatus.OPEN
    assert window.status(datetime(2026, 12, 1, 4, 59, tzinfo=UTC)) is ReplayStatus.OPEN
    assert window.status(datetime(2026, 12, 1, 5, 0, tzinfo=UTC)) is ReplayStatus.EXPIRED
    (entry,) = [e for e in CallLog(database).entries(event_id) if e.kind is LogKind.REPLAY_CHANGED]
    assert (entry.actor, entry.at, entry.channel) == ("dana", NOW, "console")
    assert entry.detail == {"from": "2026-11-12", "to": "2026-11-30"}


def test_the_replay_is_shortened_to_the_day_the_call_ended_but_not_before(
    database: Database, example_spec: EventFile
) -> None:
    event_id = _ended(database, example_spec)
    changes = AfterCall(database)
    # 22:40 UTC on the 5th is 5:40 p.m. in New York: the call ended on the 5th.
    assert changes.change_replay(event_id, date(2026, 11, 5), actor="dana", now=NOW).replay_until
    with pytest.raises(StoreError) as refused:
        changes.change_replay(event_id, date(2026, 11, 4), actor="dana", now=NOW)
    assert refused.value.field == "replay_until"
    assert refused.value.message == "the replay cannot end before the call ended (2026-11-05)"
    assert EventStore(database).get(event_id).replay_until == date(2026, 11, 5)
    kinds = [e.kind for e in CallLog(database).entries(event_id)]
    assert kinds.count(LogKind.REPLAY_CHANGED) == 1  # the refused change left no row


def test_the_day_the_call_ended_is_read_in_the_events_zone(
    database: Database, example_spec: EventFile
) -> None:
    # A call that ran past midnight in New York ended on the 6th there (05:10 UTC).
    event_id = _ended(database, example_spec, datetime(2026, 11, 6, 5, 10, tzinfo=UTC))
    with pytest.raises(StoreError, match=r"\(2026-11-06\)"):
        AfterCall(database).change_replay(event_id, date(2026, 11, 5), actor="dana", now=NOW)


def test_a_scheduled_event_changes_as_a_whole_not_here(
    database: Database, example_spec: EventFile
) -> None:
    record = EventStore(database).create(example_spec)
    with pytest.raises(Conflict, match="until its call starts"):
        AfterCall(database).change_replay(record.id, date(2026, 11, 20), actor="dana", now=NOW)


def test_archiving_frees_the_codes_and_is_audited(
    database: Database, example_spec: EventFile
) -> None:
    event_id = _ended(database, example_spec)
    changes = AfterCall(database)
    archived = changes.archive(event_id, actor="dana", now=NOW + timedelta(minutes=1))
    assert archived.state is EventState.ARCHIVED
    assert EventStore(database).match_passcode(None, archived.replay_passcode) is None
    assert [e.kind for e in CallLog(database).entries(event_id)][-1] is LogKind.ARCHIVE
    with pytest.raises(Conflict, match="only an ended event is archived"):
        changes.archive(event_id, actor="dana", now=NOW)
    # An archived event's web replay still follows its window, which may still move.
    moved = changes.change_replay(event_id, date(2026, 11, 8), actor="dana", now=NOW)
    assert moved.replay_until == date(2026, 11, 8)
