"""Optimistic concurrency on events: a version that grows with every change, on SQLite and
PostgreSQL; a write made against an old version is refused, never written over."""

from __future__ import annotations

import threading

import pytest

from callbridge.events.schema import EventFile, EventPatch, EventState
from callbridge.store.db import Database
from callbridge.store.events import Conflict, EventStore, VersionConflict
from tests.conftest import example_data


def test_every_change_moves_the_version(database: Database, example_spec: EventFile) -> None:
    store = EventStore(database)
    record = store.create(example_spec)
    assert record.version == 1
    renamed = store.update(record.id, EventPatch(title="Q3 results"), expected_version=1)
    assert renamed.version == 2
    # A change only in the speaker table moves it too.
    speakers = store.set_speakers(
        record.id, EventPatch(speakers=[{"name": "Mark Chen"}]).speakers or []
    )
    assert speakers.version == 3
    assert store.set_state(record.id, EventState.LIVE).version == 4
    assert store.get(record.id).version == 4


def test_a_write_from_an_old_version_is_refused(
    database: Database, example_spec: EventFile
) -> None:
    store = EventStore(database)
    record = store.create(example_spec)
    store.update(record.id, EventPatch(title="First editor's title"), expected_version=1)
    with pytest.raises(VersionConflict) as refused:
        store.update(record.id, EventPatch(period="the second's period"), expected_version=1)
    assert refused.value.status == 412
    assert refused.value.current.title == "First editor's title"
    assert refused.value.current.version == 2
    kept = store.get(record.id)
    assert kept.title == "First editor's title" and kept.period == record.period


def test_replace_writes_the_whole_event_and_its_codes(
    database: Database, example_spec: EventFile
) -> None:
    store = EventStore(database)
    record = store.create(example_spec)
    data = example_data()
    data["company"]["about"] = "A new About text."  # type: ignore[index]
    data["contacts"] = []
    data["event"]["passcode"] = "7654321"  # type: ignore[index]
    data["event"]["speakers"] = [{"name": "Mark Chen", "phone": "+1 617-555-0147"}]  # type: ignore[index]
    changed = store.replace(record.id, EventFile.model_validate(data), expected_version=1)
    assert changed.version == 2
    assert changed.company.about == "A new About text."
    assert changed.contacts == []
    assert changed.passcode == "7654321"
    assert [s.name for s in changed.speakers] == ["Mark Chen"]
    # The old listener code is free again; the new one is held.
    assert store.match_passcode(None, "8024721") is None
    match = store.match_passcode(None, "7654321")
    assert match is not None and match.event_id == record.id
    with pytest.raises(VersionConflict):
        store.replace(record.id, EventFile.model_validate(data), expected_version=1)


def test_replace_refuses_another_events_code(database: Database, example_spec: EventFile) -> None:
    store = EventStore(database)
    first = store.create(example_spec)
    data = example_data()
    for field in ("passcode", "speaker_passcode", "replay_passcode"):
        data["event"].pop(field)  # type: ignore[attr-defined]
    second = store.create(EventFile.model_validate(data))
    data["event"]["passcode"] = first.passcode  # type: ignore[index]
    with pytest.raises(Conflict) as refused:
        store.replace(second.id, EventFile.model_validate(data), expected_version=1)
    assert refused.value.field == "event.passcode"


def test_two_writers_racing_from_one_version_one_wins(
    database: Database, example_spec: EventFile
) -> None:
    store = EventStore(database)
    record = store.create(example_spec)
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def edit(title: str) -> None:
        start.wait()
        try:
            store.update(record.id, EventPatch(title=title), expected_version=1)
        except VersionConflict:
            outcomes.append("refused")
        else:
            outcomes.append("kept")

    threads = [threading.Thread(target=edit, args=(t,)) for t in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["kept", "refused"]
    assert store.get(record.id).version == 2
