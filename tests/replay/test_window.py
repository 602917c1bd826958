from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.events.schema import EventRecord, EventState
from callbridge.media.prompts import PromptName
from callbridge.replay.window import (
    REFUSAL_PROMPTS,
    ReplayStatus,
    ReplayWindow,
    day_ends,
    replay_window,
    replay_window_of,
)

NEW_YORK = ZoneInfo("America/New_York")
ONE_US = timedelta(microseconds=1)


def window(
    replay_until: date | None = date(2026, 11, 12),
    timezone: str = "America/New_York",
    state: EventState = EventState.ENDED,
    ended_at: datetime | None = datetime(2026, 10, 29, 22, 0, tzinfo=UTC),
) -> ReplayWindow:
    return replay_window(
        replay_until=replay_until, timezone=timezone, state=state, ended_at=ended_at
    )


# -- where the window closes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "last_day", "closes_utc"),
    [
        # New York, winter and summer, and both sides of each change (Mar 8, Nov 1 2026).
        ("America/New_York", date(2026, 11, 12), datetime(2026, 11, 13, 5, 0, tzinfo=UTC)),
        ("America/New_York", date(2026, 7, 1), datetime(2026, 7, 2, 4, 0, tzinfo=UTC)),
        ("America/New_York", date(2026, 3, 7), datetime(2026, 3, 8, 5, 0, tzinfo=UTC)),
        ("America/New_York", date(2026, 3, 8), datetime(2026, 3, 9, 4, 0, tzinfo=UTC)),
        ("America/New_York", date(2026, 10, 31), datetime(2026, 11, 1, 4, 0, tzinfo=UTC)),
        ("America/New_York", date(2026, 11, 1), datetime(2026, 11, 2, 5, 0, tzinfo=UTC)),
        # London (Mar 29 2026) and Sydney (Apr 5 2026, the southern autumn).
        ("Europe/London", date(2026, 3, 28), datetime(2026, 3, 29, 0, 0, tzinfo=UTC)),
        ("Europe/London", date(2026, 3, 29), datetime(2026, 3, 29, 23, 0, tzinfo=UTC)),
        ("Australia/Sydney", date(2026, 4, 4), datetime(2026, 4, 4, 13, 0, tzinfo=UTC)),
        ("Australia/Sydney", date(2026, 4, 5), datetime(2026, 4, 5, 14, 0, tzinfo=UTC)),
        # No DST, a half-hour offset.
        ("Asia/Kolkata", date(2026, 11, 12), datetime(2026, 11, 12, 18, 30, tzinfo=UTC)),
        # Brazil 2018 sprang forward at midnight: Nov 4 began at 01:00 -02.
        ("America/Sao_Paulo", date(2018, 11, 3), datetime(2018, 11, 4, 3, 0, tzinfo=UTC)),
        # Cuba falls back from 01:00 to 00:00: Nov 1 2025 ends at the first midnight.
        ("America/Havana", date(2025, 11, 1), datetime(2025, 11, 2, 4, 0, tzinfo=UTC)),
    ],
)
def test_closes_when_the_last_day_is_over_in_the_events_zone(
    timezone: str, last_day: date, closes_utc: datetime
) -> None:
    w = window(replay_until=last_day, timezone=timezone)
    assert w.closes == closes_utc
    assert w.closes_local is not None
    assert w.closes_local.tzinfo == ZoneInfo(timezone)
    zone = ZoneInfo(timezone)
    assert (closes_utc - ONE_US).astimezone(zone).date() == last_day
    assert closes_utc.astimezone(zone).date() == last_day + timedelta(days=1)


def test_a_day_the_zone_skipped_closes_when_it_would_have_ended() -> None:
    # Samoa went from Dec 29 2011 straight to Dec 31.
    assert day_ends(date(2011, 12, 30), "Pacific/Apia") == day_ends(
        date(2011, 12, 29), "Pacific/Apia"
    )


@settings(max_examples=300, deadline=None)
@given(
    timezone=st.sampled_from(sorted(available_timezones())),
    day=st.dates(min_value=date(1970, 1, 2), max_value=date(2037, 12, 30)),
)
def test_closes_is_the_first_instant_after_the_last_day(timezone: str, day: date) -> None:
    zone = ZoneInfo(timezone)
    closes = day_ends(day, timezone)
    assert closes.tzinfo is UTC
    assert closes.astimezone(zone).date() > day
    assert (closes - timedelta(seconds=1)).astimezone(zone).date() <= day


# -- status -------------------------------------------------------------------------------------


def test_status_at_the_exact_boundaries() -> None:
    w = window()
    assert w.opens is not None and w.closes is not None
    assert w.status(w.opens - ONE_US) is ReplayStatus.NOT_YET
    assert w.status(w.opens) is ReplayStatus.OPEN
    assert w.status(w.closes - ONE_US) is ReplayStatus.OPEN
    assert w.status(w.closes) is ReplayStatus.EXPIRED
    # The last second of Nov 12 on the event's clock, and the first of Nov 13.
    assert w.status(datetime(2026, 11, 12, 23, 59, 59, tzinfo=NEW_YORK)) is ReplayStatus.OPEN
    assert w.status(datetime(2026, 11, 13, 0, 0, tzinfo=NEW_YORK)) is ReplayStatus.EXPIRED


def test_status_reads_now_in_any_zone() -> None:
    w = window()
    tokyo = ZoneInfo("Asia/Tokyo")
    # 13:59 in Tokyo on Nov 13 is 23:59 on Nov 12 in New York.
    assert w.status(datetime(2026, 11, 13, 13, 59, tzinfo=tokyo)) is ReplayStatus.OPEN
    assert w.status(datetime(2026, 11, 13, 14, 0, tzinfo=tokyo)) is ReplayStatus.EXPIRED


def test_status_is_right_in_the_hour_a_fall_back_repeats() -> None:
    # The call ends at 01:40 EDT on Nov 1 2026; a caller rings at 01:20 EST, 40 minutes
    # later. Compared by wall clock (same tzinfo) the call would not have ended yet.
    ended = datetime(2026, 11, 1, 1, 40, fold=0, tzinfo=NEW_YORK)
    caller = datetime(2026, 11, 1, 1, 20, fold=1, tzinfo=NEW_YORK)
    assert caller.astimezone(UTC) - ended.astimezone(UTC) == timedelta(minutes=40)
    w = window(replay_until=date(2026, 11, 8), ended_at=ended)
    assert w.status(caller) is ReplayStatus.OPEN


@pytest.mark.parametrize("state", [EventState.ENDED, EventState.ARCHIVED])
def test_an_ended_or_archived_call_with_a_recording_is_open(state: EventState) -> None:
    now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert window(state=state).status(now) is ReplayStatus.OPEN


@pytest.mark.parametrize("state", [EventState.SCHEDULED, EventState.LIVE])
def test_a_call_not_over_is_not_yet_open(state: EventState) -> None:
    w = window(state=state)
    assert w.opens is None
    assert w.status(datetime(2026, 11, 1, 12, 0, tzinfo=UTC)) is ReplayStatus.NOT_YET


def test_an_ended_call_without_a_recording_is_not_yet_open() -> None:
    w = window(ended_at=None)
    assert w.status(datetime(2026, 11, 1, 12, 0, tzinfo=UTC)) is ReplayStatus.NOT_YET
    # ...and expires all the same.
    assert w.status(datetime(2026, 11, 13, 5, 0, tzinfo=UTC)) is ReplayStatus.EXPIRED


def test_no_replay_until_means_no_replay() -> None:
    w = window(replay_until=None)
    assert w.closes is None and w.closes_local is None
    for now in (datetime(2020, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)):
        assert w.status(now) is ReplayStatus.NOT_OFFERED


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        window().status(datetime(2026, 11, 1, 12, 0))
    with pytest.raises(ValueError, match="aware"):
        window(ended_at=datetime(2026, 10, 29, 22, 0))


def test_ended_at_is_kept_in_utc() -> None:
    w = window(ended_at=datetime(2026, 10, 29, 18, 0, tzinfo=NEW_YORK))
    assert w.opens == datetime(2026, 10, 29, 22, 0, tzinfo=UTC)
    assert w.opens is not None and w.opens.tzinfo is UTC


# -- what pages and prompts say -----------------------------------------------------------------


def test_sentences() -> None:
    w = window()
    assert (
        w.sentence(datetime(2026, 11, 1, tzinfo=UTC))
        == "The replay is available through November 12, 2026."
    )
    assert (
        w.sentence(datetime(2026, 11, 13, 5, 0, tzinfo=UTC))
        == "The replay expired on November 12, 2026."
    )
    assert (
        window(state=EventState.LIVE).sentence(datetime(2026, 10, 29, tzinfo=UTC))
        == "The replay will be available after the call, through November 12, 2026."
    )
    assert (
        window(replay_until=None).sentence(datetime(2026, 10, 29, tzinfo=UTC))
        == "No replay is offered for this call."
    )


def test_every_refusal_has_a_prompt() -> None:
    assert set(REFUSAL_PROMPTS) == set(ReplayStatus) - {ReplayStatus.OPEN}
    assert REFUSAL_PROMPTS[ReplayStatus.NOT_YET] is PromptName.REPLAY_NOT_YET
    assert REFUSAL_PROMPTS[ReplayStatus.EXPIRED] is PromptName.REPLAY_EXPIRED


def test_window_of_a_stored_event_agrees_with_replay_available() -> None:
    # Only the fields the window reads: the rest of a record is no concern of it.
    fields: dict[str, Any] = {
        "replay_until": date(2026, 3, 8),
        "timezone": "America/New_York",
        "state": EventState.ENDED,
    }
    record = EventRecord.model_construct(**fields)
    ended = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)
    w = replay_window_of(record, ended)
    assert w == window(replay_until=date(2026, 3, 8), ended_at=ended)
    for hours in range(0, 24 * 9, 1):
        now = ended + timedelta(hours=hours)
        assert (w.status(now) is ReplayStatus.OPEN) == record.replay_available(now), now
