from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callbridge.events.schema import EventState
from callbridge.ivr.window import Window, conference_window

START = datetime(2026, 11, 5, 16, 30, tzinfo=ZoneInfo("America/New_York"))
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("offset", "state", "expected"),
    [
        (-timedelta(minutes=31), EventState.SCHEDULED, Window.TOO_EARLY),
        (-timedelta(minutes=30), EventState.SCHEDULED, Window.EARLY_HOLD),
        (timedelta(minutes=10), EventState.SCHEDULED, Window.EARLY_HOLD),
        (-timedelta(minutes=45), EventState.LIVE, Window.OPEN),
        (HOUR + 2 * HOUR - timedelta(seconds=1), EventState.LIVE, Window.OPEN),
        (HOUR + 2 * HOUR, EventState.LIVE, Window.CLOSED),
        (HOUR + 2 * HOUR, EventState.SCHEDULED, Window.CLOSED),
        (timedelta(0), EventState.ENDED, Window.CLOSED),
        (timedelta(0), EventState.ARCHIVED, Window.CLOSED),
    ],
)
def test_window_edges(offset: timedelta, state: EventState, expected: Window) -> None:
    assert conference_window(START, HOUR, state, START + offset) is expected


def test_across_a_dst_change_compares_instants() -> None:
    # 2026-11-01 01:30 happens twice in New York; UTC decides.
    start = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    now = datetime(2026, 11, 1, 1, 45, fold=1, tzinfo=ZoneInfo("America/New_York"))
    assert conference_window(start, HOUR, EventState.SCHEDULED, now) is Window.EARLY_HOLD


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        conference_window(START, HOUR, EventState.LIVE, datetime(2026, 11, 5, 16, 30))
