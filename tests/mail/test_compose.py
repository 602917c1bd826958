"""The messages as a mail client reads them: headers, parts, the invite; names out of headers."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage

import pytest
from icalendar import Calendar

from callbridge.brand.colour import DEFAULT_ACCENT
from callbridge.events.schema import EventRecord, LogoInfo
from callbridge.mail import compose
from callbridge.mail.compose import InvalidAddress, Letterhead, Sender, valid_address
from callbridge.store.outbox import MailKind, Recipient
from tests.announce.conftest import record_from
from tests.mail.conftest import SECRET, event_data

NOW = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)


@pytest.fixture(scope="module")
def event() -> EventRecord:
    """The Northwind call as the store hands it back, without a database (rendering is pure)."""
    return record_from(event_data(NOW + timedelta(days=8)))


def _recipient(name: str | None = "Ada Analyst", firm: str | None = "Acme Capital") -> Recipient:
    return Recipient(7, 1, name, firm, "ada@acme.example", NOW)


def _parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_the_confirmation_has_text_html_and_the_invite(
    event: EventRecord, letterhead: Letterhead
) -> None:
    mail = compose.confirmation(event, _recipient(), letterhead, NOW)
    assert mail.kind is MailKind.CONFIRMATION and mail.dedupe_key == "confirmation:w7"
    assert mail.sender == "ir@northwind.example" and mail.recipient == "ada@acme.example"
    message = _parse(mail.message)
    assert b"\r\n" in mail.message and b"\n" not in mail.message.replace(b"\r\n", b"")
    assert message["Message-ID"] == mail.message_id
    assert mail.message_id.endswith("@northwind.example>")
    assert message["From"].addresses[0].display_name == "Northwind IR"
    assert message["To"].addresses[0].addr_spec == "ada@acme.example"
    assert message["To"].addresses[0].display_name == "Ada Analyst, Acme Capital"
    assert "Northwind Biologics Third Quarter" in message["Subject"]
    assert "List-Unsubscribe" not in message  # a confirmation answers a request
    assert message.get_content_type() == "multipart/mixed"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    plain = text.get_content()
    assert "Dear Ada Analyst," in plain
    assert f"{letterhead.public_url}/events/{event.id}/webcast" in plain
    assert "866-555-0199" in plain and "passcode 8024721" in plain
    assert "About Northwind Biologics, Inc." in plain  # the company's About, from the release
    assert "personal PIN" not in plain
    page = html.get_content()
    assert 'href="tel:+18665550199"' in page and "Join the webcast" in page
    (invite,) = list(message.iter_attachments())
    assert invite.get_content_type() == "text/calendar"
    assert invite.get_filename() == "NWBX-call.ics"
    calendar = Calendar.from_ical(invite.get_content())
    (vevent,) = calendar.walk("VEVENT")
    assert vevent.decoded("dtstart") == event.starts_at
    assert str(vevent["uid"]) == f"event-{event.id}@callbridge"


def test_a_pin_is_printed_when_given(event: EventRecord, letterhead: Letterhead) -> None:
    message = _parse(
        compose.confirmation(event, _recipient(), letterhead, NOW, pin="482913").message
    )
    for kind in ("plain", "html"):
        body = message.get_body((kind,))
        assert body is not None and "482913" in body.get_content()


def _html(data: bytes) -> str:
    body = _parse(data).get_body(("html",))
    assert body is not None
    return str(body.get_content())


def test_messages_carry_the_company_brand(event: EventRecord, letterhead: Letterhead) -> None:
    """The accent colour heads every message; a PNG logo is linked from the public address,
    an SVG one left out (mail clients do not draw it)."""
    plain = _html(compose.confirmation(event, _recipient(), letterhead, NOW).message)
    assert f"border-top:4px solid {DEFAULT_ACCENT}" in plain and "<img" not in plain
    logo = LogoInfo(media_type="image/png", digest="ab12" * 16, width=400, height=100)
    company = event.company.model_copy(update={"accent": "#7a1f3d", "logo": logo})
    branded = event.model_copy(update={"company": company})
    for mail in (
        compose.confirmation(branded, _recipient(), letterhead, NOW),
        compose.reminder(branded, _recipient(), 15, letterhead, NOW),
        compose.replay_ready(branded, _recipient(), letterhead, NOW),
    ):
        page = _html(mail.message)
        assert "border-top:4px solid #7a1f3d" in page
        assert f'src="{letterhead.public_url}/events/{event.id}/logo?v=ab12ab12ab12"' in page
        assert 'alt="Northwind Biologics, Inc."' in page
    svg = LogoInfo(media_type="image/svg+xml", digest="cd34" * 16, width=40, height=10)
    vector = event.model_copy(update={"company": company.model_copy(update={"logo": svg})})
    assert "<img" not in _html(compose.confirmation(vector, _recipient(), letterhead, NOW).message)


def test_reminders_carry_one_click_unsubscribe(event: EventRecord, letterhead: Letterhead) -> None:
    mail = compose.reminder(event, _recipient(), 15, letterhead, NOW)
    assert mail.dedupe_key == "reminder:w7:15"
    message = _parse(mail.message)
    url = message["List-Unsubscribe"]
    assert url.startswith(f"<{letterhead.public_url}/mail/unsubscribe/") and url.endswith(">")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "in 15 minutes" in message["Subject"]
    token = url[1:-1].rsplit("/", 1)[1]
    assert compose.read_unsubscribe_token(SECRET, token) == 7
    assert compose.read_unsubscribe_token("another secret" * 4, token) is None
    assert compose.read_unsubscribe_token(SECRET, token[:-2]) is None
    body = message.get_body(("plain",))
    assert body is not None and url[1:-1] in body.get_content()


def test_the_replay_notice_gives_the_window(event: EventRecord, letterhead: Letterhead) -> None:
    message = _parse(compose.replay_ready(event, _recipient(), letterhead, NOW).message)
    plain = message.get_body(("plain",))
    assert plain is not None
    text = plain.get_content()
    assert event.replay_until is not None
    assert f"through {event.replay_until:%B} {event.replay_until.day}, " in text
    assert "866-555-0188" in text and "replay passcode 4417" in text
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: victim@example.com",
        "Eve\nSubject: spoofed",
        "Eve\u2028Bcc: victim@example.com",
        "Eve\x00\x0bBcc: victim@example.com",
    ],
)
def test_no_header_injection_from_a_name_or_firm(
    event: EventRecord, letterhead: Letterhead, name: str
) -> None:
    mail = compose.reminder(event, _recipient(name, "Acme\r\nX-Evil: 1"), 15, letterhead, NOW)
    raw_headers = mail.message.split(b"\r\n\r\n", 1)[0]
    message = _parse(mail.message)
    assert "Bcc" not in message and "X-Evil" not in message
    assert message.get_all("Subject") is not None and len(message.get_all("Subject")) == 1
    assert all(line[:1] in (b" ", b"\t") or b":" in line for line in raw_headers.split(b"\r\n"))
    (to,) = message["To"].addresses
    assert to.addr_spec == "ada@acme.example"
    assert "\n" not in to.display_name and "\r" not in to.display_name


def test_non_ascii_names_are_rfc_2047_encoded(event: EventRecord, letterhead: Letterhead) -> None:
    mail = compose.reminder(
        event, _recipient("Zoë Šimková", "Société Générale"), 15, letterhead, NOW
    )
    raw_headers = mail.message.split(b"\r\n\r\n", 1)[0]
    raw_headers.decode("ascii")  # every header byte is ASCII
    assert b"=?utf-8?" in raw_headers
    (to,) = _parse(mail.message)["To"].addresses
    assert to.display_name == "Zoë Šimková, Société Générale"


def test_addresses_are_checked() -> None:
    assert valid_address("Ada@Acme.Example") == "Ada@acme.example"
    for bad in (
        "not-an-email",
        "a@b",
        "a@@b.example",
        "a b@c.example",
        "a@b.test",
        "x" * 250 + "@a.example",
        "a@b.example\r\nBcc: c@d.example",
    ):
        with pytest.raises(InvalidAddress):
            valid_address(bad)
    assert Sender.parse("IR <ir@x.example>") == Sender("ir@x.example", "IR")
    assert Sender.parse("ir@x.example").display_name is None
    with pytest.raises(InvalidAddress):
        Sender.parse("IR team")


def test_message_ids_are_unique(letterhead: Letterhead) -> None:
    ids = {compose.new_message_id(MailKind.REMINDER, "x.example") for _ in range(1000)}
    assert len(ids) == 1000
