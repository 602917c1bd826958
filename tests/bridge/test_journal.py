"""bridge.journal and the bridge's reads while the database is away, on real databases.

The journal is a real SQLite file; the database is the ``database``
fixture's (SQLite, and a real PostgreSQL); an unreachable database is a
PostgreSQL URL on a port nobody listens on (the driver's connection is
refused, as it is by a stopped server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from callbridge.bridge.journal import (
    Journal,
    JournalWriter,
    Kind,
    log_body,
    log_entry,
    settle_body,
    state_body,
)
from callbridge.bridge.lobby import MatchPasscode
from callbridge.bridge.lookups import Lookups
from callbridge.bridge.outage import Link, Outcome
from callbridge.events.schema import EventFile, EventState
from callbridge.store.audience import Audience
from callbridge.store.calllog import CallLog, LogEntry, LogKind, entry_key, unwritten
from callbridge.store.db import Database
from callbridge.store.events import EventStore
from callbridge.store.pins import PinBook
from callbridge.store.questions import QuestionStore
from tests.support.ports import free_port

T0 = datetime(2026, 11, 5, 21, 30, tzinfo=UTC)


def _entries(event_id: int, n: int) -> list[LogEntry]:
    return [
        LogEntry(
            LogKind.JOIN,
            T0 + timedelta(microseconds=7 * i),
            event_id,
            f"p{i}",
            caller_id="+16175550100",
            role="listener",
            detail={"node": "a", "n": i},
        )
        for i in range(n)
    ]


def _unreachable() -> Database:
    return Database(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _writer(journal: Journal, database: Database, clock: Clock) -> JournalWriter:
    thread = ThreadPoolExecutor(1)

    async def run_db(call: Callable[..., Any], *args: object) -> Any:
        return await asyncio.get_running_loop().run_in_executor(thread, call, *args)

    return JournalWriter(journal, CallLog(database), EventStore(database), run_db, clock)


def test_the_journal_keeps_order_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "run" / "journal.sqlite3"
    journal = Journal(path)
    journal.append([(Kind.LOG, "a"), (Kind.SETTLE, "b")])
    journal.append([(Kind.LOG, "c")])
    journal.close()
    assert path.stat().st_mode & 0o777 == 0o600
    reopened = Journal(path)
    assert reopened.depth() == 3
    assert [(e.kind, e.body) for e in reopened.oldest()] == [
        (Kind.LOG, "a"),
        (Kind.SETTLE, "b"),
        (Kind.LOG, "c"),
    ]
    reopened.remove(reopened.oldest()[1].seq)
    reopened.append([(Kind.LOG, "d")])
    assert [e.body for e in reopened.oldest()] == ["c", "d"]
    # Sequence numbers are never reused: the new entry comes after every old one.
    seqs = [e.seq for e in reopened.oldest()]
    assert seqs == sorted(seqs) and seqs[0] == 3


def test_an_entry_reads_back_as_written() -> None:
    entry = _entries(3, 2)[1]
    assert log_entry(log_body(entry)) == entry


def test_unwritten_counts_alike_entries() -> None:
    a, b = _entries(1, 2)
    assert unwritten([a, b], []) == [a, b]
    assert unwritten([a, b], [entry_key(a)]) == [b]
    assert unwritten([a, a, b], [entry_key(a)]) == [a, b]  # two alike, one held: one more
    assert unwritten([a], [entry_key(a), entry_key(a)]) == []


def test_entries_written_twice_are_stored_once(database: Database, example_spec: EventFile) -> None:
    """The database committed, the journal never heard: the batch goes again, changing nothing."""
    event = EventStore(database).create(example_spec)
    log = CallLog(database)
    batch = _entries(event.id, 5)
    assert log.append_once(batch[:3]) == 3
    assert log.append_once(batch) == 2  # the first three are there already
    assert log.append_once(batch) == 0
    assert [e.participant_id for e in log.entries(event.id)] == [f"p{i}" for i in range(5)]


def test_journalled_writes_reach_the_database_once_after_a_restart(
    database: Database, example_spec: EventFile, tmp_path: Path
) -> None:
    """Journalled while the database is unreachable, the media plane restarts, then writes."""
    event = EventStore(database).create(example_spec)
    path = tmp_path / "journal.sqlite3"
    clock = Clock()
    gone = _unreachable()

    async def outage() -> JournalWriter:
        writer = _writer(Journal(path), gone, clock)
        for entry in _entries(event.id, 4):
            writer.put(Kind.LOG, log_body(entry))
        writer.put(Kind.STATE, state_body(event.id, EventState.LIVE))
        await writer.flush()  # journalled; the database refuses the connection
        assert writer.reachability.link is Link.DOWN and writer.reachability.outages == 1
        assert writer.depth == 5 and writer.written == 0
        assert not writer.reachability.may_write(clock.now)  # it backs off
        await writer.close()
        return writer

    asyncio.run(outage())
    gone.dispose()

    async def restarted() -> JournalWriter:
        writer = _writer(Journal(path), database, clock)
        assert writer.depth == 5  # found on disk
        # A crash after the database's commit, before the journal's removal: the first
        # two rows are in the database already.
        CallLog(database).append_once(_entries(event.id, 2))
        await writer.flush()
        await writer.close()
        return writer

    writer = asyncio.run(restarted())
    assert writer.counters() == {
        "reachable": 1,
        "waiting": 0,
        "written": 5,
        "refused": 0,
        "outages": 0,
    }
    assert [e.participant_id for e in CallLog(database).entries(event.id)] == [
        "p0",
        "p1",
        "p2",
        "p3",
    ]
    assert EventStore(database).get(event.id).state is EventState.LIVE
    assert Journal(path).depth() == 0


def test_a_state_and_a_question_written_twice_change_nothing(
    database: Database, example_spec: EventFile, tmp_path: Path
) -> None:
    event = EventStore(database).create(example_spec)
    _, ana = Audience(database).register(
        event.id, name="Ana", firm=None, email="a@f.example", now=T0
    )
    question = QuestionStore(database).ask(ana, "Capex?", T0)
    clock = Clock()

    async def twice() -> JournalWriter:
        writer = _writer(Journal(None), database, clock)
        for _ in range(2):
            writer.put(Kind.STATE, state_body(event.id, EventState.LIVE))
            writer.put(Kind.SETTLE, settle_body(question.key, "answered", T0))
        await writer.flush()
        await writer.close()
        return writer

    writer = asyncio.run(twice())
    assert writer.written == 4 and writer.refused == 0
    assert EventStore(database).get(event.id).state is EventState.LIVE
    (stored,) = QuestionStore(database).of_event(event.id)
    assert stored.state == "answered"


def test_the_writer_probes_and_comes_back(database: Database) -> None:
    """Nothing to write: the writer's probe notices the database gone, and back."""
    clock = Clock()

    async def probe() -> None:
        gone = _unreachable()
        writer = _writer(Journal(None), gone, clock)
        heard: list[bool] = []
        writer._on_link = heard.append
        await writer.probe()
        assert heard == [False]
        writer.events = EventStore(database)  # the same writer, the database answering
        await writer.probe()
        assert heard == [False, True]
        gone.dispose()
        await writer.close()

    asyncio.run(probe())


def test_callers_are_admitted_on_kept_codes_while_the_database_is_away(
    database: Database, example_spec: EventFile
) -> None:
    """Passcodes and PINs kept when the call opened answer callers during an outage."""
    events = EventStore(database)
    event = events.create(example_spec)
    _, ada = Audience(database).register(
        event.id, name="Ada", firm="Acme", email="a@acme.example", now=T0
    )
    pins = PinBook(database, b"k" * 32)
    pin = pins.issue(event.id, ada.id, T0)
    dialled = event.dial_in[0].number
    clock = Clock()

    async def outage() -> None:
        lookups = Lookups(events, CallLog(database), clock, pins)
        await lookups.dial_plan(dialled)  # a caller dialled before: the plan is known
        await lookups.keep_codes(event.id)  # the call opened here
        lookups.writer.tried(Outcome.UNREACHABLE)  # the database goes away
        assert not lookups.database_up

        def replay(_: int) -> None:
            return None

        def ask(code: str) -> Any:
            return lookups.matched(MatchPasscode("c1", dialled, code), replay)

        listener = (await ask(event.passcode)).found
        assert listener is not None and listener.event_id == event.id
        assert listener.role.value == "listener"
        speaker = (await ask(event.speaker_passcode)).found
        assert speaker is not None and speaker.role.value == "speaker"
        registrant = (await ask(pin)).found
        assert registrant is not None and registrant.registrant is not None
        assert registrant.registrant.name == "Ada"
        assert (await ask("0000")).found is None  # a wrong code stays wrong
        plan = await lookups.dial_plan_read("c2", dialled)
        assert plan.event_ids == (event.id,)
        # Ending the call meanwhile is journalled, and the kept record moves at once.
        await lookups.set_state(event.id, EventState.LIVE)
        assert lookups.writer.waiting == 1
        assert (await lookups.record(event.id)).state is EventState.LIVE
        assert events.get(event.id).state is EventState.SCHEDULED  # not written yet
        lookups.writer.tried(Outcome.SUCCEEDED)
        await lookups.flush_log()
        assert lookups.writer.waiting == 0
        await lookups.close_journal()
        lookups.close()

    asyncio.run(outage())
    assert events.get(event.id).state is EventState.LIVE
