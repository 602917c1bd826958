"""The guessing budgets' buckets on a set clock: schedules, reservations, refunds, memory."""

from __future__ import annotations

import pytest

from callbridge.ivr.budget import NUMBER, TRUNK, Budget, GuessBudgets

N = NUMBER + "+19135550123"
T = TRUNK + "192.0.2.0/24"


def test_a_budget_needs_a_burst_and_an_interval() -> None:
    with pytest.raises(ValueError, match="burst of at least 1"):
        Budget(0, 1.0)
    with pytest.raises(ValueError, match="interval > 0"):
        Budget(5, 0.0)
    assert Budget(60, 120.0).slow_mark == 30


def test_an_attempt_is_answered_when_all_its_buckets_allow_it() -> None:
    budgets = GuessBudgets(Budget(2, 1.0), Budget(1, 10.0))
    assert budgets.reserve([N, T], 0.0)[0] == 0.0
    # The trunk's one token is held: the next waits for the trunk's refill.
    answer_at, _ = budgets.reserve([N, T], 0.0)
    assert answer_at == 10.0
    # The number's schedule follows that answer: a caller of the number over
    # another trunk is answered after it, never before.
    assert budgets.left(N, 0.0) == pytest.approx(1)
    assert budgets.reserve([N, TRUNK + "198.51.100.0/24"], 0.0)[0] == 10.0


def test_a_token_comes_back_only_where_that_is_exact() -> None:
    budgets = GuessBudgets(Budget(3, 1.0), Budget(3, 1.0))
    _, first = budgets.reserve([N], 0.0)
    # Refilled to full long before a second attempt, which takes a token...
    _, second = budgets.reserve([N], 100.0)
    # ... then the first is found right: giving its token back now would be a
    # token the cap already threw away, so it stays spent.
    budgets.refund(first, 100.0)
    assert budgets.left(N, 100.0) == pytest.approx(2)
    # With nothing reserved after it, a token always comes back.
    budgets.refund(second, 100.0)
    assert budgets.left(N, 100.0) == pytest.approx(3)


def test_a_wrong_code_keeps_its_token_and_reports_a_draining_bucket() -> None:
    budgets = GuessBudgets(Budget(4, 1.0), Budget(100, 1.0))
    reports = []
    for now in (0.0, 0.0, 0.0):
        _, held = budgets.reserve([N, T], now)
        reports += budgets.spend(held)
    assert [(d.key, d.spent) for d in reports] == [(N, 3)]
    assert budgets.left(N, 0.0) == pytest.approx(1)


def test_memory_is_bounded_and_full_buckets_go_first() -> None:
    budgets = GuessBudgets(Budget(4, 1.0), Budget(4, 1.0), limit=10)
    for n in range(5):  # five drained numbers
        for _ in range(4):
            budgets.spend(budgets.reserve([f"{NUMBER}drained{n}"], 0.0)[1])
    for n in range(1000):  # then many numbers with one wrong code each, long after
        budgets.spend(budgets.reserve([f"{NUMBER}other{n}"], 1000.0 + n * 10)[1])
    assert len(budgets) <= 10
    # The drained ones had refilled long before: forgetting them lost nothing.
    assert budgets.left(f"{NUMBER}drained0", 20_000.0) is None


def test_draining_budgets_are_counted_by_kind_and_state_as_they_refill() -> None:
    budgets = GuessBudgets(Budget(4, 1.0), Budget(100, 1.0))
    for _ in range(3):
        budgets.spend(budgets.reserve([N, T], 0.0)[1])
    assert budgets.draining(0.0) == {
        ("number", "slowing"): 1,
        ("number", "empty"): 0,
        ("trunk", "slowing"): 0,
        ("trunk", "empty"): 0,
    }
    budgets.spend(budgets.reserve([N], 0.0)[1])
    assert budgets.draining(0.0)[("number", "empty")] == 1
    # Refilled: nothing drains, and reading changed nothing.
    assert sum(budgets.draining(10.0).values()) == 0
    assert budgets.draining(0.0)[("number", "empty")] == 1
