"""Guessing budgets: token buckets of wrong passcodes per dialled number and per trunk.

The mechanism behind ``ivr/guard.py``'s second layer; pure (``now`` is
always a parameter). Each budget (``Budget``) holds ``burst`` tokens and
gains one every ``interval`` seconds. Every answer on a number (and on a
trunk), right or wrong, from whoever, is scheduled against its bucket:

- while more than half the burst is left, answers are not slowed;
- below half, each answer waits longer as the bucket drains, up to one
  ``interval`` when it is empty;
- an answer is never given before the bucket holds a token for it, so once
  it is spent, answers come one ``interval`` apart, first come first
  answered (each bucket's schedule is a FIFO).

Every attempt reserves a token in each of its buckets when it is admitted,
before its code is checked (``reserve``); a wrong code keeps it
(``spend``), a right or unchecked one gives it back once answered
(``refund``). So no wait tells anything of a code not yet answered, its
own or another caller's. A number's schedule follows every answer on it
(the latest of all its buckets' times); a trunk's follows only its own:
one drained number must not hold up the trunk's other numbers. Whatever
the callers, the wrong codes answered on one number within any ``T``
seconds are at most ``burst + T / interval``, and so are the tokens a
trunk's wrong codes take. A token comes back only where that is exact
(``_refund``); otherwise it stays spent, on the safe side.

``spend`` reports a bucket that starts to slow answers, and again one that
runs empty (``Drained``); it re-arms once the bucket is full again. Memory
is bounded: beyond ``limit`` buckets, full ones are forgotten first (they
hold nothing), then the one touched longest ago.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

NUMBER = "number:"  # a dialled number's bucket key: "number:+19135550123"
TRUNK = "trunk:"  # a trunk network's: "trunk:192.0.2.0/24"


@dataclass(frozen=True)
class Budget:
    """A token bucket of wrong codes: ``burst`` at once, then one every ``interval`` seconds."""

    burst: int
    interval: float

    def __post_init__(self) -> None:
        if self.burst < 1 or not self.interval > 0:
            raise ValueError("a guessing budget needs a burst of at least 1 and an interval > 0")

    @property
    def slow_mark(self) -> float:
        """Below this many tokens left, every answer waits."""
        return self.burst / 2


@dataclass(frozen=True)
class Reservation:
    """The token an attempt holds in one bucket until it is spent or refunded."""

    key: str
    reserved: int  # the bucket's reservations, this one included
    near_full: int  # the bucket's near-full count just after it


@dataclass(frozen=True)
class Drained:
    """A bucket began to slow answers (or ran empty): for the moderator."""

    key: str
    spent: int  # wrong codes since it was last full
    delay: float  # the wait before its next answer (one interval when empty)


class _Stage(enum.IntEnum):
    QUIET = 0
    SLOWING = 1
    EMPTY = 2


@dataclass
class _Bucket:
    """One budget's schedule: the tokens left right after its latest scheduled answer."""

    level: float
    at: float  # the latest scheduled answer (the FIFO's tail)
    stage: _Stage = _Stage.QUIET  # what has been reported since it was last full
    spent: int = 0  # wrong codes since it was last full
    reserved: int = 0  # tokens ever reserved
    near_full: int = 0  # times the level stood above burst - 1 at a reservation

    def level_at(self, budget: Budget, when: float) -> float:
        """Tokens at ``when`` (not before the tail), if nothing more is reserved."""
        return min(float(budget.burst), self.level + (when - self.at) / budget.interval)


class GuessBudgets:
    """The buckets of every number and trunk; keys start with ``NUMBER`` or ``TRUNK``."""

    def __init__(self, number: Budget, trunk: Budget, limit: int = 1_000) -> None:
        self.number = number
        self.trunk = trunk
        self.limit = limit
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def reserve(self, keys: Sequence[str], now: float) -> tuple[float, tuple[Reservation, ...]]:
        """Reserve a token in each bucket for an attempt at ``now``: when to answer it."""
        buckets = [(key, self._budget(key), self._bucket(key, now)) for key in keys]
        scheduled = [self._schedule(bucket, budget, now) for _, budget, bucket in buckets]
        answer_at = max(scheduled, default=now)
        reservations: list[Reservation] = []
        for (key, budget, bucket), own in zip(buckets, scheduled, strict=True):
            at = answer_at if key.startswith(NUMBER) else own
            before = bucket.level_at(budget, at)
            if before > budget.burst - 1:
                bucket.near_full += 1
            bucket.level, bucket.at = before - 1.0, at
            bucket.reserved += 1
            reservations.append(Reservation(key, bucket.reserved, bucket.near_full))
        self._trim(now)
        return answer_at, tuple(reservations)

    def spend(self, reservations: Sequence[Reservation]) -> list[Drained]:
        """The code was wrong: its tokens stay spent. Reports buckets that now slow answers."""
        drained: list[Drained] = []
        for reservation in reservations:
            bucket = self._buckets.get(reservation.key)
            if bucket is None:
                continue
            bucket.spent += 1
            budget = self._budget(reservation.key)
            if bucket.level < 1.0 and bucket.stage < _Stage.EMPTY:
                bucket.stage = _Stage.EMPTY
                drained.append(Drained(reservation.key, bucket.spent, budget.interval))
            elif bucket.level < budget.slow_mark and bucket.stage < _Stage.SLOWING:
                bucket.stage = _Stage.SLOWING
                wait = max(0.0, self._schedule(bucket, budget, bucket.at) - bucket.at)
                drained.append(Drained(reservation.key, bucket.spent, round(wait, 3)))
        return drained

    def refund(self, reservations: Sequence[Reservation], now: float) -> None:
        """The code was right, or never checked: its tokens come back (where that is exact)."""
        for reservation in reservations:
            bucket = self._buckets.get(reservation.key)
            if bucket is not None:  # else forgotten while full: nothing to give back
                self._refund(bucket, self._budget(reservation.key), reservation, now)

    def left(self, key: str, now: float) -> float | None:
        """Tokens the bucket ``key`` has at ``now``; None: none is held for it (full)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return None
        return bucket.level_at(self._budget(key), max(now, bucket.at))

    def __len__(self) -> int:
        return len(self._buckets)

    def draining(self, now: float) -> dict[tuple[str, str], int]:
        """Budgets whose answers wait at ``now`` ("slowing") or come one per interval
        ("empty"), by kind ("number", "trunk"); reads only (for the metrics)."""
        counts = {
            (kind, state): 0 for kind in ("number", "trunk") for state in ("slowing", "empty")
        }
        for key, bucket in self._buckets.items():
            budget = self._budget(key)
            level = bucket.level_at(budget, max(now, bucket.at))
            kind = "number" if key.startswith(NUMBER) else "trunk"
            if level < 1.0:
                counts[kind, "empty"] += 1
            elif level < budget.slow_mark:
                counts[kind, "slowing"] += 1
        return counts

    # -- internals ------------------------------------------------------------------

    def _budget(self, key: str) -> Budget:
        return self.number if key.startswith(NUMBER) else self.trunk

    def _bucket(self, key: str, now: float) -> _Bucket:
        budget = self._budget(key)
        bucket = self._buckets.pop(key, None) or _Bucket(float(budget.burst), now)
        self._buckets[key] = bucket  # the most recently touched last
        if bucket.at <= now and bucket.level_at(budget, now) >= budget.burst:
            bucket.stage, bucket.spent = _Stage.QUIET, 0  # full again: reports re-armed
        return bucket

    @staticmethod
    def _schedule(bucket: _Bucket, budget: Budget, now: float) -> float:
        """The earliest answer time this bucket allows an attempt made at ``now``."""
        earliest = max(now, bucket.at)  # never before an earlier attempt's answer
        level = bucket.level_at(budget, earliest)
        # Never before a token is there for it (it may turn out to be wrong)...
        token_at = earliest + max(0.0, 1.0 - level) * budget.interval
        # ... and, below the slow mark, later the emptier the bucket: one interval when empty.
        slow = 0.0
        if level < budget.slow_mark:
            slow = budget.interval * min(1.0, (budget.slow_mark - level) / budget.slow_mark)
        return max(token_at, now + slow)

    @staticmethod
    def _refund(bucket: _Bucket, budget: Budget, reservation: Reservation, now: float) -> None:
        """Give a reservation's token back where that is exact; else keep it (the safe side).

        Exact when no token was reserved after it, or when the level stayed
        at most ``burst - 1`` since: then the bucket without it is this one
        plus a token all along, never capped.
        """
        alone = bucket.reserved == reservation.reserved
        level = bucket.level_at(budget, max(now, bucket.at))
        if alone or (bucket.near_full == reservation.near_full and level <= budget.burst - 1):
            bucket.level = min(float(budget.burst), bucket.level + 1.0)

    def _trim(self, now: float) -> None:
        if len(self._buckets) <= self.limit:
            return
        # A full bucket with nothing scheduled holds nothing: forgetting it loses nothing.
        for key, bucket in list(self._buckets.items()):
            budget = self._budget(key)
            if bucket.at <= now and bucket.level_at(budget, now) >= budget.burst:
                del self._buckets[key]
        while len(self._buckets) > self.limit:
            self._buckets.popitem(last=False)
