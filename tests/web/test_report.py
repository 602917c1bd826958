"""The engagement report's CSV and page through the in-process client."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from callbridge.events.schema import EventState
from callbridge.store.audience import Audience, ListenMode
from callbridge.store.calllog import CallLog, LogEntry, LogKind
from callbridge.web.downloads import TRANSCRIPT_KINDS, downloads
from callbridge.web.transcript_published import KINDS
from tests.web.conftest import OPERATOR, PASSWORD
from tests.web.test_pages import make_event

T0 = datetime(2026, 11, 5, 21, 30, tzinfo=UTC)


def _held(client: TestClient, title: str) -> int:
    record = make_event(client, title=title, state=EventState.ENDED)
    app = client.app
    CallLog(app.state.database).append(  # type: ignore[attr-defined]
        [
            LogEntry(LogKind.JOIN, T0, record.id, "p1", role="listener"),
            LogEntry(LogKind.QUEUE, T0 + timedelta(seconds=30), record.id, "p1", actor="keypad"),
            LogEntry(LogKind.LEAVE, T0 + timedelta(seconds=90), record.id, "p1"),
            LogEntry(LogKind.END, T0 + timedelta(minutes=60), record.id, actor="operator"),
        ]
    )
    people: Audience = app.state.audience  # type: ignore[attr-defined]
    token, _ = people.register(record.id, name="Ada", firm="Acme", email="ada@acme.example", now=T0)
    for seconds in (0, 15, 30, 45):
        people.heard(record.id, token, ListenMode.LIVE, T0 + timedelta(seconds=seconds))
    return record.id


def test_the_csv_is_quoted_and_no_cell_is_a_formula(
    client: TestClient, auth: dict[str, str]
) -> None:
    title = '=HYPERLINK("http://evil.example","Q3, "final"")'
    event_id = _held(client, title)
    response = client.get(f"/api/events/{event_id}/report.csv", headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "engagement.csv" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        "event_id",
        "ticker",
        "title",
        "starts_at",
        "figure",
        "phone",
        "web",
        "total",
    ]
    figures = {row[4]: row[5:] for row in rows[1:]}
    assert figures["registrations"] == ["", "1", "1"]
    assert figures["live listeners"] == ["1", "1", "2"]
    assert figures["live minutes heard"] == ["1.5", "0.8", "2.2"]
    assert figures["replay listeners"] == ["0", "0", "0"]
    assert figures["listeners live and on the replay"] == ["0", "0", "0"]
    assert figures["questions asked"] == ["1", "0", "1"]  # *1 by phone, none written
    # The title comes back whole, as text: the quote, the comma and the inner quotes survive.
    assert {row[2] for row in rows[1:]} == {"'" + title}
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell
    assert client.get(f"/api/events/{event_id}/report.csv").status_code == 401
    assert client.get("/api/events/999/report.csv", headers=auth).status_code == 404


def test_the_report_page_draws_its_chart_on_the_server(client: TestClient) -> None:
    event_id = _held(client, "Q3 <script>alert(1)</script>")
    assert (
        client.get(f"/console/events/{event_id}/report", follow_redirects=False).status_code == 303
    )
    login = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert token
    client.post(
        "/login", data={"name": OPERATOR, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    page = client.get(f"/console/events/{event_id}/report").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    bars = [
        (label, int(width))
        for width, label in re.findall(
            r'<rect class="bar" [^>]*width="(\d+)"[^>]*data-label="([^"]+)"', page
        )
    ]
    # Listeners: one by phone, one on the web, none on the replay; minutes: 1.5 and 0.75.
    assert [width for _, width in bars] == [400, 400, 0, 0, 400, 200, 0, 0]
    assert bars[0][0] == "Live, by phone" and bars[5][0] == "Live, on the web"
    assert 'role="img"' in page and "Listeners by channel, live and replay" in page
    assert "written questions are those typed on the webcast page" in page
    assert f'href="/api/events/{event_id}/report.csv"' in page
    assert "Report" in client.get("/console").text


def test_the_console_links_every_export(client: TestClient) -> None:
    """The event's page and the report's list the CSVs and the audit trail, each answering."""
    event_id = _held(client, "Q3")
    login = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login)
    assert token
    client.post(
        "/login", data={"name": OPERATOR, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    api = f"/api/events/{event_id}"
    csvs = [f"{api}/{name}.csv" for name in ("report", "attendance", "questions", "audit")]
    for page_path in (f"/console/events/{event_id}", f"/console/events/{event_id}/report"):
        page = client.get(page_path).text
        hrefs = re.findall(r'<section class="card exports".*?</section>', page, re.S)
        assert hrefs, page_path
        links = re.findall(r'href="([^"]+)"', hrefs[0])
        assert set(csvs) <= set(links), (page_path, links)
        # No transcript was made: its downloads are not offered (they would answer 404).
        assert not any("/transcript." in link for link in links)
        assert "listed here once it is done" in hrefs[0]
    assert (
        f'href="/console/events/{event_id}/report"'
        in client.get(f"/console/events/{event_id}").text
    )
    for path in csvs:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/csv")


def test_the_transcripts_downloads_are_listed_once_it_is_done() -> None:
    done = [d.href for d in downloads(7, transcript_ready=True)]
    assert [h for h in done if "/transcript." in h] == [
        "/webcast/7/transcript.txt",
        "/webcast/7/transcript.html",
        "/webcast/7/transcript.docx",
        "/webcast/7/transcript.pdf",
    ]
    assert "/console/events/7/transcript" in done  # the editor, once there is something to edit
    assert "/console/events/7/transcript" not in [
        d.href for d in downloads(7, transcript_ready=False)
    ]
    assert set(KINDS) == set(TRANSCRIPT_KINDS)  # the media routes serve each kind
    assert "/console/7/report" not in done and "/console/events/7/report" in done
    assert "/console/events/7/report" not in [
        d.href for d in downloads(7, transcript_ready=False, report_page=False)
    ]
