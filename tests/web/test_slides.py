"""The deck's PDF is the registered listeners' where the event asks listeners to register."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from callbridge.events.schema import EventRecord, EventState
from callbridge.slides.deck import render_deck
from callbridge.store import layout
from callbridge.web import pages
from tests.slides.pdfs import pdf
from tests.web.test_pages import make_event
from tests.web.test_webcast import csrf, media

TODAY = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock(app: FastAPI) -> Iterator[None]:
    app.dependency_overrides[pages.clock] = lambda: TODAY
    yield
    app.dependency_overrides.pop(pages.clock, None)


def _with_deck(client: TestClient, title: str, registration: str) -> EventRecord:
    record = make_event(client, title=title, state=EventState.LIVE, registration=registration)
    folder = layout.deck_dir(media(client).data_dir, record.id)
    render_deck(pdf(2), folder, "Q3 deck.pdf", TODAY)
    return record


def test_the_deck_needs_registration_where_the_event_asks_for_it(
    client: TestClient, auth: dict[str, str]
) -> None:
    record = _with_deck(client, "Q3", "required")
    deck = f"/events/{record.id}/deck.pdf"
    page = client.get(f"/events/{record.id}/webcast").text
    assert f'href="{deck}"' not in page
    assert "register above to download them" in page

    refused = client.get(deck)
    assert refused.status_code == 403, refused.text
    assert "register on the webcast page" in refused.text
    assert not refused.content.startswith(b"%PDF")
    # The operators have it, as they uploaded it.
    assert client.get(deck, headers=auth).content.startswith(b"%PDF-")

    registered = client.post(
        f"/events/{record.id}/webcast/register",
        data={"csrf_token": csrf(page), "name": "Ada Analyst", "email": "ada@acme.example"},
        follow_redirects=False,
    )
    assert registered.status_code == 303
    answer = client.get(deck)
    assert answer.status_code == 200 and answer.content.startswith(b"%PDF-")
    assert answer.headers["cache-control"].startswith("private")  # never a shared cache's
    assert f'href="{deck}"' in client.get(f"/events/{record.id}/webcast").text


def test_the_deck_is_anyones_where_registration_is_optional(client: TestClient) -> None:
    record = _with_deck(client, "Q3 open", "optional")
    answer = client.get(f"/events/{record.id}/deck.pdf")
    assert answer.status_code == 200 and answer.content.startswith(b"%PDF-")
