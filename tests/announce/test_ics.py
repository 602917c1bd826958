"""The calendar file, read back with icalendar."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from icalendar import Calendar

from callbridge.announce.render import PRODID, render_ics
from callbridge.events.schema import EventRecord
from tests.announce.conftest import NOW

MakeRecord = Callable[..., EventRecord]


def parse(data: bytes) -> tuple[Any, Any]:
    """The calendar and its only event."""
    calendar = Calendar.from_ical(data)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return calendar, events[0]


def test_calendar_properties(northwind: EventRecord) -> None:
    calendar, _ = parse(render_ics(northwind, NOW))
    assert str(calendar["PRODID"]) == PRODID == "-//callbridge//callbridge//EN"
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["METHOD"]) == "PUBLISH"


def test_event_fields(northwind: EventRecord) -> None:
    _, event = parse(render_ics(northwind, NOW))
    assert str(event["UID"]) == "event-7@callbridge"
    assert event.decoded("DTSTAMP") == NOW
    # 4:30 p.m. EST on November 5, 2026.
    assert event.decoded("DTSTART") == datetime(2026, 11, 5, 21, 30, tzinfo=UTC)
    assert event.decoded("DTEND") == datetime(2026, 11, 5, 22, 30, tzinfo=UTC)
    assert str(event["SUMMARY"]) == (
        "NWBX Third Quarter Fiscal Year 2026 Financial Results conference call"
    )
    assert str(event["LOCATION"]) == "+1 866-555-0199"
    assert str(event["URL"]) == "https://www.northwind.example/"


def test_times_are_written_in_utc(northwind: EventRecord) -> None:
    data = render_ics(northwind, NOW)
    assert b"DTSTART:20261105T213000Z" in data
    assert b"DTEND:20261105T223000Z" in data
    assert b"DTSTAMP:20261029T130000Z" in data
    assert b"VTIMEZONE" not in data


def test_description_tells_how_to_join(northwind: EventRecord) -> None:
    _, event = parse(render_ics(northwind, NOW))
    description = str(event["DESCRIPTION"])
    for needed in (
        "U.S./Canada: 866-555-0199 (+18665550199)",
        "International: +1 913-555-0123 (+19135550123)",
        "Passcode: 8024721",
        "https://www.northwind.example",
        "4:30 p.m. ET on Thursday, November 5, 2026",
        "Telephone replay through November 12, 2026:",
        "866-555-0188 (+18665550188)",
        "Replay passcode: 4417",
    ):
        assert needed in description


def test_webcast_url_is_the_url(make_record: MakeRecord) -> None:
    record = make_record(event={"webcast_url": "https://events.example/nwbx"})
    _, event = parse(render_ics(record, NOW))
    assert str(event["URL"]) == "https://events.example/nwbx"
    assert "Webcast: https://events.example/nwbx" in str(event["DESCRIPTION"])


def test_the_hosted_webcast_page_is_the_url(make_record: MakeRecord) -> None:
    """No webcast_url typed: the invite opens the webcast page this server hosts."""
    record = make_record(company={"website": None})
    _, event = parse(render_ics(record, NOW, "https://ir.northwind.example"))
    assert str(event["URL"]) == "https://ir.northwind.example/events/7/webcast"
    assert "Webcast: https://ir.northwind.example/events/7/webcast" in str(event["DESCRIPTION"])


def test_no_web_address_no_url(make_record: MakeRecord) -> None:
    _, event = parse(render_ics(make_record(company={"website": None}), NOW))
    assert "URL" not in event


def test_reminder_fifteen_minutes_before(northwind: EventRecord) -> None:
    _, event = parse(render_ics(northwind, NOW))
    alarms = event.walk("VALARM")
    assert len(alarms) == 1
    assert str(alarms[0]["ACTION"]) == "DISPLAY"
    assert alarms[0].decoded("TRIGGER") == -timedelta(minutes=15)
    assert str(alarms[0]["DESCRIPTION"])


def test_speaker_passcode_is_not_in_the_file(make_record: MakeRecord) -> None:
    record = make_record(event={"speaker_passcode": "97310864"})
    assert b"97310864" not in render_ics(record, NOW)


def test_uid_is_stable_and_dtstamp_follows_now(northwind: EventRecord) -> None:
    later = NOW + timedelta(days=3)
    _, first = parse(render_ics(northwind, NOW))
    _, second = parse(render_ics(northwind, later))
    assert first["UID"] == second["UID"]
    assert second.decoded("DTSTAMP") == later


def test_now_in_another_zone_is_written_in_utc(northwind: EventRecord) -> None:
    from zoneinfo import ZoneInfo

    now = datetime(2026, 10, 29, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    assert b"DTSTAMP:20261029T130000Z" in render_ics(northwind, now)


def test_a_naive_now_is_refused(northwind: EventRecord) -> None:
    with pytest.raises(ValueError, match="aware"):
        render_ics(northwind, datetime(2026, 10, 29, 13, 0))


@pytest.mark.parametrize(
    ("starts_at", "timezone", "utc"),
    [
        # After the U.S. fall-back of November 1, 2026: EST, UTC-5.
        ("2026-11-02T09:00:00", "America/New_York", datetime(2026, 11, 2, 14, 0, tzinfo=UTC)),
        # The Saturday before it: still EDT, UTC-4.
        ("2026-10-31T09:00:00", "America/New_York", datetime(2026, 10, 31, 13, 0, tzinfo=UTC)),
        # London before its own change on March 29, the U.S. already on EDT.
        ("2026-03-10T14:00:00", "Europe/London", datetime(2026, 3, 10, 14, 0, tzinfo=UTC)),
        ("2026-04-07T14:00:00", "Europe/London", datetime(2026, 4, 7, 13, 0, tzinfo=UTC)),
        ("2026-07-15T13:30:00", "America/Phoenix", datetime(2026, 7, 15, 20, 30, tzinfo=UTC)),
        ("2026-11-05T08:00:00", "Asia/Tokyo", datetime(2026, 11, 4, 23, 0, tzinfo=UTC)),
    ],
)
def test_utc_start_across_clock_changes(
    make_record: MakeRecord, starts_at: str, timezone: str, utc: datetime
) -> None:
    record = make_record(event={"starts_at": starts_at, "timezone": timezone, "replay_until": None})
    _, event = parse(render_ics(record, NOW))
    assert event.decoded("DTSTART") == utc
    assert event.decoded("DTEND") == utc + timedelta(minutes=60)
