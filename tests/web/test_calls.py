"""Call endpoints that read the call log; the live ones are exercised with real callers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from callbridge.store.audience import Audience, ListenMode
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from tests.web.test_api import body

T0 = datetime(2026, 11, 5, 21, 30, tzinfo=UTC)


def test_attendance_csv(client: TestClient, auth: dict[str, str]) -> None:
    event = client.post("/api/events", json=body(), headers=auth).json()
    log: CallLog = client.app.state.call_log  # type: ignore[attr-defined]
    log.append(
        [
            LogEntry(
                LogKind.JOIN, T0, event["id"], "p1", caller_id="+12125551234", role="listener"
            ),
            LogEntry(
                LogKind.LEAVE,
                T0 + timedelta(seconds=90),
                event["id"],
                "p1",
                detail={"reason": "bye"},
            ),
        ]
    )
    people: Audience = client.app.state.audience  # type: ignore[attr-defined]
    token, _ = people.register(
        event["id"], name="Ada Analyst", firm="Acme", email="ada@acme.example", now=T0
    )
    people.heard(event["id"], token, ListenMode.LIVE, T0 + timedelta(seconds=10))
    people.heard(event["id"], token, ListenMode.LIVE, T0 + timedelta(seconds=25))
    people.register(event["id"], name="Bo", firm=None, email="bo@x.example", now=T0)
    assert client.get(f"/api/events/{event['id']}/attendance.csv").status_code == 401
    response = client.get(f"/api/events/{event['id']}/attendance.csv", headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    phone = {"name": "", "firm": "", "email": ""}
    assert rows[0] == {
        "participant": "p1",
        "channel": "phone",
        # A leading "+" could start a formula: quoted, as OWASP advises for every such cell.
        "caller_id": "'+12125551234",
        **phone,
        "role": "listener",
        "joined_at": "2026-11-05T21:30:00+00:00",
        "left_at": "2026-11-05T21:31:30+00:00",
        "seconds": "90",
        "reason": "bye",
    }
    web = rows[1:]
    assert [(r["channel"], r["name"], r["firm"], r["seconds"]) for r in web] == [
        ("web", "Ada Analyst", "Acme", "15"),
        ("web", "Bo", "", "0"),
    ]
    assert web[0]["joined_at"] == "2026-11-05T21:30:10+00:00"
    assert web[1]["reason"] == "registered, did not listen"
    audit = client.get(f"/api/events/{event['id']}/audit", headers=auth).json()
    assert [e["kind"] for e in audit] == ["join", "leave"]


def test_live_controls_say_when_no_bridge_runs(client: TestClient, auth: dict[str, str]) -> None:
    event = client.post("/api/events", json=body(), headers=auth).json()
    response = client.get(f"/api/events/{event['id']}/participants", headers=auth)
    assert response.status_code == 503
    assert "bridge" in response.json()["detail"]


def test_attendance_csv_cells_cannot_be_formulas(client: TestClient, auth: dict[str, str]) -> None:
    """A registrant who names themselves '=HYPERLINK(...)' gets a quoted cell, not a formula."""
    event = client.post("/api/events", json=body(), headers=auth).json()
    people: Audience = client.app.state.audience  # type: ignore[attr-defined]
    hostile = {
        '=HYPERLINK("http://evil.example","x")': "+cmd|' /C calc'!A0",
        "-2+3": "@SUM(A1:A9)",
        "\tTabbed": "\rReturned",
    }
    for name, firm in hostile.items():
        people.register(event["id"], name=name, firm=firm, email="x@y.example", now=T0)
    people.register(event["id"], name="Ada Analyst", firm="Acme", email="a@b.example", now=T0)
    response = client.get(f"/api/events/{event['id']}/attendance.csv", headers=auth)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    cells = [(row["name"], row["firm"]) for row in rows]
    assert cells == [("'" + name, "'" + firm) for name, firm in hostile.items()] + [
        ("Ada Analyst", "Acme")
    ]
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
