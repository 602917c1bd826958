"""Registration to inbox through the web app: the sender runs in its event loop (``serve --smtp``).

A registration on the webcast page writes the confirmation to the outbox,
the app's sender submits it to a real SMTP server (STARTTLS, AUTH); the
unsubscribe link works without logging in; attendance.csv says what each
registrant agreed to.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from callbridge.events.schema import EventRecord
from callbridge.mail.compose import unsubscribe_token
from callbridge.store.db import Database
from callbridge.store.outbox import MailKind, MailSettings, Outbox, OutboxState
from callbridge.store.users import UserStore
from callbridge.web.app import create_app
from tests.mail.conftest import PUBLIC_URL
from tests.support.smtp import SmtpServer
from tests.support.wait import wait_until
from tests.web.conftest import make_settings


@pytest.fixture
def mail_app(
    tmp_path: Path, sqlite_database: Database, smtp_server: SmtpServer
) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path,
        sqlite_database,
        public_url=PUBLIC_URL,
        smtp_url=smtp_server.url,
        smtp_from="Northwind IR <ir@northwind.example>",
        smtp_ca_file=smtp_server.ca_file(),
    )
    app: FastAPI = create_app(settings, sqlite_database)
    with TestClient(app) as client:
        yield client


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def _register(client: TestClient, event: EventRecord, email: str, **extra: str) -> int:
    client.cookies.clear()  # another browser
    page = client.get(f"/events/{event.id}/webcast").text
    data = {"csrf_token": _csrf(page), "name": "Zoë Analyst", "firm": "Acme", "email": email}
    response = client.post(
        f"/events/{event.id}/webcast/register", data={**data, **extra}, follow_redirects=False
    )
    return response.status_code


def test_registration_to_inbox_unsubscribe_and_the_export(
    mail_app: TestClient, event: EventRecord, smtp_server: SmtpServer, sqlite_database: Database
) -> None:
    page = mail_app.get(f"/events/{event.id}/webcast").text
    assert 'name="follow_up"' in page and "a reminder before the call" in page
    assert _register(mail_app, event, "zoe@acme.example", follow_up="yes") == 303
    wait_until(lambda: smtp_server.received, 10, "the confirmation at the SMTP server")
    (got,) = smtp_server.received
    assert got.tls and got.authenticated and got.recipients == ["zoe@acme.example"]
    message = got.parsed()
    assert message["To"].addresses[0].display_name == "Zoë Analyst, Acme"
    plain = str(message.get_body(("plain",)))
    assert f"{PUBLIC_URL}/events/{event.id}/webcast" in plain
    # The personal PIN drawn as they registered (store.pins), in two groups of five.
    assert re.search(
        r"Your personal PIN: \d{5}\xa0\d{5} ", message.get_body(("plain",)).get_content()
    )
    assert [a.get_filename() for a in message.iter_attachments()] == ["NWBX-call.ics"]
    outbox = Outbox(sqlite_database)
    wait_until(lambda: [e.state for e in outbox.entries()] == [OutboxState.SENT], 10, "marked sent")
    (entry,) = outbox.entries()
    assert entry.kind is MailKind.CONFIRMATION and entry.message_id == message["Message-ID"]
    assert entry.listener_id is not None

    # Another registrant says no to follow-ups; a third's address is refused.
    assert _register(mail_app, event, "bo@acme.example") == 303
    assert _register(mail_app, event, "bo@acme") == 422
    consents = outbox.consents(event.id)
    assert [c.active for c in consents.values()] == [True, False]

    token = unsubscribe_token(make_settings_secret(mail_app), entry.listener_id)
    asked = mail_app.get(f"/mail/unsubscribe/{token}")
    assert asked.status_code == 200 and "Stop these emails?" in asked.text
    assert outbox.consents(event.id)[entry.listener_id].active  # a GET changes nothing
    one_click = mail_app.post(
        f"/mail/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200 and one_click.text == "Unsubscribed.\n"
    assert not outbox.consents(event.id)[entry.listener_id].active
    for forged in (token[:-3] + "abc", "x" * 300, "1"):
        assert mail_app.get(f"/mail/unsubscribe/{forged}").status_code == 404
        assert mail_app.post(f"/mail/unsubscribe/{forged}").status_code == 404

    users = UserStore(sqlite_database)
    users.add("dana", "correct horse battery")
    bearer = {"Authorization": f"Bearer {users.issue_token('dana')}"}
    exported = mail_app.get(f"/api/events/{event.id}/attendance.csv", headers=bearer)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    said = {row["email"]: row["email_consent"] for row in rows}
    assert said["zoe@acme.example"].startswith("reminders and replay notice (")
    assert "; unsubscribed " in said["zoe@acme.example"]
    assert said["bo@acme.example"].startswith("confirmation only (")


def make_settings_secret(client: TestClient) -> str:
    secret: str = client.app.state.settings.secret_key  # type: ignore[attr-defined]
    return secret


def test_no_consent_box_where_the_event_sends_no_follow_ups(
    mail_app: TestClient, event: EventRecord, sqlite_database: Database
) -> None:
    Outbox(sqlite_database).set_settings(event.id, MailSettings(reminders="", replay=False))
    page = mail_app.get(f"/events/{event.id}/webcast").text
    assert 'name="reg-email"' in page or 'id="reg-email"' in page
    assert 'name="follow_up"' not in page


def test_each_event_says_which_emails_it_sends(
    mail_app: TestClient, event: EventRecord, sqlite_database: Database
) -> None:
    users = UserStore(sqlite_database)
    users.add("dana", "correct horse battery")
    bearer = {"Authorization": f"Bearer {users.issue_token('dana')}"}
    path = f"/api/events/{event.id}/mail"
    assert mail_app.get(path).status_code == 401
    assert mail_app.get(path, headers=bearer).json() == {
        "confirmation": True,
        "reminders": ["24h", "15m"],
        "replay": True,
        "outbox": {},
    }
    changed = mail_app.put(path, headers=bearer, json={"reminders": ["2h", "90m"], "replay": False})
    assert changed.status_code == 200
    assert changed.json()["reminders"] == ["2h", "90m"] and changed.json()["replay"] is False
    assert changed.json()["confirmation"] is True  # left out: kept
    bad = mail_app.put(path, headers=bearer, json={"reminders": ["soon"]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "reminders"]
    assert mail_app.put(path, headers=bearer, json={"sms": True}).status_code == 422
    assert mail_app.get("/api/events/999/mail", headers=bearer).status_code == 404
    assert Outbox(sqlite_database).settings(event.id) == MailSettings(True, "120,90", False)
