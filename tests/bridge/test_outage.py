"""bridge.outage: when the database is tried, what a batch is, what a code opens meanwhile."""

from __future__ import annotations

import pytest

from callbridge.bridge.outage import (
    MAX_BACKOFF,
    PROBE_INTERVAL,
    TRANSITIONS,
    CodeBook,
    CodeMatch,
    Journalled,
    KeptPin,
    Link,
    Outcome,
    Reachability,
    backoff,
    next_batch,
)
from callbridge.events.schema import DialIn, EventRecord, EventState, Speaker

LIVE_DID = "+19135550123"
REPLAY_DID = "+19135550199"


def test_the_table_lists_every_pair() -> None:
    assert {(link, outcome) for link in Link for outcome in Outcome} == set(TRANSITIONS)


def test_backoff_doubles_up_to_its_ceiling() -> None:
    assert backoff(0) == 0.0
    assert [backoff(n) for n in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, 2.0, 4.0]
    assert backoff(6) == MAX_BACKOFF and backoff(1000) == MAX_BACKOFF


def test_a_failure_takes_the_link_down_and_spaces_the_retries() -> None:
    link = Reachability()
    assert link.may_read() and link.may_write(0.0)
    assert link.happened(Outcome.UNREACHABLE, 10.0)  # changed: down
    assert link.link is Link.DOWN and link.since == 10.0 and link.outages == 1
    assert not link.may_read()  # reads answer from what is kept
    assert not link.may_write(10.1) and link.may_write(10.25)
    assert not link.happened(Outcome.UNREACHABLE, 10.25)  # still down
    assert link.retry_at == 10.75 and link.probe_at() == 10.75
    for n in range(20):
        link.happened(Outcome.UNREACHABLE, 20.0 + n)
    assert link.retry_at == 39.0 + MAX_BACKOFF  # a dead database costs a try every 5 s
    assert link.outages == 1


def test_a_success_brings_it_up_and_resets_the_backoff() -> None:
    link = Reachability()
    link.happened(Outcome.UNREACHABLE, 1.0)
    link.happened(Outcome.UNREACHABLE, 2.0)
    assert link.happened(Outcome.SUCCEEDED, 3.0)
    assert link.up and link.failures == 0 and link.since == 3.0 and link.may_write(3.0)
    # Up, it is probed when nothing else asked for PROBE_INTERVAL.
    assert link.probe_at() == 3.0 + PROBE_INTERVAL
    link.happened(Outcome.UNREACHABLE, 4.0)
    assert link.failures == 1 and link.retry_at == 4.25 and link.outages == 2


def _entries(*kinds: str) -> list[Journalled[str]]:
    return [Journalled(seq, kind, f"body {seq}") for seq, kind in enumerate(kinds, start=1)]


def test_a_batch_is_one_kind_in_a_row_oldest_first() -> None:
    pending = _entries("log", "log", "settle", "log")
    assert [e.seq for e in next_batch(pending)] == [1, 2]
    assert [e.seq for e in next_batch(pending[2:])] == [3]
    assert [e.seq for e in next_batch(pending, limit=1)] == [1]
    assert next_batch([]) == []


def _record(event_id: int = 7, state: EventState = EventState.LIVE) -> EventRecord:
    company = {
        "id": 1,
        "name": "Northwind Biologics, Inc.",
        "ticker": "NWBX",
        "exchange": "Nasdaq",
        "website": None,
        "city": "CAMBRIDGE, Mass.",
        "about": "Northwind Biologics develops targeted biologic therapies.",
    }
    return EventRecord.model_validate(
        {
            "id": event_id,
            "company": company,
            "contacts": [],
            "title": "Third Quarter Results",
            "period": "the three months ended September 30, 2026",
            "kind": "earnings",
            "starts_at": "2026-11-05T21:30:00+00:00",
            "timezone": "UTC",
            "duration_minutes": 60,
            "announced_on": "2026-10-01",
            "passcode": "4417",
            "speaker_passcode": "882291",
            "replay_until": None,
            "replay_passcode": "5150",
            "webcast_url": None,
            "dial_in": [DialIn(label="Intl", number=LIVE_DID)],
            "replay_dial_in": [DialIn(label="Replay", number=REPLAY_DID)],
            "speakers": [Speaker(name="Mark Chen", phone="+16175550100")],
            "state": state,
        }
    )


def test_the_book_matches_codes_as_the_store_does() -> None:
    book = CodeBook()
    book.keep(_record())
    assert book.match(LIVE_DID, "882291") == CodeMatch(7, "speaker")
    assert book.match(LIVE_DID, "4417") == CodeMatch(7, "listener")
    assert book.match(LIVE_DID, "5150") is None  # a replay code on the live number
    assert book.match(REPLAY_DID, "5150") == CodeMatch(7, "replay")
    assert book.match(REPLAY_DID, "4417") is None  # the live code on the replay number
    assert book.match(None, "4417") == CodeMatch(7, "listener")  # no number: the code decides
    assert book.match("+15555550000", "4417") is None  # not this event's number
    assert book.match(LIVE_DID, "9999") is None


def test_the_book_forgets_archived_and_gone_events() -> None:
    book = CodeBook()
    book.keep(_record(state=EventState.ARCHIVED))
    assert book.match(LIVE_DID, "4417") is None
    book.keep(_record())
    book.forget(7)
    assert book.match(LIVE_DID, "4417") is None


def test_the_book_matches_pins_on_live_numbers_only() -> None:
    book = CodeBook()
    ada = KeptPin(7, 31, "Ada Analyst", "Acme", None)
    book.keep(_record(), {"digest-of-ada": ada})
    assert book.match_pin(LIVE_DID, "digest-of-ada") == ada
    assert book.match_pin(None, "digest-of-ada") == ada
    assert book.match_pin(REPLAY_DID, "digest-of-ada") is None
    assert book.match_pin(LIVE_DID, "digest-of-nobody") is None
    # A record kept again without PINs keeps the PINs it had.
    book.keep(_record())
    assert book.has_pins([7]) and not book.has_pins([8])


def test_the_books_dial_plan() -> None:
    book = CodeBook()
    book.keep(_record())
    assert book.plan(LIVE_DID) == ((7,), frozenset({4, 6}), frozenset({"+16175550100"}))
    assert book.plan(REPLAY_DID) == ((7,), frozenset({4}), frozenset({"+16175550100"}))
    assert book.plan("+15555550000") == ((), frozenset(), frozenset())


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_is_taken_in_either_state(outcome: Outcome) -> None:
    for link in Link:
        state = Reachability(link=link)
        state.happened(outcome, 1.0)
        assert state.link is TRANSITIONS[(link, outcome)]
