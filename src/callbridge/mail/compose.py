"""Each email as bytes on the wire: rendered from the templates, headers made safe.

Values from registrants (name, firm) never reach a header as they came:
``one_line`` turns every control character (CR and LF among them) and
line separator into a space first, and ``email.headerregistry`` then
encodes non-ASCII as RFC 2047 under ``policy.SMTP`` (CRLF line ends). The
company's wording comes from the release (``announce.render.release_of``):
its name, its About, the dial-in numbers and the webcast's address as the
release prints them. The confirmation carries the release's calendar
invite (``announce.render.render_ics``) as an attachment.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import cache
from typing import Any

import jinja2
from email_validator import EmailNotValidError, validate_email
from itsdangerous import BadSignature, URLSafeSerializer

from callbridge.announce.render import Phone, Release, release_of, render_ics, short_name
from callbridge.events.schema import EventRecord
from callbridge.mail.alerts import Alert
from callbridge.mail.core import describe_offset
from callbridge.store.outbox import MailKind, NewMail, Recipient

UNSUBSCRIBE_SALT = "callbridge-mail-unsubscribe"
MAX_HEADER_TEXT = 200


class InvalidAddress(ValueError):
    """An email address that cannot be written to; the message says why."""


def valid_address(value: str, *, check_domain: bool = False) -> str:
    """``value`` as a deliverable-looking address (normalised), or ``InvalidAddress``.

    ``check_domain`` asks DNS whether the domain takes mail (off by default:
    a registration should not wait on a resolver; tests never ask).
    """
    try:
        found = validate_email(value, check_deliverability=check_domain)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    return str(found.normalized)


def one_line(value: str, limit: int = MAX_HEADER_TEXT) -> str:
    """Text fit for a header: control characters and line breaks become spaces, runs collapse."""
    cleaned = "".join(
        " " if unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cf") else char for char in value
    )
    return " ".join(cleaned.split())[:limit]


@dataclass(frozen=True)
class Sender:
    """Who mail comes from: the envelope's address and the From header's display name."""

    address: str
    display_name: str | None

    @classmethod
    def parse(cls, value: str) -> Sender:
        """ "IR Team <ir@example.com>" or "ir@example.com"; raises ``InvalidAddress``."""
        name, addr = parseaddr(value)
        if not addr:
            raise InvalidAddress(f"{value!r} is not an address such as ir@example.com")
        return cls(valid_address(addr), one_line(name) or None)

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


def new_message_id(kind: MailKind, domain: str) -> str:
    """A fresh Message-ID, unique to one outbox row."""
    return f"<{secrets.token_hex(12)}.{kind.value}@{domain}>"


def unsubscribe_token(secret: str, listener_id: int) -> str:
    return URLSafeSerializer(secret, salt=UNSUBSCRIBE_SALT).dumps(listener_id)


def read_unsubscribe_token(secret: str, token: str) -> int | None:
    """The registrant a token was made for, or None for a forged or garbled one."""
    try:
        value = URLSafeSerializer(secret, salt=UNSUBSCRIBE_SALT).loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Letterhead:
    """What every message shares: the sender, the server's public address, the signing secret."""

    sender: Sender
    public_url: str | None
    secret: str

    def unsubscribe_url(self, listener_id: int) -> str | None:
        if not self.public_url:
            return None
        base = self.public_url.rstrip("/")
        return f"{base}/mail/unsubscribe/{unsubscribe_token(self.secret, listener_id)}"


def _tel(phone: Phone) -> str:
    return f"tel:{phone.e164}"


def _refuse_none(value: Any) -> Any:
    if value is None:
        raise TypeError("a template printed None; guard the value with {% if %}")
    return value


@cache
def _environment(html: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("callbridge.mail", "templates"),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_refuse_none,
    )
    env.filters["tel"] = _tel
    return env


def render(template: str, **context: Any) -> tuple[str, str]:
    """The template pair ``template``.txt.j2 and ``template``.html.j2: (text, html)."""
    text = _environment(False).get_template(f"{template}.txt.j2").render(**context)
    html = _environment(True).get_template(f"{template}.html.j2").render(**context)
    return text, html


def build(
    *,
    letterhead: Letterhead,
    company: str,
    recipient: Recipient,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    now: datetime,
    unsubscribe_url: str | None = None,
    attachment: tuple[bytes, str, str, str] | None = None,
) -> bytes:
    """One message as the SMTP server receives it (CRLF, 7-bit headers, RFC 2047 where needed).

    ``attachment`` is (data, maintype, subtype, filename). With
    ``unsubscribe_url``, the RFC 8058 one-click headers are added.
    """
    message = EmailMessage(policy=policy.SMTP)
    display = letterhead.sender.display_name or one_line(company)
    message["From"] = Address(display_name=display, addr_spec=letterhead.sender.address)
    shown = one_line(", ".join(part for part in (recipient.name, recipient.firm) if part))
    message["To"] = Address(display_name=shown, addr_spec=recipient.email)
    message["Subject"] = one_line(subject, limit=300)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url is not None:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    if attachment is not None:
        data, maintype, subtype, filename = attachment
        # A multipart/mixed around the alternative: text and HTML, then the invite.
        message.make_mixed()
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=policy.SMTP)


def logo_url(record: EventRecord, letterhead: Letterhead) -> str | None:
    """The company's logo as a message shows it: a PNG served at the public address.

    Linked, not attached: a logo inline in every message would weigh on ten
    thousand of them, and mail clients show a linked image once the reader
    allows it. An SVG logo is left out (most mail clients do not draw SVG);
    the company's name heads the message either way.
    """
    logo = record.company.logo
    if logo is None or logo.media_type != "image/png" or not letterhead.public_url:
        return None
    return f"{letterhead.public_url.rstrip('/')}/events/{record.id}/logo?v={logo.digest[:12]}"


def _name(recipient: Recipient) -> str | None:
    return one_line(recipient.name) if recipient.name else None


def _headline(record: EventRecord) -> str:
    return f"{short_name(record.company.name)} {record.title}"


def confirmation(
    record: EventRecord,
    recipient: Recipient,
    letterhead: Letterhead,
    now: datetime,
    *,
    pin: str | None = None,
) -> NewMail:
    """The registration's confirmation: webcast link, dial-in numbers, the .ics invite.

    ``pin``: the registrant's personal PIN, printed when given (the PIN feature sets it).
    """
    release = release_of(record, letterhead.public_url)
    context = {
        "r": release,
        "name": _name(recipient),
        "pin": pin,
        "unsubscribe_url": None,
        "logo_url": logo_url(record, letterhead),
    }
    subject = f"Registered: {_headline(record)} conference call, {release.start_phrase}"
    text, html = render("confirmation", subject=subject, **context)
    invite = render_ics(record, now, letterhead.public_url)
    message_id = new_message_id(MailKind.CONFIRMATION, letterhead.sender.domain)
    body = build(
        letterhead=letterhead,
        company=record.company.name,
        recipient=recipient,
        subject=subject,
        text=text,
        html=html,
        message_id=message_id,
        now=now,
        attachment=(invite, "text", "calendar", f"{record.company.ticker}-call.ics"),
    )
    return _mail(
        MailKind.CONFIRMATION,
        f"confirmation:w{recipient.listener_id}",
        message_id,
        letterhead,
        recipient,
        body,
    )


def reminder(
    record: EventRecord,
    recipient: Recipient,
    minutes: int,
    letterhead: Letterhead,
    now: datetime,
    release: Release | None = None,
) -> NewMail:
    """A reminder ``minutes`` before the start, with the one-click unsubscribe headers.

    ``release``: the event's, when the caller writes many (``release_of`` once, not per message).
    """
    lead = describe_offset(minutes)
    subject = f"Reminder: {_headline(record)} conference call in {lead}"
    return _follow_up(
        MailKind.REMINDER,
        reminder_key(recipient.listener_id, minutes),
        "reminder",
        subject,
        record,
        recipient,
        letterhead,
        now,
        release,
        lead=lead,
    )


def replay_ready(
    record: EventRecord,
    recipient: Recipient,
    letterhead: Letterhead,
    now: datetime,
    release: Release | None = None,
) -> NewMail:
    """The replay is ready: its window (the last day), the webcast link and the replay numbers."""
    subject = f"Replay ready: {_headline(record)} conference call"
    return _follow_up(
        MailKind.REPLAY,
        replay_key(recipient.listener_id),
        "replay",
        subject,
        record,
        recipient,
        letterhead,
        now,
        release,
    )


def _follow_up(
    kind: MailKind,
    key: str,
    template: str,
    subject: str,
    record: EventRecord,
    recipient: Recipient,
    letterhead: Letterhead,
    now: datetime,
    release: Release | None,
    **context: Any,
) -> NewMail:
    """A message after the registration (reminder, replay note): the one-click unsubscribe
    headers and link, the company's brand."""
    release = release or release_of(record, letterhead.public_url)
    unsubscribe = letterhead.unsubscribe_url(recipient.listener_id)
    text, html = render(
        template,
        subject=subject,
        r=release,
        name=_name(recipient),
        unsubscribe_url=unsubscribe,
        logo_url=logo_url(record, letterhead),
        **context,
    )
    message_id = new_message_id(kind, letterhead.sender.domain)
    body = build(
        letterhead=letterhead,
        company=record.company.name,
        recipient=recipient,
        subject=subject,
        text=text,
        html=html,
        message_id=message_id,
        now=now,
        unsubscribe_url=unsubscribe,
    )
    return _mail(kind, key, message_id, letterhead, recipient, body)


def reminder_key(listener_id: int, minutes: int) -> str:
    return f"reminder:w{listener_id}:{minutes}"


def replay_key(listener_id: int) -> str:
    return f"replay:w{listener_id}"


def operator_alert(alert: Alert, to: str, letterhead: Letterhead, now: datetime) -> NewMail:
    """An alert for the operator (``mail.alerts``): plain text, sent to ``--alert-email``."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = Address(
        display_name=letterhead.sender.display_name or "callbridge",
        addr_spec=letterhead.sender.address,
    )
    message["To"] = to
    message["Subject"] = one_line(f"[callbridge] {alert.subject}", limit=300)
    message["Date"] = format_datetime(now)
    message_id = new_message_id(MailKind.ALERT, letterhead.sender.domain)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    console = f"{letterhead.public_url.rstrip('/')}/console" if letterhead.public_url else None
    text = "\n".join([*alert.lines, *(["", f"The console: {console}"] if console else [])])
    message.set_content(text + "\n", cte="quoted-printable")
    return NewMail(
        kind=MailKind.ALERT,
        dedupe_key=alert.key,
        message_id=message_id,
        sender=letterhead.sender.address,
        recipient=to,
        message=message.as_bytes(policy=policy.SMTP),
    )


def _mail(
    kind: MailKind,
    key: str,
    message_id: str,
    letterhead: Letterhead,
    recipient: Recipient,
    body: bytes,
) -> NewMail:
    return NewMail(
        kind=kind,
        dedupe_key=key,
        message_id=message_id,
        sender=letterhead.sender.address,
        recipient=recipient.email,
        message=body,
        event_id=recipient.event_id,
        listener_id=recipient.listener_id,
    )
