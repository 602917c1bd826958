"""Saying a thing once in a while, and doing a thing at a bounded rate.

``Throttle`` is sans-IO (``now`` in, a yes or no out) and bounded: it
remembers at most ``max_keys`` keys, and once that many have spoken within
``interval`` every new one is told no, so a flood from many addresses costs
at most ``max_keys`` log lines (or answers) per interval.

``RateLimit`` is a token bucket per key (an address, an event): ``burst``
at once, then one every ``every`` seconds. ``take`` answers 0 and spends a
token, or the seconds until one is there (and spends nothing), so a refused
request never lengthens its own wait. Also sans-IO and bounded: past
``max_keys`` the key used least recently is dropped, and a dropped key starts
full again, which only ever errs towards letting one more through.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass


class Throttle:
    """At most one yes per key per ``interval`` seconds, for at most ``max_keys`` keys."""

    def __init__(self, interval: float, max_keys: int = 1024) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self._last: dict[Hashable, float] = {}
        self.suppressed = 0  # noes since the last yes (any key)

    def allow(self, key: Hashable, now: float) -> bool:
        """True when ``key`` may speak now (and it is remembered as having spoken)."""
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self.suppressed += 1
            return False
        if last is None and len(self._last) >= self.max_keys:
            cutoff = now - self.interval
            self._last = {k: t for k, t in self._last.items() if t > cutoff}
            if len(self._last) >= self.max_keys:
                self.suppressed += 1
                return False
        self._last[key] = now
        return True

    def take_suppressed(self) -> int:
        """How many were told no since the last call (for "and N more" in a log line)."""
        count, self.suppressed = self.suppressed, 0
        return count


@dataclass(frozen=True)
class Rate:
    """``burst`` at once, then one every ``every`` seconds."""

    burst: int
    every: float

    def __post_init__(self) -> None:
        if self.burst < 1 or self.every <= 0:
            raise ValueError("a rate needs a burst of at least 1 and a positive interval")


class RateLimit:
    """A token bucket per key; see the module docstring. Not thread-safe: call it from one loop."""

    def __init__(self, rate: Rate, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.max_keys = max_keys
        # key -> (tokens, when they were counted); least recently used first.
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def _tokens(self, key: Hashable, now: float) -> float:
        found = self._buckets.get(key)
        if found is None:
            return float(self.rate.burst)
        tokens, then = found
        return min(float(self.rate.burst), tokens + max(0.0, now - then) / self.rate.every)

    def wait(self, key: Hashable, now: float) -> float:
        """Seconds until ``key`` may go (0: now); spends nothing."""
        tokens = self._tokens(key, now)
        return 0.0 if tokens >= 1 else (1 - tokens) * self.rate.every

    def take(self, key: Hashable, now: float) -> float:
        """0 and one token spent, or the seconds to wait (nothing spent)."""
        tokens = self._tokens(key, now)
        if tokens < 1:
            return (1 - tokens) * self.rate.every
        self._buckets[key] = (tokens - 1, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return 0.0

    def give_back(self, key: Hashable, now: float) -> None:
        """Undo one ``take`` (the thing it paid for did not happen after all)."""
        if key in self._buckets:
            tokens = self._tokens(key, now)
            self._buckets[key] = (min(float(self.rate.burst), tokens + 1), now)

    def __len__(self) -> int:
        return len(self._buckets)
