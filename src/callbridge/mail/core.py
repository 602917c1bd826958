"""What the outbox does next, decided without IO: ``now`` in, a decision out.

An outbox row moves through a table (``TRANSITIONS``): queued → sending
(claimed by one sender, for ``LEASE``) → sent, or back to queued with a later
``due_at`` (a 4xx, a refused connection, a timeout), or failed (a 5xx, or
``MAX_ATTEMPTS`` tries). A sending row whose lease ran out (its sender died
mid-send) is claimed again: sending → sending. Anything the table does not
list raises ``IllegalTransition``.

Reminders: an event's offsets (minutes before the start) are each sent once
to a registrant who consented, only if the moment came after they
registered (nobody who registers two hours before the call gets the "24
hours to go" note), and only the latest one that has come: a sender that
was down for a day sends the 15-minute reminder, not both.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from callbridge.store.outbox import OutboxState

# A claim lasts this long: longer than a whole SMTP exchange can (``smtp.TIMEOUT`` × its steps),
# so a row is claimed again only when its sender is surely gone.
LEASE = timedelta(minutes=5)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
# 30 s doubling to an hour, then hourly: about 14 hours of an SMTP outage before a message fails.
MAX_ATTEMPTS = 20


class IllegalTransition(Exception):
    pass


TRANSITIONS: dict[OutboxState, frozenset[OutboxState]] = {
    OutboxState.QUEUED: frozenset({OutboxState.SENDING, OutboxState.CANCELLED}),
    OutboxState.SENDING: frozenset(
        {OutboxState.SENT, OutboxState.QUEUED, OutboxState.FAILED, OutboxState.SENDING}
    ),
    OutboxState.SENT: frozenset(),
    OutboxState.FAILED: frozenset(),
    OutboxState.CANCELLED: frozenset(),
}


def move(state: OutboxState, to: OutboxState) -> OutboxState:
    """``to``, if the table allows it from ``state``; else ``IllegalTransition``."""
    if to not in TRANSITIONS[state]:
        raise IllegalTransition(f"an outbox row cannot go from {state} to {to}")
    return to


class Outcome(enum.Enum):
    """How one attempt ended, as the SMTP adapter reports it."""

    ACCEPTED = "accepted"  # 2xx to the end of DATA
    TRANSIENT = "transient"  # 4xx: try this message again later
    # No answer (refused, dropped, timed out): the relay is away, not this message at fault.
    UNREACHABLE = "unreachable"
    PERMANENT = "permanent"  # 5xx: this message will never go


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    answer: str  # the server's reply ("250 2.0.0 Ok"), or what went wrong


@dataclass(frozen=True)
class Settle:
    """What to write for a row after an attempt."""

    state: OutboxState
    due_at: datetime | None  # the next try, when ``state`` is queued
    answer: str


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed try: 30 s doubling, at most an hour."""
    if attempts < 1:
        raise ValueError("backoff follows a try")
    # Capped before the power, so a large count cannot overflow a timedelta.
    wait: timedelta = FIRST_RETRY * (2 ** min(attempts - 1, 16))
    return min(wait, LONGEST_RETRY)


def settle(attempts: int, attempt: Attempt, now: datetime) -> Settle:
    """The row's next state after its ``attempts``-th try (counted at the claim) ended so."""
    if attempt.outcome is Outcome.ACCEPTED:
        return Settle(move(OutboxState.SENDING, OutboxState.SENT), None, attempt.answer)
    if attempt.outcome is Outcome.PERMANENT or attempts >= MAX_ATTEMPTS:
        return Settle(move(OutboxState.SENDING, OutboxState.FAILED), None, attempt.answer)
    return Settle(
        move(OutboxState.SENDING, OutboxState.QUEUED), now + backoff(attempts), attempt.answer
    )


def classify(code: int) -> Outcome:
    """An SMTP reply code as an outcome: 2xx accepted, 5xx permanent, anything else transient."""
    if 200 <= code < 300:
        return Outcome.ACCEPTED
    if 500 <= code < 600:
        return Outcome.PERMANENT
    return Outcome.TRANSIENT


def parse_offsets(text: str) -> tuple[int, ...]:
    """Reminder offsets as stored ("1440,15"), largest first; raises ValueError on others."""
    offsets = sorted({int(part) for part in text.split(",") if part.strip()}, reverse=True)
    for minutes in offsets:
        if not 1 <= minutes <= 60 * 24 * 30:
            raise ValueError("a reminder is 1 minute to 30 days before the start")
    if len(offsets) > 5:
        raise ValueError("at most 5 reminders")
    return tuple(offsets)


def parse_duration(text: str) -> int:
    """ "24h", "15m", "2d" or "90" (minutes) as minutes; raises ValueError otherwise."""
    value = text.strip().lower()
    units = {"m": 1, "h": 60, "d": 1440}
    scale = units.get(value[-1:])
    number = value[:-1] if scale is not None else value
    if not number.isdigit():
        raise ValueError(f"{text!r} is not a duration such as 24h or 15m")
    return int(number) * (scale or 1)


def reminders_setting(durations: list[str]) -> str:
    """Durations as people write them (["24h", "15m"]) as stored ("1440,15"); ValueError if bad."""
    minutes = [parse_duration(text) for text in durations if text.strip()]
    return ",".join(str(m) for m in parse_offsets(",".join(map(str, minutes))))


def show_offset(minutes: int) -> str:
    """An offset as people write it: 1440 → "24h", 15 → "15m"."""
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def reminder_due(
    starts_at: datetime, offsets: tuple[int, ...], registered_at: datetime, now: datetime
) -> int | None:
    """The one reminder (its offset, in minutes) a registrant should have by ``now``, or None.

    The latest offset whose moment has come, if it came after they
    registered and the call has not begun. Whether it was already sent is
    the outbox's to know (its ``dedupe_key``).
    """
    if now >= starts_at:
        return None
    due = None
    for minutes in sorted(offsets, reverse=True):
        moment = starts_at - timedelta(minutes=minutes)
        if moment <= now:
            due = minutes if registered_at <= moment else None
    return due


def describe_offset(minutes: int) -> str:
    """How a reminder names its lead time: "24 hours", "15 minutes", "1 hour 30 minutes"."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if mins:
        parts.append(f"{mins} minute{'s' if mins != 1 else ''}")
    if days == 1 and not hours and not mins:
        return "24 hours"
    return " ".join(parts)
