"""An edge's choice of origin: the highest epoch claiming to be active; nothing from the rest."""

from __future__ import annotations

from callbridge.cascade.origins import Origins

A, B = ("10.0.0.2", 4000), ("10.0.0.3", 4000)


def test_the_edge_follows_the_active_origin_and_sends_to_both() -> None:
    origins = Origins(ttl=5.0)
    assert origins.heard("o1", A, 1, True, 0.0)
    assert not origins.heard("o2", B, 1, False, 0.1)  # the standby: not followed
    assert origins.current is not None and origins.current.node == "o1"
    assert origins.is_current(A) and not origins.is_current(B)
    assert sorted(origins.uplinks(0.2)) == [A, B]
    assert origins.is_current_node("o1") and not origins.is_current_node("o2")
    # o1 dies; o2 takes the lease at epoch 2 and says so (an Active names no address).
    assert origins.heard("o2", None, 2, True, 1.0)
    assert origins.is_current(B) and not origins.is_current(A)
    assert origins.switches == 2
    # o1 was only cut off: it still believes it is active, at epoch 1. Fenced.
    assert not origins.heard("o1", A, 1, True, 1.5)
    assert origins.is_current(B)
    # o1 comes back as the standby (it read the row): it gets the audio, nothing is played.
    assert not origins.heard("o1", A, 2, False, 2.0)
    assert sorted(origins.uplinks(2.0)) == [A, B]


def test_silent_origins_are_forgotten() -> None:
    origins = Origins(ttl=5.0)
    origins.heard("o1", A, 1, True, 0.0)
    origins.heard("o2", B, 1, False, 4.0)
    assert origins.uplinks(6.0) == [B]
    assert origins.forget_silent(6.0) == ["o1"]
    assert origins.current is None and origins.is_current_node("o2")
    assert origins.hosts() == {"10.0.0.3"}


def test_an_active_heard_before_its_feeding_is_followed_once_its_address_is_known() -> None:
    origins = Origins(ttl=5.0)
    assert not origins.heard("o1", None, 3, True, 0.0)
    assert origins.current is None
    assert origins.heard("o1", A, 3, True, 0.1)
