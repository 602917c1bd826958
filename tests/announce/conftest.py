"""Events to render: the Northwind example, and variations of it."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callbridge.events.schema import (
    Company,
    Contact,
    EventFile,
    EventRecord,
    EventState,
    Speaker,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "northwind-q3.toml"

# The render functions take "now" as a parameter; tests pin it.
NOW = datetime(2026, 10, 29, 13, 0, tzinfo=UTC)


def to_record(
    spec: EventFile, event_id: int = 7, state: EventState = EventState.SCHEDULED
) -> EventRecord:
    """The record the store would hand back for ``spec``, without a database.

    Passcodes the file leaves out get fixed stand-ins, as the store would
    generate them; URLs are stored as their string form, as the store does.
    """
    ev = spec.event
    return EventRecord(
        id=event_id,
        company=Company(
            id=1,
            name=spec.company.name,
            ticker=spec.company.ticker.upper(),
            exchange=spec.company.exchange,
            website=str(spec.company.website) if spec.company.website else None,
            city=spec.company.city,
            about=spec.company.about,
        ),
        contacts=[
            Contact(
                group=c.group,
                name=c.name,
                title=c.title,
                organization=c.organization,
                phone=c.phone,
                email=c.email,
            )
            for c in spec.contacts
        ],
        title=ev.title,
        period=ev.period,
        kind=ev.kind,
        starts_at=ev.start_utc(),
        timezone=ev.timezone,
        duration_minutes=ev.duration_minutes,
        announced_on=ev.announced_on or NOW.date(),
        passcode=ev.passcode or "1234567",
        speaker_passcode=ev.speaker_passcode or "7654321",
        replay_until=ev.replay_until,
        replay_passcode=ev.replay_passcode or "9999",
        webcast_url=str(ev.webcast_url) if ev.webcast_url else None,
        dial_in=list(ev.dial_in),
        replay_dial_in=list(ev.replay_dial_in),
        speakers=[Speaker(name=s.name, title=s.title, phone=s.phone) for s in ev.speakers],
        state=state,
    )


def example_data() -> dict[str, Any]:
    """The example file as a fresh dict, for a test to change before validating."""
    with EXAMPLE.open("rb") as f:
        return tomllib.load(f)


def record_from(data: dict[str, Any]) -> EventRecord:
    """Validate ``data`` as an event file and turn it into a record."""
    return to_record(EventFile.model_validate(data))


@pytest.fixture
def northwind() -> EventRecord:
    """The example event exactly as examples/northwind-q3.toml describes it."""
    return record_from(example_data())


@pytest.fixture
def make_record() -> Callable[..., EventRecord]:
    """Build a record from the example with parts replaced.

    ``company={...}`` and ``event={...}`` update those tables key by key;
    ``contacts=[...]`` replaces the list.
    """

    def make(
        company: dict[str, Any] | None = None,
        event: dict[str, Any] | None = None,
        contacts: list[dict[str, Any]] | None = None,
    ) -> EventRecord:
        data = example_data()
        data["company"].update(company or {})
        data["event"].update(event or {})
        if contacts is not None:
            data["contacts"] = contacts
        return record_from(data)

    return make
