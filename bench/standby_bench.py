#!/usr/bin/env python3
"""Standby benchmark: from the active origin's SIGKILL to the standby holding the lease.

A real PostgreSQL (``tests/support/postgres.py``) holds the lease's row
(``store.lease``). Two origins' lease drivers (``cascade.leading``, the code
``serve --role origin`` runs), each in a process of its own, compete for it
with the defaults (term 0.6 s, renewed every 0.15 s, tried every 0.1 s).
Each round SIGKILLs whichever holds the lease and times how long the other
takes to hold it (its driver's change to ACTIVE, on the same clock), then
starts the killed one again, which must come back as the standby. The
audio a listener misses is this plus the bus's NOTIFY to the edges and a
frame or two (tests/cascade/test_standby.py measures that end to end).

    .venv/bin/python bench/standby_bench.py --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import percentiles  # noqa: E402


def child(url: str, name: str) -> None:
    """One origin's lease driver; prints each change as ``<POSIX time> <state> <epoch>``."""
    from callbridge.cascade.leading import LeaseDriver
    from callbridge.cascade.lease import Change, Lease
    from callbridge.store.lease import LeaseStore

    def changed(change: Change) -> None:
        print(f"{time.time():.4f} {change.after.value} {change.epoch}", flush=True)

    async def run() -> None:
        driver = LeaseDriver(Lease(f"{name}/{os.getpid()}"), LeaseStore(url), changed)
        driver.start()
        await asyncio.Event().wait()

    asyncio.run(run())


class Origin:
    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.changes: list[tuple[float, str, int]] = []
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--child", url, name],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            at, state, epoch = line.split()
            self.changes.append((float(at), state, int(epoch)))

    @property
    def state(self) -> str | None:
        return self.changes[-1][1] if self.changes else None

    def kill(self) -> float:
        at = time.time()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        return at


def wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {what}")
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--child", nargs=2, metavar=("URL", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from tests.support.postgres import PostgresServer, find_bin_dir

    from callbridge.store.db import Database

    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL's server is not installed (scripts/install-system)")
    postgres = PostgresServer(bin_dir)
    postgres.start()
    origins: list[Origin] = []
    try:
        url = postgres.create_database()
        database = Database(url)
        database.upgrade()
        database.dispose()
        origins = [Origin(url, "a")]
        wait(lambda: origins[0].state == "active", 30, "a active")
        origins.append(Origin(url, "b"))
        wait(lambda: origins[1].state == "standby", 30, "b standby")
        takeovers: list[float] = []
        for _ in range(args.rounds):
            active = next(o for o in origins if o.state == "active")
            standby = next(o for o in origins if o is not active)
            seen = len(standby.changes)
            killed = active.kill()
            wait(lambda standby=standby, seen=seen: standby.changes[seen:], 10, "the takeover")
            at, state, epoch = standby.changes[seen]
            assert state == "active", standby.changes
            takeovers.append(at - killed)
            again = Origin(url, active.name)
            origins[origins.index(active)] = again
            wait(lambda again=again: again.state is not None, 30, "the killed one back")
            assert again.state == "standby", again.changes
            print(
                f"round {len(takeovers)}: {standby.name} active at epoch {epoch},"
                f" {(at - killed) * 1000:.0f} ms after the SIGKILL; {again.name} back as standby"
            )
        print(f"\nSIGKILL to takeover over {len(takeovers)} rounds, s: {percentiles(takeovers)}")
    finally:
        for origin in origins:
            if origin.process.poll() is None:
                origin.kill()
        postgres.stop()


if __name__ == "__main__":
    main()
