from __future__ import annotations

from callbridge.ivr.guard import GuardRules, PasscodeGuard


def test_blocks_after_too_many_failures_in_the_window() -> None:
    guard = PasscodeGuard(GuardRules(max_failures=3, window=60, block=300))
    assert not guard.record_failure("10.0.0.1", "+12125551234", 0)
    assert not guard.record_failure("10.0.0.1", "+12125551234", 10)
    assert guard.record_failure("10.0.0.1", "+12125551234", 20)
    assert guard.is_blocked("10.0.0.1", None, 21)
    assert guard.is_blocked("10.9.9.9", "+12125551234", 21)  # same caller, other source
    assert not guard.is_blocked("10.9.9.9", "+13125551234", 21)
    assert not guard.is_blocked("10.0.0.1", None, 321)


def test_old_failures_fall_out_of_the_window() -> None:
    guard = PasscodeGuard(GuardRules(max_failures=3, window=60, block=300))
    guard.record_failure("10.0.0.1", None, 0)
    guard.record_failure("10.0.0.1", None, 30)
    assert not guard.record_failure("10.0.0.1", None, 61)
    assert not guard.is_blocked("10.0.0.1", None, 62)


def test_success_clears_the_caller_but_not_the_source() -> None:
    guard = PasscodeGuard(GuardRules(max_failures=2, window=60, block=300))
    guard.record_failure("10.0.0.1", "alice", 0)
    guard.record_success("10.0.0.1", "alice")
    assert not guard.record_failure("10.0.0.2", "alice", 1)
    assert guard.record_failure("10.0.0.1", "bob", 2)


def test_memory_is_bounded() -> None:
    guard = PasscodeGuard(GuardRules(max_failures=5, max_keys=100))
    for i in range(10_000):
        guard.record_failure(f"10.0.{i // 256}.{i % 256}", f"caller{i}", float(i))
    assert len(guard._failures) <= 100
