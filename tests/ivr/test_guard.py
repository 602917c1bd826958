from __future__ import annotations

import pytest

from callbridge.ivr.guard import (
    TRANSITIONS,
    Alert,
    AlertBoard,
    GuardRules,
    GuardTransitionError,
    PasscodeGuard,
    Standing,
    Trigger,
    _Record,
)

RULES = GuardRules(max_failures=6, slow_after=3, window=600, first_delay=2, max_delay=8)


def test_a_guesser_is_watched_then_slowed_then_refused() -> None:
    guard = PasscodeGuard(RULES)
    alerts = [guard.record_failure("user:+12125551234", float(t)) for t in range(6)]
    assert [a.standing if a else None for a in alerts] == [
        None,
        None,
        Standing.SLOWED,
        None,
        None,
        Standing.REFUSED,
    ]
    slowed, refused = alerts[2], alerts[5]
    assert slowed is not None and slowed.failures == 3 and slowed.delay == 2
    assert refused is not None and refused.until == 5 + RULES.refusal
    assert guard.is_refused("user:+12125551234", 6)
    assert guard.refused_until("user:+12125551234") == 905


def test_the_delay_grows_with_each_failure_up_to_a_ceiling() -> None:
    guard = PasscodeGuard(GuardRules(max_failures=10, slow_after=2, first_delay=1, max_delay=4))
    delays = []
    for t in range(9):
        guard.record_failure("user:guesser", 10.0 * t)
        delays.append(guard.admit("user:guesser", 10.0 * t))
    assert delays == [0, 1, 2, 4, 4, 4, 4, 4, 4]
    assert guard.admit("user:someone-else", 90) == 0


def test_parallel_attempts_of_a_slowed_identity_queue_up() -> None:
    guard = PasscodeGuard(GuardRules(max_failures=10, slow_after=2, first_delay=2, max_delay=8))
    guard.record_failure("user:guesser", 0)
    guard.record_failure("user:guesser", 0)
    # Five calls key a code at the same moment: their answers come 2 s apart.
    assert [guard.admit("user:guesser", 1.0) for _ in range(5)] == [2, 4, 6, 8, 10]
    assert guard.admit("user:other", 1.0) == 0


def test_one_identitys_failures_never_refuse_another() -> None:
    guard = PasscodeGuard(RULES)
    for t in range(10):
        guard.record_failure("user:guesser", float(t))
    assert guard.is_refused("user:guesser", 10)
    assert not guard.is_refused("user:+12125550000", 10)
    assert guard.admit("user:+12125550000", 10) == 0


def test_a_right_passcode_does_not_reset_the_count() -> None:
    # The listener code is public: a guesser could key it between guesses.
    guard = PasscodeGuard(RULES)
    for t in range(5):
        guard.record_failure("user:guesser", float(t))
    assert guard.standing("user:guesser", 5) is Standing.SLOWED
    alert = guard.record_failure("user:guesser", 6)
    assert alert is not None and alert.standing is Standing.REFUSED


def test_failures_age_out_of_the_window() -> None:
    guard = PasscodeGuard(RULES)
    for t in (0, 10, 20):
        guard.record_failure("user:a", float(t))
    assert guard.standing("user:a", 21) is Standing.SLOWED
    assert guard.standing("user:a", 605) is Standing.WATCHED
    assert guard.standing("user:a", 621) is Standing.CLEAR
    assert guard.admit("user:a", 621) == 0


def test_a_refusal_ends_and_the_count_starts_again() -> None:
    guard = PasscodeGuard(RULES)
    for t in range(6):
        guard.record_failure("user:a", float(t))
    assert guard.is_refused("user:a", 5 + RULES.refusal - 0.1)
    assert not guard.is_refused("user:a", 5 + RULES.refusal)
    assert guard.standing("user:a", 5 + RULES.refusal) is Standing.CLEAR
    # A failure while refused (a call that was already in the IVR) keeps it refused.
    guard2 = PasscodeGuard(RULES)
    for t in range(6):
        guard2.record_failure("user:b", float(t))
    assert guard2.record_failure("user:b", 7) is None
    assert guard2.refused_until("user:b") == 5 + RULES.refusal


def test_the_default_slows_at_half_the_refusal_count() -> None:
    assert GuardRules(max_failures=6).slow_threshold == 3
    assert GuardRules(max_failures=1).slow_threshold == 1
    assert GuardRules(max_failures=4, slow_after=9).slow_threshold == 4


def test_memory_is_bounded() -> None:
    guard = PasscodeGuard(GuardRules(max_failures=5, max_identities=100))
    for i in range(10_000):
        guard.record_failure(f"user:caller{i}", float(i))
    assert len(guard) == 100
    assert guard.standing("user:caller9999", 10_000) is Standing.WATCHED


def test_the_table_refuses_an_unlisted_move() -> None:
    guard = PasscodeGuard(RULES)
    record = _Record(standing=Standing.SLOWED)
    assert Standing.WATCHED not in TRANSITIONS[Standing.SLOWED][Trigger.FAILURE]
    with pytest.raises(GuardTransitionError):
        guard._move(record, Trigger.FAILURE, Standing.WATCHED)


def test_the_alert_board_files_alerts_per_event_and_forgets_the_oldest() -> None:
    board = AlertBoard(limit=3)
    first = Alert("user:a", Standing.SLOWED, 3, 1.0, delay=2)
    board.post(first, [1, 2])
    for n in range(3):
        board.post(Alert(f"user:{n}", Standing.REFUSED, 6, 2.0 + n, until=900), [2])
    assert board.for_event(1) == []  # pushed out
    assert [a.identity for a in board.for_event(2)] == ["user:2", "user:1", "user:0"]
    assert board.for_event(3) == []
