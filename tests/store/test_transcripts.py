"""The editor's corrections in the store: one row per change, versions numbered in turn,
glossary terms added once; each with its audit row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callbridge.events.schema import MAX_GLOSSARY, EventFile
from callbridge.store.calllog import CallLog, LogKind
from callbridge.store.db import Database
from callbridge.store.events import EventNotFound, EventStore, StoreError
from callbridge.store.transcripts import EditIn, TranscriptEdits

AT = datetime(2026, 11, 6, 15, 0, tzinfo=UTC)


def test_only_what_changes_is_kept_and_each_change_knows_what_it_replaced(
    database: Database, example_spec: EventFile
) -> None:
    event = EventStore(database).create(example_spec)
    edits = TranscriptEdits(database)
    first = edits.save(
        event.id,
        [
            EditIn(1, "text", "Sales of Zyloprin grew.", "Sales of zylo prin grew.", 7.0),
            EditIn(2, "text", "As it was.", "As it was.", 9.0),  # no change
        ],
        actor="dana",
        now=AT,
    )
    assert [(e.segment, e.before, e.value) for e in first] == [
        (1, "Sales of zylo prin grew.", "Sales of Zyloprin grew.")
    ]
    later = AT + timedelta(minutes=1)
    again = edits.save(
        event.id,
        [EditIn(1, "text", "Sales of Zyloprin rose.", "Sales of zylo prin grew.", 7.0)],
        actor="lee",
        now=later,
    )
    assert again[0].before == "Sales of Zyloprin grew."  # the draft's, not the automatic
    current = edits.current(event.id)
    assert current[(1, "text")].value == "Sales of Zyloprin rose."
    assert (current[(1, "text")].actor, current[(1, "text")].at) == ("lee", later)
    kinds = [e.kind for e in CallLog(database).entries(event.id)]
    assert kinds.count(LogKind.TRANSCRIPT_EDIT) == 2
    with pytest.raises(EventNotFound):
        edits.save(999, [], actor="dana", now=AT)


def test_versions_follow_each_other(database: Database, example_spec: EventFile) -> None:
    event = EventStore(database).create(example_spec)
    edits = TranscriptEdits(database)
    assert edits.latest_version(event.id) is None
    for number in (1, 2):
        made = edits.publish(
            event.id,
            lambda version: f'{{"version": {version}}}',
            last_edit_id=0,
            corrections=number,
            actor="dana",
            now=AT,
        )
        assert made.version == number
    assert edits.latest_version(event.id) == 2
    assert [r.version for r in edits.revisions(event.id)] == [2, 1]
    found = edits.revision(event.id, 2)
    assert found is not None and found.document == '{"version": 2}'
    assert edits.revision(event.id, 3) is None


def test_glossary_terms_are_added_once_and_checked(
    database: Database, example_spec: EventFile
) -> None:
    events = EventStore(database)
    event = events.create(example_spec)
    edits = TranscriptEdits(database)
    before = events.get(event.id).glossary
    assert edits.add_to_glossary(event.id, ["Zyloprin", " zyloprin "], actor="d", now=AT) == [
        "Zyloprin"
    ]
    assert edits.add_to_glossary(event.id, ["ZYLOPRIN"], actor="d", now=AT) == []
    assert events.get(event.id).glossary == [*before, "Zyloprin"]
    with pytest.raises(StoreError) as raised:
        edits.add_to_glossary(event.id, ["ok", "x" * 61], actor="d", now=AT)
    assert raised.value.field == "terms[1]"
    many = [f"Term {n}" for n in range(MAX_GLOSSARY)]
    with pytest.raises(StoreError, match="at most"):
        edits.add_to_glossary(event.id, many, actor="d", now=AT)
    assert events.get(event.id).glossary == [*before, "Zyloprin"]  # nothing of a refused list
