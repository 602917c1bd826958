"""Call endpoints that read the call log; the live ones are exercised with real callers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from callbridge.store.audience import Audience, ListenMode
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.store.questions import QuestionStore
from tests.web.test_api import body

T0 = datetime(2026, 11, 5, 21, 30, tzinfo=UTC)


def test_attendance_csv(client: TestClient, auth: dict[str, str]) -> None:
    event = client.post("/api/events", json=body(), headers=auth).json()
    log: CallLog = client.app.state.call_log  # type: ignore[attr-defined]
    at = [T0 + timedelta(seconds=s) for s in (0, 5, 90, 100, 4000, 4060)]
    log.append(
        [
            # What the phone sent (a display name) is the row's caller_id; the number the
            # trunk asserted is in the join's detail, and the moderator named the caller.
            LogEntry(
                LogKind.JOIN,
                at[0],
                event["id"],
                "p1",
                caller_id="Jane's iPhone",
                role="speaker",
                detail={"call_id": "c1", "dialled": "+18665550199", "number": "+12125551234"},
            ),
            LogEntry(
                LogKind.NAME,
                at[1],
                event["id"],
                "p1",
                caller_id="Jane's iPhone",
                actor="dana",
                detail={"name": "Jane Roe, Chief Financial Officer"},
            ),
            LogEntry(LogKind.LEAVE, at[2], event["id"], "p1", detail={"reason": "bye"}),
            # A caller nobody vouched for: no number, whatever their phone said.
            LogEntry(LogKind.JOIN, at[3], event["id"], "p2", caller_id="5551234", role="listener"),
            LogEntry(
                LogKind.JOIN,
                at[4],
                event["id"],
                "r1",
                caller_id="2125550000",
                role="replay",
                detail={"number": "2125550000"},
            ),
            LogEntry(LogKind.LEAVE, at[5], event["id"], "r1", detail={"reason": "bye"}),
        ]
    )
    people: Audience = client.app.state.audience  # type: ignore[attr-defined]
    token, _ = people.register(
        event["id"], name="Ada Analyst", firm="Acme", email="ada@acme.example", now=T0
    )
    people.heard(event["id"], token, ListenMode.LIVE, T0 + timedelta(seconds=10))
    people.heard(event["id"], token, ListenMode.LIVE, T0 + timedelta(seconds=25))
    # Ada stayed past the end and chose the replay: its seconds are kept apart.
    for seconds in (4000, 4015, 4035):
        people.heard(event["id"], token, ListenMode.REPLAY, T0 + timedelta(seconds=seconds))
    people.register(event["id"], name="Bo", firm=None, email="bo@x.example", now=T0)
    assert client.get(f"/api/events/{event['id']}/attendance.csv").status_code == 401
    response = client.get(f"/api/events/{event['id']}/attendance.csv", headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows[0] == {
        "participant": "p1",
        "channel": "phone",
        # A leading "+" could start a formula: quoted, as OWASP advises for every such cell.
        "caller_id": "'+12125551234",
        "caller_name": "Jane's iPhone",
        "name": "Jane Roe, Chief Financial Officer",
        "firm": "",
        "email": "",
        "role": "speaker",
        "joined_at": "2026-11-05T21:30:00+00:00",
        "left_at": "2026-11-05T21:31:30+00:00",
        "seconds": "90",
        "live_seconds": "90",
        "replay_seconds": "",
        "reason": "bye",
        "email_consent": "",  # a phone caller gave none
    }
    assert (rows[1]["caller_id"], rows[1]["caller_name"], rows[1]["name"]) == ("", "5551234", "")
    replay = rows[2]
    assert (replay["caller_id"], replay["role"]) == ("2125550000", "replay")
    assert (replay["seconds"], replay["live_seconds"], replay["replay_seconds"]) == ("60", "", "60")
    web = rows[3:]
    assert [
        (r["channel"], r["name"], r["firm"], r["seconds"], r["live_seconds"], r["replay_seconds"])
        for r in web
    ] == [
        ("web", "Ada Analyst", "Acme", "50", "15", "35"),
        ("web", "Bo", "", "0", "0", "0"),
    ]
    assert web[0]["joined_at"] == "2026-11-05T21:30:10+00:00"
    assert web[1]["reason"] == "registered, did not listen"
    audit = client.get(f"/api/events/{event['id']}/audit", headers=auth).json()
    assert [e["kind"] for e in audit] == ["join", "name", "leave", "join", "join", "leave"]
    trail = client.get(f"/api/events/{event['id']}/audit.csv", headers=auth)
    assert trail.status_code == 200 and trail.headers["content-type"].startswith("text/csv")
    assert "attachment" in trail.headers["content-disposition"]
    trail_rows = list(csv.DictReader(io.StringIO(trail.text)))
    assert [r["kind"] for r in trail_rows] == [e["kind"] for e in audit]
    assert trail_rows[1]["actor"] == "dana"
    assert '"name": "Jane Roe, Chief Financial Officer"' in trail_rows[1]["detail"]
    assert client.get(f"/api/events/{event['id']}/audit.csv").status_code == 401


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


def test_questions_csv_has_keypad_questions_beside_written_ones(
    client: TestClient, auth: dict[str, str]
) -> None:
    event = client.post("/api/events", json=body(), headers=auth).json()
    log: CallLog = client.app.state.call_log  # type: ignore[attr-defined]
    people: Audience = client.app.state.audience  # type: ignore[attr-defined]
    _, ada = people.register(event["id"], name="Ada", firm="Acme", email="a@b.example", now=T0)
    QuestionStore(log.database).ask(ada, "=1+1 and capex?", T0 + timedelta(seconds=30))

    def at(seconds: int) -> datetime:
        return T0 + timedelta(seconds=seconds)

    log.append(
        [
            LogEntry(
                LogKind.JOIN,
                at(0),
                event["id"],
                "p1",
                caller_id="Analyst Mobile",
                role="listener",
                detail={"number": "+442071234567"},
            ),
            LogEntry(LogKind.NAME, at(5), event["id"], "p1", detail={"name": "Tom Baker, Fjord"}),
            LogEntry(LogKind.QUEUE, at(20), event["id"], "p1", actor="keypad"),
            LogEntry(LogKind.LINE_OPEN, at(40), event["id"], "p1", role="speaker", actor="dana"),
            LogEntry(LogKind.LINE_CLOSE, at(95), event["id"], "p1", role="listener", actor="dana"),
        ]
    )
    path = f"/api/events/{event['id']}/questions.csv"
    assert client.get(path).status_code == 401
    response = client.get(path, headers=auth)
    assert (
        response.status_code == 200 and "questions.csv" in response.headers["content-disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["kind"], r["asked_at"]) for r in rows] == [
        ("keypad", "2026-11-05T21:30:20+00:00"),
        ("written", "2026-11-05T21:30:30+00:00"),
    ]
    keypad, written = rows
    assert keypad["caller_id"] == "'+442071234567" and keypad["name"] == "Tom Baker, Fjord"
    assert (keypad["line_opened_at"], keypad["line_closed_at"], keypad["outcome"]) == (
        "2026-11-05T21:30:40+00:00",
        "2026-11-05T21:31:35+00:00",
        "answered",
    )
    assert (written["name"], written["firm"], written["outcome"]) == ("Ada", "Acme", "waiting")
    assert written["question"] == "'=1+1 and capex?"
