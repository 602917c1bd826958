"""Times, zones and dates as a U.S. release prints them."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from callbridge.announce.timefmt import (
    clock,
    dateline_date,
    is_us_zone,
    long_date,
    start_phrase,
    weekday_date,
    zone_label,
)


def at(timezone: str, year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(timezone))


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (time(16, 30), "4:30 p.m."),
        (time(9, 0), "9:00 a.m."),
        (time(9, 5), "9:05 a.m."),
        (time(12, 0), "noon"),
        (time(12, 1), "12:01 p.m."),
        (time(12, 30), "12:30 p.m."),
        (time(0, 30), "12:30 a.m."),
        # Midnight stays numeric: "midnight on Tuesday" is read as Tuesday's end.
        (time(0, 0), "12:00 a.m."),
        (time(23, 59), "11:59 p.m."),
        (time(11, 59), "11:59 a.m."),
    ],
)
def test_clock(moment: time, expected: str) -> None:
    assert clock(moment) == expected


def test_dates() -> None:
    assert long_date(date(2011, 5, 5)) == "May 5, 2011"
    assert weekday_date(date(2011, 4, 28)) == "Thursday, April 28, 2011"
    assert dateline_date(date(2011, 4, 21)) == "Apr 21, 2011"
    assert dateline_date(date(2026, 9, 3)) == "Sep 3, 2026"


@pytest.mark.parametrize(
    ("timezone", "fields", "label"),
    [
        ("America/New_York", (2026, 1, 15, 9), "ET"),
        ("America/New_York", (2026, 7, 15, 9), "ET"),
        ("America/Detroit", (2026, 7, 15, 9), "ET"),
        ("America/Indiana/Indianapolis", (2026, 1, 15, 9), "ET"),
        ("America/Indiana/Knox", (2026, 1, 15, 9), "CT"),
        ("America/Kentucky/Louisville", (2026, 1, 15, 9), "ET"),
        ("America/Chicago", (2026, 7, 15, 9), "CT"),
        ("America/Denver", (2026, 1, 15, 9), "MT"),
        # Arizona keeps MST all summer; a U.S. release still says MT.
        ("America/Phoenix", (2026, 7, 15, 9), "MT"),
        ("America/Los_Angeles", (2026, 7, 15, 9), "PT"),
        ("America/Anchorage", (2026, 7, 15, 9), "AKT"),
        ("Pacific/Honolulu", (2026, 7, 15, 9), "HT"),
        ("America/Adak", (2026, 7, 15, 9), "HT"),
        # Links to U.S. zones are U.S. zones.
        ("US/Eastern", (2026, 1, 15, 9), "ET"),
        ("US/Pacific", (2026, 1, 15, 9), "PT"),
        ("EST5EDT", (2026, 1, 15, 9), "ET"),
        ("Europe/London", (2026, 1, 15, 9), "GMT"),
        ("Europe/London", (2026, 7, 15, 9), "BST"),
        ("Europe/Paris", (2026, 1, 15, 9), "CET"),
        ("Europe/Paris", (2026, 7, 15, 9), "CEST"),
        ("Asia/Tokyo", (2026, 7, 15, 9), "JST"),
        ("Asia/Singapore", (2026, 7, 15, 9), "UTC+8"),
        ("America/Sao_Paulo", (2026, 7, 15, 9), "UTC-3"),
        ("Asia/Kathmandu", (2026, 7, 15, 9), "UTC+5:45"),
        ("UTC", (2026, 7, 15, 9), "UTC"),
        # Same abbreviation and offset as a U.S. zone at that moment: the U.S. label.
        ("America/Toronto", (2026, 7, 15, 9), "ET"),
        ("America/Vancouver", (2026, 1, 15, 9), "PT"),
        # Saskatchewan keeps CST while Chicago is on CDT: not Central time then.
        ("America/Regina", (2026, 7, 15, 9), "CST"),
        # Shanghai's "CST" is China Standard Time, nothing to do with Chicago.
        ("Asia/Shanghai", (2026, 1, 15, 9), "CST"),
    ],
)
def test_zone_label(timezone: str, fields: tuple[int, int, int, int], label: str) -> None:
    assert zone_label(at(timezone, *fields), timezone) == label


def test_us_zone_membership() -> None:
    assert is_us_zone("America/Phoenix")
    assert is_us_zone("America/North_Dakota/Beulah")
    assert not is_us_zone("America/Toronto")
    assert not is_us_zone("Asia/Shanghai")


def test_start_phrase_like_the_seed() -> None:
    moment = at("America/New_York", 2011, 4, 28, 16, 30)
    assert start_phrase(moment, "America/New_York") == "4:30 p.m. ET on Thursday, April 28, 2011"


def test_start_phrase_shows_the_event_zone_whatever_the_input_zone() -> None:
    moment = at("America/New_York", 2011, 4, 28, 16, 30).astimezone(ZoneInfo("UTC"))
    assert start_phrase(moment, "America/Los_Angeles") == (
        "1:30 p.m. PT on Thursday, April 28, 2011"
    )


def test_noon() -> None:
    moment = at("America/Chicago", 2026, 2, 3, 12, 0)
    assert start_phrase(moment, "America/Chicago") == "noon CT on Tuesday, February 3, 2026"


def test_phoenix_in_summer_is_three_hours_behind_eastern() -> None:
    moment = at("America/Phoenix", 2026, 7, 15, 13, 30)
    assert start_phrase(moment, "America/Phoenix") == "1:30 p.m. MT on Wednesday, July 15, 2026"
    assert moment.astimezone(ZoneInfo("America/New_York")).hour == 16


def test_honolulu() -> None:
    moment = at("Pacific/Honolulu", 2026, 7, 15, 9, 5)
    assert start_phrase(moment, "Pacific/Honolulu") == "9:05 a.m. HT on Wednesday, July 15, 2026"


def test_london_gives_eastern_in_parentheses() -> None:
    moment = at("Europe/London", 2026, 3, 3, 9, 0)
    assert start_phrase(moment, "Europe/London") == (
        "9:00 a.m. GMT (4:00 a.m. ET) on Tuesday, March 3, 2026"
    )


def test_london_between_the_us_and_uk_clock_changes() -> None:
    # The U.S. moved to EDT on March 8, 2026, the U.K. moves on March 29:
    # for those three weeks London is four hours ahead, not five.
    moment = at("Europe/London", 2026, 3, 10, 14, 0)
    assert start_phrase(moment, "Europe/London") == (
        "2:00 p.m. GMT (10:00 a.m. ET) on Tuesday, March 10, 2026"
    )


def test_tokyo_gives_the_eastern_date_when_it_differs() -> None:
    moment = at("Asia/Tokyo", 2026, 3, 5, 10, 0)
    assert start_phrase(moment, "Asia/Tokyo") == (
        "10:00 a.m. JST (8:00 p.m. ET on Wednesday, March 4, 2026) on Thursday, March 5, 2026"
    )


def test_numeric_zone() -> None:
    moment = at("Asia/Singapore", 2026, 8, 6, 21, 0)
    assert start_phrase(moment, "Asia/Singapore") == (
        "9:00 p.m. UTC+8 (9:00 a.m. ET) on Thursday, August 6, 2026"
    )


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        start_phrase(datetime(2026, 3, 3, 9, 0), "Europe/London")
