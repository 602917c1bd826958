"""Which origin is the active one: a lease on a row of the shared store, with an epoch.

Sans-IO: the node's driver (``cascade.standby``) asks ``due(now)`` whether to
try the store, says ``trying(now)`` as the try leaves, and hands back what the
store said (``tried``): a ``Holding`` (who holds the lease, its epoch, whether
it is this node) or None (the store could not be reached). ``tick(now)`` ages
a lease this node could not renew; ``heard(epoch)`` is an origin on the bus
claiming a higher epoch. Each returns the ``Change`` of state, if any. Time is
a parameter, in seconds of the caller's monotonic clock.

The mechanism, and why it survives a partition: one row (``store.lease``)
holds the holder, an epoch and an expiry on the *store's* clock. Taking and
renewing are one conditional ``UPDATE`` (held by me, or expired): the store
serialises them, so at most one origin holds an unexpired lease, and every
takeover raises the epoch by one, so epochs name the holders in order. An
origin cut off from the store cannot renew; the standby takes the lease once
it has expired, with a higher epoch, and says so on the bus. The epoch is a
fencing token: the edges play the mix, and obey the directives, of the
origin with the highest epoch they have heard of, and drop everything a
lower one sends; an origin that hears of a higher epoch (on the bus, or from
the row) stops being active at once. So a partition cannot give the edges two
active origins, whatever the stale one believes meanwhile.

Why not a PostgreSQL advisory lock: it belongs to a connection, and is let go
only when the server notices that connection is dead (TCP keepalives: tens of
seconds to hours), so the takeover time is not bounded by anything we set;
the holder cannot tell from its side whether it still holds it; and it has no
epoch for the edges to fence with. A row with an expiry gives all three.

A stale active does not silence itself when its term runs out unrenewed
(state ``LAPSED``): if the store is down for everyone (``issue 25`` item 5),
nobody can take over and the call must go on from the origin that has it. It
goes on sending; once anyone holds a higher epoch, the edges drop it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# Defaults: the standby takes over at most TERM + TRY_EVERY after the active's
# last renewal; the active renews three times a term, so one lost or slow
# round trip to the store does not cost it the lease.
TERM = 0.6
RENEW_EVERY = 0.15
TRY_EVERY = 0.1


class LeaseError(RuntimeError):
    """A change of state the lease's table does not list."""


class LeaseState(enum.Enum):
    STARTING = "starting"  # the store not asked yet
    STANDBY = "standby"  # another origin holds the lease (or may, for all we know)
    ACTIVE = "active"  # this origin holds it, renewed within its term
    LAPSED = "lapsed"  # this origin held it, and has not renewed it within its term


TRANSITIONS: dict[LeaseState, frozenset[LeaseState]] = {
    LeaseState.STARTING: frozenset({LeaseState.STANDBY, LeaseState.ACTIVE}),
    LeaseState.STANDBY: frozenset({LeaseState.ACTIVE}),
    LeaseState.ACTIVE: frozenset({LeaseState.LAPSED, LeaseState.STANDBY}),
    LeaseState.LAPSED: frozenset({LeaseState.ACTIVE, LeaseState.STANDBY}),
}


@dataclass(frozen=True)
class Holding:
    """The lease's row as one try left it."""

    holder: str  # "" before anyone held it
    epoch: int
    mine: bool  # this origin holds it now


@dataclass(frozen=True)
class Change:
    before: LeaseState
    after: LeaseState
    epoch: int  # the epoch this origin holds (after ACTIVE) or the highest it knows of


class Lease:
    """One origin's view of the lease.

    ``patience``: a standby started with ``--standby`` does not take a free
    lease for this long after its first try, so the origin meant to be active
    wins when both start together.
    """

    def __init__(
        self,
        me: str,
        *,
        term: float = TERM,
        renew_every: float = RENEW_EVERY,
        try_every: float = TRY_EVERY,
        patience: float = 0.0,
    ) -> None:
        if not 0 < renew_every < term or try_every <= 0:
            raise ValueError("a lease is renewed more often than its term, and tried at all")
        self.me = me
        self.term = term
        self.renew_every = renew_every
        self.try_every = try_every
        self.patience = patience
        self.state = LeaseState.STARTING
        self.epoch = 0  # held, or the highest heard of
        self.holder = ""
        self._first_try: float | None = None
        self._last_try: float | None = None
        self._in_flight = False
        # When this origin's term runs out: a renewal's term counts from when
        # its try *left*, which is before the store stamped it.
        self._term_ends: float | None = None

    @property
    def active(self) -> bool:
        """Whether this origin should act as the active one (sending, deciding)."""
        return self.state in (LeaseState.ACTIVE, LeaseState.LAPSED)

    def due(self, now: float) -> bool:
        """Whether to try the store now (one try at a time)."""
        if self._in_flight:
            return False
        if self._last_try is None:
            return True
        every = self.renew_every if self.active else self.try_every
        return now - self._last_try >= every

    def may_take(self, now: float) -> bool:
        """Whether this try may take a free or expired lease (not while patient)."""
        return self._first_try is None or now - self._first_try >= self.patience

    def trying(self, now: float) -> None:
        self._in_flight = True
        self._last_try = now
        if self._first_try is None:
            self._first_try = now

    def tried(self, holding: Holding | None, sent_at: float, now: float) -> Change | None:
        """What the try that left at ``sent_at`` found; None: the store was not reached."""
        self._in_flight = False
        if holding is None:
            if self.state is LeaseState.STARTING:
                return None  # nothing known: neither active nor standby yet
            return self.tick(now)
        self.holder = holding.holder
        if holding.mine:
            self.epoch = holding.epoch
            self._term_ends = sent_at + self.term
            return self._move(LeaseState.ACTIVE)
        self.epoch = max(self.epoch, holding.epoch)
        self._term_ends = None
        return self._move(LeaseState.STANDBY)

    def tick(self, now: float) -> Change | None:
        """An active origin whose term ran out unrenewed is ``LAPSED`` (it goes on: see above)."""
        ends = self._term_ends
        if self.state is LeaseState.ACTIVE and ends is not None and now >= ends:
            return self._move(LeaseState.LAPSED)
        return None

    def heard(self, epoch: int, holder: str) -> Change | None:
        """Another origin says it holds ``epoch``: a higher one than ours ends our turn."""
        if holder == self.me or epoch <= self.epoch:
            return None
        self.epoch, self.holder = epoch, holder
        self._term_ends = None
        return self._move(LeaseState.STANDBY)

    def _move(self, to: LeaseState) -> Change | None:
        before = self.state
        if to is before:
            return None
        if to not in TRANSITIONS[before]:
            raise LeaseError(f"a lease does not go from {before.value} to {to.value}")
        self.state = to
        return Change(before, to, self.epoch)
