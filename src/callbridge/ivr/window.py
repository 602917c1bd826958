"""When a conference takes callers: from 30 minutes before the start until two hours after the end.

Early callers (inside the 30 minutes, before the host opens the call) are
let in to wait on hold; earlier than that they are told to call back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from callbridge.events.schema import EventState


class Window(enum.Enum):
    TOO_EARLY = "too_early"
    EARLY_HOLD = "early_hold"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class WindowRules:
    opens_before: timedelta = timedelta(minutes=30)
    closes_after_end: timedelta = timedelta(hours=2)


def conference_window(
    starts_at: datetime,
    duration: timedelta,
    state: EventState,
    now: datetime,
    rules: WindowRules = WindowRules(),
) -> Window:
    """Whether a caller with a valid live-call passcode may join now, and how."""
    if now.tzinfo is None or starts_at.tzinfo is None:
        raise ValueError("compare aware datetimes only")
    if state in (EventState.ENDED, EventState.ARCHIVED):
        return Window.CLOSED
    if now >= starts_at + duration + rules.closes_after_end:
        return Window.CLOSED
    if state is EventState.LIVE:
        return Window.OPEN
    if now < starts_at - rules.opens_before:
        return Window.TOO_EARLY
    return Window.EARLY_HOLD
