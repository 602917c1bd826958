"""The call log on SQLite and PostgreSQL: append, read back, attendance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callbridge.events.schema import EventFile
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.store.db import Database
from callbridge.store.events import EventStore

T0 = datetime(2026, 11, 5, 21, 30, tzinfo=UTC)


def test_entries_come_back_in_order(database: Database, example_spec: EventFile) -> None:
    event = EventStore(database).create(example_spec)
    log = CallLog(database)
    log.append(
        [
            LogEntry(LogKind.JOIN, T0, event.id, "p1", caller_id="sip:a@x", role="listener"),
            LogEntry(LogKind.QUEUE, T0 + timedelta(seconds=5), event.id, "p1", actor="keypad"),
            LogEntry(
                LogKind.PASSCODE_FAILED,
                T0 + timedelta(seconds=1),
                event.id,
                caller_id="sip:b@x",
                detail={"source": "127.0.0.1", "tries": 1},
            ),
        ]
    )
    entries = log.entries(event.id)
    assert [e.kind for e in entries] == [LogKind.JOIN, LogKind.PASSCODE_FAILED, LogKind.QUEUE]
    assert entries[1].detail == {"source": "127.0.0.1", "tries": 1}
    assert entries[0].at == T0
    assert entries[2].actor == "keypad"


def test_attendance_joins_leaves_and_roles(database: Database, example_spec: EventFile) -> None:
    event = EventStore(database).create(example_spec)
    log = CallLog(database)
    log.append(
        [
            LogEntry(LogKind.JOIN, T0, event.id, "p1", caller_id="+12125551234", role="listener"),
            LogEntry(LogKind.JOIN, T0, event.id, "w1", channel="web", role="listener"),
            LogEntry(LogKind.LINE_OPEN, T0 + timedelta(minutes=20), event.id, "p1", role="speaker"),
            LogEntry(
                LogKind.LEAVE,
                T0 + timedelta(minutes=45),
                event.id,
                "p1",
                detail={"reason": "bye"},
            ),
        ]
    )
    report = {a.participant_id: a for a in log.attendance(event.id)}
    assert report["p1"].duration == timedelta(minutes=45)
    assert report["p1"].role == "speaker"
    assert report["p1"].reason == "bye"
    assert report["w1"].channel == "web"
    assert report["w1"].left_at is None
