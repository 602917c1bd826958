"""Login throttling: backoff per account and per source address, time as a parameter.

Call ``LoginThrottle.begin(account, source, now)`` before checking a
password. It answers ``None`` when the attempt may go ahead (and counts it,
so a burst of concurrent attempts is throttled before any of them has been
answered), or the seconds the caller must wait: answer 429 with that as
``Retry-After`` without touching argon2. Call ``succeeded`` when the
password was right.

Each key (the account name, the source address) allows a few free failures;
after that every attempt locks the key for a delay that doubles each time,
up to a ceiling. A key with no attempt for ``forget_after`` seconds starts
clean. The account ceiling is short, so a stranger who sprays an operator's
name can slow that operator down but not lock them out; a source's ceiling
is long; a browser that has logged in to the account before is spared the
account's lock (``known_browser``). A success clears the account's count and takes back only its own
attempt from the source's, so an attacker who owns one account cannot wipe
the failures their address ran up against the others.

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
ACCOUNT_RULE = BackoffRule(free_failures=5, base_delay=1.0, max_delay=60.0, forget_after=900.0)
SOURCE_RULE = BackoffRule(free_failures=10, base_delay=1.0, max_delay=900.0, forget_after=900.0)
MAX_KEYS = 10_000


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
    """Decides whether a login attempt may be checked; see the module docstring."""

    def __init__(
        self,
        account_rule: BackoffRule = ACCOUNT_RULE,
        source_rule: BackoffRule = SOURCE_RULE,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.accounts = _Table(account_rule, max_keys)
        self.sources = _Table(source_rule, max_keys)

    def begin(
        self, account: str, source: str, now: float, known_browser: bool = False
    ) -> float | None:
        """None and the attempt is counted, or the seconds to wait (the attempt is not counted).

        ``known_browser``: the browser has logged in to this account before (it
        carries a signed cookie saying so). Its attempts neither wait for nor
        count against the account, so strangers spraying the name cannot lock
        the operator out of their own browser; the source limit still applies.
        """
        source = source_key(source)
        wait = self.sources.wait(source, now)
        if not known_browser:
            wait = max(wait, self.accounts.wait(account, now))
        if wait > 0:
            return wait
        if not known_browser:
            self.accounts.count(account, now)
        self.sources.count(source, now)
        return None

    def succeeded(self, account: str, source: str) -> None:
        """The password was right: the account starts clean, the source gets this attempt back."""
        self.accounts.forget(account)
        self.sources.take_back(source_key(source))

    def __len__(self) -> int:
        return len(self.accounts.counts) + len(self.sources.counts)
