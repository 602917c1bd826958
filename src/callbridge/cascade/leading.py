"""The origin's lease, driven: tries on the store in a thread of their own, in time.

The adapter of ``cascade.lease`` (the decisions) on ``store.lease`` (the
row). ``run`` ticks every ``TICK`` seconds: it ages the lease, and starts a
try when one is due, in a thread pool of its own (a try must never wait
behind the call log's writes), giving it up as unanswered after the lease's
term (the thread is left to finish; the next try takes another). Each
change of state is handed to ``on_change`` in the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from callbridge.cascade.lease import Change, Holding, Lease
from callbridge.store.lease import LeaseStore

log = logging.getLogger(__name__)

TICK = 0.02


class LeaseDriver:
    def __init__(
        self,
        lease: Lease,
        store: LeaseStore,
        on_change: Callable[[Change], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lease = lease
        self.store = store
        self.on_change = on_change
        self.clock = clock
        self.failed_tries = 0
        self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="lease")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="origin-lease")

    async def stop(self) -> None:
        """Stop trying; a lease held is let go, so the standby need not wait out its term."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.lease.active:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.get_running_loop().run_in_executor(
                        self._pool, self.store.release, self.lease.me
                    ),
                    self.lease.term,
                )
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.store.dispose()

    async def run(self) -> None:
        tries: set[asyncio.Task[None]] = set()
        while True:
            now = self.clock()
            self._changed(self.lease.tick(now))
            if self.lease.due(now):
                self.lease.trying(now)
                task = asyncio.create_task(self._try(now, self.lease.may_take(now)))
                tries.add(task)
                task.add_done_callback(tries.discard)
            await asyncio.sleep(TICK)

    async def _try(self, sent_at: float, take: bool) -> None:
        loop = asyncio.get_running_loop()
        holding: Holding | None = None
        try:
            row = await asyncio.wait_for(
                loop.run_in_executor(
                    self._pool, self.store.claim, self.lease.me, self.lease.term, take
                ),
                self.lease.term,
            )
            holding = Holding(row.holder, row.epoch, row.mine)
        except Exception as error:  # the store not reached, or too slow to count
            self.failed_tries += 1
            if self.failed_tries % 50 == 1:
                log.warning("the lease's store did not answer (%d so far): %s",
                            self.failed_tries, str(error) or type(error).__name__)  # fmt: skip
        self._changed(self.lease.tried(holding, sent_at, self.clock()))

    def heard(self, epoch: int, holder: str) -> None:
        """Another origin claims ``epoch`` on the bus."""
        self._changed(self.lease.heard(epoch, holder))

    def _changed(self, change: Change | None) -> None:
        if change is None:
            return
        try:
            self.on_change(change)
        except Exception:
            log.exception("the lease's change (%s) was not carried out", change)
