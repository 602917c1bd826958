"""Webcast registrations and listening time, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from callbridge.events.schema import EventFile, EventPatch, Registration
from callbridge.store.audience import (
    BEACON_INTERVAL,
    MAX_CREDIT,
    MIN_BEACON_GAP,
    Audience,
    BeaconTooSoon,
    ListenMode,
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
    after = audience.heard(event.id, token, ListenMode.REPLAY, back + timedelta(seconds=15))
    assert after.live_seconds == 60
    assert after.replay_seconds == 15
    assert after.first_heard_at == T0
    assert audience.count_listening(event.id, back) == 1
    assert audience.count_listening(event.id, back + timedelta(minutes=1)) == 0
    assert MAX_CREDIT >= 15


def test_beacons_need_a_token_of_this_event(database: Database, example_spec: EventFile) -> None:
    event = EventStore(database).create(example_spec)
    audience = Audience(database)
    token, _ = audience.register(event.id, name=None, firm=None, email=None, now=T0)
    with pytest.raises(StoreError):
        audience.heard(event.id, "wl_nobody", ListenMode.LIVE, T0)
    with pytest.raises(StoreError):
        audience.register(event.id + 99, name=None, firm=None, email=None, now=T0)
    listeners = audience.listeners(event.id)
    assert [listener.registered for listener in listeners] == [False]
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
