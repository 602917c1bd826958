"""The media plane's writes, journalled on local disk until the database has them.

Every write a live call makes (the call log: joins, leaves, *1, mutes...;
where a written question stands; an event's state when the database could
not take it at once) is appended here first, then written to the database
from here, oldest first, and removed once the database committed it. When
the database is unreachable the entries wait here, on this machine's disk,
and are written when it is back; a media plane restarted meanwhile finds
them and writes them first (``JournalWriter.run``).

Why a SQLite file (the standard library's ``sqlite3``) rather than a file of
lines: an append is one transaction, durable when it returns
(``synchronous=FULL``), so a crash or a power cut leaves no torn last line
to repair; removing what the database took is a ``DELETE`` by sequence, not
a rewrite; the order is the row id's (``AUTOINCREMENT``: never reused, so an
entry's number is its place for ever). It lives in the data folder's
``run/`` (``store.layout.journal``), ``0600``; no test or tool needs to read it.

**Exactly once.** The database's commit and the journal's removal are two
systems: a crash, or a connection lost during the commit, between them
leaves entries the database may or may not hold. Each kind is written so
that writing it twice changes nothing: call log entries by
``CallLog.append_once`` (an entry is its own key), a question's state by
setting it (``QuestionStore.settle``), an event's state by a move the store
refuses when it has been made (``Conflict``: dropped as done).

When to try, and what a transaction takes, is ``bridge.outage``'s to say.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exc as sa_exc

from callbridge.bridge.outage import BATCH, Journalled, Outcome, Reachability, next_batch
from callbridge.events.schema import EventState
from callbridge.media import priority
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.store.events import Conflict, EventStore
from callbridge.store.files import create_private_file, private_dir
from callbridge.store.questions import QuestionStore

log = logging.getLogger(__name__)


class Kind(enum.StrEnum):
    LOG = "log"  # a call log entry
    SETTLE = "settle"  # where a written question stands
    STATE = "state"  # an event's state


Entry = Journalled[Kind]


# -- what an entry says, as text ------------------------------------------------------------


def log_body(entry: LogEntry) -> str:
    return json.dumps(
        {
            "kind": entry.kind.value,
            "at": entry.at.isoformat(),
            "event_id": entry.event_id,
            "participant_id": entry.participant_id,
            "channel": entry.channel,
            "caller_id": entry.caller_id,
            "role": entry.role,
            "actor": entry.actor,
            "detail": entry.detail,
        },
        sort_keys=True,
    )


def log_entry(body: str) -> LogEntry:
    data = json.loads(body)
    return LogEntry(
        kind=LogKind(data["kind"]),
        at=datetime.fromisoformat(data["at"]),
        event_id=data["event_id"],
        participant_id=data["participant_id"],
        channel=data["channel"],
        caller_id=data["caller_id"],
        role=data["role"],
        actor=data["actor"],
        detail=data["detail"],
    )


def settle_body(question_id: str, state: str, at: datetime) -> str:
    return json.dumps({"question_id": question_id, "state": state, "at": at.isoformat()})


def state_body(event_id: int, state: EventState) -> str:
    return json.dumps({"event_id": event_id, "state": state.value})


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the database could not be reached (try again), not that it refused."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(
        error,
        sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError | OSError,
    )


# -- the file -------------------------------------------------------------------------------


class Journal:
    """The journal file: append, read the oldest, remove. One thread uses it at a time."""

    def __init__(self, path: Path | None) -> None:
        """``path`` None: in memory (a bridge built without a data folder, in tests)."""
        if path is not None:
            private_dir(path.parent)
            create_private_file(path)
        self._db = sqlite3.connect(
            ":memory:" if path is None else str(path), check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS pending"
            " (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL)"
        )

    def append(self, items: Sequence[tuple[Kind, str]]) -> None:
        """Add ``items`` at the end, in one transaction: all of them are kept, or none."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO pending (kind, body) VALUES (?, ?)", items)

    def oldest(self, limit: int = BATCH) -> list[Entry]:
        rows = self._db.execute(
            "SELECT seq, kind, body FROM pending ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [Journalled(seq, Kind(kind), body) for seq, kind, body in rows]

    def remove(self, last_seq: int) -> None:
        """Forget every entry up to ``last_seq``: the database has them."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM pending WHERE seq <= ?", (last_seq,))

    def depth(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM pending").fetchone()[0])

    def close(self) -> None:
        self._db.close()


# -- the writer -----------------------------------------------------------------------------


class JournalWriter:
    """Journals what it is given; writes the journal to the database whenever it answers.

    ``run_db`` runs a call on the bridge's database thread (``Lookups.run``);
    ``now`` is the media plane's clock; ``on_link`` hears the link go down or
    come up (the console's banner, the metrics).
    """

    def __init__(
        self,
        journal: Journal,
        call_log: CallLog,
        events: EventStore,
        run_db: Callable[..., Any],
        now: Callable[[], float],
        on_link: Callable[[bool], None] = lambda up: None,
    ) -> None:
        self.journal = journal
        self.call_log = call_log
        self.events = events
        self.questions = QuestionStore(events.database)
        self.reachability = Reachability()
        self._run_db = run_db
        self._now = now
        self._on_link = on_link
        self._file = ThreadPoolExecutor(
            1, thread_name_prefix="callbridge-journal", initializer=priority.as_media_worker
        )
        self._queued: list[tuple[Kind, str]] = []  # given, not yet in the journal
        self._wake = asyncio.Event()
        self.depth = journal.depth()  # in the journal, not yet in the database
        self.written = 0  # entries the database took from the journal
        self.refused = 0  # entries the database refused (logged, dropped)

    # -- what the bridge hands in ---------------------------------------------------------

    def put(self, kind: Kind, body: str) -> None:
        """Journal ``body`` soon (the writer's next turn), then write it to the database."""
        self._queued.append((kind, body))
        self._wake.set()

    @property
    def waiting(self) -> int:
        """Writes the database has not taken: journalled, or about to be."""
        return self.depth + len(self._queued)

    def counters(self) -> dict[str, int]:
        """For the metrics: the link (1 up), writes waiting, written, refused, outages."""
        return {
            "reachable": int(self.reachability.up),
            "waiting": self.waiting,
            "written": self.written,
            "refused": self.refused,
            "outages": self.reachability.outages,
        }

    def tried(self, outcome: Outcome) -> None:
        """A read or write elsewhere found the database there or not."""
        if self.reachability.happened(outcome, self._now()):
            up = self.reachability.up
            if up:
                log.warning("the database answers again; %d writes to catch up", self.waiting)
            else:
                log.error("the database is unreachable; writes wait in the journal")
            self._on_link(up)
            self._wake.set()

    # -- the task -------------------------------------------------------------------------

    async def _in_file(self, call: Callable[..., Any], *args: object) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._file, call, *args)

    async def _journal_queued(self) -> None:
        items, self._queued = self._queued, []
        if items:
            try:
                await self._in_file(self.journal.append, items)
            except asyncio.CancelledError:
                # The append goes on in its thread (the bridge stopping): kept there,
                # not here, or the flush would journal them twice.
                raise
            except Exception:
                self._queued[:0] = items  # kept in memory; the next turn tries again
                raise
            self.depth += len(items)

    async def run(self) -> None:
        """Journal and write, for ever (a task); leftovers of a previous run go first."""
        if self.depth:
            log.warning("the journal holds %d writes from before; writing them", self.depth)
        while True:
            self._wake.clear()
            try:
                await self._journal_queued()
            except Exception:
                log.exception("could not append to the journal")
            now = self._now()
            try:
                if self.depth and self.reachability.may_write(now):
                    await self.write_some()
                    continue
                if not self.depth and now >= self.reachability.probe_at():
                    await self.probe()  # nothing to write: is it (still) there?
                    continue
            except Exception:  # a bug, or the journal's disk: logged, tried again later
                log.exception("the journal's writer failed; trying again in a second")
                await asyncio.sleep(1.0)
                continue
            wake_at = self.reachability.retry_at if self.depth else self.reachability.probe_at()
            timeout = max(0.0, wake_at - now)
            # asyncio.wait, not wait_for: 3.11's wait_for loses a cancel that comes as
            # the event is set (the bridge stopping hangs up its calls, each a write),
            # and this task would never end.
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=timeout)
            finally:
                waiter.cancel()

    async def probe(self) -> None:
        """Ask the database for nothing; the answer says whether it is there."""
        try:
            await self._run_db(self.events.database.ping)
        except Exception as error:
            if not unreachable(error):
                raise
            self.tried(Outcome.UNREACHABLE)
        else:
            self.tried(Outcome.SUCCEEDED)

    async def write_some(self) -> bool:
        """Write the journal's oldest batch to the database; False if it was unreachable."""
        batch = next_batch(await self._in_file(self.journal.oldest, BATCH))
        if not batch:
            self.depth = 0
            return True
        try:
            await self._run_db(self._apply, batch)
        except Exception as error:
            if unreachable(error):
                self.tried(Outcome.UNREACHABLE)
                return False
            # Refused: a bug, or a row the store no longer has. Written to the log in
            # full (nothing is lost unseen), then dropped, so the queue moves on.
            log.exception("the database refused %d journalled writes: %s", len(batch), batch)
            self.refused += len(batch)
        else:
            self.written += len(batch)
            self.tried(Outcome.SUCCEEDED)
        await self._in_file(self.journal.remove, batch[-1].seq)
        self.depth = max(0, self.depth - len(batch))
        return True

    def _apply(self, batch: list[Entry]) -> None:
        """Write ``batch`` (one kind) to the database, so that writing it twice changes nothing."""
        kind = batch[0].kind
        if kind is Kind.LOG:
            self.call_log.append_once([log_entry(e.body) for e in batch])
            return
        for entry in batch:
            data = json.loads(entry.body)
            if kind is Kind.SETTLE:
                at = datetime.fromisoformat(data["at"])
                self.questions.settle(data["question_id"], data["state"], at)
            else:
                with contextlib.suppress(Conflict):  # the move was made: written before
                    self.events.set_state(int(data["event_id"]), EventState(data["state"]))

    async def flush(self) -> None:
        """Journal what is queued and write all the journal now, if the database answers."""
        await self._journal_queued()
        # Counted again: a turn cancelled mid-append (stopping) appended without counting.
        self.depth = await self._in_file(self.journal.depth)
        while self.depth:
            if not await self.write_some():
                log.warning("%d writes wait in the journal for the database", self.depth)
                return

    async def close(self) -> None:
        await self._in_file(self.journal.close)
        self._file.shutdown(wait=True)
