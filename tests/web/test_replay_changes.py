"""Changing the replay after the call through the API and the console; every page follows.

The clock is fixed (``pages.clock``) so the replay's extended days and the
day after them can be visited; the replay's files are laid on disk as the
media plane leaves them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from callbridge.events.schema import EventRecord, EventState
from callbridge.store import layout
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.web import pages
from callbridge.web.media import REPLAY_DIR, REPLAY_PLAYLIST, REPLAY_READY
from tests.web.conftest import OPERATOR, PASSWORD
from tests.web.test_pages import make_event

# The example call starts November 5, 2026, 4:30 p.m. in New York; it ends at 5:40 p.m.
ENDED_AT = datetime(2026, 11, 5, 22, 40, tzinfo=UTC)


def _at(app: FastAPI, moment: datetime) -> None:
    app.dependency_overrides[pages.clock] = lambda: moment


@pytest.fixture(autouse=True)
def fixed_clock(app: FastAPI) -> Iterator[None]:
    _at(app, datetime(2026, 11, 6, 15, 0, tzinfo=UTC))
    yield
    app.dependency_overrides.pop(pages.clock, None)


def _ended_with_replay(client: TestClient) -> EventRecord:
    record = make_event(
        client, title="Q3", state=EventState.ENDED, registration="off", replay_until="2026-11-12"
    )
    app = client.app
    CallLog(app.state.database).append(  # type: ignore[attr-defined]
        [LogEntry(LogKind.END, ENDED_AT, record.id, actor="operator")]
    )
    data_dir = app.state.webcast_media.data_dir  # type: ignore[attr-defined]
    directory = layout.recording_dir(data_dir, record.id, "20261105T213000Z")
    (directory / REPLAY_DIR).mkdir(parents=True)
    (directory / REPLAY_DIR / REPLAY_PLAYLIST).write_text("#EXTM3U\n#EXT-X-ENDLIST\n")
    (directory / REPLAY_DIR / REPLAY_READY).write_text("")
    return record


def _forget_cached_events(app: FastAPI) -> None:
    # The media routes keep an event two seconds; the test moves faster than that.
    for name in ("media_events", "beacon_events"):
        if hasattr(app.state, name):
            delattr(app.state, name)


def test_the_api_extends_an_ended_events_replay_and_everything_follows(
    client: TestClient, app: FastAPI, auth: dict[str, str]
) -> None:
    record = _ended_with_replay(client)
    playlist = f"/webcast/{record.id}/replay/{REPLAY_PLAYLIST}"
    on_the_20th = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    _at(app, on_the_20th)
    assert client.get(playlist).status_code == 410  # the announced window closed on the 12th

    changed = client.patch(
        f"/api/events/{record.id}", json={"replay_until": "2026-11-30"}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["replay_until"] == "2026-11-30"
    _forget_cached_events(app)
    served = client.get(playlist)
    assert served.status_code == 200
    # The cache tier keeps it no later than the new window's end (midnight in New York).
    assert served.headers["surrogate-control"] == "max-age=3600"
    status = client.get(f"/api/events/{record.id}/webcast").json()
    assert (status["replay"], status["replay_until"]) == ("ready", "2026-11-30")
    events = client.get("/events").text
    assert "Replay available through Monday, November 30, 2026" in events
    release = client.get(f"/api/events/{record.id}/announcement.txt").text
    assert "through November 30, 2026" in " ".join(release.split())
    assert "November 12" not in " ".join(release.split())

    # An hour before the new window closes, the tier may keep the answer an hour at most.
    _at(app, datetime(2026, 12, 1, 4, 30, tzinfo=UTC))
    assert client.get(playlist).headers["surrogate-control"] == "max-age=1800"
    _at(app, datetime(2026, 12, 1, 5, 0, tzinfo=UTC))
    assert client.get(playlist).status_code == 410
    assert client.get(f"/api/events/{record.id}/webcast").json()["replay"] == "expired"
    assert "Replay expired" in client.get("/events").text

    (entry,) = [
        e
        for e in client.get(f"/api/events/{record.id}/audit", headers=auth).json()
        if e["kind"] == "replay_changed"
    ]
    assert entry["actor"] == OPERATOR
    assert entry["detail"] == {"from": "2026-11-12", "to": "2026-11-30"}


def test_bad_changes_after_the_call_name_the_field(
    client: TestClient, auth: dict[str, str]
) -> None:
    record = _ended_with_replay(client)
    url = f"/api/events/{record.id}"
    early = client.patch(url, json={"replay_until": "2026-11-04"}, headers=auth)
    assert early.status_code == 422
    assert early.json()["detail"] == [
        {
            "loc": ["body", "replay_until"],
            "msg": "the replay cannot end before the call ended (2026-11-05)",
            "type": "StoreError",
        }
    ]
    gone = client.patch(url, json={"replay_until": None}, headers=auth)
    assert gone.status_code == 422 and gone.json()["detail"][0]["loc"] == ["body", "replay_until"]
    not_a_date = client.patch(url, json={"replay_until": "soon"}, headers=auth)
    assert not_a_date.status_code == 422 and "replay_until" in not_a_date.text
    other = client.patch(url, json={"title": "Renamed", "replay_until": "2026-11-20"}, headers=auth)
    assert other.status_code == 409 and "only replay_until changes" in other.text
    assert client.get(url, headers=auth).json()["replay_until"] == "2026-11-12"
    assert client.patch(url, json={"replay_until": "2026-11-20"}).status_code == 401


def test_archiving_through_the_api(client: TestClient, auth: dict[str, str]) -> None:
    record = _ended_with_replay(client)
    archived = client.post(f"/api/events/{record.id}/archive", headers=auth)
    assert archived.status_code == 200 and archived.json()["state"] == "archived"
    again = client.post(f"/api/events/{record.id}/archive", headers=auth)
    assert again.status_code == 409
    scheduled = make_event(client, title="Q4", codes=("1112223", "3332221", "5556667"))
    assert client.post(f"/api/events/{scheduled.id}/archive", headers=auth).status_code == 409
    kinds = [e["kind"] for e in client.get(f"/api/events/{record.id}/audit", headers=auth).json()]
    assert kinds[-1] == "archive"


def _console_csrf(client: TestClient) -> str:
    page = client.get("/console").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_the_console_changes_the_replay_and_archives(client: TestClient) -> None:
    record = _ended_with_replay(client)
    login = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert token
    client.post(
        "/login",
        data={"name": OPERATOR, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    console = client.get("/console").text
    assert f'id="replay-until-{record.id}"' in console and 'value="2026-11-12"' in console
    csrf = _console_csrf(client)
    moved = client.post(
        f"/console/events/{record.id}/replay",
        data={"replay_until": "2026-11-19", "csrf_token": csrf},
    )
    assert "now available through Thursday, November 19, 2026" in moved.text
    refused = client.post(
        f"/console/events/{record.id}/replay",
        data={"replay_until": "2026-11-01", "csrf_token": csrf},
    )
    assert (
        "was not changed: replay_until: the replay cannot end before the call ended (2026-11-05)"
        in refused.text
    )
    forged = client.post(
        f"/console/events/{record.id}/replay",
        data={"replay_until": "2026-12-31", "csrf_token": "forged"},
    )
    assert forged.status_code == 403
    archived = client.post(f"/console/events/{record.id}/archive", data={"csrf_token": csrf})
    assert f"Archived event {record.id}." in archived.text
    assert pages.EventState.ARCHIVED.value in archived.text
    log = CallLog(client.app.state.database).entries(record.id)  # type: ignore[attr-defined]
    assert [(e.kind, e.actor) for e in log if e.kind is not LogKind.END] == [
        (LogKind.REPLAY_CHANGED, OPERATOR),
        (LogKind.ARCHIVE, OPERATOR),
    ]
    assert timedelta(0) <= log[-1].at - log[-2].at
