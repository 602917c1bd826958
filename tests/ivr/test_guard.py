from __future__ import annotations

import heapq
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.ivr.guard import (
    TRANSITIONS,
    Admission,
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
OTHER = "+12125550000"
TRUNK = "192.0.2.0/24"
# Identities never slow here, so every wait is the budgets'.
BUDGET_ONLY = GuardRules(
    max_failures=10**6, slow_after=10**6, number_budget=Budget(4, 1.0), trunk_budget=Budget(50, 0.1)
)


def _at_once(guard: PasscodeGuard, count: int, now: float, number: str = NUMBER) -> list[Admission]:
    """``count`` calls, each from a new caller ID, key a code at ``now``."""
    return [
        guard.admit(f"user:+1212555{n:04d}", now, number=number, trunk=TRUNK) for n in range(count)
    ]


def test_rotating_caller_ids_drain_the_numbers_budget_and_every_answer_slows() -> None:
    guard = PasscodeGuard(BUDGET_ONLY)
    # Four codes at once, half of them free; below half each answer waits
    # longer; once empty, one answer per interval, first come first answered.
    admitted = _at_once(guard, 8, 0.0)
    assert [a.wait for a in admitted] == [0, 0, 0, 0.5, 1, 2, 3, 4]
    for a in admitted:
        guard.settle(a, a.wait, wrong=True)
    # A right code (the public listener code) waits its turn like the rest...
    listener = guard.admit("user:listener", 0.0, number=NUMBER, trunk=TRUNK)
    assert listener.wait == 5
    # ... another number on the same trunk is not slowed ...
    assert guard.admit("user:x", 0.0, number=OTHER, trunk=TRUNK).wait == 0
    # ... and the right code gives its token back once answered.
    assert guard.budget_left(f"number:{NUMBER}", 5.0) == pytest.approx(0)
    guard.settle(listener, 5.0, wrong=False)
    assert guard.budget_left(f"number:{NUMBER}", 5.0) == pytest.approx(1)
    # It refills: idle for the whole burst's worth, answers are immediate again.
    assert [a.wait for a in _at_once(guard, 1, 5.0 + 3 * 1.0)] == [0]


def test_right_codes_give_their_tokens_back() -> None:
    guard = PasscodeGuard(BUDGET_ONLY)
    for n in range(100):  # a crowd dials in, each keying the listener code
        admission = guard.admit(f"user:{n}", n * 0.01, number=NUMBER, trunk=TRUNK)
        assert admission.wait == 0
        assert guard.settle(admission, n * 0.01 + 0.005, wrong=False) == []
    assert guard.budget_left(f"number:{NUMBER}", 1.0) == 4


def test_the_trunks_budget_holds_across_numbers() -> None:
    rules = GuardRules(
        max_failures=10**6,
        slow_after=10**6,
        number_budget=Budget(100, 1.0),
        trunk_budget=Budget(4, 1.0),
    )
    guard = PasscodeGuard(rules)
    waits = [
        guard.admit(f"user:{n}", 0.0, number=f"+1212555{n:04d}", trunk=TRUNK).wait for n in range(6)
    ]
    assert waits == [0, 0, 0, 0.5, 1, 2]
    # Another trunk is not slowed.
    assert guard.admit("user:y", 0.0, number=OTHER, trunk="198.51.100.0/24").wait == 0


def test_the_budget_alerts_when_it_slows_and_when_it_is_empty_then_re_arms() -> None:
    guard = PasscodeGuard(BUDGET_ONLY)

    def guess(n: int, now: float) -> tuple[float, list[Alert]]:
        """One caller after another, each with a new caller ID, keys a wrong code."""
        admission = guard.admit(f"user:{n}", now, number=NUMBER)
        answered = now + admission.wait
        return answered, guard.settle(admission, answered, wrong=True)

    now, posted = 0.0, []
    for n in range(6):
        now, alerts = guess(n, now)
        posted += [(n, a.identity, a.failures, a.delay) for a in alerts if a.is_budget]
    # Slowing after the third wrong code (the next answer waits 0.5 s); empty
    # after the fourth (one answer per interval); nothing more till it is full.
    assert posted == [(2, f"number:{NUMBER}", 3, 0.5), (3, f"number:{NUMBER}", 4, 1.0)]
    # Full again (long after the last answer): the next drain alerts again.
    again = [a.failures for n in range(3) for a in guess(n, 100.0)[1] if a.is_budget]
    assert again == [3]


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
    # A wrong code settled for it says so too, and still does not refuse it.
    admission = guard.admit(speaker, 7, vouch=Vouch.LISTED_PHONE)
    guard.settle(admission, 7 + admission.wait, wrong=True)
    assert not guard.is_refused(speaker, 30, Vouch.LISTED_PHONE)


# A sequence of attempts: seconds since the last one, the caller, wrong or not, the number.
Attempts = list[tuple[float, int, bool, str]]
ATTEMPTS = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3, allow_nan=False),
        st.integers(min_value=0, max_value=1_000_000),
        st.booleans(),
        st.sampled_from([NUMBER, OTHER]),
    ),
    max_size=100,
)


def _run(guard: PasscodeGuard, attempts: Attempts, callers: int | None = None) -> list[float]:
    """Admit each attempt in turn, settle each at its answer: the answer times, in order.

    Like the bridge: an attempt of a refused caller is not admitted (its
    answer time is -1), and each code is checked when its wait is over.
    """
    pending: list[tuple[float, int, Admission, bool]] = []
    answers: list[float] = []
    now = 0.0
    for n, (gap, caller, wrong, number) in enumerate(attempts):
        now += gap
        while pending and pending[0][0] <= now:
            at, _, admission, was_wrong = heapq.heappop(pending)
            guard.settle(admission, at, wrong=was_wrong)
        identity = f"user:{caller if callers is None else caller % callers}"
        if guard.is_refused(identity, now):
            answers.append(-1.0)
            continue
        admission = guard.admit(identity, now, number=number, trunk=TRUNK)
        assert admission.wait >= 0
        answers.append(now + admission.wait)
        heapq.heappush(pending, (now + admission.wait, n, admission, wrong))
    while pending:
        at, _, admission, was_wrong = heapq.heappop(pending)
        guard.settle(admission, at, wrong=was_wrong)
    return answers


def _within_budget(times: list[float], budget: Budget) -> None:
    """At most burst + T / interval of ``times`` in any window of T seconds."""
    times = sorted(times)
    for i in range(len(times)):
        for j in range(i, len(times)):
            allowed = budget.burst + (times[j] - times[i]) / budget.interval
            assert j - i + 1 <= allowed + 1e-6, (times[i], times[j], budget)


@settings(max_examples=200, deadline=None)
@given(
    attempts=ATTEMPTS,
    burst=st.integers(min_value=1, max_value=8),
    interval=st.sampled_from([0.25, 1.0, 3.0]),
)
def test_no_sequence_of_identities_gets_wrong_codes_answered_faster_than_the_rate(
    attempts: Attempts, burst: int, interval: float
) -> None:
    rules = GuardRules(
        max_failures=10**6,
        slow_after=10**6,
        number_budget=Budget(burst, interval),
        trunk_budget=Budget(burst * 2, interval / 2),
    )
    answers = _run(PasscodeGuard(rules), attempts)
    for number in (NUMBER, OTHER):
        wrong = [
            at for at, (_, _, w, n) in zip(answers, attempts, strict=True) if w and n == number
        ]
        _within_budget(wrong, rules.number_budget)


@settings(max_examples=100, deadline=None)
@given(attempts=ATTEMPTS, burst=st.integers(min_value=1, max_value=8))
def test_the_trunks_budget_holds_over_all_its_numbers(attempts: Attempts, burst: int) -> None:
    # Numbers that never slow: every answer is the trunk's to time.
    rules = GuardRules(
        max_failures=10**6,
        slow_after=10**6,
        number_budget=Budget(10**6, 0.001),
        trunk_budget=Budget(burst, 0.5),
    )
    answers = _run(PasscodeGuard(rules), attempts)
    wrong = [at for at, (_, _, w, _) in zip(answers, attempts, strict=True) if w]
    _within_budget(wrong, rules.trunk_budget)


@settings(max_examples=100, deadline=None)
@given(attempts=ATTEMPTS)
def test_slowed_identities_only_answer_later(attempts: Attempts) -> None:
    # With the identities' own waits on top (three callers, often refused), the
    # wrong codes answered by any moment still fit the number's budget.
    rules = GuardRules(max_failures=4, number_budget=Budget(3, 1.0), trunk_budget=Budget(6, 0.5))
    answers = _run(PasscodeGuard(rules), [(g, c, w, NUMBER) for g, c, w, _ in attempts], 3)
    wrong = sorted(at for at, (_, _, w, _) in zip(answers, attempts, strict=True) if w and at >= 0)
    for n, at in enumerate(wrong, start=1):
        assert n <= 3 + at / 1.0 + 1e-6


@settings(max_examples=150, deadline=None)
@given(attempts=ATTEMPTS.filter(bool), flip=st.integers(min_value=0))
def test_no_wait_tells_anything_of_a_code_not_yet_answered(attempts: Attempts, flip: int) -> None:
    # Two worlds that differ in one code, right in one, wrong in the other: until
    # that code is answered, every answer comes at the same moment in both.
    flip %= len(attempts)
    other = list(attempts)
    gap, caller, wrong, number = other[flip]
    other[flip] = (gap, caller, not wrong, number)
    rules = GuardRules(max_failures=3, number_budget=Budget(3, 1.0), trunk_budget=Budget(5, 0.5))
    first = _run(PasscodeGuard(rules), attempts, 4)
    second = _run(PasscodeGuard(rules), other, 4)
    revealed = first[flip]
    if revealed < 0:
        return  # refused, never checked
    admitted_at = list(itertools.accumulate(g for g, _, _, _ in attempts))
    for n, at in enumerate(admitted_at):
        if at < revealed or (at == revealed and n < flip):
            assert first[n] == second[n], (n, first[n], second[n])


def test_census_counts_standings_as_they_are_now_and_moves_nothing() -> None:
    guard = PasscodeGuard(RULES)
    guard.record_failure("user:watched", 0.0)
    for t in range(3):
        guard.record_failure("user:slowed", float(t))
    for t in range(6):
        guard.record_failure("user:refused", float(t))

    def census(now: float, limit: int | None = None) -> dict[Standing, int]:
        walk = guard.census(now)
        steps = 1
        while not walk.step(limit):
            steps += 1
        assert limit is None or steps >= len(guard) // limit
        return walk.counts

    expected = {Standing.CLEAR: 0, Standing.WATCHED: 1, Standing.SLOWED: 1, Standing.REFUSED: 1}
    assert census(10.0) == expected
    assert census(10.0, limit=1) == expected  # a record a step, the same count
    # Past the window and the refusal, all are clear; a census moved none of them.
    cleared = {Standing.CLEAR: 3, Standing.WATCHED: 0, Standing.SLOWED: 0, Standing.REFUSED: 0}
    assert census(5 + RULES.refusal + 1) == cleared
    assert census(10.0)[Standing.REFUSED] == 1
    assert guard.standing("user:refused", 10.0) is Standing.REFUSED


def test_the_alert_board_counts_alerts_by_subject_and_standing() -> None:
    board = AlertBoard(limit=1)
    board.post(Alert("user:a", Standing.SLOWED, 3, 0.0), [1])
    board.post(Alert("user:a", Standing.REFUSED, 6, 1.0), [1])
    board.post(Alert("number:+19135550123", Standing.SLOWED, 50, 2.0), [1])
    # Only the newest is kept for the console; the totals count them all.
    assert len(board.for_event(1)) == 1
    assert board.totals == {
        ("caller", Standing.SLOWED): 1,
        ("caller", Standing.REFUSED): 1,
        ("budget", Standing.SLOWED): 1,
    }
