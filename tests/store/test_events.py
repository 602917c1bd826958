"""The event store on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from callbridge.events.errors import normalise_errors
from callbridge.events.schema import EventFile, EventPatch, EventState
from callbridge.store.db import Database
from callbridge.store.events import Conflict, DialPlan, EventNotFound, EventStore
from callbridge.store.models import CompanyRow, ContactRow, DialInRow, EventRow, PasscodeClaimRow
from tests.conftest import example_data


def _count(db: Database, model: type) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_create_round_trips_every_field(database: Database, example_spec: EventFile) -> None:
    store = EventStore(database)
    record = store.create(example_spec)
    again = store.get(record.id)
    assert again == record
    assert record.company.name == "Northwind Biologics, Inc."
    assert record.company.ticker == "NWBX"
    assert record.company.city == "CAMBRIDGE, Mass."
    assert record.starts_at == datetime(2026, 11, 5, 21, 30, tzinfo=UTC)
    assert record.starts_at.tzinfo is not None
    assert record.local_start.strftime("%H:%M %Z") == "16:30 EST"
    assert record.timezone == "America/New_York"
    assert record.duration_minutes == 60
    assert record.announced_on == date(2026, 10, 29)
    assert record.passcode == "8024721"
    assert record.speaker_passcode == "5550123"
    assert record.replay_passcode == "4417"
    assert record.replay_until == date(2026, 11, 12)
    assert [(d.label, d.number) for d in record.dial_in] == [
        ("U.S./Canada", "+18665550199"),
        ("International", "+19135550123"),
    ]
    assert [(d.label, d.number) for d in record.replay_dial_in] == [("U.S./Canada", "+18665550188")]
    assert [(c.group, c.name) for c in record.contacts] == [
        ("Investors", "Dana Whitfield"),
        ("Media", "Sam Ortiz"),
    ]
    assert record.contacts[0].phone == "+16175550142"
    assert record.state is EventState.SCHEDULED


def test_generated_passcodes_are_seven_digits_distinct_and_unique(database: Database) -> None:
    store = EventStore(database)
    data = example_data()
    event = data["event"]
    assert isinstance(event, dict)
    for key in ("passcode", "speaker_passcode", "replay_passcode"):
        event.pop(key)
    seen: set[str] = set()
    for _ in range(15):
        record = store.create(EventFile.model_validate(data))
        codes = {record.passcode, record.speaker_passcode, record.replay_passcode}
        assert len(codes) == 3
        for code in codes:
            assert len(code) == 7 and code.isdigit()
        assert not (codes & seen)
        seen |= codes


def test_taken_passcode_is_refused_and_nothing_is_written(
    database: Database, example_spec: EventFile
) -> None:
    store = EventStore(database)
    store.create(example_spec)
    before = [_count(database, m) for m in (EventRow, ContactRow, DialInRow, CompanyRow)]
    with pytest.raises(Conflict) as refused:
        store.create(example_spec)
    assert refused.value.field == "event.passcode"
    after = [_count(database, m) for m in (EventRow, ContactRow, DialInRow, CompanyRow)]
    assert after == before


def test_archived_events_release_their_passcodes(
    database: Database, example_spec: EventFile
) -> None:
    store = EventStore(database)
    first = store.create(example_spec)
    store.set_state(first.id, EventState.ENDED)
    store.set_state(first.id, EventState.ARCHIVED)
    second = store.create(example_spec)
    assert second.passcode == first.passcode


def test_state_moves_follow_the_table(database: Database, example_spec: EventFile) -> None:
    store = EventStore(database)
    record = store.create(example_spec)
    assert store.set_state(record.id, EventState.LIVE).state is EventState.LIVE
    with pytest.raises(Conflict):
        store.set_state(record.id, EventState.SCHEDULED)
    assert store.set_state(record.id, EventState.ENDED).state is EventState.ENDED


def test_update_keeps_wall_clock_and_validates(database: Database, example_spec: EventFile) -> None:
    store = EventStore(database)
    record = store.create(example_spec)
    moved = store.update(record.id, EventPatch(timezone="America/Chicago"))
    assert moved.local_start.strftime("%H:%M") == "16:30"
    assert moved.starts_at == datetime(2026, 11, 5, 22, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="replay_until"):
        store.update(record.id, EventPatch(replay_until=date(2026, 1, 1)))
    assert store.get(record.id).replay_until == date(2026, 11, 12)


def test_live_events_cannot_change_or_delete(database: Database, example_spec: EventFile) -> None:
    store = EventStore(database)
    record = store.create(example_spec)
    store.set_state(record.id, EventState.LIVE)
    with pytest.raises(Conflict):
        store.update(record.id, EventPatch(title="Something else"))
    with pytest.raises(Conflict):
        store.delete(record.id)


def test_delete_removes_children(database: Database, example_spec: EventFile) -> None:
    store = EventStore(database)
    record = store.create(example_spec)
    store.delete(record.id)
    with pytest.raises(EventNotFound):
        store.get(record.id)
    assert _count(database, ContactRow) == 0
    assert _count(database, DialInRow) == 0


def test_match_passcode_by_dialled_number(database: Database, example_spec: EventFile) -> None:
    store = EventStore(database)
    record = store.create(example_spec)
    listener = store.match_passcode("+19135550123", "8024721")
    assert listener is not None and (listener.event_id, listener.role) == (record.id, "listener")
    speaker = store.match_passcode("+18665550199", "5550123")
    assert speaker is not None and speaker.role == "speaker"
    replay = store.match_passcode("+18665550188", "4417")
    assert replay is not None and replay.role == "replay"
    # The right code on the wrong number opens nothing.
    assert store.match_passcode("+18665550188", "8024721") is None
    assert store.match_passcode("+19135550123", "4417") is None
    assert store.match_passcode("+19135550123", "1111111") is None
    assert store.match_passcode("+12125551234", "8024721") is None
    # A trunk that sends no number: the code alone decides.
    loose = store.match_passcode(None, "8024721")
    assert loose is not None and loose.role == "listener"


def test_list_orders_by_start(database: Database) -> None:
    store = EventStore(database)
    data = example_data()
    event = data["event"]
    assert isinstance(event, dict)
    for key in ("passcode", "speaker_passcode", "replay_passcode"):
        event.pop(key)
    event["starts_at"] = datetime(2026, 12, 1, 9, 0)
    event["replay_until"] = date(2026, 12, 8)
    later = store.create(EventFile.model_validate(data))
    event["starts_at"] = datetime(2026, 11, 1, 9, 0)
    event["replay_until"] = date(2026, 11, 8)
    sooner = store.create(EventFile.model_validate(data))
    assert [r.id for r in store.list_events()] == [sooner.id, later.id]


def _spec_with(**event: object) -> EventFile:
    data = example_data()
    data["event"] = {**data["event"], **event}  # type: ignore[dict-item]
    return EventFile.model_validate(data)


def test_the_database_itself_refuses_a_second_claim_on_a_code(
    database: Database, example_spec: EventFile
) -> None:
    first = EventStore(database).create(example_spec)
    with database.session() as session, pytest.raises(IntegrityError), session.begin():
        session.add(PasscodeClaimRow(code=first.passcode, event_id=first.id, role="replay"))
    with database.session() as session:
        claims = session.scalars(select(PasscodeClaimRow).order_by(PasscodeClaimRow.role)).all()
        assert {(c.role, c.code) for c in claims} == {
            ("listener", "8024721"),
            ("speaker", "5550123"),
            ("replay", "4417"),
        }


def test_two_creates_racing_for_one_code_get_one_event_and_one_409(database: Database) -> None:
    store = EventStore(database)
    # Two different companies, so only the passcode collides.
    specs = [
        _spec_with(passcode="7777777", speaker_passcode=f"{n}111111", replay_passcode=f"{n}222")
        for n in (3, 4)
    ]
    specs[1].company.ticker = "OTHR"
    barrier = threading.Barrier(2)
    results: list[object] = []

    def create(spec: EventFile) -> None:
        barrier.wait()
        try:
            results.append(store.create(spec))
        except Conflict as conflict:
            results.append(conflict)

    for _ in range(5):
        results.clear()
        with database.session() as session, session.begin():
            for row in session.scalars(select(EventRow)):
                session.delete(row)
        threads = [threading.Thread(target=create, args=(spec,)) for spec in specs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        conflicts = [r for r in results if isinstance(r, Conflict)]
        assert len(conflicts) == 1, results
        assert conflicts[0].status == 409
        assert conflicts[0].field == "event.passcode"
        assert _count(database, EventRow) == 1


def test_a_code_taken_as_another_events_replay_code_is_refused(
    database: Database, example_spec: EventFile
) -> None:
    store = EventStore(database)
    first = store.create(example_spec)
    with pytest.raises(Conflict) as refused:
        store.create(
            _spec_with(
                passcode="6000001",
                speaker_passcode="6000002",
                replay_passcode=first.speaker_passcode,
            )
        )
    assert refused.value.field == "event.replay_passcode"


def test_the_replay_code_never_equals_the_speaker_or_listener_code() -> None:
    for other in ("passcode", "speaker_passcode"):
        code = str(example_data()["event"][other])  # type: ignore[index]
        with pytest.raises(ValidationError) as invalid:
            _spec_with(replay_passcode=code)
        errors = normalise_errors(invalid.value.errors())
        assert errors[0]["loc"][-1] == "replay_passcode"
        assert "must differ" in errors[0]["msg"]


def test_archiving_frees_the_claims(database: Database, example_spec: EventFile) -> None:
    store = EventStore(database)
    first = store.create(example_spec)
    store.set_state(first.id, EventState.ENDED)
    store.set_state(first.id, EventState.ARCHIVED)
    with database.session() as session:
        assert session.scalars(select(PasscodeClaimRow)).all() == []


def test_the_dial_plan_names_the_events_and_code_lengths(database: Database) -> None:
    store = EventStore(database)
    one = store.create(_spec_with(passcode="12345678", speaker_passcode="123456789012"))
    live, replay = one.dial_in[0].number, one.replay_dial_in[0].number
    assert store.dial_plan(live).event_ids == (one.id,)
    assert store.dial_plan(live).code_lengths == {8, 12}
    assert store.dial_plan(replay).code_lengths == {4}
    assert store.dial_plan(None).code_lengths == {4, 8, 12}
    assert store.dial_plan("+12125550000") == DialPlan((), frozenset())


def test_the_migration_claims_the_codes_of_events_already_stored(database: Database) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from callbridge.store.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO company (id, name, ticker, exchange, city, about) "
                "VALUES (1, 'N', 'NWBX', 'Nasdaq', 'C', 'A')"
            )
        )
        for event_id, state, codes in (
            (1, "scheduled", ("1000001", "1000002", "1003")),
            (2, "archived", ("2000001", "2000002", "2003")),
            (3, "live", ("1000001", "3000002", "3003")),  # a code a past race gave twice
        ):
            connection.execute(
                text(
                    "INSERT INTO event (id, company_id, title, period, kind, starts_at, "
                    "timezone, duration_minutes, announced_on, passcode, speaker_passcode, "
                    "replay_passcode, state, created_at, updated_at) VALUES (:id, 1, 't', 'p', "
                    "'earnings', :now, 'UTC', 60, :day, :l, :s, :r, :state, :now, :now)"
                ),
                {
                    "id": event_id,
                    "now": datetime(2026, 11, 1, tzinfo=UTC),
                    "day": date(2026, 11, 1),
                    "l": codes[0],
                    "s": codes[1],
                    "r": codes[2],
                    "state": state,
                },
            )
    database.upgrade()
    with database.session() as session:
        claims = {(c.code, c.event_id) for c in session.scalars(select(PasscodeClaimRow))}
    assert claims == {
        ("1000001", 1),
        ("1000002", 1),
        ("1003", 1),
        ("3000002", 3),
        ("3003", 3),
    }


def test_the_speaker_list_round_trips_and_changes_while_live(database: Database) -> None:
    store = EventStore(database)
    data = example_data()
    data["event"]["speakers"] = [
        {"name": "Mark Chen", "title": "Chief Financial Officer", "phone": "212-555-1234"},
        {"name": "Dana Fox"},
    ]
    record = store.create(EventFile.model_validate(data))
    assert [(s.label, s.phone) for s in store.get(record.id).speakers] == [
        ("Mark Chen, Chief Financial Officer", "+12125551234"),
        ("Dana Fox", None),
    ]
    # The dial plan carries the listed phones: the passcode guard never refuses them.
    plan = store.dial_plan(record.dial_in[0].number)
    assert plan.speaker_phones == {"+12125551234"}
    store.set_state(record.id, EventState.LIVE)
    late = EventPatch.model_validate({"speakers": [{"name": "Lee Park", "phone": "+16175550147"}]})
    assert late.speakers is not None
    changed = store.set_speakers(record.id, late.speakers)
    assert [(s.name, s.phone) for s in changed.speakers] == [("Lee Park", "+16175550147")]
    assert store.get(record.id).speakers == changed.speakers
    store.set_state(record.id, EventState.ENDED)
    with pytest.raises(Conflict, match="speakers no longer change"):
        store.set_speakers(record.id, [])
