"""The login throttle's pure core, on a clock the test moves."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.web.throttle import BackoffRule, LoginThrottle, source_key
from callbridge.web.workpool import BoundedPool, PoolBusy

ACCOUNT = BackoffRule(free_failures=3, base_delay=1.0, max_delay=8.0, forget_after=100.0)
SOURCE = BackoffRule(free_failures=5, base_delay=1.0, max_delay=60.0, forget_after=100.0)


def fail_until_refused(throttle: LoginThrottle, account: str, source: str, now: float) -> int:
    attempts = 0
    while throttle.begin(account, source, now) is None:
        attempts += 1
    return attempts


def test_delays_double_up_to_the_ceiling() -> None:
    assert [ACCOUNT.delay(n) for n in range(1, 9)] == [0, 0, 1, 2, 4, 8, 8, 8]


def test_an_account_is_refused_with_a_growing_wait_then_let_through() -> None:
    throttle = LoginThrottle(ACCOUNT, SOURCE)
    now = 0.0
    # Three free attempts, then the key is locked for 1 s after the third.
    assert fail_until_refused(throttle, "dana", "198.51.100.1", now) == 3
    assert throttle.begin("dana", "198.51.100.2", now + 0.5) == pytest.approx(0.5)
    assert throttle.begin("dana", "198.51.100.2", now + 1.0) is None
    # The fourth attempt locked it for 2 s, the fifth for 4 s.
    assert throttle.begin("dana", "198.51.100.3", now + 2.5) == pytest.approx(0.5)
    assert throttle.begin("dana", "198.51.100.3", now + 3.0) is None
    assert throttle.begin("dana", "198.51.100.3", now + 6.0) == pytest.approx(1.0)
    # Another account from a fresh address is untouched.
    assert throttle.begin("sam", "198.51.100.9", now + 6.0) is None


def test_a_quiet_key_is_forgotten() -> None:
    throttle = LoginThrottle(ACCOUNT, SOURCE)
    fail_until_refused(throttle, "dana", "198.51.100.1", 0.0)
    assert throttle.begin("dana", "198.51.100.1", 50.0) is None
    fail_until_refused(throttle, "dana", "198.51.100.1", 50.0)
    assert throttle.begin("dana", "198.51.100.1", 200.0) is None


def test_a_source_is_refused_across_accounts() -> None:
    throttle = LoginThrottle(ACCOUNT, SOURCE)
    for n in range(5):
        assert throttle.begin(f"user{n}", "203.0.113.7", 0.0) is None
    assert throttle.begin("user99", "203.0.113.7", 0.0) == pytest.approx(1.0)
    assert throttle.begin("user99", "203.0.113.8", 0.0) is None


def test_a_success_does_not_wipe_the_sources_failures_against_others() -> None:
    throttle = LoginThrottle(ACCOUNT, SOURCE)
    for n in range(4):
        assert throttle.begin(f"victim{n}", "203.0.113.7", 0.0) is None
    # The attacker logs into their own account: that attempt is taken back,
    # the four failures against the others stay.
    assert throttle.begin("mine", "203.0.113.7", 0.0) is None
    throttle.succeeded("mine", "203.0.113.7")
    assert throttle.begin("victim9", "203.0.113.7", 0.0) is None
    assert throttle.begin("victim10", "203.0.113.7", 0.0) == pytest.approx(1.0)


def test_a_success_clears_the_account() -> None:
    throttle = LoginThrottle(ACCOUNT, SOURCE)
    assert throttle.begin("dana", "192.0.2.1", 0.0) is None
    assert throttle.begin("dana", "192.0.2.1", 0.0) is None
    assert throttle.begin("dana", "192.0.2.1", 0.0) is None
    throttle.succeeded("dana", "192.0.2.1")
    assert throttle.begin("dana", "192.0.2.2", 0.0) is None


def test_a_known_browser_is_spared_the_accounts_lock_but_not_its_sources() -> None:
    throttle = LoginThrottle(ACCOUNT, SOURCE)
    for n in range(3):
        assert throttle.begin("dana", f"203.0.113.{n}", 0.0) is None
    assert throttle.begin("dana", "192.0.2.1", 0.5) == pytest.approx(0.5)
    assert throttle.begin("dana", "192.0.2.1", 0.5, known_browser=True) is None
    # Its attempts do not lengthen the account's lock either.
    assert throttle.accounts.counts["dana"].attempts == 3
    for _ in range(4):
        assert throttle.begin("dana", "192.0.2.1", 0.5, known_browser=True) is None
    assert throttle.begin("dana", "192.0.2.1", 0.5, known_browser=True) == pytest.approx(1.0)


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
    throttle = LoginThrottle(ACCOUNT, SOURCE, max_keys=16)
    now = 0.0
    for account, source, step, success in steps:
        now += step
        wait = throttle.begin(account, source, now)
        assert wait is None or 0 < wait <= SOURCE.max_delay
        if success:
            throttle.succeeded(account, source)
        assert len(throttle.accounts.counts) <= 16 and len(throttle.sources.counts) <= 16


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
