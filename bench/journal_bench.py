#!/usr/bin/env python3
"""Journal benchmark: what the media plane's write journal costs, and how fast it catches up.

Two figures, on one core's worth of work (``bridge.journal``):

1. **Journalling**: ``--entries`` call log entries (joins, as a burst of
   callers makes them) handed to the writer while the database is
   unreachable (a PostgreSQL URL on a closed port): entries journalled a
   second (each turn one SQLite transaction, ``synchronous=FULL``).
2. **Catching up**: the database answers again; how long until every entry
   is in the call log (``CallLog.append_once``, 500 a transaction), entries a
   second, and that each is there exactly once.

The database is a SQLite file by default; ``--db postgresql://...`` names a
real PostgreSQL (created empty and migrated by the run).

    .venv/bin/python bench/journal_bench.py                      # SQLite, 20,000 entries
    .venv/bin/python bench/journal_bench.py --db postgresql://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from callbridge.bridge.journal import Journal, JournalWriter, Kind, log_body
from callbridge.events.schema import EventFile
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.store.db import Database
from callbridge.store.events import EventStore

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "northwind-q3.toml"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _writer(journal: Journal, database: Database, thread: ThreadPoolExecutor) -> JournalWriter:
    async def run_db(call: Callable[..., Any], *args: object) -> Any:
        return await asyncio.get_running_loop().run_in_executor(thread, call, *args)

    return JournalWriter(journal, CallLog(database), EventStore(database), run_db, time.monotonic)


async def bench(url: str, entries: int, folder: Path) -> None:
    database = Database(url)
    database.upgrade()
    with EXAMPLE.open("rb") as handle:
        event = EventStore(database).create(EventFile.model_validate(tomllib.load(handle)))
    start = datetime.now(UTC)
    rows = [
        LogEntry(LogKind.JOIN, start + timedelta(microseconds=i), event.id, f"p{i}")
        for i in range(entries)
    ]
    path = folder / "journal.sqlite3"
    thread = ThreadPoolExecutor(1)

    gone = Database(f"postgresql://postgres@127.0.0.1:{_closed_port()}/nowhere")
    writer = _writer(Journal(path), gone, thread)
    began = time.perf_counter()
    for i in range(0, entries, 100):  # a hundred callers a turn
        for row in rows[i : i + 100]:
            writer.put(Kind.LOG, log_body(row))
        await writer._journal_queued()
    journalled = time.perf_counter() - began
    await writer.close()
    gone.dispose()
    print(f"journalled {entries} entries in {journalled:.2f} s: {entries / journalled:,.0f}/s")

    writer = _writer(Journal(path), database, thread)
    began = time.perf_counter()
    await writer.flush()
    caught_up = time.perf_counter() - began
    await writer.close()
    stored = len(CallLog(database).entries(event.id))
    print(
        f"caught up {writer.written} entries in {caught_up:.2f} s: "
        f"{writer.written / caught_up:,.0f}/s; stored {stored} (exactly once: {stored == entries})"
    )
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--db", help="database URL (default: a SQLite file in a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        asyncio.run(bench(url, args.entries, Path(tmp)))


if __name__ == "__main__":
    main()
