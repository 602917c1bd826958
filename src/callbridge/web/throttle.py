"""Login throttling: locks per source address, waits per account, time as a parameter.

Call ``LoginThrottle.begin(account, source, now)`` before checking a
password. It answers ``Refused(wait)`` (answer 429 with that as
``Retry-After`` without touching argon2) or ``Admitted(hold)``: the attempt
is counted (so a burst of concurrent attempts is throttled before any of
them has been answered), and the caller waits ``hold`` seconds, then checks
the password. Call ``succeeded`` when the password was right.

Two kinds of key lock: the source address (``SOURCE_RULE``, across every
account: a guesser's address) and the account at one source
(``PAIR_RULE``). Each allows a few free failures; after that every attempt
locks the key for a delay that doubles each time, up to a ceiling. A key
with no attempt for ``forget_after`` seconds starts clean.

The account itself never locks. Failures against it from everywhere
(``ACCOUNT_RULE``) only make each later attempt from a browser that has not
logged in to it before wait before it is checked, at most
``ACCOUNT_RULE.max_delay`` seconds (``MAX_HOLD``) — a wait per attempt, not
a lock that others can renew. An account-wide lock cannot tell the operator
at a new browser from a stranger at a new address, so it would be a denial
of service on the people who run the call: with the source and pair locks
a stranger locks out only the addresses they guess from, and the operator
at a new browser, from any other address, gets in after at most
``MAX_HOLD``. A browser that logged in to the account before (it carries a
signed cookie, ``known_browser``) does not wait. What bounds guessing from
many addresses is each address's own budget (IPv6 by its /64), on top of
the bounded argon2 pool.

A success clears the account's count and its pair, and takes back only its
own attempt from the source's, so an attacker who owns one account cannot
wipe the failures their address ran up against the others.

Memory is bounded: each table keeps at most ``max_keys`` entries and, when
full, forgets the one that has been quiet longest.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffRule:
    """How one kind of key is slowed down."""

    free_failures: int
    base_delay: float
    max_delay: float
    forget_after: float

    def delay(self, failures: int) -> float:
        """Seconds the key is locked after its ``failures``-th counted attempt."""
        if failures < self.free_failures:
            return 0.0
        exponent = min(failures - self.free_failures, 32)
        return float(min(self.max_delay, self.base_delay * 2**exponent))


# One operator mistyping stays free; a guesser doubles its wait from then on.
SOURCE_RULE = BackoffRule(free_failures=10, base_delay=1.0, max_delay=900.0, forget_after=900.0)
PAIR_RULE = BackoffRule(free_failures=5, base_delay=1.0, max_delay=900.0, forget_after=900.0)
# Not a lock: how long an attempt on an account under attack waits (see above).
ACCOUNT_RULE = BackoffRule(free_failures=5, base_delay=1.0, max_delay=5.0, forget_after=900.0)
MAX_HOLD = ACCOUNT_RULE.max_delay
MAX_KEYS = 10_000


@dataclass(frozen=True)
class Refused:
    """Answer 429, ``Retry-After: wait``; nothing was counted."""

    wait: float


@dataclass(frozen=True)
class Admitted:
    """Counted; wait ``hold`` seconds (0 mostly, at most ``MAX_HOLD``), then check the password."""

    hold: float


@dataclass
class _Count:
    attempts: int
    last: float
    locked_until: float


class _Table:
    """Counts for one kind of key, oldest-quiet first, at most ``max_keys`` of them."""

    def __init__(self, rule: BackoffRule, max_keys: int) -> None:
        self.rule = rule
        self.max_keys = max_keys
        self.counts: OrderedDict[str, _Count] = OrderedDict()

    def _live(self, key: str, now: float) -> _Count | None:
        count = self.counts.get(key)
        if count is not None and now - count.last > self.rule.forget_after:
            del self.counts[key]
            return None
        return count

    def wait(self, key: str, now: float) -> float:
        count = self._live(key, now)
        if count is None:
            return 0.0
        return max(0.0, count.locked_until - now)

    def count(self, key: str, now: float) -> None:
        count = self._live(key, now)
        if count is None:
            while len(self.counts) >= self.max_keys:
                self.counts.popitem(last=False)
            count = self.counts[key] = _Count(0, now, now)
        count.attempts += 1
        count.last = now
        count.locked_until = now + self.rule.delay(count.attempts)
        self.counts.move_to_end(key)

    def take_back(self, key: str) -> None:
        count = self.counts.get(key)
        if count is None:
            return
        count.attempts = max(0, count.attempts - 1)
        count.locked_until = count.last + self.rule.delay(count.attempts)

    def forget(self, key: str) -> None:
        self.counts.pop(key, None)


def source_key(address: str) -> str:
    """The key for a client address: IPv6 by its /64, which one host usually owns whole."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class LoginThrottle:
    """Decides whether a login attempt may be checked, and after what wait; see the docstring."""

    def __init__(
        self,
        account_rule: BackoffRule = ACCOUNT_RULE,
        source_rule: BackoffRule = SOURCE_RULE,
        max_keys: int = MAX_KEYS,
        pair_rule: BackoffRule = PAIR_RULE,
    ) -> None:
        self.accounts = _Table(account_rule, max_keys)
        self.sources = _Table(source_rule, max_keys)
        self.pairs = _Table(pair_rule, max_keys)

    def begin(
        self, account: str, source: str, now: float, known_browser: bool = False
    ) -> Refused | Admitted:
        """``Refused`` (nothing counted), or ``Admitted`` with the wait before the check.

        ``known_browser``: the browser has logged in to this account before (it
        carries a signed cookie saying so). It does not wait for the account
        and does not add to its count, so strangers spraying the name cannot
        slow the operator's own browser; the source and pair locks still apply.
        """
        source = source_key(source)
        pair = f"{source} {account}"
        wait = max(self.sources.wait(source, now), self.pairs.wait(pair, now))
        if wait > 0:
            return Refused(wait)
        hold = 0.0
        if not known_browser:
            # The wait follows the failures before this attempt; it never locks.
            self.accounts.count(account, now)
            hold = self.accounts.rule.delay(self.accounts.counts[account].attempts - 1)
        self.pairs.count(pair, now)
        self.sources.count(source, now)
        return Admitted(hold)

    def succeeded(self, account: str, source: str) -> None:
        """The password was right: the account and its pair start clean, the source gets this
        attempt back."""
        source = source_key(source)
        self.accounts.forget(account)
        self.pairs.forget(f"{source} {account}")
        self.sources.take_back(source)

    def __len__(self) -> int:
        return len(self.accounts.counts) + len(self.sources.counts) + len(self.pairs.counts)
