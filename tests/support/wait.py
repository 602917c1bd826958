"""Waiting for something a real peer or server will do, with a deadline and a reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    detail: Callable[[], str] = lambda: "",
    interval: float = 0.05,
) -> T:
    """Poll ``predicate`` until it returns something true, and return that.

    Past ``timeout`` seconds, fail saying ``what`` was awaited and, from
    ``detail``, what the world looked like then (a server's log, a process list).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what} {detail()}".rstrip())
        time.sleep(interval)
