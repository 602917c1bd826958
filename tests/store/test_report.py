"""The engagement report from a real call log and real beacons, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callbridge.events.schema import EventFile
from callbridge.store.audience import Audience, ListenMode, WebListener
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.store.db import Database
from callbridge.store.events import EventStore
from callbridge.store.report import EngagementReport, Heard, engagement

T0 = datetime(2026, 11, 5, 21, 30, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_figures_by_channel_live_and_replay(database: Database, example_spec: EventFile) -> None:
    event = EventStore(database).create(example_spec)
    log = CallLog(database)
    log.append(
        [
            LogEntry(LogKind.START, _at(0), event.id, actor="operator"),
            LogEntry(LogKind.JOIN, _at(0), event.id, "p1", role="speaker"),
            LogEntry(LogKind.JOIN, _at(10), event.id, "p2", role="listener"),
            LogEntry(LogKind.QUEUE, _at(20), event.id, "p2", actor="keypad"),
            LogEntry(LogKind.WITHDRAW, _at(25), event.id, "p2", actor="keypad"),
            LogEntry(LogKind.QUEUE, _at(30), event.id, "p2", actor="keypad"),
            LogEntry(LogKind.LINE_OPEN, _at(40), event.id, "p2", role="speaker", actor="dana"),
            LogEntry(LogKind.QUESTION_WRITTEN, _at(45), event.id, actor="web"),
            LogEntry(LogKind.LEAVE, _at(130), event.id, "p2", detail={"reason": "hung up"}),
            # A caller whose leave was never written counts until the call's end.
            LogEntry(LogKind.JOIN, _at(60), event.id, "p3", role="listener"),
            LogEntry(LogKind.LEAVE, _at(600), event.id, "p1"),
            LogEntry(LogKind.END, _at(600), event.id, actor="operator"),
            LogEntry(LogKind.JOIN, _at(4000), event.id, "r1", role="replay"),
            LogEntry(LogKind.LEAVE, _at(4090), event.id, "r1"),
            # A passcode guesser is no listener.
            LogEntry(LogKind.PASSCODE_FAILED, _at(5), event.id, caller_id="sip:x@y"),
        ]
    )
    people = Audience(database)
    _, ada = people.register(
        event.id, name="Ada", firm="Acme", email="ada@acme.example", now=_at(0)
    )
    bo_token, _ = people.register(event.id, name="Bo", firm=None, email="bo@b.example", now=_at(0))
    for seconds in (100, 115, 130):
        people.heard(event.id, bo_token, ListenMode.LIVE, _at(seconds))
    for seconds in (5000, 5015):
        people.heard(event.id, bo_token, ListenMode.REPLAY, _at(seconds))
    anonymous = "wl_anonymous-browser-id-for-the-test"
    for seconds in (200, 210):
        people.heard(event.id, anonymous, ListenMode.LIVE, _at(seconds), anonymous=True)

    figures = EngagementReport(database, log, people).of(event.id)
    # Ada never played, Bo did; the anonymous browser did not register.
    assert figures.registrations == 2
    # p2's line was opened for a question: still a listener, by the part they joined in.
    assert figures.speakers == 1
    assert figures.live_phone == Heard(listeners=2, seconds=120 + 540)
    assert figures.live_web == Heard(listeners=2, seconds=30 + 10)
    assert figures.replay_phone == Heard(listeners=1, seconds=90)
    assert figures.replay_web == Heard(listeners=1, seconds=15)
    assert figures.live == Heard(4, 700) and figures.replay == Heard(2, 105)
    assert figures.phone_questions == 2 and figures.written_questions == 1
    assert figures.questions == 3
    assert ada.name == "Ada"


def test_an_event_nobody_heard_reports_zeros() -> None:
    figures = engagement(7, [], [], [])
    assert (figures.registrations, figures.live, figures.replay, figures.questions) == (
        0,
        Heard(0, 0),
        Heard(0, 0),
        0,
    )
    assert figures.live.minutes == 0.0


def test_listeners_live_and_on_the_replay_are_counted_once_each_way() -> None:
    """A browser that heard both, and a number heard live and again on the replay."""
    log = [
        LogEntry(LogKind.JOIN, _at(0), 7, "p1", role="listener", detail={"number": "+1555"}),
        LogEntry(LogKind.JOIN, _at(1), 7, "p2", role="listener", detail={"number": "+1666"}),
        LogEntry(LogKind.JOIN, _at(2), 7, "p3", role="speaker", detail={"number": "+1777"}),
        LogEntry(LogKind.END, _at(600), 7),
        LogEntry(LogKind.JOIN, _at(900), 7, "r1", role="replay", detail={"number": "+1555"}),
        LogEntry(LogKind.JOIN, _at(950), 7, "r2", role="replay", detail={"number": "+1777"}),
        LogEntry(LogKind.JOIN, _at(990), 7, "r3", role="replay", detail={"number": ""}),
    ]
    web = [
        WebListener(1, 7, "Ada", None, None, T0, T0, T0, 60, 30),
        WebListener(2, 7, "Bo", None, None, T0, T0, T0, 60, 0),
        WebListener(3, 7, None, None, None, T0, T0, T0, 0, 45),
    ]
    figures = engagement(7, [], log, web)
    assert (figures.both_phone, figures.both_web, figures.both) == (1, 1, 2)
