"""Passcode guessing is not allowed: failures are counted per source address and per caller id.

After ``max_failures`` wrong codes within ``window`` seconds from one source
(or one caller id, which a trunk may spread over many sources), that key is
blocked for ``block`` seconds. Memory is bounded: the oldest keys are
forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class GuardRules:
    max_failures: int = 6
    window: float = 600.0
    block: float = 900.0
    max_keys: int = 10_000


class PasscodeGuard:
    def __init__(self, rules: GuardRules = GuardRules()) -> None:
        self.rules = rules
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked_until: OrderedDict[str, float] = OrderedDict()

    @staticmethod
    def _keys(source_ip: str, caller_id: str | None) -> list[str]:
        keys = [f"ip:{source_ip}"]
        if caller_id:
            keys.append(f"caller:{caller_id}")
        return keys

    def _trim(self, table: OrderedDict[str, object]) -> None:
        while len(table) > self.rules.max_keys:
            table.popitem(last=False)

    def record_failure(self, source_ip: str, caller_id: str | None, now: float) -> bool:
        """Count a wrong passcode; returns True when this failure blocks the caller."""
        blocked = False
        for key in self._keys(source_ip, caller_id):
            times = self._failures.pop(key, deque())
            times.append(now)
            while times and times[0] <= now - self.rules.window:
                times.popleft()
            while len(times) > self.rules.max_failures:
                times.popleft()
            self._failures[key] = times
            if len(times) >= self.rules.max_failures:
                self._blocked_until.pop(key, None)
                self._blocked_until[key] = now + self.rules.block
                blocked = True
        self._trim(self._failures)  # type: ignore[arg-type]
        self._trim(self._blocked_until)  # type: ignore[arg-type]
        return blocked

    def record_success(self, source_ip: str, caller_id: str | None) -> None:
        """A right code clears the caller id's count, not the source's: a trunk carries many."""
        if caller_id:
            self._failures.pop(f"caller:{caller_id}", None)

    def is_blocked(self, source_ip: str, caller_id: str | None, now: float) -> bool:
        for key in self._keys(source_ip, caller_id):
            until = self._blocked_until.get(key)
            if until is not None:
                if now < until:
                    return True
                del self._blocked_until[key]
                self._failures.pop(key, None)
        return False
