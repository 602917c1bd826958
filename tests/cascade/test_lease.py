"""The lease's core: who is active, by what the store says and what the bus tells, in time."""

from __future__ import annotations

import pytest

from callbridge.cascade.lease import (
    TRANSITIONS,
    Change,
    Holding,
    Lease,
    LeaseError,
    LeaseState,
)


def _try(lease: Lease, now: float, holding: Holding | None) -> Change | None:
    assert lease.due(now)
    lease.trying(now)
    assert not lease.due(now + 10), "one try at a time"
    return lease.tried(holding, now, now + 0.01)


def test_an_origin_that_wins_the_row_is_active_and_renews_within_its_term() -> None:
    lease = Lease("a", term=0.6, renew_every=0.15, try_every=0.1)
    assert lease.state is LeaseState.STARTING and not lease.active
    change = _try(lease, 0.0, Holding("a", 1, mine=True))
    assert change == Change(LeaseState.STARTING, LeaseState.ACTIVE, 1)
    assert lease.active
    assert not lease.due(0.1) and lease.due(0.15)
    assert _try(lease, 0.15, Holding("a", 1, mine=True)) is None  # renewed: no news
    assert lease.tick(0.7) is None  # the term counts from the renewal's try: 0.75


def test_a_lease_not_renewed_lapses_and_a_higher_epoch_ends_it() -> None:
    lease = Lease("a", term=0.6, renew_every=0.15)
    _try(lease, 0.0, Holding("a", 3, mine=True))
    assert _try(lease, 0.2, None) is None  # the store not reached; the term still runs
    assert lease.tick(0.59) is None
    assert lease.tick(0.6) == Change(LeaseState.ACTIVE, LeaseState.LAPSED, 3)
    # Lapsed, it goes on (nobody may have taken over: the store may be down for all).
    assert lease.active
    # The store answers again: still ours (nobody took it), so active again.
    assert _try(lease, 1.0, Holding("a", 3, mine=True)) == Change(
        LeaseState.LAPSED, LeaseState.ACTIVE, 3
    )
    # Another origin says on the bus it holds epoch 4: this one stands down at once.
    assert lease.heard(4, "b") == Change(LeaseState.ACTIVE, LeaseState.STANDBY, 4)
    assert not lease.active and lease.holder == "b"
    # An older epoch, or our own, is no news.
    assert lease.heard(4, "b") is None and lease.heard(2, "c") is None


def test_a_standby_takes_over_only_with_a_new_epoch_from_the_store() -> None:
    lease = Lease("b", term=0.6, try_every=0.1)
    assert _try(lease, 0.0, Holding("a", 1, mine=False)) == Change(
        LeaseState.STARTING, LeaseState.STANDBY, 1
    )
    assert not lease.due(0.05) and lease.due(0.1)
    assert _try(lease, 0.1, Holding("a", 1, mine=False)) is None
    assert _try(lease, 0.7, Holding("b", 2, mine=True)) == Change(
        LeaseState.STANDBY, LeaseState.ACTIVE, 2
    )


def test_a_store_not_reached_at_start_decides_nothing() -> None:
    lease = Lease("a")
    assert _try(lease, 0.0, None) is None
    assert lease.state is LeaseState.STARTING and not lease.active


def test_a_patient_standby_takes_no_free_lease_at_first() -> None:
    lease = Lease("b", term=0.6, patience=1.2)
    assert lease.may_take(0.0)
    lease.trying(0.0)
    lease.tried(Holding("", 0, mine=False), 0.0, 0.0)
    assert not lease.may_take(1.0)
    assert lease.may_take(1.2)


def test_the_table_refuses_what_it_does_not_list() -> None:
    lease = Lease("a")
    _try(lease, 0.0, Holding("b", 1, mine=False))
    assert LeaseState.LAPSED not in TRANSITIONS[LeaseState.STANDBY]
    with pytest.raises(LeaseError, match="standby to lapsed"):
        lease._move(LeaseState.LAPSED)


def test_terms_are_checked() -> None:
    with pytest.raises(ValueError):
        Lease("a", term=0.1, renew_every=0.2)
