"""Personal PINs in the database (SQLite and PostgreSQL): drawn, shown again, matched, revoked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select, update

from callbridge.events.schema import EventFile, EventState
from callbridge.store import pins as pins_module
from callbridge.store.audience import Audience
from callbridge.store.db import Database
from callbridge.store.events import EventStore, StoreError
from callbridge.store.models import RegistrantPinRow, WebcastListenerRow
from callbridge.store.pins import PIN_DIGITS, PinBook, PinsExhausted, pin_key

T0 = datetime(2026, 11, 5, 21, 30, tzinfo=UTC)
LIVE_NUMBER = "+19135550123"  # the example's second live number
REPLAY_NUMBER = "+18665550188"


def _book(database: Database) -> PinBook:
    return PinBook(database, pin_key("k" * 40))


def _registrant(database: Database, event_id: int, name: str = "Jane Smith") -> int:
    _, listener = Audience(database).register(
        event_id, name=name, firm="Acme Capital", email="jane@acme.example", now=T0
    )
    return listener.id


def _second_event(database: Database, example_spec: EventFile) -> int:
    spec = example_spec.model_copy(deep=True)
    spec.event.passcode = spec.event.speaker_passcode = spec.event.replay_passcode = None
    spec.event.dial_in = spec.event.dial_in[:1]
    spec.event.dial_in[0].number = "+12125550100"
    spec.event.replay_dial_in = []
    return EventStore(database).create(spec).id


def test_a_pin_is_drawn_once_shown_again_and_kept_only_as_a_keyed_digest(
    database: Database, example_spec: EventFile
) -> None:
    event = EventStore(database).create(example_spec)
    book = _book(database)
    jane = _registrant(database, event.id)
    pin = book.issue(event.id, jane, T0)
    assert len(pin) == PIN_DIGITS and pin.isdigit()
    assert book.issue(event.id, jane, T0) == pin == book.pin_of(jane)
    # Nothing stored is the PIN, and another key neither finds it nor shows it.
    with database.session() as session:
        row = session.scalars(select(RegistrantPinRow)).one()
    assert pin not in (row.salt, row.digest) and row.digest == book.digest(pin)
    other_key = PinBook(database, pin_key("another secret key of forty characters!!"))
    assert other_key.match(LIVE_NUMBER, pin) is None
    assert other_key.pin_of(jane) != pin
    # Another registrant, another PIN; each names its own.
    john = _registrant(database, event.id, "John Roe")
    assert book.issue(event.id, john, T0) != pin
    found = book.match(LIVE_NUMBER, pin)
    assert found is not None
    assert (found.event_id, found.listener_id, found.name, found.firm, found.email) == (
        event.id,
        jane,
        "Jane Smith",
        "Acme Capital",
        "jane@acme.example",
    )
    assert book.match(None, pin) == found  # a trunk that sends no number
    # Only on the event's live numbers, and only the exact digits.
    assert book.match(REPLAY_NUMBER, pin) is None
    assert book.match(LIVE_NUMBER, pin[:-1]) is None
    assert book.match(LIVE_NUMBER, pin + "1") is None
    assert book.events_with_pins([event.id, event.id + 1]) == {event.id}


def test_a_pin_opens_only_its_own_event_and_is_never_a_passcode(
    database: Database, example_spec: EventFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = example_spec.model_copy(deep=True)
    spec.event.speaker_passcode = "5550123456"  # a passcode as long as a PIN
    event = EventStore(database).create(spec)
    other = _second_event(database, example_spec)
    book = _book(database)
    theirs = book.issue(other, _registrant(database, other), T0)
    assert book.match(LIVE_NUMBER, theirs) is None
    assert book.match("+12125550100", theirs) is not None
    with pytest.raises(StoreError):
        book.issue(event.id, _registrant(database, other, "Not Theirs"), T0)  # another event's
    # A draw that lands on a passcode some event holds is drawn again.
    draws = iter(["5550123456", "1234567890"])
    monkeypatch.setattr(book, "_pin", lambda salt: next(draws))
    assert book.issue(event.id, _registrant(database, event.id), T0) == "1234567890"


def test_a_pin_stops_working_when_revoked_deleted_anonymised_or_archived(
    database: Database, example_spec: EventFile
) -> None:
    store = EventStore(database)
    event = store.create(example_spec)
    book = _book(database)
    revoked, deleted, anonymised, kept = (
        _registrant(database, event.id, name) for name in ("A One", "B Two", "C Three", "D Four")
    )
    pin = {who: book.issue(event.id, who, T0) for who in (revoked, deleted, anonymised, kept)}
    assert book.revoke(revoked) and not book.revoke(revoked)
    with database.session() as session, session.begin():
        session.execute(delete(WebcastListenerRow).where(WebcastListenerRow.id == deleted))
        session.execute(
            update(WebcastListenerRow)
            .where(WebcastListenerRow.id == anonymised)
            .values(name=None, firm=None, email=None)
        )
    assert [book.match(LIVE_NUMBER, pin[w]) is None for w in pin] == [True, True, True, False]
    assert book.pin_of(deleted) is None
    store.set_state(event.id, EventState.ENDED)
    assert book.match(LIVE_NUMBER, pin[kept]) is not None
    store.set_state(event.id, EventState.ARCHIVED)
    assert book.match(LIVE_NUMBER, pin[kept]) is None


def test_an_event_gives_at_most_its_share_of_pins(
    database: Database, example_spec: EventFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10**10 PINs over PIN_REGISTRANTS (10,000) registrants: 10**6 guesses each.
    assert 10**PIN_DIGITS // pins_module.PIN_REGISTRANTS >= 10**6
    monkeypatch.setattr(pins_module, "PIN_REGISTRANTS", 2)
    event = EventStore(database).create(example_spec)
    book = _book(database)
    for name in ("A One", "B Two"):
        book.issue(event.id, _registrant(database, event.id, name), T0)
    late = _registrant(database, event.id, "C Three")
    with pytest.raises(PinsExhausted):
        book.issue(event.id, late, T0)
    assert book.pin_of(late) is None
    # An anonymous browser (no name) is no registrant and gets none.
    _, anonymous = Audience(database).register(event.id, name=None, firm=None, email=None, now=T0)
    with pytest.raises(StoreError):
        book.issue(event.id, anonymous.id, T0)
