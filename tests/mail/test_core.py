"""The outbox's decisions, in memory, with a clock the test sets."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.mail.core import (
    LONGEST_RETRY,
    MAX_ATTEMPTS,
    Attempt,
    IllegalTransition,
    Outcome,
    backoff,
    classify,
    describe_offset,
    move,
    parse_duration,
    parse_offsets,
    reminder_due,
    settle,
)
from callbridge.store.outbox import OutboxState

T0 = datetime(2030, 3, 4, 14, 0, tzinfo=UTC)
START = T0 + timedelta(days=3)


def test_backoff_doubles_from_30_seconds_to_an_hour_and_stays() -> None:
    waits = [backoff(n).total_seconds() for n in range(1, 10)]
    assert waits[:5] == [30, 60, 120, 240, 480]
    assert waits[-1] == LONGEST_RETRY.total_seconds()
    assert backoff(10_000) == LONGEST_RETRY
    with pytest.raises(ValueError):
        backoff(0)


def test_a_4xx_or_no_answer_is_tried_later_a_5xx_never() -> None:
    later = settle(1, Attempt(Outcome.TRANSIENT, "451 4.3.0 later"), T0)
    assert later.state is OutboxState.QUEUED and later.due_at == T0 + timedelta(seconds=30)
    away = settle(3, Attempt(Outcome.UNREACHABLE, "ConnectionRefusedError"), T0)
    assert away.state is OutboxState.QUEUED and away.due_at == T0 + timedelta(minutes=2)
    gone = settle(1, Attempt(Outcome.PERMANENT, "550 5.1.1 no such user"), T0)
    assert gone.state is OutboxState.FAILED and gone.answer == "550 5.1.1 no such user"
    sent = settle(1, Attempt(Outcome.ACCEPTED, "250 Ok"), T0)
    assert sent.state is OutboxState.SENT and sent.due_at is None


def test_the_last_try_fails_the_message() -> None:
    assert settle(MAX_ATTEMPTS, Attempt(Outcome.TRANSIENT, "421"), T0).state is OutboxState.FAILED
    assert settle(MAX_ATTEMPTS - 1, Attempt(Outcome.TRANSIENT, "421"), T0).state is (
        OutboxState.QUEUED
    )


def test_the_table_refuses_what_it_does_not_list() -> None:
    assert move(OutboxState.QUEUED, OutboxState.SENDING) is OutboxState.SENDING
    assert move(OutboxState.SENDING, OutboxState.SENDING) is OutboxState.SENDING  # lease ran out
    for done in (OutboxState.SENT, OutboxState.FAILED, OutboxState.CANCELLED):
        with pytest.raises(IllegalTransition):
            move(done, OutboxState.SENDING)
    with pytest.raises(IllegalTransition):
        move(OutboxState.QUEUED, OutboxState.SENT)


def test_reply_codes() -> None:
    assert classify(250) is Outcome.ACCEPTED
    assert classify(451) is Outcome.TRANSIENT
    assert classify(552) is Outcome.PERMANENT
    assert classify(999) is Outcome.TRANSIENT


def test_the_latest_reminder_that_has_come_and_only_if_it_came_after_registering() -> None:
    offsets = (1440, 15)
    early = START - timedelta(days=2)
    assert reminder_due(START, offsets, early, START - timedelta(hours=25)) is None
    assert reminder_due(START, offsets, early, START - timedelta(hours=23)) == 1440
    # A sender down for a day sends the 15-minute reminder, not both.
    assert reminder_due(START, offsets, early, START - timedelta(minutes=10)) == 15
    # Registered two hours before: no "24 hours to go", but the 15-minute one.
    late = START - timedelta(hours=2)
    assert reminder_due(START, offsets, late, START - timedelta(hours=1)) is None
    assert reminder_due(START, offsets, late, START - timedelta(minutes=14)) == 15
    # Registered after the last reminder's moment, or the call has begun: none.
    assert (
        reminder_due(START, offsets, START - timedelta(minutes=5), START - timedelta(minutes=1))
        is None
    )
    assert reminder_due(START, offsets, early, START) is None
    assert reminder_due(START, (), early, START - timedelta(minutes=1)) is None


def test_durations_and_offsets() -> None:
    assert [parse_duration(d) for d in ("24h", "15m", "2d", "90", " 1H ")] == [
        1440,
        15,
        2880,
        90,
        60,
    ]
    assert parse_offsets("15,1440,15") == (1440, 15)
    assert parse_offsets("") == ()
    for bad in ("", "h", "-5m", "1.5h", "24 h"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    for bad in ("0", "99999", "1,2,3,4,5,6", "x"):
        with pytest.raises(ValueError):
            parse_offsets(bad)
    assert describe_offset(1440) == "24 hours"
    assert describe_offset(15) == "15 minutes"
    assert describe_offset(90) == "1 hour 30 minutes"


@given(st.text(max_size=40))
def test_a_duration_parses_or_raises_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_duration(text) >= 0


@given(st.text(max_size=60))
def test_offsets_parse_or_raise_value_error(text: str) -> None:
    try:
        offsets = parse_offsets(text)
    except ValueError:
        return
    assert list(offsets) == sorted(set(offsets), reverse=True)
