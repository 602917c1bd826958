"""The webcast page through the in-process client: registration, beacons, status, media access."""

from __future__ import annotations

import csv
import io
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from callbridge.events.schema import EventState, Registration
from callbridge.store import layout
from callbridge.store.audience import FLUSH_INTERVAL, MIN_BEACON_GAP, Audience
from callbridge.store.db import Database
from callbridge.web import pages
from callbridge.web.limits import BROWSER_IDS_PER_ADDRESS, WebLimits
from callbridge.web.media import REPLAY_DIR, REPLAY_PLAYLIST, REPLAY_READY, WebcastMedia
from tests.telephony.conftest import start_server
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
    # Paused 20 s: the page's first beacon after the pause says so and credits nothing.
    url = f"/api/events/{record.id}/webcast/beacon"
    app.dependency_overrides[pages.clock] = lambda: TODAY + timedelta(seconds=50)
    assert client.post(url, json={"mode": "live", "resumed": True}).status_code == 204
    app.dependency_overrides[pages.clock] = lambda: TODAY + timedelta(seconds=65)
    assert client.post(url, json={"mode": "live"}).status_code == 204
    (listener,) = audience(client).listeners(record.id)
    assert listener.live_seconds == 45
    bad = client.post(f"/api/events/{record.id}/webcast/beacon", json={"mode": "sideways"})
    assert bad.status_code == 422 and "mode" in bad.text


def test_a_forged_cookie_is_not_a_registration(client: TestClient) -> None:
    record = make_event(client, title="Q3", state=EventState.LIVE)
    client.cookies.set(f"cb_wc_{record.id}", "wl_madeup.0123456789abcdef0123456789abcdef")
    assert client.get(f"/webcast/{record.id}/live/live.m3u8").status_code == 403
    beacon = client.post(f"/api/events/{record.id}/webcast/beacon", json={"mode": "live"})
    assert beacon.status_code == 403


def _beacon(client: TestClient, event_id: int, mode: str = "live") -> int:
    return client.post(f"/api/events/{event_id}/webcast/beacon", json={"mode": mode}).status_code


def _at(app: FastAPI, seconds: float) -> None:
    app.dependency_overrides[pages.clock] = lambda: TODAY + timedelta(seconds=seconds)


def test_without_registration_the_first_beacon_gives_a_signed_browser_id(
    client: TestClient, app: FastAPI
) -> None:
    record = make_event(client, title="Q3", state=EventState.LIVE, registration="off")
    assert record.registration is Registration.OFF
    response = client.get(f"/events/{record.id}/webcast")
    assert "Register to listen" not in response.text and 'id="player"' in response.text
    # A page load hands out no browser id (only the session's CSRF cookie).
    assert f"cb_wc_{record.id}" not in response.headers.get("set-cookie", "")
    first = client.post(f"/api/events/{record.id}/webcast/beacon", json={"mode": "live"})
    assert first.status_code == 204 and f"cb_wc_{record.id}=" in first.headers["set-cookie"]
    assert audience(client).listeners(record.id) == []  # the audio started: not a listener yet
    assert audience(client).count_listening(record.id, TODAY) == 0
    _at(app, 15)
    assert _beacon(client, record.id) == 204
    (listener,) = audience(client).listeners(record.id)  # one browser, one listener
    assert listener.name is None and listener.live_seconds == 15
    # The same page again keeps its id: still one listener.
    assert f"cb_wc_{record.id}" not in client.get(f"/events/{record.id}/webcast").headers.get(
        "set-cookie", ""
    )
    _at(app, 30)
    assert _beacon(client, record.id) == 204
    assert len(audience(client).listeners(record.id)) == 1


def test_a_browser_that_listened_then_registers_stays_one_listener(
    client: TestClient, app: FastAPI
) -> None:
    record = make_event(client, title="Q3", state=EventState.LIVE, registration="optional")
    page = client.get(f"/events/{record.id}/webcast").text
    assert _beacon(client, record.id) == 204
    _at(app, 15)
    assert _beacon(client, record.id) == 204
    response = client.post(
        f"/events/{record.id}/webcast/register",
        data={"csrf_token": csrf(page), "name": "Ada", "email": "ada@acme.example"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    _at(app, 30)
    assert _beacon(client, record.id) == 204
    (listener,) = audience(client).listeners(record.id)
    assert (listener.name, listener.live_seconds) == ("Ada", 30)


def test_anonymous_beacons_cannot_inflate_the_audience(client: TestClient, app: FastAPI) -> None:
    """Fresh ids come at the address's rate, and none is a listener until it has listened."""
    record = make_event(client, title="Q3", state=EventState.LIVE, registration="off")
    url = f"/api/events/{record.id}/webcast/beacon"
    # An id this server did not sign, or another event's, is no id: it gets a fresh one.
    client.cookies.set(f"cb_wc_{record.id}", "wl_madeup.0123456789abcdef0123456789abcdef")
    answer = client.post(url, json={"mode": "live"})
    assert answer.status_code == 204 and "wl_madeup" not in answer.headers["set-cookie"]
    # A script that never loaded the page, a fresh client each time: the
    # address's burst of ids, then 429 with the wait.
    codes = Counter()
    for _ in range(BROWSER_IDS_PER_ADDRESS.burst + 10):
        client.cookies.clear()
        answer = client.post(url, json={"mode": "live"})
        codes[answer.status_code] += 1
        if answer.status_code == 429:
            assert 1 <= int(answer.headers["retry-after"]) <= BROWSER_IDS_PER_ADDRESS.every + 1
            assert "too many new listeners" in answer.json()["detail"]
    assert codes[204] <= BROWSER_IDS_PER_ADDRESS.burst and codes[429] >= 10, codes
    assert audience(client).listeners(record.id) == []
    assert audience(client).count_listening(record.id, TODAY) == 0
    # One real browser (the address's count starts again), hammering: the
    # first beacon counts, the burst is refused.
    app.state.limits = WebLimits()
    client.cookies.clear()
    assert _beacon(client, record.id) == 204
    refused = client.post(url, json={"mode": "live"})
    assert refused.status_code == 429 and refused.headers["retry-after"]
    for tenth in range(1, 15):
        _at(app, tenth / 10)
        assert _beacon(client, record.id) == 429
    _at(app, 15)
    assert _beacon(client, record.id) == 204
    (listener,) = audience(client).listeners(record.id)
    assert listener.live_seconds == 15  # the refused beacons neither counted nor reset the gap
    assert audience(client).count_listening(record.id, TODAY) == 1


def test_registration_required_beacons_need_the_registration_cookie(client: TestClient) -> None:
    record = make_event(client, title="Q3", state=EventState.LIVE)
    for _ in range(5):
        answer = client.post(f"/api/events/{record.id}/webcast/beacon", json={"mode": "live"})
        assert answer.status_code == 403 and "set-cookie" not in answer.headers
    assert audience(client).listeners(record.id) == []


def test_beacons_count_only_while_live_or_during_the_replay(
    client: TestClient, app: FastAPI
) -> None:
    scheduled = make_event(client, title="Q3", registration="off")
    client.get(f"/events/{scheduled.id}/webcast")
    assert _beacon(client, scheduled.id, "live") == 409
    assert _beacon(client, scheduled.id, "replay") == 409
    live = make_event(
        client,
        title="Q4",
        state=EventState.LIVE,
        registration="off",
        codes=("5550001", "5550002", "5550003"),
    )
    client.get(f"/events/{live.id}/webcast")
    assert _beacon(client, live.id, "replay") == 409
    ended = make_event(
        client,
        title="Q2",
        state=EventState.ENDED,
        registration="off",
        replay_until="2026-11-30",
        codes=("5550011", "5550012", "5550013"),
    )
    client.get(f"/events/{ended.id}/webcast")
    assert _beacon(client, ended.id, "live") == 409
    assert _beacon(client, ended.id, "replay") == 204
    _at(app, 10)
    assert _beacon(client, ended.id, "replay") == 204
    # December 1 in New York: the replay window has closed.
    app.dependency_overrides[pages.clock] = lambda: datetime(2026, 12, 1, 5, 1, tzinfo=UTC)
    assert _beacon(client, ended.id, "replay") == 409
    assert audience(client).listeners(scheduled.id) == []
    assert audience(client).listeners(live.id) == []
    (listener,) = audience(client).listeners(ended.id)
    assert (listener.live_seconds, listener.replay_seconds) == (0, 10)


def test_registration_fields_refuse_control_characters(client: TestClient) -> None:
    record = make_event(client, title="Q3", state=EventState.LIVE)
    token = csrf(client.get(f"/events/{record.id}/webcast").text)
    response = client.post(
        f"/events/{record.id}/webcast/register",
        data={"csrf_token": token, "name": "Ada\x00", "email": "ada@acme.example"},
        follow_redirects=False,
    )
    assert response.status_code == 422 and "Name cannot hold control characters" in response.text
    assert audience(client).listeners(record.id) == []


def _replay_on_disk(client: TestClient, event_id: int) -> None:
    directory = layout.recording_dir(media(client).data_dir, event_id, "20261105T213000Z")
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
    assert client.get(f"/webcast/{record.id}/transcript.txt").status_code == 410
    assert client.get(f"/webcast/{record.id}/transcript.docx").status_code == 410


def test_the_transcript_downloads_as_text_and_html(client: TestClient) -> None:
    record = make_event(
        client, title="Q3", state=EventState.ENDED, registration="off", replay_until="2026-12-31"
    )
    _replay_on_disk(client, record.id)
    assert client.get(f"/webcast/{record.id}/transcript.txt").status_code == 404  # not yet
    directory = layout.recording_dir(media(client).data_dir, record.id, "20261105T213000Z")
    (directory / "transcript.txt").write_text("0:00 Speaker 1\nRevenue grew to $42 million.\n")
    (directory / "transcript.html").write_text("<!doctype html><p>Revenue grew to $42 million.</p>")
    text = client.get(f"/webcast/{record.id}/transcript.txt")
    assert text.status_code == 200 and "$42 million" in text.text
    assert text.headers["content-type"].startswith("text/plain")
    page = client.get(f"/webcast/{record.id}/transcript.html")
    assert page.status_code == 200 and "attachment" in page.headers["content-disposition"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert client.get(f"/webcast/{record.id}/transcript.pdf").status_code == 404
    assert client.get(f"/webcast/{record.id}/transcript.docx").status_code == 404  # not yet
    # The route serves what transcript.turns.as_docx wrote (tests/transcript parse it back).
    (directory / "transcript.docx").write_bytes(b"PK\x03\x04 a zip, as every .docx is")
    document = client.get(f"/webcast/{record.id}/transcript.docx")
    assert document.status_code == 200 and "attachment" in document.headers["content-disposition"]
    assert document.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert document.content.startswith(b"PK\x03\x04")


def test_a_stranger_cannot_inflate_the_live_audience_of_a_real_server(tmp_path: Path) -> None:
    """`callbridge serve` on loopback; the stranger sends from 127.0.0.2 over real HTTP.

    The issue's 100 fresh clients from one address: they get a bounded number
    of browser ids, and count as 0 listeners (console, attendance, report)
    until one of them has listened.
    """
    # A folder of its own: tmp_path already holds the in-process app's database
    # (the autouse clock fixture builds that app), which must not be this server's.
    with start_server(tmp_path / "served") as server:
        event = server.create_event(registration="off")
        started = server.api("POST", f"/api/events/{event.id}/start")
        assert started.status_code == 200, started.text
        page = f"{server.http_url}/events/{event.id}/webcast"
        beacon = f"{server.http_url}/api/events/{event.id}/webcast/beacon"
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(transport=transport, timeout=10) as stranger:
            began = time.monotonic()
            ids = []
            first_heard = 0.0
            codes = Counter()
            for _ in range(100):
                stranger.cookies.clear()
                assert f"cb_wc_{event.id}" not in stranger.get(page).headers.get("set-cookie", "")
                answer = stranger.post(beacon, json={"mode": "live"})
                codes[answer.status_code] += 1
                if answer.status_code == 204:
                    ids.append(stranger.cookies[f"cb_wc_{event.id}"])
                    first_heard = first_heard or time.monotonic()
            spent = time.monotonic() - began
            bound = BROWSER_IDS_PER_ADDRESS.burst + spent / BROWSER_IDS_PER_ADDRESS.every + 1
            print(f"\n100 fresh clients from one address in {spent:.1f} s: {dict(codes)}")
            assert set(codes) == {204, 429} and len(ids) <= bound, (codes, spent)
            # None has listened yet: no listener anywhere.
            assert (
                server.api("GET", f"/api/events/{event.id}/live").json()["listeners_by_channel"][
                    "web"
                ]
                == 0
            )
            assert "web" not in server.api("GET", f"/api/events/{event.id}/attendance.csv").text
            report = server.api("GET", f"/api/events/{event.id}/report.csv").text
            live_row = next(r for r in csv.reader(io.StringIO(report)) if r[4] == "live listeners")
            assert live_row[6] == "0", report
            # One of them listens: a later beacon credits it time, and it counts.
            stranger.cookies.clear()
            stranger.cookies.set(f"cb_wc_{event.id}", ids[0])
            time.sleep(MIN_BEACON_GAP + 0.2)
            started = time.monotonic()
            codes = Counter(
                stranger.post(beacon, json={"mode": "live"}).status_code for _ in range(200)
            )
            elapsed = time.monotonic() - started
            # One id: one listener, and one beacon counted per MIN_BEACON_GAP at most.
            assert set(codes) == {204, 429}
            assert codes[204] <= 1 + elapsed / MIN_BEACON_GAP, (codes, elapsed)
            replay = stranger.post(beacon, json={"mode": "replay"})
            assert replay.status_code == 409  # no replay while the call is live
            for path in (
                "/api/events/99999999999999999999/webcast",
                "/events/99999999999999999999/webcast",
                "/webcast/99999999999999999999/live/live.m3u8",
                "/api/events/99999999999999999999/webcast/beacon",
            ):
                method = "POST" if path.endswith("beacon") else "GET"
                response = stranger.request(method, server.http_url + path, json={"mode": "live"})
                assert response.status_code == 404, (path, response.status_code)
        live = server.api("GET", f"/api/events/{event.id}/live").json()
        assert live["listeners_by_channel"]["web"] == 1
        (listener,) = Audience(server.database).listeners(event.id)
        # Credited no more than the time since its id's first beacon.
        assert listener.live_seconds <= time.monotonic() - first_heard + 1
        assert "Traceback" not in server.log()


def _stored_seconds(database: Database, event_id: int) -> list[tuple[int, int]]:
    """Live and replay seconds as the database holds them, read without any Audience."""
    with database.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT live_seconds, replay_seconds FROM webcast_listener WHERE event_id = :event"
            ),
            {"event": event_id},
        ).all()
    return [(row[0], row[1]) for row in rows]


def test_the_app_writes_the_beacons_it_holds_when_it_stops(
    app: FastAPI, sqlite_database: Database
) -> None:
    with TestClient(app) as client:
        record = make_event(client, title="Q3", state=EventState.LIVE, registration="off")
        client.get(f"/events/{record.id}/webcast")
        for seconds in (0, 15, 30):
            _at(app, seconds)
            assert _beacon(client, record.id) == 204
        # Held in memory: the flusher writes every FLUSH_INTERVAL s, this test is quicker.
        assert _stored_seconds(sqlite_database, record.id) in ([(0, 0)], [(15, 0)], [(30, 0)])
    assert _stored_seconds(sqlite_database, record.id) == [(30, 0)]  # the lifespan's last flush


def test_the_beacon_route_keeps_its_contract(client: TestClient, app: FastAPI) -> None:
    record = make_event(client, title="Q3", state=EventState.LIVE, registration="off")
    client.get(f"/events/{record.id}/webcast")
    url = f"/api/events/{record.id}/webcast/beacon"
    huge = client.post(url, content=b'{"mode": "live", "pad": "' + b"x" * 5000 + b'"}')
    assert huge.status_code == 422 and huge.json()["detail"][0]["loc"] == ["body"]
    assert client.post(url, content=b"not json").status_code == 422
    missing = client.post(url, json={})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "mode"]
    # An id too long for the fast path reaches the documented route: the same answer.
    far = client.post(f"/api/events/{'9' * 30}/webcast/beacon", json={"mode": "live"})
    assert far.status_code == 404
    assert client.post(url, json={"mode": "live"}).headers["x-content-type-options"] == "nosniff"
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/events/{event_id}/webcast/beacon"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["properties"]["mode"]
    _at(app, 15)
    assert _beacon(client, record.id) == 204
    assert audience(client).listeners(record.id)[0].first_heard_at == TODAY


def test_a_real_server_writes_beacons_in_batches_and_on_stop(tmp_path: Path) -> None:
    """`callbridge serve`: counted time reaches the database within a flush, and on SIGTERM."""
    with start_server(tmp_path / "served") as server:
        event = server.create_event(registration="off")
        assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
        beacon = f"{server.http_url}/api/events/{event.id}/webcast/beacon"
        with httpx.Client(timeout=10) as browser:
            browser.get(f"{server.http_url}/events/{event.id}/webcast")
            assert browser.post(beacon, json={"mode": "live"}).status_code == 204
            time.sleep(MIN_BEACON_GAP + 0.6)
            assert browser.post(beacon, json={"mode": "live"}).status_code == 204
            second = time.monotonic()
            # No reader asks: the flusher alone writes it, within FLUSH_INTERVAL.
            deadline = time.monotonic() + FLUSH_INTERVAL + 10
            while not (stored := _stored_seconds(server.database, event.id)) or not stored[0][0]:
                assert time.monotonic() < deadline, stored
                time.sleep(0.2)
            [(first, _)] = stored
            assert 2 <= first <= 5, stored  # the gap of 2.6 s, rounded (a loaded machine adds)
            time.sleep(MIN_BEACON_GAP + 0.6)
            assert browser.post(beacon, json={"mode": "live"}).status_code == 204
            gap = time.monotonic() - second  # the wait for the flush is in this gap too
        server.process.terminate()  # at once: only the shutdown's flush can write it
        server.process.wait(timeout=30)
        [(seconds, _)] = _stored_seconds(server.database, event.id)
        assert abs(seconds - (first + gap)) <= 1.5, (seconds, first, gap)
        assert "Traceback" not in server.log()
