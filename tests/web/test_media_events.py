"""The media routes' event cache: one database read per event, however many ask at once."""

from __future__ import annotations

import asyncio
import threading
import time

from callbridge.events.schema import EventRecord
from callbridge.store.db import Database
from callbridge.store.events import EventStore
from callbridge.web.media import EventCache
from tests.telephony.conftest import event_spec


class CountingStore(EventStore):
    """The real store, counting its reads (slowed a little, as a busy database is)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.reads = 0
        self._lock = threading.Lock()

    def get(self, event_id: int) -> EventRecord:
        with self._lock:
            self.reads += 1
        time.sleep(0.05)
        return super().get(event_id)


def test_a_crowd_finding_the_entry_stale_reads_the_database_once(
    sqlite_database: Database,
) -> None:
    store = CountingStore(sqlite_database)
    record = store.create(event_spec())
    cache = EventCache(store, ttl=0.2)

    async def crowd() -> list[EventRecord | None]:
        return await asyncio.gather(*(cache.get(record.id) for _ in range(200)))

    first = asyncio.run(crowd())
    assert store.reads == 1 and all(r is not None and r.id == record.id for r in first)
    time.sleep(0.25)  # stale now
    asyncio.run(crowd())
    assert store.reads == 2
    assert asyncio.run(cache.get(record.id + 1000)) is None  # no such event, cached as such
