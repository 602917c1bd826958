"""The webcast page through the in-process client: registration, beacons, status, media access."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from callbridge.events.schema import EventState, Registration
from callbridge.store.audience import Audience
from callbridge.web import pages
from callbridge.web.media import REPLAY_DIR, REPLAY_PLAYLIST, REPLAY_READY, WebcastMedia
from tests.web.test_pages import make_event

TODAY = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock(app: FastAPI) -> Iterator[None]:
    app.dependency_overrides[pages.clock] = lambda: TODAY
    yield
    app.dependency_overrides.pop(pages.clock, None)


def csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def audience(client: TestClient) -> Audience:
    value: Audience = client.app.state.audience  # type: ignore[attr-defined]
    return value


def media(client: TestClient) -> WebcastMedia:
    value: WebcastMedia = client.app.state.webcast_media  # type: ignore[attr-defined]
    return value


def test_registration_is_asked_before_the_player(client: TestClient) -> None:
    record = make_event(client, title="Q3", state=EventState.LIVE)
    page = client.get(f"/events/{record.id}/webcast").text
    assert "Register to listen" in page
    assert 'id="player"' not in page  # no player until registered
    status = client.get(f"/api/events/{record.id}/webcast").json()
    assert status["state"] == "live" and status["may_listen"] is False
    assert client.get(f"/webcast/{record.id}/live/live.m3u8").status_code == 403


def test_a_bad_field_is_named_and_nothing_is_stored(client: TestClient) -> None:
    record = make_event(client, title="Q3", state=EventState.LIVE)
    token = csrf(client.get(f"/events/{record.id}/webcast").text)
    response = client.post(
        f"/events/{record.id}/webcast/register",
        data={"csrf_token": token, "name": "Ada Analyst", "firm": "Acme", "email": "not-an-email"},
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert "Email is not an email address" in response.text
    assert 'value="Ada Analyst"' in response.text  # what was typed is kept
    missing = client.post(
        f"/events/{record.id}/webcast/register",
        data={"csrf_token": token, "name": " ", "email": "ada@acme.example"},
        follow_redirects=False,
    )
    assert missing.status_code == 422 and "Name is needed to listen" in missing.text
    forged = client.post(
        f"/events/{record.id}/webcast/register",
        data={"csrf_token": "forged", "name": "Ada", "email": "ada@acme.example"},
        follow_redirects=False,
    )
    assert forged.status_code == 422 and "expired" in forged.text
    assert audience(client).listeners(record.id) == []


def test_registered_listeners_play_and_are_counted(client: TestClient, app: FastAPI) -> None:
    record = make_event(client, title="Q3", state=EventState.LIVE)
    token = csrf(client.get(f"/events/{record.id}/webcast").text)
    response = client.post(
        f"/events/{record.id}/webcast/register",
        data={
            "csrf_token": token,
            "name": "Ada  Analyst",
            "firm": "Acme",
            "email": "a@acme.example",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert f"cb_wc_{record.id}" in response.headers["set-cookie"]
    assert "HttpOnly" in response.headers["set-cookie"]
    page = client.get(f"/events/{record.id}/webcast").text
    assert 'id="player"' in page and "Registered as <strong>Ada Analyst</strong>, Acme" in page
    assert client.get(f"/api/events/{record.id}/webcast").json()["may_listen"] is True
    for seconds in (0, 15, 30):
        app.dependency_overrides[pages.clock] = lambda s=seconds: TODAY + timedelta(seconds=s)
        beacon = client.post(f"/api/events/{record.id}/webcast/beacon", json={"mode": "live"})
        assert beacon.status_code == 204
    (listener,) = audience(client).listeners(record.id)
    assert (listener.name, listener.firm, listener.email) == (
        "Ada Analyst",
        "Acme",
        "a@acme.example",
    )
    assert listener.live_seconds == 30
    bad = client.post(f"/api/events/{record.id}/webcast/beacon", json={"mode": "sideways"})
    assert bad.status_code == 422 and "mode" in bad.text


def test_a_forged_cookie_is_not_a_registration(client: TestClient) -> None:
    record = make_event(client, title="Q3", state=EventState.LIVE)
    client.cookies.set(f"cb_wc_{record.id}", "wl_madeup.0123456789abcdef0123456789abcdef")
    assert client.get(f"/webcast/{record.id}/live/live.m3u8").status_code == 403
    beacon = client.post(f"/api/events/{record.id}/webcast/beacon", json={"mode": "live"})
    assert beacon.status_code == 403


def test_without_registration_a_beacon_makes_an_anonymous_listener(client: TestClient) -> None:
    record = make_event(client, title="Q3", state=EventState.LIVE, registration="off")
    assert record.registration is Registration.OFF
    page = client.get(f"/events/{record.id}/webcast").text
    assert "Register to listen" not in page and 'id="player"' in page
    assert (
        client.post(f"/api/events/{record.id}/webcast/beacon", json={"mode": "live"}).status_code
        == 204
    )
    assert (
        client.post(f"/api/events/{record.id}/webcast/beacon", json={"mode": "live"}).status_code
        == 204
    )
    (listener,) = audience(client).listeners(record.id)  # one browser, one listener
    assert listener.name is None


def _replay_on_disk(client: TestClient, event_id: int) -> None:
    directory = media(client).data_dir / "recordings" / f"event-{event_id}" / "20261105T213000Z"
    (directory / REPLAY_DIR).mkdir(parents=True)
    (directory / REPLAY_DIR / REPLAY_PLAYLIST).write_text("#EXTM3U\n")
    (directory / REPLAY_DIR / REPLAY_READY).write_text("{}")
    (directory / "recording.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")


def test_replay_within_its_window_and_410_after(client: TestClient, app: FastAPI) -> None:
    record = make_event(
        client, title="Q3", state=EventState.ENDED, registration="off", replay_until="2026-11-30"
    )
    status = client.get(f"/api/events/{record.id}/webcast").json()
    assert status["replay"] == "preparing"
    assert client.get(f"/webcast/{record.id}/replay/{REPLAY_PLAYLIST}").status_code == 404
    _replay_on_disk(client, record.id)
    status = client.get(f"/api/events/{record.id}/webcast").json()
    assert status["replay"] == "ready"
    assert status["replay_playlist"] == f"/webcast/{record.id}/replay/{REPLAY_PLAYLIST}"
    playlist = client.get(status["replay_playlist"])
    assert playlist.status_code == 200
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    download = client.get(status["replay_download"])
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    assert client.get(f"/webcast/{record.id}/replay/{REPLAY_READY}").status_code == 404
    assert client.get(f"/webcast/{record.id}/replay/..%2Fmanifest.json").status_code == 404
    # The last day is November 30 in New York; on December 1 there it has expired.
    app.dependency_overrides[pages.clock] = lambda: datetime(2026, 12, 1, 5, 1, tzinfo=UTC)
    assert client.get(f"/api/events/{record.id}/webcast").json()["replay"] == "expired"
    assert client.get(f"/webcast/{record.id}/replay/{REPLAY_PLAYLIST}").status_code == 410
    assert client.get(f"/webcast/{record.id}/replay.m4a").status_code == 410
    assert client.get(f"/webcast/{record.id}/captions.vtt").status_code == 410
