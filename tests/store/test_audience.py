"""Webcast registrations and listening time, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, text

from callbridge.events.schema import EventFile, EventPatch, Registration
from callbridge.store.audience import (
    BEACON_INTERVAL,
    HELD_QUIET,
    MAX_CREDIT,
    MIN_BEACON_GAP,
    Audience,
    AudienceFull,
    BeaconBook,
    BeaconFlusher,
    BeaconTooSoon,
    ListenMode,
    WebListener,
    new_token,
)
from callbridge.store.db import Database
from callbridge.store.events import EventStore, StoreError
from callbridge.store.models import Base

T0 = datetime(2026, 11, 5, 21, 30, tzinfo=UTC)


def test_migrations_match_the_models(database: Database) -> None:
    with database.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_registration_and_glossary_are_kept(database: Database, example_spec: EventFile) -> None:
    spec = example_spec.model_copy(deep=True)
    spec.event.registration = Registration.OPTIONAL
    spec.event.glossary = ["NWBX", "T-DM1", "ARPU"]
    store = EventStore(database)
    event = store.create(spec)
    assert event.registration is Registration.OPTIONAL
    assert event.glossary == ["NWBX", "T-DM1", "ARPU"]
    changed = store.update(event.id, EventPatch(registration=Registration.OFF, glossary=["ARPU"]))
    assert (changed.registration, changed.glossary) == (Registration.OFF, ["ARPU"])


def test_listening_time_is_counted_on_the_server(
    database: Database, example_spec: EventFile
) -> None:
    event = EventStore(database).create(example_spec)
    audience = Audience(database)
    token, listener = audience.register(
        event.id, name="Ada Analyst", firm="Acme Capital", email="ada@acme.example", now=T0
    )
    assert listener.registered and audience.identify(event.id, token) == listener
    assert audience.identify(event.id + 1, token) is None
    assert audience.identify(event.id, "wl_forged") is None
    audience.heard(event.id, token, ListenMode.LIVE, T0)  # the first beacon credits nothing
    for n in range(1, 5):
        audience.heard(event.id, token, ListenMode.LIVE, T0 + timedelta(seconds=15 * n))
    # Paused for ten minutes, then back: the gap is not credited.
    back = T0 + timedelta(minutes=11)
    audience.heard(event.id, token, ListenMode.LIVE, back)
    # The replay's first beacon credits nothing (the gap was neither); its next ones do.
    switched = audience.heard(event.id, token, ListenMode.REPLAY, back + timedelta(seconds=15))
    assert (switched.live_seconds, switched.replay_seconds) == (60, 0)
    after = audience.heard(event.id, token, ListenMode.REPLAY, back + timedelta(seconds=30))
    assert after.live_seconds == 60
    assert after.replay_seconds == 15
    assert after.first_heard_at == T0
    assert audience.count_listening(event.id, back) == 1
    assert audience.count_listening(event.id, back + timedelta(minutes=2)) == 0
    assert MAX_CREDIT >= 15


def test_beacons_need_a_token_of_this_event(database: Database, example_spec: EventFile) -> None:
    event = EventStore(database).create(example_spec)
    audience = Audience(database)
    token, _ = audience.register(event.id, name=None, firm="Acme", email=None, now=T0)
    with pytest.raises(StoreError):
        audience.heard(event.id, "wl_nobody", ListenMode.LIVE, T0)
    with pytest.raises(StoreError):
        audience.register(event.id + 99, name=None, firm=None, email=None, now=T0)
    listeners = audience.listeners(event.id)
    assert [listener.registered for listener in listeners] == [False]
    # A registration that gave nothing, and has not listened, is no listener.
    audience.register(event.id, name=None, firm=None, email=None, now=T0)
    assert len(audience.listeners(event.id)) == 1
    assert token.startswith("wl_")


def test_an_anonymous_browser_id_is_one_listener_and_beacons_are_rate_limited(
    database: Database, example_spec: EventFile
) -> None:
    event = EventStore(database).create(example_spec)
    audience = Audience(database)
    browser = new_token()
    with pytest.raises(StoreError):  # registration required: an unknown id is refused
        audience.heard(event.id, browser, ListenMode.LIVE, T0)
    assert audience.listeners(event.id) == []
    audience.heard(event.id, browser, ListenMode.LIVE, T0, anonymous=True)
    for tenth in range(1, 20):
        with pytest.raises(BeaconTooSoon):
            audience.heard(
                event.id,
                browser,
                ListenMode.LIVE,
                T0 + timedelta(seconds=tenth / 10),
                anonymous=True,
            )
    heard = audience.heard(
        event.id, browser, ListenMode.LIVE, T0 + timedelta(seconds=15), anonymous=True
    )
    assert heard.live_seconds == 15 and not heard.registered
    # The same browser registers: its row gets the name, still one listener.
    token, listener = audience.register(
        event.id, name="Ada", firm=None, email="a@b.example", now=T0, browser=browser
    )
    assert token == browser and listener.id == heard.id
    (only,) = audience.listeners(event.id)
    assert (only.name, only.live_seconds) == ("Ada", 15)
    assert MIN_BEACON_GAP < BEACON_INTERVAL


# -- counted in memory, written in batches ------------------------------------------------------


class Statements:
    """The SQL a database runs, as (statement, executemany) pairs: what a beacon costs it."""

    def __init__(self, database: Database) -> None:
        self.seen: list[tuple[str, bool]] = []
        self.database = database

    def __enter__(self) -> Statements:
        event.listen(self.database.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.database.engine, "before_cursor_execute", self._record)

    def _record(
        self,
        _conn: object,
        _cursor: object,
        statement: str,
        _params: object,
        _ctx: object,
        many: bool,
    ) -> None:
        self.seen.append((statement.split()[0].upper(), many))

    def writes(self) -> list[tuple[str, bool]]:
        return [(verb, many) for verb, many in self.seen if verb in ("INSERT", "UPDATE")]


def _stored(database: Database, event_id: int) -> dict[int, tuple[int, int]]:
    """Live and replay seconds as the database holds them, read without any Audience."""
    with database.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, live_seconds, replay_seconds FROM webcast_listener"
                " WHERE event_id = :event"
            ),
            {"event": event_id},
        ).all()
    return {row[0]: (row[1], row[2]) for row in rows}


def test_beacons_are_written_in_one_batch_per_flush(
    database: Database, example_spec: EventFile
) -> None:
    event_id = EventStore(database).create(example_spec).id
    audience = Audience(database)
    browsers = [new_token() for _ in range(300)]
    modes = [ListenMode.LIVE if index % 2 else ListenMode.REPLAY for index in range(300)]
    for browser, mode in zip(browsers, modes, strict=True):  # first beacons read (make) rows
        audience.heard(event_id, browser, mode, T0, anonymous=True)
    audience.flush()
    with Statements(database) as sql:
        for n in (1, 2):
            for browser, mode in zip(browsers, modes, strict=True):
                when = T0 + timedelta(seconds=15 * n)
                heard = audience.heard(event_id, browser, mode, when, anonymous=True)
                assert heard.live_seconds + heard.replay_seconds == 15 * n
        assert sql.seen == []  # counted in memory: no SQL at all
        assert set(_stored(database, event_id).values()) == {(0, 0)}
        assert audience.flush() == 300
        assert sql.writes() == [("UPDATE", True)]  # one executemany, one transaction
    stored = _stored(database, event_id)
    assert len(stored) == 300
    assert sorted(stored.values()) == [(0, 30)] * 150 + [(30, 0)] * 150
    assert audience.flush() == 0  # nothing new: nothing written


def test_the_gap_rule_holds_in_memory(database: Database, example_spec: EventFile) -> None:
    event_id = EventStore(database).create(example_spec).id
    audience = Audience(database)
    browser = new_token()
    audience.heard(event_id, browser, ListenMode.LIVE, T0, anonymous=True)
    with Statements(database) as sql:
        for tenth in range(1, 20):
            with pytest.raises(BeaconTooSoon):
                when = T0 + timedelta(seconds=tenth / 10)
                audience.heard(event_id, browser, ListenMode.LIVE, when, anonymous=True)
        assert sql.seen == []
    # The refused ones did not move the gap: 15 s after the first, 15 s counted.
    heard = audience.heard_held(event_id, browser, ListenMode.LIVE, T0 + timedelta(seconds=15))
    assert heard is not None and heard.live_seconds == 15
    # Paused: a gap past MAX_CREDIT counts nothing, as in the database.
    later = T0 + timedelta(seconds=15 + MAX_CREDIT + 1)
    heard = audience.heard_held(event_id, browser, ListenMode.LIVE, later)
    assert heard is not None and heard.live_seconds == 15
    assert audience.heard_held(event_id, new_token(), ListenMode.LIVE, T0) is None  # not held
    (only,) = audience.listeners(event_id)  # readers see it all: they flush first
    assert (only.live_seconds, only.first_heard_at, only.last_heard_at) == (15, T0, later)


def test_a_new_process_goes_on_from_the_database(
    database: Database, example_spec: EventFile
) -> None:
    """A restart: the next beacon's gap runs from the last one written, and is still capped."""
    event_id = EventStore(database).create(example_spec).id
    token, _ = Audience(database).register(event_id, name="Ada", firm=None, email=None, now=T0)
    before = Audience(database)
    before.heard(event_id, token, ListenMode.LIVE, T0)
    before.heard(event_id, token, ListenMode.LIVE, T0 + timedelta(seconds=15))
    before.flush()
    # Counted after the last flush and then the process died: lost, nothing more.
    before.heard(event_id, token, ListenMode.LIVE, T0 + timedelta(seconds=30))
    after = Audience(database)
    with pytest.raises(BeaconTooSoon):  # the gap rule reads the database's last beacon
        after.heard(event_id, token, ListenMode.LIVE, T0 + timedelta(seconds=16))
    past_cap = T0 + timedelta(seconds=15 + MAX_CREDIT + 1)
    heard = after.heard(event_id, token, ListenMode.LIVE, past_cap)
    assert heard.live_seconds == 15  # 15 s written before; the gap since is past MAX_CREDIT
    heard = after.heard(event_id, token, ListenMode.LIVE, past_cap + timedelta(seconds=15))
    assert heard.live_seconds == 30 and heard.name == "Ada"
    (listener,) = after.listeners(event_id)
    assert listener.live_seconds == 30


def test_the_flusher_writes_on_its_interval_and_when_stopped(
    database: Database, example_spec: EventFile
) -> None:
    event_id = EventStore(database).create(example_spec).id
    audience = Audience(database)
    browser = new_token()
    audience.heard(event_id, browser, ListenMode.LIVE, T0, anonymous=True)
    flusher = BeaconFlusher(audience, interval=0.05).start()
    try:
        audience.heard(event_id, browser, ListenMode.LIVE, T0 + timedelta(seconds=15))
        deadline = time.monotonic() + 10
        while list(_stored(database, event_id).values()) != [(15, 0)]:
            assert time.monotonic() < deadline, "the flusher did not write"
            time.sleep(0.02)
    finally:
        flusher.stop()
    slow = BeaconFlusher(audience, interval=3600).start()
    audience.heard(event_id, browser, ListenMode.LIVE, T0 + timedelta(seconds=25))
    slow.stop()  # the app stops: what is held is written, nothing lost
    assert list(_stored(database, event_id).values()) == [(25, 0)]


def test_a_browser_that_registers_while_held_keeps_its_time(
    database: Database, example_spec: EventFile
) -> None:
    event_id = EventStore(database).create(example_spec).id
    audience = Audience(database)
    browser = new_token()
    audience.heard(event_id, browser, ListenMode.LIVE, T0, anonymous=True)
    audience.heard(event_id, browser, ListenMode.LIVE, T0 + timedelta(seconds=15))
    token, listener = audience.register(
        event_id, name="Ada", firm="Acme", email="a@b.example", now=T0, browser=browser
    )
    assert token == browser and (listener.name, listener.live_seconds) == ("Ada", 15)
    heard = audience.heard(event_id, browser, ListenMode.LIVE, T0 + timedelta(seconds=30))
    assert (heard.name, heard.firm, heard.live_seconds) == ("Ada", "Acme", 30)
    (only,) = audience.listeners(event_id)
    assert (only.name, only.live_seconds) == ("Ada", 30)


def test_the_console_count_includes_beacons_not_yet_written(
    database: Database, example_spec: EventFile
) -> None:
    event_id = EventStore(database).create(example_spec).id
    audience = Audience(database)
    browsers = [new_token() for _ in range(3)]
    for browser in browsers:
        audience.heard(event_id, browser, ListenMode.LIVE, T0, anonymous=True)
    # A first beacon (the audio started) credits nothing: not a listener yet.
    assert audience.count_listening(event_id, T0) == 0
    assert audience.listeners(event_id) == []
    later = T0 + timedelta(seconds=15)
    for browser in browsers:
        audience.heard(event_id, browser, ListenMode.LIVE, later, anonymous=True)
    assert audience.count_listening(event_id, T0) == 3
    assert audience.count_listening(event_id, later + timedelta(seconds=1)) == 0


def test_the_book_has_a_limit_and_forgets_quiet_listeners() -> None:
    book = BeaconBook(limit=2)
    rows = {n: WebListener(n, 1, None, None, None, T0, None, None, 0, 0) for n in range(1, 4)}
    book.hold((1, "a"), rows[1])
    book.hold((1, "b"), rows[2])
    with pytest.raises(AudienceFull):
        book.hold((1, "c"), rows[3])
    book.credit((1, "a"), ListenMode.LIVE, T0)
    book.credit((1, "b"), ListenMode.LIVE, T0)
    book.written(book.due())
    # "a" keeps listening; "b" went quiet: once written and quiet, it leaves memory.
    book.credit((1, "a"), ListenMode.LIVE, T0 + HELD_QUIET + timedelta(seconds=1))
    assert book.forget_quiet() == 1
    assert book.holds((1, "a")) and not book.holds((1, "b"))
    assert [due.live_seconds for due in book.due()] == [0]  # past MAX_CREDIT: 0, but due
    # Held but not yet written: never forgotten, however quiet.
    book.credit((1, "a"), ListenMode.LIVE, T0 + 10 * HELD_QUIET)
    book.hold((1, "c"), rows[3])
    assert book.forget_quiet() == 0 and len(book) == 2


def test_a_change_of_mode_credits_the_gap_to_neither() -> None:
    """A live listener's page left open past the end, then the replay chosen: the
    seconds between the last live beacon and the first replay one are nobody's."""
    book = BeaconBook()
    book.hold((1, "a"), WebListener(1, 1, None, None, None, T0, None, None, 0, 0))
    at = [T0 + timedelta(seconds=15 * n) for n in range(6)]
    book.credit((1, "a"), ListenMode.LIVE, at[0])
    book.credit((1, "a"), ListenMode.LIVE, at[1])
    heard = book.credit((1, "a"), ListenMode.REPLAY, at[2])
    assert (heard.live_seconds, heard.replay_seconds) == (15, 0)
    heard = book.credit((1, "a"), ListenMode.REPLAY, at[3])
    assert (heard.live_seconds, heard.replay_seconds) == (15, 15)
    heard = book.credit((1, "a"), ListenMode.LIVE, at[4])  # and back: nothing for the switch
    assert (heard.live_seconds, heard.replay_seconds) == (15, 15)


def test_one_lost_beacon_still_credits_and_a_pause_does_not() -> None:
    """A beacon lost on the way (or its tick skipped) leaves a gap of two intervals
    and a late timer's milliseconds: still listening, still credited. The page's
    first beacon after the listener paused says so, and the pause credits nothing."""
    book = BeaconBook()
    book.hold((1, "a"), WebListener(1, 1, None, None, None, T0, None, None, 0, 0))
    book.credit((1, "a"), ListenMode.LIVE, T0)
    two_intervals = T0 + timedelta(seconds=2 * BEACON_INTERVAL, milliseconds=40)
    heard = book.credit((1, "a"), ListenMode.LIVE, two_intervals)
    assert heard.live_seconds == 2 * BEACON_INTERVAL
    paused_at = two_intervals + timedelta(seconds=6)
    assert book.credit((1, "a"), ListenMode.LIVE, paused_at).live_seconds == 36
    resumed_at = paused_at + timedelta(seconds=20)
    heard = book.credit((1, "a"), ListenMode.LIVE, resumed_at, resumed=True)
    assert heard.live_seconds == 36  # the 20 s paused are nobody's
    later = resumed_at + timedelta(seconds=BEACON_INTERVAL)
    assert book.credit((1, "a"), ListenMode.LIVE, later).live_seconds == 36 + BEACON_INTERVAL


def test_first_beacons_racing_in_threads_make_one_listener(
    database: Database, example_spec: EventFile
) -> None:
    event_id = EventStore(database).create(example_spec).id
    audience = Audience(database)
    browser = new_token()
    start = threading.Barrier(8)

    def first_beacon() -> str:
        start.wait()
        try:
            audience.heard(event_id, browser, ListenMode.LIVE, T0, anonymous=True)
        except BeaconTooSoon:
            return "too soon"
        return "counted"

    with ThreadPoolExecutor(8) as pool:
        answers = sorted(pool.map(lambda _: first_beacon(), range(8)))
    assert answers == ["counted"] + ["too soon"] * 7
    audience.heard(event_id, browser, ListenMode.LIVE, T0 + timedelta(seconds=15), anonymous=True)
    (only,) = audience.listeners(event_id)
    assert only.first_heard_at == T0
