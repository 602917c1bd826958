"""Phone callers' numbers, names and *1 questions, read from a call log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callbridge.store.calllog import LogEntry, LogKind
from callbridge.store.phonelog import Caller, callers, keypad_questions

T0 = datetime(2026, 11, 5, 21, 30, tzinfo=UTC)
EVENT = 7


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _row(kind: LogKind, seconds: float, pid: str | None, **more: object) -> LogEntry:
    return LogEntry(kind, _at(seconds), EVENT, pid, **more)  # type: ignore[arg-type]


def test_a_callers_number_is_the_trunks_and_their_name_the_latest_given() -> None:
    log = [
        _row(LogKind.JOIN, 0, "p1", caller_id="Jane", detail={"number": "+12125551234"}),
        _row(LogKind.NAME, 5, "p1", actor="speaker list", detail={"name": "Jane Roe"}),
        _row(LogKind.NAME, 9, "p1", actor="dana", detail={"name": "Jane Roe, CFO"}),
        # Written before numbers were kept, or withheld: none, whatever the phone said.
        _row(LogKind.JOIN, 1, "p2", caller_id="+15550001111"),
        _row(LogKind.JOIN, 2, "p3", caller_id="anonymous", detail={"number": ""}),
        _row(LogKind.NAME, 3, "p9", detail={"name": "Nobody"}),  # no join: not a caller
        _row(LogKind.PASSCODE_FAILED, 4, None, caller_id="user:+1555"),
    ]
    assert callers(log) == {
        "p1": Caller("p1", "+12125551234", "Jane", "Jane Roe, CFO"),
        "p2": Caller("p2", None, "+15550001111", None),
        "p3": Caller("p3", None, "anonymous", None),
    }


def test_keypad_questions_with_their_lines_opened_and_closed() -> None:
    log = [
        _row(LogKind.START, 0, None),
        _row(LogKind.QUEUE, 10, "p1", actor="keypad"),
        _row(LogKind.QUEUE, 11, "p1", actor="keypad"),  # again while queued: one question
        _row(LogKind.QUEUE, 12, "p2", actor="keypad"),
        _row(LogKind.WITHDRAW, 15, "p2", actor="keypad"),  # *2
        _row(LogKind.QUEUE, 16, "p2", actor="keypad"),  # asks again
        _row(LogKind.QUEUE, 17, "p3", actor="keypad"),
        _row(LogKind.QUEUE, 18, "p4", actor="keypad"),
        _row(LogKind.QUEUE, 19, "p5", actor="keypad"),
        _row(LogKind.LINE_OPEN, 20, "p1", actor="dana"),
        _row(LogKind.LINE_CLOSE, 80, "p1", actor="dana"),
        _row(LogKind.WITHDRAW, 81, "p3", actor="dana"),  # the moderator removed it
        _row(LogKind.LEAVE, 82, "p4"),  # hung up while waiting
        _row(LogKind.LINE_OPEN, 90, "p2", actor="dana"),
        _row(LogKind.LINE_OPEN, 91, "p6", actor="dana"),  # a line opened without *1
        _row(LogKind.END, 120, None),
        _row(LogKind.QUEUE, 130, "p7", actor="keypad"),  # a log that stops with it waiting
    ]
    found = [
        (q.participant_id, q.asked_at, q.opened_at, q.closed_at, q.outcome, q.settled_at, q.actor)
        for q in keypad_questions(log)
    ]
    assert found == [
        ("p1", _at(10), _at(20), _at(80), "answered", _at(80), "dana"),
        ("p2", _at(12), None, None, "withdrawn", _at(15), "keypad"),
        ("p2", _at(16), _at(90), None, "on air", _at(120), "dana"),
        ("p3", _at(17), None, None, "removed", _at(81), "dana"),
        ("p4", _at(18), None, None, "left", _at(82), None),
        ("p5", _at(19), None, None, "not taken", _at(120), None),
        ("p7", _at(130), None, None, "waiting", None, None),
    ]
