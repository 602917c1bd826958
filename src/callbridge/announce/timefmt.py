"""Dates and times as a U.S. news release writes them.

A release is read by U.S. investors first, so every start time is given in a
U.S. zone label ("4:30 p.m. ET") and, when the call is held in a zone outside
the U.S., in that zone's own abbreviation followed by the Eastern time in
parentheses ("9:00 a.m. GMT (4:00 a.m. ET)").

Choices, all pinned by tests:

* Minutes are always printed ("9:00 a.m.", not AP's "9 a.m."), as the seed
  release does.
* 12:00 p.m. prints as "noon" (AP style). Midnight stays "12:00 a.m.": "at
  midnight on Tuesday" is read by many as the end of Tuesday, and a dial-in
  time must not be ambiguous.
* Long dates are "Thursday, April 28, 2011"; the dateline uses the seed's
  abbreviated month without a period, "Apr 21, 2011".
* A zone outside the U.S. whose abbreviation and offset match those of a U.S.
  zone at that moment (Toronto in EDT, Vancouver in PST) prints the U.S.
  label alone: the time is exactly Eastern (Pacific, ...) time then, and a
  parenthesis repeating it would only add noise.
"""

from __future__ import annotations

import importlib.resources
import re
from datetime import date, datetime, time
from functools import cache
from zoneinfo import ZoneInfo

EASTERN = ZoneInfo("America/New_York")

# What a U.S. release calls each U.S. zone, whatever the season.
_US_LABELS = {
    "EST": "ET",
    "EDT": "ET",
    "CST": "CT",
    "CDT": "CT",
    "MST": "MT",
    "MDT": "MT",
    "PST": "PT",
    "PDT": "PT",
    "AKST": "AKT",
    "AKDT": "AKT",
    "HST": "HT",
    "HDT": "HT",
}

# Zones outside the U.S. are compared with these at the call's instant.
_US_REFERENCE_ZONES = tuple(
    ZoneInfo(key)
    for key in (
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Phoenix",
        "America/Los_Angeles",
        "America/Anchorage",
        "Pacific/Honolulu",
    )
)

# The POSIX-style zones follow U.S. rules but are neither in zone.tab nor links.
_US_RULE_ZONES = frozenset({"EST5EDT", "CST6CDT", "MST7MDT", "PST8PDT"})

# English names whatever the process locale: strftime's %B follows LC_TIME.
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_NUMERIC_ABBREVIATION = re.compile(r"^([+-])(\d{2})(\d{2})?$")


@cache
def us_zones() -> frozenset[str]:
    """Every IANA key that names a U.S. zone, links ("US/Eastern") included.

    Read from the tz database's own country table, so a new U.S. zone needs no
    code change.
    """
    files = importlib.resources.files("tzdata.zoneinfo")
    canonical = {
        fields[2]
        for line in (files / "zone.tab").read_text(encoding="utf-8").splitlines()
        if not line.startswith("#") and len(fields := line.split("\t")) >= 3 and fields[0] == "US"
    }
    links = {
        fields[2]
        for line in (files / "tzdata.zi").read_text(encoding="utf-8").splitlines()
        if line.startswith("L ") and len(fields := line.split()) == 3 and fields[1] in canonical
    }
    return frozenset(canonical | links | _US_RULE_ZONES)


def is_us_zone(timezone: str) -> bool:
    """True when ``timezone`` (an IANA key) is a U.S. zone."""
    return timezone in us_zones()


def clock(moment: datetime | time) -> str:
    """The time of day: "4:30 p.m.", "9:05 a.m.", "noon", "12:30 a.m."."""
    if moment.hour == 12 and moment.minute == 0:
        return "noon"
    hour = moment.hour % 12 or 12
    meridiem = "a.m." if moment.hour < 12 else "p.m."
    return f"{hour}:{moment.minute:02d} {meridiem}"


def long_date(day: date) -> str:
    """A date in running text: "April 28, 2011"."""
    return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"


def weekday_date(day: date) -> str:
    """A date with its weekday: "Thursday, April 28, 2011"."""
    return f"{_WEEKDAYS[day.weekday()]}, {long_date(day)}"


def dateline_date(day: date) -> str:
    """The dateline's date, abbreviated as in the seed release: "Apr 21, 2011"."""
    return f"{_MONTHS[day.month - 1][:3]} {day.day}, {day.year}"


def _numeric_label(abbreviation: str) -> str:
    # tzdata writes "+08" or "+0545" where a zone has no accepted abbreviation.
    match = _NUMERIC_ABBREVIATION.match(abbreviation)
    if match is None:
        return abbreviation
    sign, hours, minutes = match.group(1), int(match.group(2)), match.group(3)
    if hours == 0 and (minutes is None or minutes == "00"):
        return "UTC"
    suffix = f":{minutes}" if minutes and minutes != "00" else ""
    return f"UTC{sign}{hours}{suffix}"


def _matching_us_label(local: datetime) -> str | None:
    abbreviation = local.tzname()
    offset = local.utcoffset()
    if abbreviation not in _US_LABELS:
        return None
    for zone in _US_REFERENCE_ZONES:
        reference = local.astimezone(zone)
        if reference.tzname() == abbreviation and reference.utcoffset() == offset:
            return _US_LABELS[abbreviation]
    return None


def zone_label(moment: datetime, timezone: str) -> str:
    """The label printed after a time in ``timezone`` at ``moment`` (aware).

    "ET", "CT", "MT", "PT", "AKT", "HT" for U.S. zones (and for zones keeping
    the same time as one of them at that moment); otherwise the zone's own
    abbreviation ("GMT", "BST", "CEST", "JST"), or "UTC+8" where the tz
    database has none.
    """
    local = _aware(moment).astimezone(ZoneInfo(timezone))
    abbreviation = local.tzname() or ""
    if is_us_zone(timezone) and abbreviation in _US_LABELS:
        return _US_LABELS[abbreviation]
    return _matching_us_label(local) or _numeric_label(abbreviation)


def needs_eastern(moment: datetime, timezone: str) -> bool:
    """True when a time in ``timezone`` must also be given in Eastern time."""
    return zone_label(moment, timezone) not in _US_LABELS.values()


def start_phrase(moment: datetime, timezone: str) -> str:
    """The start of a call as a release states it, without the leading "at".

    ``moment`` is aware (any zone); it is shown in ``timezone``:
    "4:30 p.m. ET on Thursday, April 28, 2011";
    "9:00 a.m. GMT (4:00 a.m. ET) on Tuesday, March 3, 2026";
    "10:00 a.m. JST (8:00 p.m. ET on Wednesday, March 4, 2026) on Thursday,
    March 5, 2026" when the Eastern date is another day.
    """
    local = _aware(moment).astimezone(ZoneInfo(timezone))
    label = zone_label(local, timezone)
    text = f"{clock(local)} {label}"
    if needs_eastern(local, timezone):
        eastern = local.astimezone(EASTERN)
        in_eastern = f"{clock(eastern)} {zone_label(eastern, 'America/New_York')}"
        if eastern.date() != local.date():
            in_eastern += f" on {weekday_date(eastern.date())}"
        text += f" ({in_eastern})"
    return f"{text} on {weekday_date(local.date())}"


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a start time must be aware (carry its zone or offset)")
    return moment
