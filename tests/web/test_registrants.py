"""A registrant deleted: their data gone, their PIN and cookie dead, their seconds kept."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from callbridge.events.schema import EventState
from callbridge.store.calllog import LogKind
from callbridge.store.pins import PinBook
from callbridge.web import pages
from tests.web.test_pages import make_event

TODAY = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock(app: FastAPI) -> Iterator[None]:
    app.dependency_overrides[pages.clock] = lambda: TODAY
    yield
    app.dependency_overrides.pop(pages.clock, None)


def _register(client: TestClient, event_id: int, name: str) -> None:
    page = client.get(f"/events/{event_id}/webcast").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    answer = client.post(
        f"/events/{event_id}/webcast/register",
        data={
            "csrf_token": match.group(1),
            "name": name,
            "firm": "Acme",
            "email": "a@acme.example",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def test_a_deleted_registrant_is_forgotten_and_their_time_kept(
    client: TestClient, app: FastAPI, auth: dict[str, str]
) -> None:
    record = make_event(client, title="Q3", state=EventState.LIVE)
    other = make_event(client, title="Q4", codes=("5550101", "5550102", "5550103"))
    _register(client, record.id, "Ada Analyst")
    url = f"/api/events/{record.id}/webcast/beacon"
    for seconds in (0, 15):
        app.dependency_overrides[pages.clock] = lambda s=seconds: TODAY + timedelta(seconds=s)
        assert client.post(url, json={"mode": "live"}).status_code == 204
    (ada,) = app.state.audience.listeners(record.id)
    pins: PinBook = app.state.pins
    pin = pins.issue(record.id, ada.id, TODAY)
    assert pin is not None and pins.match(None, pin) is not None

    assert client.delete(f"/api/events/{record.id}/registrants/{ada.id}").status_code in (401, 403)
    gone = client.delete(f"/api/events/{record.id}/registrants/{ada.id}", headers=auth)
    assert gone.status_code == 204, gone.text

    (row,) = app.state.audience.listeners(record.id)
    assert (row.id, row.name, row.firm, row.email, row.live_seconds) == (
        ada.id,
        None,
        None,
        None,
        15,
    )
    assert pins.match(None, pin) is None  # the PIN opens nothing
    app.dependency_overrides[pages.clock] = lambda: TODAY + timedelta(seconds=30)
    assert client.post(url, json={"mode": "live"}).status_code == 403  # nor does the cookie
    attendance = client.get(f"/api/events/{record.id}/attendance.csv", headers=auth).text
    assert "Ada Analyst" not in attendance and "a@acme.example" not in attendance
    kinds = [e.kind for e in app.state.call_log.entries(record.id)]
    assert LogKind.REGISTRANT_ERASED in kinds
    audit = client.get(f"/api/events/{record.id}/audit.csv", headers=auth).text
    assert "registrant_erased" in audit and "Ada" not in audit
    # Twice, or under another event: nobody to delete.
    again = client.delete(f"/api/events/{record.id}/registrants/{ada.id}", headers=auth)
    assert again.status_code == 404
    elsewhere = client.delete(f"/api/events/{other.id}/registrants/{ada.id}", headers=auth)
    assert elsewhere.status_code == 404
