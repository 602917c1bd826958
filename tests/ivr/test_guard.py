from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.ivr.guard import (
    TRANSITIONS,
    Alert,
    AlertBoard,
    Budget,
    GuardRules,
    GuardTransitionError,
    PasscodeGuard,
    Standing,
    Trigger,
    Vouch,
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
        delays.append(guard.admit("user:guesser", 10.0 * t).wait)
    assert delays == [0, 1, 2, 4, 4, 4, 4, 4, 4]
    assert guard.admit("user:someone-else", 90).wait == 0


def test_parallel_attempts_of_a_slowed_identity_queue_up() -> None:
    guard = PasscodeGuard(GuardRules(max_failures=10, slow_after=2, first_delay=2, max_delay=8))
    guard.record_failure("user:guesser", 0)
    guard.record_failure("user:guesser", 0)
    # Five calls key a code at the same moment: their answers come 2 s apart.
    assert [guard.admit("user:guesser", 1.0).wait for _ in range(5)] == [2, 4, 6, 8, 10]
    assert guard.admit("user:other", 1.0).wait == 0


def test_one_identitys_failures_never_refuse_another() -> None:
    guard = PasscodeGuard(RULES)
    for t in range(10):
        guard.record_failure("user:guesser", float(t))
    assert guard.is_refused("user:guesser", 10)
    assert not guard.is_refused("user:+12125550000", 10)
    assert guard.admit("user:+12125550000", 10).wait == 0


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
    assert guard.admit("user:a", 621).wait == 0


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


# -- the guessing budget: per number and per trunk, whatever the caller ID ----------------

NUMBER = "+19135550123"
TRUNK = "192.0.2.0/24"
# Identities never slow here, so every wait is the budget's.
BUDGET_ONLY = GuardRules(
    max_failures=10**6, slow_after=10**6, number_budget=Budget(4, 1.0), trunk_budget=Budget(50, 0.1)
)


def _rotating(guard: PasscodeGuard, count: int, now: float, wrong: bool = True) -> list[float]:
    """``count`` calls, each with a new caller ID, key a code at ``now``: their waits."""
    return [
        guard.admit(f"user:+1212555{n:04d}", now, number=NUMBER, trunk=TRUNK, wrong=wrong).wait
        for n in range(count)
    ]


def test_rotating_caller_ids_drain_the_numbers_budget_and_every_answer_slows() -> None:
    guard = PasscodeGuard(BUDGET_ONLY)
    # Four wrong codes at once, half of them free; below half each answer waits
    # longer; once empty, one answer per interval, first come first answered.
    assert _rotating(guard, 8, 0.0) == [0, 0, 0, 0.5, 1, 2, 3, 4]
    # A right code (the public listener code) waits its turn like the rest...
    assert guard.admit("user:listener", 0.0, number=NUMBER, trunk=TRUNK).wait == 5
    # ... and another number on the same trunk is not slowed.
    assert guard.admit("user:x", 0.0, number="+12125550000", trunk=TRUNK).wait == 0
    left = guard.budget_left(f"number:{NUMBER}", 5.0)
    assert left == pytest.approx(1)  # the right code took no token
    # It refills: idle for the whole burst's worth, answers are immediate again.
    assert _rotating(guard, 1, 5.0 + 4 * 1.0) == [0]


def test_right_codes_do_not_drain_the_budget() -> None:
    guard = PasscodeGuard(BUDGET_ONLY)
    assert _rotating(guard, 100, 0.0, wrong=False) == [0] * 100
    assert guard.budget_left(f"number:{NUMBER}", 0.0) == 4


def test_the_trunks_budget_holds_across_numbers() -> None:
    guard = PasscodeGuard(
        GuardRules(
            max_failures=10**6,
            slow_after=10**6,
            number_budget=Budget(100, 1.0),
            trunk_budget=Budget(4, 1.0),
        )
    )
    waits = [
        guard.admit(f"user:{n}", 0.0, number=f"+1212555{n:04d}", trunk=TRUNK, wrong=True).wait
        for n in range(6)
    ]
    assert waits == [0, 0, 0, 0.5, 1, 2]
    # Another trunk is not slowed.
    assert guard.admit("user:y", 0.0, number="+12125550001", trunk="198.51.100.0/24").wait == 0


def test_the_budget_alerts_when_it_slows_and_when_it_is_empty_then_re_arms() -> None:
    guard = PasscodeGuard(BUDGET_ONLY)
    alerts = [guard.admit(f"user:{n}", 0.0, number=NUMBER, wrong=True).alerts for n in range(8)]
    posted = [(n, a) for n, found in enumerate(alerts) for a in found]
    assert [(n, a.identity, a.standing, a.failures) for n, a in posted] == [
        (2, f"number:{NUMBER}", Standing.SLOWED, 3),
        (3, f"number:{NUMBER}", Standing.SLOWED, 4),
    ]
    assert posted[0][1].delay == 0.5 and posted[1][1].delay == 1.0
    assert all(a.is_budget for _, a in posted)
    # Full again (long after the last answer): the next drain alerts again.
    again = [guard.admit(f"user:{n}", 100.0, number=NUMBER, wrong=True).alerts for n in range(3)]
    assert [a.failures for found in again for a in found] == [3]


def test_the_wait_never_depends_on_the_code_being_right() -> None:
    for wrong in (False, True):
        guard = PasscodeGuard(BUDGET_ONLY)
        _rotating(guard, 5, 0.0)
        assert guard.admit("user:a", 0.5, number=NUMBER, trunk=TRUNK, wrong=wrong).wait == 1.5


def test_a_listed_speakers_phone_spoofed_into_a_refusal_is_slowed_never_refused() -> None:
    guard = PasscodeGuard(RULES)
    speaker = "user:+12125550199"
    alerts = [guard.record_failure(speaker, float(t), Vouch.LISTED_PHONE) for t in range(6)]
    # The same number calling where it is not listed is refused...
    assert guard.is_refused(speaker, 6)
    # ... but on the number whose event lists it, never: its answers wait, at most
    # max_delay, and parallel calls (a spoofer's) do not queue it up.
    assert not guard.is_refused(speaker, 6, Vouch.LISTED_PHONE)
    waits = [guard.admit(speaker, 6, vouch=Vouch.LISTED_PHONE).wait for _ in range(5)]
    assert waits == [RULES.max_delay] * 5
    last = alerts[-1]
    assert last is not None and last.standing is Standing.SLOWED
    assert last.vouch is Vouch.LISTED_PHONE and last.until is None


# A sequence of attempts: seconds since the last one, the caller, wrong or not, the number.
ATTEMPTS = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3, allow_nan=False),
        st.integers(min_value=0, max_value=1_000_000),
        st.booleans(),
        st.sampled_from([NUMBER, "+12125550000"]),
    ),
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(
    attempts=ATTEMPTS,
    burst=st.integers(min_value=1, max_value=8),
    interval=st.sampled_from([0.25, 1.0, 3.0]),
)
def test_no_sequence_of_identities_drains_a_budget_faster_than_its_rate(
    attempts: list[tuple[float, int, bool, str]], burst: int, interval: float
) -> None:
    rules = GuardRules(
        max_failures=10**6,
        slow_after=10**6,
        number_budget=Budget(burst, interval),
        trunk_budget=Budget(burst * 2, interval / 2),
    )
    guard = PasscodeGuard(rules)
    now = 0.0
    wrong_answers: dict[str, list[float]] = {NUMBER: [], "+12125550000": [], TRUNK: []}
    for gap, caller, wrong, number in attempts:
        now += gap
        wait = guard.admit(f"user:{caller}", now, number=number, trunk=TRUNK, wrong=wrong).wait
        assert wait >= 0
        if wrong:
            wrong_answers[number].append(now + wait)
            wrong_answers[TRUNK].append(now + wait)
    for scope, times in wrong_answers.items():
        budget = rules.trunk_budget if scope == TRUNK else rules.number_budget
        times.sort()
        # Within any window [times[i], times[j]]: at most burst + length / interval.
        for i in range(len(times)):
            for j in range(i, len(times)):
                allowed = budget.burst + (times[j] - times[i]) / budget.interval
                assert j - i + 1 <= allowed + 1e-6, (scope, times[i], times[j])


@settings(max_examples=100, deadline=None)
@given(attempts=ATTEMPTS)
def test_slowed_identities_only_answer_later(attempts: list[tuple[float, int, bool, str]]) -> None:
    # With the identities' own waits on top (a few callers, often wrong), the
    # wrong codes answered by any moment still fit the budget since the start.
    rules = GuardRules(max_failures=4, number_budget=Budget(3, 1.0), trunk_budget=Budget(6, 0.5))
    guard = PasscodeGuard(rules)
    now, answered = 0.0, []
    for gap, caller, wrong, _number in attempts:
        now += gap
        identity = f"user:{caller % 3}"
        if guard.is_refused(identity, now):
            continue
        wait = guard.admit(identity, now, number=NUMBER, trunk=TRUNK, wrong=wrong).wait
        if wrong:
            answered.append(now + wait)
            guard.record_failure(identity, now + wait)
    answered.sort()
    for n, at in enumerate(answered, start=1):
        assert n <= 3 + at / 1.0 + 1e-6


@settings(max_examples=100, deadline=None)
@given(attempts=ATTEMPTS, caller=st.integers(min_value=0, max_value=5), gap=st.floats(0, 3))
def test_no_history_makes_the_wait_tell_a_right_code_from_a_wrong_one(
    attempts: list[tuple[float, int, bool, str]], caller: int, gap: float
) -> None:
    guard = PasscodeGuard(GuardRules(max_failures=4, number_budget=Budget(3, 1.0)))
    now = 0.0
    for step, who, wrong, number in attempts:
        now += step
        wait = guard.admit(f"user:{who % 6}", now, number=number, trunk=TRUNK, wrong=wrong).wait
        if wrong:
            guard.record_failure(f"user:{who % 6}", now + wait)
    on_right, on_wrong = copy.deepcopy(guard), copy.deepcopy(guard)
    identity, at = f"user:{caller}", now + gap
    assert (
        on_right.admit(identity, at, number=NUMBER, trunk=TRUNK, wrong=False).wait
        == on_wrong.admit(identity, at, number=NUMBER, trunk=TRUNK, wrong=True).wait
    )


def test_a_budget_needs_a_burst_and_an_interval() -> None:
    with pytest.raises(ValueError):
        Budget(0, 1.0)
    with pytest.raises(ValueError):
        Budget(5, 0.0)
    assert Budget(60, 120.0).slow_mark == 30


def test_budgets_memory_is_bounded_and_full_buckets_go_first() -> None:
    guard = PasscodeGuard(GuardRules(number_budget=Budget(4, 1.0), max_budgets=10))
    for n in range(5):  # five drained numbers
        for _ in range(4):
            guard.admit("user:a", 0.0, number=f"drained{n}", wrong=True)
    for n in range(1000):  # then many numbers with one wrong code each, long after
        guard.admit("user:a", 1000.0 + n * 10, number=f"other{n}", wrong=True)
    assert len(guard._buckets) <= 10
    # The drained ones were refilled long ago: forgetting them lost nothing.
    assert guard.budget_left("number:drained0", 20_000.0) is None
