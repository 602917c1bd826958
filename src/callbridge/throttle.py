"""Saying a thing once in a while: log lines and answers that a flood must not multiply.

``Throttle`` is sans-IO (``now`` in, a yes or no out) and bounded: it
remembers at most ``max_keys`` keys, and once that many have spoken within
``interval`` every new one is told no, so a flood from many addresses costs
at most ``max_keys`` log lines (or answers) per interval.
"""

from __future__ import annotations

from collections.abc import Hashable


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
