"""The JSON API: create, read, change, delete; who may; what bad input gets."""

from __future__ import annotations

import copy
import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from callbridge.store.db import Database
from callbridge.store.models import EventRow
from callbridge.store.users import UserStore
from callbridge.web.app import create_app
from tests.conftest import example_data
from tests.web.conftest import OPERATOR, PASSWORD, make_settings


def body() -> dict[str, Any]:
    """The example event file as a JSON body."""
    data: dict[str, Any] = json.loads(json.dumps(example_data(), default=str))
    return data


def _rows(client: TestClient) -> int:
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        return int(session.scalar(select(func.count()).select_from(EventRow)) or 0)


def test_create_get_list(client: TestClient, auth: dict[str, str]) -> None:
    created = client.post("/api/events", json=body(), headers=auth)
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["passcode"] == "8024721"
    assert event["starts_at"].startswith("2026-11-05T21:30:00")
    assert event["dial_in"][0] == {"label": "U.S./Canada", "number": "+18665550199"}
    fetched = client.get(f"/api/events/{event['id']}", headers=auth)
    assert fetched.json() == event
    listing = client.get("/api/events", headers=auth).json()
    assert [e["id"] for e in listing] == [event["id"]]


def test_generated_passcodes(client: TestClient, auth: dict[str, str]) -> None:
    data = body()
    for key in ("passcode", "speaker_passcode", "replay_passcode"):
        del data["event"][key]
    event = client.post("/api/events", json=data, headers=auth).json()
    assert len(event["passcode"]) == 7 and event["passcode"].isdigit()
    assert event["speaker_passcode"] != event["passcode"]


def test_the_public_may_not_write_or_read_passcodes(
    client: TestClient, auth: dict[str, str]
) -> None:
    assert client.post("/api/events", json=body()).status_code == 401
    event = client.post("/api/events", json=body(), headers=auth).json()
    assert client.get(f"/api/events/{event['id']}").status_code == 401
    assert client.delete(f"/api/events/{event['id']}").status_code == 401
    bad = {"Authorization": "Bearer cb_not-a-token"}
    assert client.get("/api/events", headers=bad).status_code == 401


def test_session_requests_need_the_csrf_header(client: TestClient) -> None:
    login_page = client.get("/login")
    token = login_page.text.split('name="csrf_token" value="')[1].split('"')[0]
    logged_in = client.post(
        "/login",
        data={"name": OPERATOR, "password": PASSWORD, "csrf_token": token, "next": "/console"},
        follow_redirects=False,
    )
    assert logged_in.status_code == 303
    assert client.get("/api/events").status_code == 200
    refused = client.post("/api/events", json=body())
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["detail"]


def test_patch_and_delete(client: TestClient, auth: dict[str, str]) -> None:
    event = client.post("/api/events", json=body(), headers=auth).json()
    patched = client.patch(
        f"/api/events/{event['id']}",
        json={"starts_at": "2026-11-06T08:00:00", "timezone": "Europe/London"},
        headers=auth,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["starts_at"].startswith("2026-11-06T08:00:00")
    assert client.delete(f"/api/events/{event['id']}", headers=auth).status_code == 204
    assert client.get(f"/api/events/{event['id']}", headers=auth).status_code == 404


def test_live_events_cannot_be_deleted(client: TestClient, auth: dict[str, str]) -> None:
    from callbridge.events.schema import EventState

    event = client.post("/api/events", json=body(), headers=auth).json()
    client.app.state.events.set_state(event["id"], EventState.LIVE)  # type: ignore[attr-defined]
    response = client.delete(f"/api/events/{event['id']}", headers=auth)
    assert response.status_code == 409
    assert "live" in response.json()["detail"][0]["msg"]


def _without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


def _with(data: dict[str, Any], value: Any, *path: str | int) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    target: Any = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


BAD_INPUTS = [
    pytest.param(
        _without(body(), "event", "title"),
        ["body", "event", "title"],
        "required",
        id="missing-field",
    ),
    pytest.param(
        _with(body(), "America/Gotham", "event", "timezone"),
        ["body", "event", "timezone"],
        "IANA",
        id="unknown-zone",
    ),
    pytest.param(
        _with(body(), "+1 555-123-4567", "event", "dial_in", 0, "number"),
        ["body", "event", "dial_in", 0, "number"],
        "not a valid phone number",
        id="invalid-phone",
    ),
    pytest.param(
        _with(body(), "2026-10-01", "event", "replay_until"),
        ["body", "event", "replay_until"],
        "cannot end before the call",
        id="replay-before-call",
    ),
    pytest.param(
        _with(body(), "80247a1", "event", "passcode"),
        ["body", "event", "passcode"],
        "digits",
        id="passcode-not-digits",
    ),
    pytest.param(
        _with(body(), "2026-03-08T02:30:00", "event", "starts_at"),
        ["body", "event", "starts_at"],
        "does not exist",
        id="time-skipped-by-dst",
    ),
    pytest.param(
        _with(body(), "x", "event", "pascode"),
        ["body", "event", "pascode"],
        "not permitted",
        id="unknown-key",
    ),
]


@pytest.mark.parametrize(("data", "loc", "reason"), BAD_INPUTS)
def test_bad_input_names_the_field_and_writes_nothing(
    client: TestClient, auth: dict[str, str], data: dict[str, Any], loc: list[Any], reason: str
) -> None:
    response = client.post("/api/events", json=data, headers=auth)
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert any(p["loc"] == loc and reason in p["msg"] for p in problems), problems
    assert _rows(client) == 0


def test_taken_passcode_is_a_conflict_naming_the_field(
    client: TestClient, auth: dict[str, str]
) -> None:
    assert client.post("/api/events", json=body(), headers=auth).status_code == 201
    again = client.post("/api/events", json=body(), headers=auth)
    assert again.status_code == 409
    assert again.json()["detail"][0]["loc"] == ["body", "event", "passcode"]
    assert _rows(client) == 1


def test_openapi_describes_the_event_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/api/events", "/api/events/{event_id}"} <= set(spec["paths"])
    assert set(spec["paths"]["/api/events/{event_id}"]) >= {"get", "patch", "delete"}


def test_example_dates_parse(client: TestClient) -> None:
    # The JSON body carries dates as ISO strings; the TOML file as native values.
    assert body()["event"]["starts_at"] == str(datetime(2026, 11, 5, 16, 30))
    assert body()["event"]["replay_until"] == str(date(2026, 11, 12))


@pytest.mark.parametrize(
    ("fmt", "media_type", "needle"),
    [
        ("txt", "text/plain", "Announces Conference Call"),
        ("html", "text/html", "<h1"),
        ("md", "text/markdown", "# Northwind"),
        ("ics", "text/calendar", "BEGIN:VCALENDAR"),
    ],
)
def test_announcement_is_public_in_every_format(
    client: TestClient, auth: dict[str, str], fmt: str, media_type: str, needle: str
) -> None:
    event = client.post("/api/events", json=body(), headers=auth).json()
    response = client.get(f"/api/events/{event['id']}/announcement.{fmt}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert needle in response.text
    assert "8024721" in response.text
    # The speaker passcode stays secret (it also ends a phone number: look for it alone).
    assert not re.search(r"(?<!\d)5550123(?!\d)", response.text)


def test_announcement_ics_has_the_utc_start(client: TestClient, auth: dict[str, str]) -> None:
    from icalendar import Calendar

    event = client.post("/api/events", json=body(), headers=auth).json()
    response = client.get(f"/api/events/{event['id']}/announcement.ics")
    assert "attachment" in response.headers["content-disposition"]
    vevent = next(iter(Calendar.from_ical(response.content).walk("VEVENT")))
    start = vevent.decoded("DTSTART")
    assert start.isoformat() == "2026-11-05T21:30:00+00:00"


def test_announcement_of_a_missing_event_is_404(client: TestClient) -> None:
    assert client.get("/api/events/999/announcement.txt").status_code == 404
    assert client.get("/api/events/1/announcement.pdf").status_code == 422


BEYOND_64_BITS = "99999999999999999999"


@pytest.mark.parametrize(
    "path",
    [
        f"/api/events/{BEYOND_64_BITS}",
        f"/api/events/{BEYOND_64_BITS}/announcement.txt",
        f"/api/events/{BEYOND_64_BITS}/attendance.csv",
        f"/api/events/{BEYOND_64_BITS}/webcast",
        f"/events/{BEYOND_64_BITS}/webcast",
        f"/events/{BEYOND_64_BITS}/announcement",
        f"/console/events/{BEYOND_64_BITS}",
        f"/webcast/{BEYOND_64_BITS}/live/live.m3u8",
        f"/webcast/{BEYOND_64_BITS}/replay/index.m3u8",
        f"/webcast/{BEYOND_64_BITS}/replay.m4a",
        f"/webcast/{BEYOND_64_BITS}/captions.vtt",
        "/api/events/9223372036854775808",  # 2**63: one past what the databases store
        "/api/events/0",
        "/api/events/-1",
    ],
)
def test_ids_beyond_64_bits_are_not_found(
    client: TestClient, auth: dict[str, str], path: str
) -> None:
    """The in-process client re-raises any server error, so a 500 fails here loudly."""
    response = client.get(path, headers=auth, follow_redirects=False)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "POST"])
def test_changes_to_an_id_beyond_64_bits_are_not_found(
    client: TestClient, auth: dict[str, str], method: str
) -> None:
    path = {
        "PATCH": f"/api/events/{BEYOND_64_BITS}",
        "DELETE": f"/api/events/{BEYOND_64_BITS}",
        "POST": f"/api/events/{BEYOND_64_BITS}/webcast/beacon",
    }[method]
    payload = {"PATCH": {"title": "x"}, "DELETE": None, "POST": {"mode": "live"}}[method]
    response = client.request(method, path, json=payload, headers=auth)
    assert response.status_code == 404, response.text


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("starts_at", "9999-12-31T23:00:00"),
        ("starts_at", "0001-01-01T00:00:00"),
        ("replay_until", "9999-12-31"),
        ("announced_on", "9999-12-31"),
    ],
)
def test_dates_out_of_the_calendar_are_a_field_error(
    client: TestClient, auth: dict[str, str], key: str, value: str
) -> None:
    data = body()
    data["event"][key] = value
    response = client.post("/api/events", json=data, headers=auth)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "event", key]
    assert "between the years" in problem["msg"]
    assert _rows(client) == 0


def test_a_change_to_year_9999_is_a_field_error(client: TestClient, auth: dict[str, str]) -> None:
    event = client.post("/api/events", json=body(), headers=auth).json()
    for patch in ({"starts_at": "9999-12-31T23:00:00"}, {"replay_until": "9999-12-31"}):
        response = client.patch(f"/api/events/{event['id']}", json=patch, headers=auth)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"][-1] == next(iter(patch))
    assert client.get(f"/api/events/{event['id']}", headers=auth).json() == event


ONE_LINE_FIELDS = [
    ("company", "name"),
    ("company", "exchange"),
    ("company", "city"),
    ("company", "ticker"),
    ("event", "title"),
    ("event", "period"),
    ("contacts", 0, "name"),
    ("contacts", 0, "title"),
    ("contacts", 0, "organization"),
    ("contacts", 0, "group"),
    ("event", "dial_in", 0, "label"),
]


@pytest.mark.parametrize("bad", ["\r\n", "\n", "\r", "\x00", "\x1b", "\u2028"], ids=repr)
def test_line_breaks_and_control_characters_are_refused_in_one_line_fields(
    client: TestClient, auth: dict[str, str], bad: str
) -> None:
    for path in ONE_LINE_FIELDS:
        data = body()
        holder: Any = data
        for part in path[:-1]:
            holder = holder[part]
        holder[path[-1]] = f"Q3{bad}BCC: everyone"
        response = client.post("/api/events", json=data, headers=auth)
        assert response.status_code == 422, (path, response.text)
        problems = response.json()["detail"]
        assert any(p["loc"] == ["body", *path] for p in problems), (path, problems)
    assert _rows(client) == 0


def test_a_title_changed_to_two_lines_is_refused(client: TestClient, auth: dict[str, str]) -> None:
    event = client.post("/api/events", json=body(), headers=auth).json()
    response = client.patch(
        f"/api/events/{event['id']}", json={"title": "Q3\r\nX-Injected: 1"}, headers=auth
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "title"
    assert "one line" in response.json()["detail"][0]["msg"]


def test_the_announcement_gives_the_hosted_webcast_page(
    tmp_path: Path, sqlite_database: Database
) -> None:
    """serve --public-url: the release, the invite and the page print our own webcast page."""
    UserStore(sqlite_database).add(OPERATOR, PASSWORD)
    settings = make_settings(tmp_path, sqlite_database, public_url="https://ir.northwind.example")
    with TestClient(create_app(settings, sqlite_database)) as client:
        token = UserStore(sqlite_database).issue_token(OPERATOR)
        spec = body()
        spec["company"]["website"] = None
        event = client.post(
            "/api/events", json=spec, headers={"Authorization": f"Bearer {token}"}
        ).json()
        page = f"https://ir.northwind.example/events/{event['id']}/webcast"
        for fmt in ("txt", "html", "md", "ics"):
            answer = client.get(f"/api/events/{event['id']}/announcement.{fmt}")
            assert answer.status_code == 200
            assert page in answer.text.replace("\r\n ", ""), fmt  # .ics folds long lines
        assert f'href="{page}"' in client.get(f"/events/{event['id']}/announcement").text
        assert "+1 913-555-0123" in client.get(f"/api/events/{event['id']}/announcement.txt").text
