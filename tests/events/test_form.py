"""The editor's fields to an event and back: errors land on the field that caused them, rows
keep their place through gaps, a round trip loses nothing, and no input makes it raise."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.events import form
from callbridge.events.duplicate import add_quarter, next_quarter, next_quarter_text
from callbridge.events.schema import EventFile, EventRecord
from callbridge.store.db import Database
from callbridge.store.events import EventStore


def _record(database: Database, spec: EventFile) -> EventRecord:
    return EventStore(database).create(spec)


def test_a_stored_event_round_trips_through_its_fields(
    sqlite_database: Database, example_spec: EventFile
) -> None:
    record = _record(sqlite_database, example_spec)
    values = form.values_of(record)
    assert values["event.dial_in.1.number"] == "+1 913-555-0123"
    assert values[form.START_DATE] == "2026-11-05" and values[form.START_TIME] == "16:30"
    spec, errors = form.validate(values)
    assert errors == {} and spec is not None
    assert spec.event.start_utc() == record.starts_at
    assert [d.number for d in spec.event.dial_in] == [d.number for d in record.dial_in]
    assert spec.event.passcode == record.passcode
    assert len(spec.contacts) == len(record.contacts)


def test_errors_name_the_row_the_operator_sees(
    sqlite_database: Database, example_spec: EventFile
) -> None:
    values = form.values_of(_record(sqlite_database, example_spec))
    # Row 0 left blank, row 5 typed wrong: the error is row 5's, not the second sent row's.
    values["event.speakers.0.name"] = ""
    values["event.speakers.5.name"] = "Mark Chen"
    values["event.speakers.5.phone"] = "+1 617-555-01"
    values["event.speakers.7.name"] = "Ana Ruiz"
    values["event.speakers.7.phone"] = "+1 617-555-0147"
    values["event.dial_in.1.number"] = "not a number"
    values[form.START_TIME] = ""
    values["event.replay_passcode"] = values["event.passcode"]
    _, errors = form.validate(values)
    assert set(errors) == {
        "event.speakers.5.phone",
        "event.dial_in.1.number",
        "event.starts_at",
    }, errors
    assert "'+1 617-555-01' is not a valid phone number" in errors["event.speakers.5.phone"]
    assert form.label("event.speakers.5.phone") == "Speaker 6 · Phone"
    values[form.START_TIME] = "16:30"
    values["event.dial_in.1.number"] = "+1 913-555-0123"
    values["event.speakers.5.phone"] = ""
    _, errors = form.validate(values)
    assert errors == {"event.replay_passcode": ["must differ from the listener passcode"]}


def test_blank_required_fields_say_required() -> None:
    _, errors = form.validate({})
    assert errors["company.name"] == ["is required"]
    assert errors["event.starts_at"] == ["is required"]
    assert errors["event.dial_in"] == ["needs at least one"]


def test_changes_are_listed_field_by_field() -> None:
    before = {"event.title": "A", "event.speakers.0.name": "", "event.period": "p"}
    after = {"event.title": "B", "event.speakers.0.name": "Mark Chen", "event.period": "p "}
    listed = form.changes(before, after)
    assert [(c.label, c.before, c.after) for c in listed] == [
        ("Title", "A", "B"),
        ("Speaker 1 · Name", "", "Mark Chen"),
    ]


def test_the_local_time_preview() -> None:
    assert form.local_preview("2026-11-05", "16:30", "America/New_York") == (
        "Thu 5 Nov 2026, 4:30 pm EST = 21:30 UTC"
    )
    assert form.local_preview("2026-11-05", "20:30", "America/Los_Angeles") == (
        "Thu 5 Nov 2026, 8:30 pm PST = Fri 6 Nov, 04:30 UTC"
    )
    assert "does not exist" in form.local_preview("2027-03-14", "02:30", "America/New_York")
    assert form.local_preview("2026-11-05", "", "America/New_York") == ""
    assert form.local_preview("2026-11-05", "16:30", "../etc/passwd") == ""


def test_a_quarter_on() -> None:
    assert add_quarter(date(2026, 9, 30)) == date(2026, 12, 31)
    assert add_quarter(date(2026, 11, 30)) == date(2027, 2, 28)
    assert add_quarter(date(2026, 11, 5)) == date(2027, 2, 5)
    assert next_quarter_text("Third Quarter Fiscal Year 2026 Financial Results") == (
        "Fourth Quarter Fiscal Year 2026 Financial Results"
    )
    assert next_quarter_text("Fourth Quarter 2026 Results") == "First Quarter 2027 Results"
    assert next_quarter_text("Q4 2026 call") == "Q1 2027 call"
    draft = next_quarter(
        {
            "event.period": "the three-month period ended September 30, 2026",
            form.START_DATE: "2026-11-05",
            "event.replay_until": "2026-11-12",
            "event.passcode": "1234567",
        }
    )
    assert draft["event.period"] == "the three-month period ended December 31, 2026"
    assert draft[form.START_DATE] == "2027-02-05" and draft["event.replay_until"] == "2027-02-12"
    assert draft["event.passcode"] == ""


KEYS = st.sampled_from(
    [
        "company.name",
        "event.title",
        form.START_DATE,
        form.START_TIME,
        "event.timezone",
        "event.duration_minutes",
        "event.dial_in.0.number",
        "event.dial_in.99999.label",
        "event.speakers.3.phone",
        "contacts.1.email",
        "event.glossary",
        "event.dial_in.x.number",
        "junk",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(KEYS, st.text(max_size=40)), max_size=20))
def test_any_fields_give_an_event_or_errors_never_an_exception(
    fields: list[tuple[str, str]],
) -> None:
    values = form.from_form(fields)
    assert "junk" not in values
    spec, errors = form.validate(values)
    assert (spec is None) != (errors == {})
    for key in errors:
        assert form.label(key)
    form.local_preview(
        values.get(form.START_DATE, ""), values.get(form.START_TIME, ""), values.get("x", "")
    )
    next_quarter(values)
