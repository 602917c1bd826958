"""Passcode guessing is slowed, then refused, per caller identity; never per trunk.

Failures are counted per caller identity (``sip/identity.py``: what the
trusted trunk asserts, never the display name, never the trunk's address),
and the check at INVITE time reads the same key the failures were counted
under. Each identity has a standing, an explicit state machine:

- CLEAR: no failure within ``window`` seconds.
- WATCHED: fewer than ``slow_after`` failures in the window.
- SLOWED: the answer to each further attempt waits, ``first_delay`` seconds
  doubling with every failure up to ``max_delay``; the wait is the same
  whether the code is right or wrong, so it tells nothing, and attempts
  from parallel calls queue behind each other.
- REFUSED: ``refuse_after`` failures in the window: calls from the identity
  are refused (403 at the INVITE, a goodbye on a call in progress) for
  ``refusal`` seconds; then the identity is CLEAR again.

A right passcode does not clear the count: the listener passcode is printed
in the press release, so clearing on success would let a guesser reset
their count at will. Failures age out of the window instead.

Moving into SLOWED or REFUSED returns an ``Alert`` for the operator.
Memory is bounded: beyond ``max_identities`` the identity touched longest
ago is forgotten. Pure: ``now`` is always a parameter.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field


class Standing(enum.Enum):
    CLEAR = "clear"
    WATCHED = "watched"
    SLOWED = "slowed"
    REFUSED = "refused"


class Trigger(enum.Enum):
    FAILURE = "failure"  # a wrong passcode
    AGED = "aged"  # failures left the window, or the refusal ran out


# standing → trigger → the standings it may move to.
TRANSITIONS: dict[Standing, dict[Trigger, frozenset[Standing]]] = {
    Standing.CLEAR: {
        Trigger.FAILURE: frozenset({Standing.WATCHED, Standing.SLOWED, Standing.REFUSED}),
        Trigger.AGED: frozenset({Standing.CLEAR}),
    },
    Standing.WATCHED: {
        Trigger.FAILURE: frozenset({Standing.WATCHED, Standing.SLOWED, Standing.REFUSED}),
        Trigger.AGED: frozenset({Standing.CLEAR, Standing.WATCHED}),
    },
    Standing.SLOWED: {
        Trigger.FAILURE: frozenset({Standing.SLOWED, Standing.REFUSED}),
        Trigger.AGED: frozenset({Standing.CLEAR, Standing.WATCHED, Standing.SLOWED}),
    },
    Standing.REFUSED: {
        # A call that was in the IVR when its identity was refused may still fail.
        Trigger.FAILURE: frozenset({Standing.REFUSED}),
        Trigger.AGED: frozenset({Standing.CLEAR, Standing.REFUSED}),
    },
}


class GuardTransitionError(Exception):
    """A move the standing table does not list (a bug, not a caller's doing)."""


@dataclass(frozen=True)
class GuardRules:
    """How the guard counts; ``max_failures`` is ``serve --max-passcode-failures``.

    ``max_failures`` failures within ``window`` seconds refuse an identity.
    """

    max_failures: int = 6
    # Failures before answers are slowed; None: half of max_failures (at least 1).
    slow_after: int | None = None
    window: float = 600.0
    first_delay: float = 2.0
    max_delay: float = 16.0
    refusal: float = 900.0
    max_identities: int = 10_000

    @property
    def slow_threshold(self) -> int:
        if self.slow_after is not None:
            return max(1, min(self.slow_after, self.max_failures))
        return max(1, self.max_failures // 2)


@dataclass(frozen=True)
class Alert:
    """An identity was slowed or refused: for the audit trail and the console."""

    identity: str
    standing: Standing
    failures: int
    at: float
    until: float | None = None  # when a refusal ends
    delay: float = 0.0  # the wait before the next answer, when slowed


@dataclass
class _Record:
    standing: Standing = Standing.CLEAR
    failures: deque[float] = field(default_factory=deque)
    refused_until: float = 0.0
    next_answer: float = 0.0  # when a slowed identity's queued attempts are answered


class PasscodeGuard:
    """Counts wrong passcodes per caller identity; says who waits and who is refused."""

    def __init__(self, rules: GuardRules = GuardRules()) -> None:
        self.rules = rules
        self._records: OrderedDict[str, _Record] = OrderedDict()

    # -- the public surface ----------------------------------------------------

    def standing(self, identity: str, now: float) -> Standing:
        """The identity's standing at ``now`` (failures aged out first)."""
        record = self._records.get(identity)
        if record is None:
            return Standing.CLEAR
        self._age(identity, record, now)
        return record.standing

    def is_refused(self, identity: str, now: float) -> bool:
        """Call at the INVITE and before each lookup: True means refuse this caller."""
        return self.standing(identity, now) is Standing.REFUSED

    def refused_until(self, identity: str) -> float | None:
        record = self._records.get(identity)
        if record is None or record.standing is not Standing.REFUSED:
            return None
        return record.refused_until

    def admit(self, identity: str, now: float) -> float:
        """Call once per attempt, before the lookup: the seconds to wait before answering.

        0 unless the identity is slowed. A slowed identity's attempts queue
        behind each other, so parallel calls wait as long as serial ones.
        The wait is the same for a right and a wrong code.
        """
        record = self._records.get(identity)
        if record is None:
            return 0.0
        self._age(identity, record, now)
        if record.standing is not Standing.SLOWED:
            return 0.0
        answer_at = max(now, record.next_answer) + self._delay_for(len(record.failures))
        record.next_answer = answer_at
        return answer_at - now

    def record_failure(self, identity: str, now: float) -> Alert | None:
        """Count a wrong passcode; returns an Alert when this failure slows or refuses."""
        record = self._records.pop(identity, None) or _Record()
        self._records[identity] = record  # the most recently touched last
        self._age(identity, record, now)
        before = record.standing
        record.failures.append(now)
        while len(record.failures) > self.rules.max_failures:
            record.failures.popleft()
        count = len(record.failures)
        if before is Standing.REFUSED:
            target = Standing.REFUSED
        elif count >= self.rules.max_failures:
            target = Standing.REFUSED
            record.refused_until = now + self.rules.refusal
        elif count >= self.rules.slow_threshold:
            target = Standing.SLOWED
        else:
            target = Standing.WATCHED
        self._move(record, Trigger.FAILURE, target)
        self._trim()
        if target is before:
            return None
        if target is Standing.REFUSED:
            return Alert(identity, target, count, now, until=record.refused_until)
        if target is Standing.SLOWED:
            return Alert(identity, target, count, now, delay=self._delay_for(count))
        return None

    def __len__(self) -> int:
        return len(self._records)

    # -- internals -------------------------------------------------------------

    def _delay_for(self, failures: int) -> float:
        steps = max(0, failures - self.rules.slow_threshold)
        return float(min(self.rules.max_delay, self.rules.first_delay * 2**steps))

    def _move(self, record: _Record, trigger: Trigger, target: Standing) -> None:
        if target not in TRANSITIONS[record.standing][trigger]:
            raise GuardTransitionError(
                f"{record.standing.name} cannot move to {target.name} on {trigger.name}"
            )
        record.standing = target

    def _age(self, identity: str, record: _Record, now: float) -> None:
        if record.standing is Standing.REFUSED:
            if now < record.refused_until:
                return
            record.failures.clear()
            self._move(record, Trigger.AGED, Standing.CLEAR)
            return
        while record.failures and record.failures[0] <= now - self.rules.window:
            record.failures.popleft()
        count = len(record.failures)
        if count == 0:
            target = Standing.CLEAR
        elif count >= self.rules.slow_threshold:
            target = Standing.SLOWED
        else:
            target = Standing.WATCHED
        self._move(record, Trigger.AGED, target)

    def _trim(self) -> None:
        while len(self._records) > self.rules.max_identities:
            self._records.popitem(last=False)


class AlertBoard:
    """The latest alerts, filed under the events a guesser's number reaches.

    The console of each event shows its alerts (``Bridge.live``); only the
    newest ``limit`` are kept.
    """

    def __init__(self, limit: int = 200) -> None:
        self._posted: deque[tuple[frozenset[int], Alert]] = deque(maxlen=limit)

    def post(self, alert: Alert, event_ids: Iterable[int]) -> None:
        self._posted.append((frozenset(event_ids), alert))

    def for_event(self, event_id: int, newest: int = 20) -> list[Alert]:
        """The event's alerts, newest first."""
        found = [alert for ids, alert in reversed(self._posted) if event_id in ids]
        return found[:newest]
