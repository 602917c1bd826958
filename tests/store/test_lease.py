"""The lease's row on SQLite and on a real PostgreSQL: one holder, epochs in order."""

from __future__ import annotations

import threading
import time

from callbridge.store.db import Database
from callbridge.store.lease import LeaseStore


def test_take_renew_expire_and_take_over(database: Database) -> None:
    a, b = LeaseStore(database.url), LeaseStore(database.url)
    try:
        first = a.claim("a", 0.5, take=True)
        assert (first.holder, first.epoch, first.mine) == ("a", 1, True)
        assert 0.0 < first.expires_in <= 0.5
        # Held and unexpired: b cannot take it, and learns who has it.
        seen = b.claim("b", 0.5, take=True)
        assert (seen.holder, seen.epoch, seen.mine) == ("a", 1, False)
        # Renewing keeps the epoch.
        assert a.claim("a", 0.5, take=True).epoch == 1
        # a stops renewing (killed, or cut off from the store): once expired, b takes it.
        time.sleep(0.6)
        assert not b.claim("b", 0.5, take=False).mine  # a patient standby does not
        taken = b.claim("b", 0.5, take=True)
        assert (taken.holder, taken.epoch, taken.mine) == ("b", 2, True)
        # a comes back: it cannot renew what it lost; it sees the newer epoch.
        back = a.claim("a", 0.5, take=True)
        assert (back.holder, back.epoch, back.mine) == ("b", 2, False)
        # A clean stop lets it go at once.
        b.release("b")
        assert a.claim("a", 0.5, take=True).epoch == 3
    finally:
        a.dispose()
        b.dispose()


def test_racing_origins_never_both_win(database: Database) -> None:
    stores = [LeaseStore(database.url) for _ in range(4)]
    wins: list[tuple[int, str, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(stores))

    def race(n: int) -> None:
        me = f"o{n}"
        start.wait()
        for round_ in range(15):
            try:
                row = stores[n].claim(me, 0.05, take=True)
            except Exception:  # SQLite's busy writer: that try did not reach the store
                continue
            if row.mine:
                with lock:
                    wins.append((row.epoch, me, round_))
            time.sleep(0.02)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.dispose()
    assert wins
    holders: dict[int, set[str]] = {}
    for epoch, me, _ in wins:
        holders.setdefault(epoch, set()).add(me)
    # Each epoch was held by exactly one origin.
    assert all(len(who) == 1 for who in holders.values()), holders
