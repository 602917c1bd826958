"""The announcement of one event, as plain text, HTML, Markdown and iCalendar.

Every sentence lives in the templates under ``announce/templates``; this
module only turns an ``EventRecord`` into a ``Release``, the plain values the
templates print (formatted dates, numbers in display and E.164 form, contact
groups in file order). The speaker passcode never enters a ``Release``, so no
template can print it by mistake.

Rendering is pure: the calendar's DTSTAMP is the ``now`` the caller passes.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal, overload
from urllib.parse import quote, urlsplit

import jinja2
import phonenumbers
from icalendar import Alarm, Calendar, Event
from phonenumbers import PhoneNumberFormat

from callbridge.announce import timefmt
from callbridge.brand.colour import accent_or_default
from callbridge.brand.logo import Logo
from callbridge.events.phones import dial_in_display, display
from callbridge.events.schema import Contact, DialIn, EventKind, EventRecord, Speaker

Format = Literal["text", "html", "md", "ics"]

MEDIA_TYPES: dict[Format, str] = {
    "text": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "ics": "text/calendar; charset=utf-8",
}

PRODID = "-//callbridge//callbridge//EN"
REMINDER = timedelta(minutes=15)

# Up to this many numbers read well in one sentence; more go in a list.
INLINE_NUMBERS = 3

# Legal-form suffixes dropped from "ImmunoGen, Inc." to say "ImmunoGen's results".
_LEGAL_SUFFIXES = (
    "Inc.",
    "Inc",
    "Incorporated",
    "Corp.",
    "Corp",
    "Corporation",
    "Co.",
    "Ltd.",
    "Ltd",
    "Limited",
    "LLC",
    "L.L.C.",
    "L.P.",
    "LP",
    "plc",
    "PLC",
    "N.V.",
    "S.A.",
    "SA",
    "AG",
    "SE",
    "GmbH",
    "S.p.A.",
    "A/S",
    "AB",
    "ASA",
    "Oyj",
)
_SUFFIX = re.compile(
    r"(?:,?\s+)(?:" + "|".join(re.escape(s) for s in _LEGAL_SUFFIXES) + r")$",
)


@dataclass(frozen=True)
class Phone:
    """A number as the release prints it and as a phone dials it."""

    label: str
    display: str
    e164: str


@dataclass(frozen=True)
class ContactView:
    organization: str | None
    name: str
    phone: Phone | None
    title: str | None
    email: str | None

    @property
    def parts(self) -> tuple[str, ...]:
        """The lines this contact prints, in the seed's order, by name."""
        present = {
            "organization": self.organization is not None,
            "name": True,
            "title": self.title is not None,
            "email": self.email is not None,
        }
        return tuple(part for part, shown in present.items() if shown)


@dataclass(frozen=True)
class ContactGroup:
    name: str
    contacts: tuple[ContactView, ...]


@dataclass(frozen=True)
class Release:
    """What the templates print; built by ``release_of``."""

    company: str
    possessive: str
    ticker: str
    exchange: str
    city: str
    title: str
    period: str
    is_earnings: bool
    announced_on: str
    announced_on_iso: str
    start_phrase: str
    start_iso: str
    dial_ins: tuple[Phone, ...]
    list_dial_ins: bool
    passcode: str
    webcast_url: str | None
    website: str | None
    website_text: str | None
    replay_until: str | None
    replay_dial_ins: tuple[Phone, ...]
    list_replay_dial_ins: bool
    replay_passcode: str
    about: tuple[str, ...]
    contact_groups: tuple[ContactGroup, ...]
    hosts: str | None = None  # "Mark Chen, Chief Financial Officer, will host the call."
    accent: str = ""  # the company's colour, #rrggbb (brand.colour)
    # The HTML release's logo, inline (data:), so the file forwarded alone still shows it.
    logo_src: str | None = None
    logo_width: int = 0


def short_name(company: str) -> str:
    """The company's name without its legal form: "ImmunoGen, Inc." → "ImmunoGen"."""
    name = company.strip()
    while True:
        shorter = _SUFFIX.sub("", name).rstrip(" ,")
        if shorter == name or not shorter:
            return name
        name = shorter


def possessive(name: str) -> str:
    """AP-style possessive: "ImmunoGen's", but "Northwind Biologics'"."""
    return f"{name}'" if name.endswith(("s", "S")) else f"{name}'s"


def hosts_sentence(speakers: list[Speaker]) -> str | None:
    """Who will host the call, as a wire release says it; None with no speakers listed.

    "Mark Chen, Chief Financial Officer, will host the call." Two names join
    with "and"; three or more, whose titles hold commas, go in a series
    separated by semicolons.
    """
    if not speakers:
        return None
    people = [s.label for s in speakers]
    titled = any(s.title for s in speakers)
    if len(people) == 1:
        named = people[0]
    elif len(people) == 2:
        named = f"{people[0]}{',' if speakers[0].title else ''} and {people[1]}"
    else:
        mark = ";" if titled else ","
        named = f"{mark} ".join(people[:-1]) + f"{mark} and {people[-1]}"
    # The last title's closing comma sets it off from the verb, as the first's does.
    closing = "," if speakers[-1].title else ""
    return f"{named}{closing} will host the call."


def hosted_webcast_url(record: EventRecord, public_url: str | None) -> str | None:
    """The webcast's address: the event's ``webcast_url``, else our own page under ``public_url``.

    ``public_url`` is where listeners reach this server (``serve --public-url``).
    None when neither is known, or when ``public_url`` names this machine only
    (loopback, ``localhost``, an unspecified address): no release prints an
    address its readers cannot open.
    """
    if record.webcast_url is not None:
        return _web_url(record.webcast_url)
    if not public_url:
        return None
    base = _web_url(public_url.strip())
    assert base is not None
    host = (urlsplit(base).hostname or "").lower()
    if not host or host == "localhost" or host.endswith(".localhost") or _local_address(host):
        return None
    return f"{base.rstrip('/')}/events/{record.id}/webcast"


def _local_address(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def release_of(record: EventRecord, public_url: str | None = None) -> Release:
    """Turn a stored event into the values every format prints.

    ``public_url`` (``serve --public-url``) gives the webcast's address when
    the event names none (``hosted_webcast_url``). Raises ValueError when a
    stored URL is not http(s), so a record that bypassed validation cannot
    put a ``javascript:`` link in a page.
    """
    start = record.starts_at
    website = _web_url(record.company.website)
    return Release(
        company=record.company.name,
        possessive=possessive(short_name(record.company.name)),
        ticker=record.company.ticker,
        exchange=record.company.exchange,
        city=record.company.city,
        title=record.title,
        period=record.period,
        is_earnings=record.kind == EventKind.EARNINGS,
        announced_on=timefmt.dateline_date(record.announced_on),
        announced_on_iso=record.announced_on.isoformat(),
        start_phrase=timefmt.start_phrase(start, record.timezone),
        start_iso=_utc_iso(start),
        dial_ins=_phones(record.dial_in),
        list_dial_ins=len(record.dial_in) > INLINE_NUMBERS,
        passcode=record.passcode,
        webcast_url=hosted_webcast_url(record, public_url),
        website=website,
        website_text=_url_text(website) if website else None,
        replay_until=(
            timefmt.long_date(record.replay_until) if record.replay_until is not None else None
        ),
        replay_dial_ins=_phones(record.replay_dial_in),
        list_replay_dial_ins=len(record.replay_dial_in) > INLINE_NUMBERS,
        replay_passcode=record.replay_passcode,
        about=_paragraphs(record.company.about),
        contact_groups=_groups(record.contacts),
        hosts=hosts_sentence(record.speakers),
        accent=accent_or_default(record.company.accent),
    )


def render_text(record: EventRecord, public_url: str | None = None) -> str:
    """The release as plain text, laid out like a wire release."""
    return _template("text", "release.txt.j2").render(r=release_of(record, public_url))


def render_html(
    record: EventRecord, public_url: str | None = None, logo: Logo | None = None
) -> str:
    """The release as a complete HTML5 page, readable on a phone; with the company's
    ``logo`` (checked by ``brand.logo``) at its head when one is given."""
    release = release_of(record, public_url)
    if logo is not None:
        encoded = base64.b64encode(logo.data).decode("ascii")
        release = dataclasses.replace(
            release,
            logo_src=f"data:{logo.media_type};base64,{encoded}",
            logo_width=max(1, round(logo.width * 48 / max(1, logo.height))),
        )
    return _template("html", "release.html.j2").render(r=release)


def render_markdown(record: EventRecord, public_url: str | None = None) -> str:
    """The release as CommonMark, every value from the record escaped."""
    return _template("md", "release.md.j2").render(r=release_of(record, public_url))


def render_ics(record: EventRecord, now: datetime, public_url: str | None = None) -> bytes:
    """An iCalendar file (METHOD:PUBLISH) with the call as one VEVENT.

    ``now`` (aware) becomes DTSTAMP. The UID depends only on the event's id,
    so a calendar that imports the file again updates the entry in place.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be aware")
    release = release_of(record, public_url)
    summary = f"{record.company.ticker} {record.title} conference call"

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")

    event = Event()
    event.add("uid", f"event-{record.id}@callbridge")
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", record.starts_at.astimezone(UTC))
    event.add("dtend", record.ends_at.astimezone(UTC))
    event.add("summary", summary)
    event.add("description", _template("text", "calendar.txt.j2").render(r=release).strip())
    event.add("location", _international(record.dial_in[0].number))
    url = release.webcast_url or release.website
    if url is not None:
        event.add("url", url)

    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", f"{summary} in 15 minutes")
    alarm.add("trigger", -REMINDER)
    event.add_component(alarm)

    calendar.add_component(event)
    return bytes(calendar.to_ical())


@overload
def render(
    record: EventRecord, fmt: Literal["text", "html", "md"], *, public_url: str | None = None
) -> str: ...
@overload
def render(
    record: EventRecord, fmt: Literal["ics"], *, now: datetime, public_url: str | None = None
) -> bytes: ...
@overload
def render(
    record: EventRecord,
    fmt: Format,
    *,
    now: datetime | None = None,
    public_url: str | None = None,
) -> str | bytes: ...
def render(
    record: EventRecord,
    fmt: Format,
    *,
    now: datetime | None = None,
    public_url: str | None = None,
) -> str | bytes:
    """Render ``record`` as ``fmt``; "ics" needs ``now`` for its DTSTAMP.

    ``public_url`` is where this server's pages are reached (the webcast's
    address when the event names none). ``MEDIA_TYPES[fmt]`` is the
    Content-Type to serve the result with.
    """
    if fmt == "text":
        return render_text(record, public_url)
    if fmt == "html":
        return render_html(record, public_url)
    if fmt == "md":
        return render_markdown(record, public_url)
    if fmt == "ics":
        if now is None:
            raise ValueError("an iCalendar file needs now for its DTSTAMP")
        return render_ics(record, now, public_url)
    raise ValueError(f"unknown announcement format {fmt!r}")


def _phones(numbers: Iterable[DialIn]) -> tuple[Phone, ...]:
    return tuple(Phone(n.label, dial_in_display(n.number, n.label), n.number) for n in numbers)


def _international(e164: str) -> str:
    number = phonenumbers.parse(e164, None)
    return str(phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL))


def _groups(contacts: Iterable[Contact]) -> tuple[ContactGroup, ...]:
    # dicts keep insertion order: groups print in the order they first appear.
    grouped: dict[str, list[ContactView]] = {}
    for c in contacts:
        phone = Phone("", display(c.phone), c.phone) if c.phone else None
        view = ContactView(c.organization, c.name, phone, c.title, c.email)
        grouped.setdefault(c.group.rstrip(":").strip(), []).append(view)
    return tuple(ContactGroup(name, tuple(views)) for name, views in grouped.items())


def _paragraphs(text: str) -> tuple[str, ...]:
    return tuple(" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip())


def _web_url(url: str | None) -> str | None:
    if url is None:
        return None
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url


def _url_text(url: str) -> str:
    # pydantic writes "https://www.northwind.example/"; a release prints it bare.
    parts = urlsplit(url)
    if parts.path == "/" and not parts.query and not parts.fragment:
        return url[: -len("/")]
    return url


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Templates ---------------------------------------------------------------


class MarkdownSafe(str):
    """Markdown the template built itself; the Markdown finalizer leaves it alone."""


_MD_INLINE = re.compile(r"([\\`*_\[\]<>|~])")
_MD_ENTITY = re.compile(r"&(?=#?\w+;)")
# Only what would open a block at a line's start: "# ", "- ", "+ ", "---", "=", "1. ".
_MD_BLOCK_START = re.compile(
    r"^(\s*)(#{1,6}(?=\s|$)|[-+](?=\s|$)|-{3,}|=|\d{1,9}[.)](?=\s|$))", re.MULTILINE
)


def markdown_escape(value: str) -> str:
    """Backslash-escape what Markdown would read as markup in a plain value."""
    text = _MD_INLINE.sub(r"\\\1", value)
    text = _MD_ENTITY.sub(r"\\&", text)
    return _MD_BLOCK_START.sub(_escape_block_start, text)


def _escape_block_start(match: re.Match[str]) -> str:
    indent, marker = match.group(1), match.group(2)
    if marker[0].isdigit():
        # Only punctuation can be backslash-escaped: "1\." rather than "\1.".
        return f"{indent}{marker[:-1]}\\{marker[-1]}"
    return f"{indent}\\{marker}"


def _md_finalize(value: Any) -> str:
    _refuse_none(value)
    if isinstance(value, MarkdownSafe):
        return value
    return markdown_escape(str(value))


def _md_autolink(url: str) -> MarkdownSafe:
    # An autolink processes no escapes and ends at the first space or ">".
    return MarkdownSafe("<" + quote(url, safe=":/?#[]@!$&'()*+,;=%~.-_") + ">")


def _md_built(markdown: str) -> MarkdownSafe:
    # A macro's output: every value in it was escaped when the macro printed it.
    return MarkdownSafe(markdown)


def _md_destination(target: str) -> MarkdownSafe:
    return MarkdownSafe("<" + re.sub(r"([<>\\])", r"\\\1", target) + ">")


def _mailto(email: str) -> str:
    # Quoted so an address holding "?" cannot add headers to the message.
    return "mailto:" + quote(email, safe="@")


def _tel(phone: Phone) -> str:
    return f"tel:{phone.e164}"


def _refuse_none(value: Any) -> Any:
    # A None printed as "None" would be a template bug, not a value.
    if value is None:
        raise TypeError("a template printed None; guard the value with {% if %}")
    return value


@cache
def _environment(kind: Literal["text", "html", "md"]) -> jinja2.Environment:
    finalize: Callable[[Any], Any] = _md_finalize if kind == "md" else _refuse_none
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("callbridge.announce", "templates"),
        autoescape=kind == "html",
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=finalize,
    )
    env.filters["mailto"] = _mailto
    env.filters["tel"] = _tel
    env.filters["md_autolink"] = _md_autolink
    env.filters["md_destination"] = _md_destination
    env.filters["md_built"] = _md_built
    return env


def _template(kind: Literal["text", "html", "md"], name: str) -> jinja2.Template:
    return _environment(kind).get_template(name)
