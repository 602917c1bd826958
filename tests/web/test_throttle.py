"""The login throttle's pure core, on a clock the test moves."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.throttle import Rate, RateLimit
from callbridge.web.throttle import (
    Admitted,
    BackoffRule,
    LoginThrottle,
    Refused,
    source_key,
)
from callbridge.web.workpool import BoundedPool, PoolBusy

ACCOUNT = BackoffRule(free_failures=3, base_delay=1.0, max_delay=4.0, forget_after=100.0)
SOURCE = BackoffRule(free_failures=5, base_delay=1.0, max_delay=60.0, forget_after=100.0)
PAIR = BackoffRule(free_failures=3, base_delay=1.0, max_delay=60.0, forget_after=100.0)


def throttle_of(max_keys: int = 1000) -> LoginThrottle:
    return LoginThrottle(ACCOUNT, SOURCE, max_keys, PAIR)


def go(throttle: LoginThrottle, account: str, source: str, now: float, **kw: bool) -> float:
    """The hold of an admitted attempt; fails the test if it was refused."""
    answer = throttle.begin(account, source, now, **kw)
    assert isinstance(answer, Admitted), answer
    return answer.hold


def refused(throttle: LoginThrottle, account: str, source: str, now: float) -> float:
    answer = throttle.begin(account, source, now)
    assert isinstance(answer, Refused), answer
    return answer.wait


def fail_until_refused(throttle: LoginThrottle, account: str, source: str, now: float) -> int:
    attempts = 0
    while isinstance(throttle.begin(account, source, now), Admitted):
        attempts += 1
    return attempts


def test_delays_double_up_to_the_ceiling() -> None:
    assert [PAIR.delay(n) for n in range(1, 9)] == [0, 0, 1, 2, 4, 8, 16, 32]
    assert [ACCOUNT.delay(n) for n in range(1, 9)] == [0, 0, 1, 2, 4, 4, 4, 4]


def test_a_name_from_one_address_is_refused_with_a_growing_wait_then_let_through() -> None:
    throttle = throttle_of()
    now = 0.0
    # Three free attempts, then the pair is locked for 1 s after the third.
    assert fail_until_refused(throttle, "dana", "198.51.100.1", now) == 3
    assert refused(throttle, "dana", "198.51.100.1", now + 0.5) == pytest.approx(0.5)
    go(throttle, "dana", "198.51.100.1", now + 1.0)
    # The fourth attempt locked it for 2 s.
    assert refused(throttle, "dana", "198.51.100.1", now + 2.5) == pytest.approx(0.5)
    # Another account from a fresh address is untouched.
    assert go(throttle, "sam", "198.51.100.9", now + 6.0) == 0


def test_strangers_elsewhere_make_the_name_wait_but_never_lock_it() -> None:
    """The issue's lock-out: guesses from many addresses only hold each attempt, up to a cap."""
    throttle = throttle_of()
    holds = [go(throttle, "dana", f"203.0.113.{n}", 0.0) for n in range(40)]
    assert holds[:3] == [0, 0, 0]
    assert holds[3:6] == [1, 2, 4] and set(holds[6:]) == {ACCOUNT.max_delay}
    # The operator at a new browser and a new address: admitted, after at most the cap.
    assert go(throttle, "dana", "192.0.2.1", 0.0) == ACCOUNT.max_delay
    # A browser that logged in before does not wait, nor adds to the count.
    assert go(throttle, "dana", "192.0.2.2", 0.0, known_browser=True) == 0
    assert throttle.accounts.counts["dana"].attempts == 41


def test_a_quiet_key_is_forgotten() -> None:
    throttle = throttle_of()
    fail_until_refused(throttle, "dana", "198.51.100.1", 0.0)
    go(throttle, "dana", "198.51.100.1", 50.0)
    fail_until_refused(throttle, "dana", "198.51.100.1", 50.0)
    assert go(throttle, "dana", "198.51.100.1", 200.0) == 0


def test_a_source_is_refused_across_accounts() -> None:
    throttle = throttle_of()
    for n in range(5):
        go(throttle, f"user{n}", "203.0.113.7", 0.0)
    assert refused(throttle, "user99", "203.0.113.7", 0.0) == pytest.approx(1.0)
    go(throttle, "user99", "203.0.113.8", 0.0)


def test_a_success_does_not_wipe_the_sources_failures_against_others() -> None:
    throttle = throttle_of()
    for n in range(4):
        go(throttle, f"victim{n}", "203.0.113.7", 0.0)
    # The attacker logs into their own account: that attempt is taken back,
    # the four failures against the others stay.
    go(throttle, "mine", "203.0.113.7", 0.0)
    throttle.succeeded("mine", "203.0.113.7")
    go(throttle, "victim9", "203.0.113.7", 0.0)
    assert refused(throttle, "victim10", "203.0.113.7", 0.0) == pytest.approx(1.0)


def test_a_success_clears_the_account_and_its_pair() -> None:
    throttle = throttle_of()
    for _ in range(3):
        go(throttle, "dana", "192.0.2.1", 0.0)
    for n in range(3):
        go(throttle, "dana", f"203.0.113.{n}", 0.0)
    throttle.succeeded("dana", "192.0.2.1")
    assert go(throttle, "dana", "192.0.2.1", 0.0) == 0


def test_a_known_browser_is_spared_the_wait_but_not_its_sources_lock() -> None:
    throttle = throttle_of()
    for n in range(5):
        go(throttle, "dana", f"203.0.113.{n}", 0.0)
    assert go(throttle, "dana", "192.0.2.1", 0.5) > 0
    assert go(throttle, "dana", "192.0.2.1", 0.5, known_browser=True) == 0
    go(throttle, "dana", "192.0.2.1", 0.5, known_browser=True)
    # Its address's (and name-at-address) lock still holds it.
    assert isinstance(throttle.begin("dana", "192.0.2.1", 0.5, known_browser=True), Refused)


def test_ipv6_sources_count_by_their_64() -> None:
    assert source_key("2001:db8:1:2::1") == source_key("2001:db8:1:2:ffff::9")
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")
    assert source_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert source_key("testclient") == "testclient"


@given(
    st.lists(
        st.tuples(st.text(max_size=8), st.ip_addresses().map(str), st.floats(0, 10), st.booleans()),
        max_size=300,
    )
)
def test_memory_is_bounded(steps: list[tuple[str, str, float, bool]]) -> None:
    throttle = throttle_of(max_keys=16)
    now = 0.0
    for account, source, step, success in steps:
        now += step
        answer = throttle.begin(account, source, now)
        if isinstance(answer, Refused):
            assert 0 < answer.wait <= max(SOURCE.max_delay, PAIR.max_delay)
        else:
            assert 0 <= answer.hold <= ACCOUNT.max_delay
        if success:
            throttle.succeeded(account, source)
        assert all(
            len(t.counts) <= 16 for t in (throttle.accounts, throttle.sources, throttle.pairs)
        )


def test_a_rate_limit_lets_a_burst_through_then_one_per_interval() -> None:
    limit = RateLimit(Rate(burst=3, every=10.0), max_keys=4)
    assert [limit.take("a", 0.0) for _ in range(3)] == [0, 0, 0]
    assert limit.take("a", 0.0) == pytest.approx(10.0)
    assert limit.take("a", 4.0) == pytest.approx(6.0)  # a refusal does not lengthen the wait
    assert limit.take("a", 10.0) == 0 and limit.take("a", 10.0) == pytest.approx(10.0)
    limit.give_back("a", 10.0)
    assert limit.take("a", 10.0) == 0
    assert limit.take("b", 10.0) == 0  # another key is untouched
    for n in range(10):
        limit.take(n, 11.0)
    assert len(limit) == 4


def test_the_pool_runs_two_at_once_and_refuses_beyond_its_queue() -> None:
    pool = BoundedPool(workers=2, queue=3)
    release = threading.Event()
    running = 0
    most = 0
    lock = threading.Lock()

    def work() -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(5)
        with lock:
            running -= 1
        return "done"

    async def flood() -> list[str | BaseException]:
        tasks = [asyncio.ensure_future(pool.run(work)) for _ in range(20)]
        await asyncio.sleep(0.2)
        release.set()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    try:
        results = asyncio.run(flood())
    finally:
        pool.close()
    assert results.count("done") == 5
    assert sum(isinstance(r, PoolBusy) for r in results) == 15
    assert most == 2 and pool.admitted == 0 and pool.refused == 15
