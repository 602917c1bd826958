"""Last quarter's call as this quarter's draft: the editor's "Duplicate".

Dates move on three months (a month's last day stays its last day: the
period ended September 30 becomes the period ended December 31), the quarter
named in the title and the period moves on one ("Third Quarter" → "Fourth
Quarter"; after the fourth, the first of the next year), passcodes are left
to be generated anew. Speakers, glossary, numbers and contacts are kept.
Pure: fields in, fields out.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import date

from callbridge.events.form import START_DATE, Values

MONTHS = tuple(calendar.month_name)[1:]
_ORDINALS = ("First", "Second", "Third", "Fourth")
_QUARTER_WORD = re.compile(r"\b(First|Second|Third|Fourth)(\s+Quarter)\b", re.IGNORECASE)
_QUARTER_SHORT = re.compile(r"\bQ([1-4])\b")
_YEAR = re.compile(r"\b(19[7-9]\d|2\d\d\d)\b")
_LONG_DATE = re.compile(rf"\b({'|'.join(MONTHS)}) (\d{{1,2}}), (\d{{4}})\b")
DATE_FIELDS = (START_DATE, "event.announced_on", "event.replay_until")
NEW_CODES = ("event.passcode", "event.speaker_passcode", "event.replay_passcode")


def add_quarter(day: date) -> date:
    """``day`` three months on; the last day of a month goes to the last day of its month."""
    month = day.month + 3
    year = day.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    last = calendar.monthrange(year, month)[1]
    was_last = day.day == calendar.monthrange(day.year, day.month)[1]
    return date(year, month, last if was_last else min(day.day, last))


def next_quarter_text(text: str) -> str:
    """The quarter named in ``text`` moved on one; after the fourth, the years too."""
    wrapped = False

    def word(match: re.Match[str]) -> str:
        nonlocal wrapped
        index = [o.lower() for o in _ORDINALS].index(match.group(1).lower())
        wrapped = wrapped or index == 3
        following = _ORDINALS[(index + 1) % 4]
        return following + match.group(2)

    def short(match: re.Match[str]) -> str:
        nonlocal wrapped
        quarter = int(match.group(1))
        wrapped = wrapped or quarter == 4
        return f"Q{quarter % 4 + 1}"

    moved = _QUARTER_SHORT.sub(short, _QUARTER_WORD.sub(word, text))
    if wrapped:
        moved = _YEAR.sub(lambda m: str(int(m.group(1)) + 1), moved)
    return moved


def _long_dates_on(text: str) -> str:
    def move(match: re.Match[str]) -> str:
        day = date(int(match.group(3)), MONTHS.index(match.group(1)) + 1, int(match.group(2)))
        moved = add_quarter(day)
        return f"{MONTHS[moved.month - 1]} {moved.day}, {moved.year}"

    try:
        return _LONG_DATE.sub(move, text)
    except ValueError:  # "February 31": leave the text as written
        return text


def next_quarter(values: Mapping[str, str]) -> Values:
    """The fields of a draft for the next quarter; passcodes blank, to be generated."""
    draft = dict(values)
    for key in DATE_FIELDS:
        try:
            draft[key] = add_quarter(date.fromisoformat(values.get(key, ""))).isoformat()
        except ValueError:
            continue
    draft["event.title"] = next_quarter_text(values.get("event.title", ""))
    period = values.get("event.period", "")
    # The period names its own end date; a quarter word there moves too, but no year.
    draft["event.period"] = _QUARTER_WORD.sub(
        lambda m: (
            _ORDINALS[([o.lower() for o in _ORDINALS].index(m.group(1).lower()) + 1) % 4]
            + m.group(2)
        ),
        _long_dates_on(period),
    )
    for key in NEW_CODES:
        draft[key] = ""
    return draft
