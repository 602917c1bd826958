"""A small bounded pool for expensive blocking work: argon2 password checks.

argon2 is memory-hard on purpose (19 MiB a check here). Run in Starlette's
default thread pool, 120 concurrent logins meant 40 checks at once and
gigabytes of memory. ``BoundedPool`` runs at most ``workers`` jobs at once
on its own threads and lets at most ``queue`` more wait; anything beyond
that is refused at once with ``PoolBusy`` (the route answers 503 with
``Retry-After``) instead of piling up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class PoolBusy(Exception):
    """Every worker is busy and the queue is full; try again shortly."""


class BoundedPool:
    """Create once per app; ``await run(fn, *args)`` from request handlers."""

    def __init__(self, workers: int, queue: int, name: str = "argon2") -> None:
        if workers < 1 or queue < 0:
            raise ValueError("a pool needs at least one worker and a queue of zero or more")
        self.workers = workers
        self.limit = workers + queue
        self.admitted = 0
        self.refused = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on a worker thread; raises PoolBusy at once when the pool is full."""
        # Counted on the event loop only, so no lock: the check and the increment
        # cannot interleave with another request's.
        if self.admitted >= self.limit:
            self.refused += 1
            raise PoolBusy
        self.admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self.admitted -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
