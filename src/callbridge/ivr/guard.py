"""Passcode guessing: slowed, then refused, per caller; slowed per number and per trunk.

Two layers, both pure (``now`` is always a parameter):

**Per caller identity** (``sip/identity.py``: what the trusted trunk asserts,
never the display name, never the trunk's address). The check at INVITE time
reads the same key the failures were counted under. Each identity has a
standing, an explicit state machine:

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

A caller ID costs a guesser nothing to change, so this layer only stops the
careless; and anyone can spoof a number into REFUSED. Hence **vouched
callers** (``Vouch``): a listed speaker's own phone, calling the number of
the event that lists it, is never refused by this layer (its answers may
wait, ``max_delay`` at most and never queued behind a spoofer's parallel
calls), so a right code always admits it. A registered PIN, once there is
one, is the seam's second member.

**Per dialled number and per trunk: the guessing budget**, which no caller
ID can dodge (``ivr/budget.py`` has the mechanism): a token bucket of wrong
codes for each number dialled and each trunk network, over all callers
(``Budget``: ``burst``, then one every ``interval`` seconds). As it drains,
every answer on the number waits longer, right or wrong, from whoever;
once it is empty, answers come one ``interval`` apart, first come first
answered. Every attempt reserves a token before its code is checked and a
right code gives it back once answered, so no wait tells anything of a
code not yet answered. Nothing is refused for the budget: it slows, and it
alerts the moderator (``Alert`` with the budget's key, ``number:...`` or
``trunk:...``) when answers start to slow and again when it is empty.
Whatever the identities, the wrong codes answered on one number within any
``T`` seconds are at most ``burst + T / interval``. The identity's own wait
comes on top and is no part of the budget's schedule: a single slowed
caller must not hold up everyone on the number.

The caller of the guard decides which attempts draw on the budgets: the
bridge leaves out the codes the release prints (listener, replay), which
are no secret, so the crowd keeps joining while a guesser has drained a
number; the speaker code and wrong codes wait alike. What it costs: while
a guesser keeps a number's budget empty, a speaker (or a caller who
mistyped) on it waits behind the secret-code answers queued before theirs,
about one ``interval`` for each (each call has one attempt pending at a
time). A registered PIN, unlike a listed phone, could not be spoofed and
so could skip that queue.

Sizing, at the defaults (100 wrong codes, then one every 120 s: 720 a day
on a number; the burst covers a big call's mistyped codes at its start).
A generated code of L digits starts with 1-9 (9·10^(L-1) codes); guessing
one takes half of them on average, at the sustained rate:

====== ===================== ======================
digits expected wrong codes  expected time
====== ===================== ======================
4      4,500                 6.25 days
5      45,000                62.5 days
6      450,000               625 days (1.7 years)
7      4,500,000             6,250 days (17 years)
8      45,000,000            171 years
12     4.5·10^11             1.7 million years
====== ===================== ======================

A speaker code opens an oracle from the event's creation to its archiving,
about a month: a 7-digit code (the generated default) holds about 200
times that (a 0.24 % chance of being found within the month), a 6-digit
one about 20 times (2.4 %); 4- and 5-digit speaker codes are not protected
well at the default and need a smaller budget (``serve --guess-budget``).
Several events on one number are several targets: divide by their count.
The trunk's budget (300, then one every 10 s: 8,640 a day) caps a guesser
who spreads over many numbers from one carrier. Each bridge node keeps its
own guard: behind a proxy that spreads calls over N nodes, multiply the
rates by N.

Moving into SLOWED or REFUSED, and a budget starting to slow or running
empty, returns an ``Alert`` for the operator. Memory is bounded: beyond
``max_identities`` the identity touched longest ago is forgotten, beyond
``max_budgets`` a bucket (full ones first).
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from callbridge.ivr.budget import NUMBER, TRUNK, GuessBudgets, Reservation
from callbridge.ivr.budget import Budget as Budget  # GuardRules is written with it


class Standing(enum.Enum):
    CLEAR = "clear"
    WATCHED = "watched"
    SLOWED = "slowed"
    REFUSED = "refused"


class Trigger(enum.Enum):
    FAILURE = "failure"  # a wrong passcode
    AGED = "aged"  # failures left the window, or the refusal ran out


class Vouch(enum.Enum):
    """Why a caller is known beyond the caller ID they send; such a caller is never refused."""

    NONE = "none"
    # The trunk asserts a number that the speaker list of an event on the
    # number dialled names. It can be spoofed, so it is slowed like anyone;
    # it is never refused, so a spoofer cannot lock the speaker out.
    LISTED_PHONE = "listed_phone"
    # The seam for registered PINs (not built yet): a speaker's own PIN would be
    # a member here, treated like LISTED_PHONE by the guard (and, being
    # unspoofable, a candidate to skip the identity's wait too).


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


# The defaults: serve --guess-budget 100:120 and --trunk-guess-budget 300:10.
NUMBER_BUDGET = Budget(100, 120.0)
TRUNK_BUDGET = Budget(300, 10.0)


@dataclass(frozen=True)
class GuardRules:
    """How the guard counts; ``max_failures`` is ``serve --max-passcode-failures``.

    ``max_failures`` failures within ``window`` seconds refuse an identity.
    ``number_budget`` and ``trunk_budget`` are ``serve --guess-budget`` and
    ``--trunk-guess-budget``.
    """

    max_failures: int = 6
    # Failures before answers are slowed; None: half of max_failures (at least 1).
    slow_after: int | None = None
    window: float = 600.0
    first_delay: float = 2.0
    max_delay: float = 16.0
    refusal: float = 900.0
    max_identities: int = 10_000
    number_budget: Budget = NUMBER_BUDGET
    trunk_budget: Budget = TRUNK_BUDGET
    max_budgets: int = 1_000

    @property
    def slow_threshold(self) -> int:
        if self.slow_after is not None:
            return max(1, min(self.slow_after, self.max_failures))
        return max(1, self.max_failures // 2)


@dataclass(frozen=True)
class Alert:
    """An identity was slowed or refused, or a budget began to slow: for the audit and console.

    ``identity`` is the caller's key, or the budget's (``number:+1913…``,
    ``trunk:192.0.2.0/24``); ``failures`` counts the wrong codes behind it.
    """

    identity: str
    standing: Standing
    failures: int
    at: float
    until: float | None = None  # when a refusal ends
    delay: float = 0.0  # the wait before the next answer, when slowed
    vouch: Vouch = Vouch.NONE  # set when a vouched caller was slowed instead of refused

    @property
    def is_budget(self) -> bool:
        """The alert is about a number's or a trunk's budget, not one caller."""
        return self.identity.startswith((NUMBER, TRUNK))


@dataclass(frozen=True)
class Admission:
    """An attempt let through ``PasscodeGuard.admit``: wait ``wait`` seconds, then answer.

    Hand it back to ``settle`` (the code was checked) or ``release`` (it was not).
    """

    identity: str
    wait: float
    vouch: Vouch = Vouch.NONE
    reservations: tuple[Reservation, ...] = ()


@dataclass
class _Record:
    standing: Standing = Standing.CLEAR
    failures: deque[float] = field(default_factory=deque)
    refused_until: float = 0.0
    next_answer: float = 0.0  # when a slowed identity's queued attempts are answered


class PasscodeGuard:
    """Counts wrong passcodes per caller identity and against each number's and trunk's budget.

    Per attempt: ``is_refused`` at the INVITE and before the lookup;
    ``admit`` when a code is keyed, then wait ``Admission.wait``; then
    check the code and ``settle`` (or ``release``, if the caller is gone).
    """

    def __init__(self, rules: GuardRules = GuardRules()) -> None:
        self.rules = rules
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self.budgets = GuessBudgets(rules.number_budget, rules.trunk_budget, rules.max_budgets)

    # -- the public surface ----------------------------------------------------

    def standing(self, identity: str, now: float) -> Standing:
        """The identity's standing at ``now`` (failures aged out first)."""
        record = self._records.get(identity)
        if record is None:
            return Standing.CLEAR
        self._age(identity, record, now)
        return record.standing

    def is_refused(self, identity: str, now: float, vouch: Vouch = Vouch.NONE) -> bool:
        """Call at the INVITE and before each lookup: True means refuse this caller.

        A vouched caller is never refused (someone else may have spoofed
        their number into a refusal).
        """
        refused = self.standing(identity, now) is Standing.REFUSED
        return refused and vouch is Vouch.NONE

    def refused_until(self, identity: str) -> float | None:
        record = self._records.get(identity)
        if record is None or record.standing is not Standing.REFUSED:
            return None
        return record.refused_until

    def admit(
        self,
        identity: str,
        now: float,
        *,
        number: str | None = None,
        trunk: str | None = None,
        vouch: Vouch = Vouch.NONE,
    ) -> Admission:
        """Call once per attempt, before checking the code: how long its answer waits.

        ``number`` (the dialled number, or any name for "no number") and
        ``trunk`` (the trunk's network) name the budgets the attempt draws
        on: it reserves a token in each, which ``settle`` keeps for a wrong
        code and gives back for a right one. Nothing here depends on the
        code, so neither can the wait: the longest of the identity's wait
        (slowed callers; their attempts queue behind each other, a vouched
        caller's do not) and the budgets' schedules.
        """
        wait = self._identity_wait(identity, now, vouch)
        keys = [NUMBER + number] if number is not None else []
        keys += [TRUNK + trunk] if trunk is not None else []
        answer_at, reservations = self.budgets.reserve(keys, now)
        return Admission(identity, max(wait, answer_at - now), vouch, reservations)

    def settle(self, admission: Admission, now: float, *, wrong: bool) -> list[Alert]:
        """Call when the admitted code was checked and answered: the alerts it raises.

        A wrong code keeps its tokens and counts against the identity; a
        right one gives its tokens back.
        """
        if not wrong:
            self.release(admission, now)
            return []
        alerts = [
            Alert(d.key, Standing.SLOWED, d.spent, now, delay=d.delay)
            for d in self.budgets.spend(admission.reservations)
        ]
        alert = self.record_failure(admission.identity, now, admission.vouch)
        if alert is not None:
            alerts.append(alert)
        return alerts

    def release(self, admission: Admission, now: float) -> None:
        """Call for an admitted code that was right, or never checked: its tokens come back."""
        self.budgets.refund(admission.reservations, now)

    def record_failure(self, identity: str, now: float, vouch: Vouch = Vouch.NONE) -> Alert | None:
        """Count a wrong passcode; returns an Alert when this failure slows or refuses.

        A vouched caller's record may reach REFUSED (the same number calling
        elsewhere is refused), but the alert says what happens on this call:
        slowed, never refused.
        """
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
        if target is Standing.REFUSED and vouch is not Vouch.NONE:
            return Alert(
                identity, Standing.SLOWED, count, now, delay=self._delay_for(count), vouch=vouch
            )
        if target is Standing.REFUSED:
            return Alert(identity, target, count, now, until=record.refused_until)
        if target is Standing.SLOWED:
            return Alert(identity, target, count, now, delay=self._delay_for(count), vouch=vouch)
        return None

    def budget_left(self, key: str, now: float) -> float | None:
        """Tokens a budget (``number:…``/``trunk:…``) has at ``now``; None: not held (full)."""
        return self.budgets.left(key, now)

    def __len__(self) -> int:
        return len(self._records)

    def census(self, now: float) -> Census:
        """How many identities stand where at ``now``, read a slice at a time (``Census``)."""
        return Census(self, now)

    # -- internals: identities -------------------------------------------------

    def _identity_wait(self, identity: str, now: float, vouch: Vouch) -> float:
        record = self._records.get(identity)
        if record is None:
            return 0.0
        self._age(identity, record, now)
        if vouch is not Vouch.NONE and record.standing in (Standing.SLOWED, Standing.REFUSED):
            # Not queued: a spoofer's parallel calls must not hold the speaker up.
            return self._delay_for(len(record.failures))
        if record.standing is not Standing.SLOWED:
            return 0.0
        answer_at = max(now, record.next_answer) + self._delay_for(len(record.failures))
        record.next_answer = answer_at
        return answer_at - now

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


class Census:
    """Counts the identities by standing at ``now``, moving none (for the metrics).

    Read as ``_age`` would find them, but nothing is aged: a scrape changes
    nothing. ``step(limit)`` reads up to ``limit`` records and says whether it
    is done, so the caller can let the media clock tick in between (8,500
    identities read at once took 11-28 ms, a media tick or more). Records
    are kept in the order of their latest failure: the walk goes newest
    first and stops at the first one whose latest failure is older than both
    the window and the refusal, since that one and all before it are clear.
    Records changed between two steps are read as they are then.
    """

    def __init__(self, guard: PasscodeGuard, now: float) -> None:
        self.counts = dict.fromkeys(Standing, 0)
        self._rules = guard.rules
        self._now = now
        self._records = list(reversed(guard._records.values()))
        self._next = 0
        self.done = False

    def step(self, limit: int | None = None) -> bool:
        """Read up to ``limit`` more records (None: all); True once every one is counted."""
        rules, now, counts = self._rules, self._now, self.counts
        window_start = now - rules.window
        settled = now - max(rules.window, rules.refusal)
        records = self._records
        stop = len(records) if limit is None else min(len(records), self._next + limit)
        while not self.done and self._next < stop:
            record = records[self._next]
            failures = record.failures
            if failures and failures[-1] < settled:
                counts[Standing.CLEAR] += len(records) - self._next
                self.done = True
                break
            self._next += 1
            if record.standing is Standing.REFUSED and now < record.refused_until:
                counts[Standing.REFUSED] += 1
            elif not failures or failures[-1] <= window_start:
                counts[Standing.CLEAR] += 1
            else:
                recent = len(failures)
                if failures[0] <= window_start:
                    recent = sum(1 for t in failures if t > window_start)
                standing = Standing.SLOWED if recent >= rules.slow_threshold else Standing.WATCHED
                counts[standing] += 1
        self.done = self.done or self._next >= len(records)
        return self.done


class AlertBoard:
    """The latest alerts, filed under the events a guesser's number reaches.

    The console of each event shows its alerts (``Bridge.live``); only the
    newest ``limit`` are kept.
    """

    def __init__(self, limit: int = 200) -> None:
        self._posted: deque[tuple[frozenset[int], Alert]] = deque(maxlen=limit)
        # Alerts ever posted, by what they say: a caller or a budget, slowed or refused.
        self.totals: dict[tuple[str, Standing], int] = {}

    def post(self, alert: Alert, event_ids: Iterable[int]) -> None:
        self._posted.append((frozenset(event_ids), alert))
        key = ("budget" if alert.is_budget else "caller", alert.standing)
        self.totals[key] = self.totals.get(key, 0) + 1

    def for_event(self, event_id: int, newest: int = 20) -> list[Alert]:
        """The event's alerts, newest first."""
        found = [alert for ids, alert in reversed(self._posted) if event_id in ids]
        return found[:newest]
