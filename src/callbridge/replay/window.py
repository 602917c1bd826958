"""When a replay may be heard: from the call's end through the last day of ``replay_until``.

``replay_until`` is a calendar date in the event's own zone, the last day
inclusive, so the window closes at the first instant of the following day
there: local midnight, or whenever that day really begins where a clock
change skips midnight. Both ends are kept in UTC: two aware datetimes that
share a ``tzinfo`` are compared by wall clock alone, which is wrong in the
hour a fall-back change repeats.

The window opens when the recording exists, i.e. when the bridge has ended
the call and assembled ``recording.wav``; the caller passes that moment as
``ended_at`` (None while there is none).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from callbridge.announce.timefmt import long_date
from callbridge.events.schema import EventRecord, EventState
from callbridge.media.prompts import PromptName

# States in which the call is over and its recording may be replayed.
_OVER = frozenset({EventState.ENDED, EventState.ARCHIVED})


class ReplayStatus(enum.Enum):
    NOT_OFFERED = "not_offered"  # the event has no replay_until: no replay at all
    NOT_YET = "not_yet"  # the call has not ended, or its recording is not ready
    OPEN = "open"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ReplayWindow:
    """The replay window of one event; build it with ``replay_window``."""

    timezone: str
    last_day: date | None  # replay_until: the last day, inclusive, in ``timezone``
    opens: datetime | None  # UTC; None while there is no recording to play
    closes: datetime | None  # UTC; None when no replay is offered

    @property
    def closes_local(self) -> datetime | None:
        """``closes`` on the event's own clock, for display."""
        return None if self.closes is None else self.closes.astimezone(ZoneInfo(self.timezone))

    def status(self, now: datetime) -> ReplayStatus:
        """Where ``now`` (aware) falls: OPEN from ``opens`` up to, not including, ``closes``."""
        if now.tzinfo is None:
            raise ValueError("compare aware datetimes only")
        if self.closes is None:
            return ReplayStatus.NOT_OFFERED
        moment = now.astimezone(UTC)
        if moment >= self.closes:
            return ReplayStatus.EXPIRED
        if self.opens is None or moment < self.opens:
            return ReplayStatus.NOT_YET
        return ReplayStatus.OPEN

    def sentence(self, now: datetime) -> str:
        """One sentence for a page: "The replay is available through November 12, 2026."."""
        status = self.status(now)
        if status is ReplayStatus.NOT_OFFERED or self.last_day is None:
            return "No replay is offered for this call."
        through = long_date(self.last_day)
        if status is ReplayStatus.OPEN:
            return f"The replay is available through {through}."
        if status is ReplayStatus.EXPIRED:
            return f"The replay expired on {through}."
        return f"The replay will be available after the call, through {through}."


# What a caller on the replay number hears when the window is not open.
REFUSAL_PROMPTS: dict[ReplayStatus, PromptName] = {
    ReplayStatus.NOT_YET: PromptName.REPLAY_NOT_YET,
    ReplayStatus.EXPIRED: PromptName.REPLAY_EXPIRED,
    ReplayStatus.NOT_OFFERED: PromptName.REPLAY_EXPIRED,
}


def day_ends(day: date, timezone: str) -> datetime:
    """The first instant (UTC) at which ``day`` is over in ``timezone``: midnight after it.

    ``fold=0`` reads a midnight that a fall-back change repeats as the first
    of the two, and one that a spring-forward change skips with the offset
    before the change, which is the instant the clocks jump: in every zone of
    the tz database the jumps that skip midnight start at it.
    """
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(timezone))
    return midnight.astimezone(UTC)


def replay_window(
    *,
    replay_until: date | None,
    timezone: str,
    state: EventState,
    ended_at: datetime | None,
) -> ReplayWindow:
    """The window of an event with these fields.

    ``ended_at`` is when the call ended and its recording became playable
    (aware), or None while there is none. The window opens only for an event
    the bridge has ended (ENDED or ARCHIVED) with an ``ended_at``.
    """
    if ended_at is not None and ended_at.tzinfo is None:
        raise ValueError("ended_at must be aware")
    opens = ended_at.astimezone(UTC) if ended_at is not None and state in _OVER else None
    closes = day_ends(replay_until, timezone) if replay_until is not None else None
    return ReplayWindow(timezone=timezone, last_day=replay_until, opens=opens, closes=closes)


def replay_window_of(record: EventRecord, ended_at: datetime | None) -> ReplayWindow:
    """``replay_window`` for a stored event."""
    return replay_window(
        replay_until=record.replay_until,
        timezone=record.timezone,
        state=record.state,
        ended_at=ended_at,
    )
