"""The console's event editor as form fields: an event to fields, fields to an event, and
the schema's refusals back onto the fields that caused them.

A form field is named by the location pydantic gives its value in ``EventFile``
(``company.name``, ``event.dial_in.2.number``), so every ``ValidationError``
lands next to the input that caused it without a mapping table. Two fields
are the form's own: ``event.start_date`` and ``event.start_time`` are joined
into ``event.starts_at`` (its errors show beside both), and ``event.glossary``
is one term a line.

Rows (dial-ins, speakers, contacts) may be left blank or removed in the
browser, so their indices have gaps; ``to_data`` closes the gaps and keeps a
map so that an error on the third speaker sent is shown on the row the
operator sees. Pure: no web, no store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from pydantic import ValidationError

from callbridge.events.errors import normalise_errors
from callbridge.events.schema import EventFile, EventRecord

# The groups of rows, each with its columns, in the order the form shows them.
ROWS: dict[str, tuple[str, ...]] = {
    "event.dial_in": ("label", "number"),
    "event.replay_dial_in": ("label", "number"),
    "event.speakers": ("name", "title", "phone"),
    "contacts": ("group", "name", "title", "organization", "phone", "email"),
}
MAX_ROWS = 50  # more than any group allows (the schema refuses past its own limit)

COMPANY_FIELDS = ("name", "ticker", "exchange", "website", "city", "about", "accent")
LOGO = "company.logo"  # a file, read by the web editor (brand.logo checks it), not a value
LOGO_REMOVE = "company.logo_remove"
EVENT_FIELDS = (
    "title",
    "period",
    "kind",
    "timezone",
    "duration_minutes",
    "announced_on",
    "passcode",
    "speaker_passcode",
    "replay_passcode",
    "replay_until",
    "webcast_url",
    "registration",
    "phone_requires_registration",
)
START_DATE = "event.start_date"
START_TIME = "event.start_time"
STARTS_AT = "event.starts_at"
GLOSSARY = "event.glossary"

# How a field is named to a person (the conflict list, the error summary).
LABELS: dict[str, str] = {
    "company.name": "Company name",
    "company.ticker": "Ticker",
    "company.exchange": "Exchange",
    "company.website": "Website",
    "company.city": "Dateline",
    "company.about": "About the company",
    "company.accent": "Accent colour",
    LOGO: "Logo",
    "event.title": "Title",
    "event.period": "Period",
    "event.kind": "Kind",
    START_DATE: "Date",
    START_TIME: "Time",
    STARTS_AT: "Date and time",
    "event.timezone": "Time zone",
    "event.duration_minutes": "Duration (minutes)",
    "event.announced_on": "Announced on",
    "event.passcode": "Listener passcode",
    "event.speaker_passcode": "Speaker passcode",
    "event.replay_passcode": "Replay passcode",
    "event.replay_until": "Replay through",
    "event.webcast_url": "External webcast URL",
    "event.registration": "Webcast registration",
    "event.phone_requires_registration": "Phone access",
    GLOSSARY: "Glossary",
    "event.dial_in": "Dial-in numbers",
    "event.replay_dial_in": "Replay numbers",
    "event.speakers": "Speakers",
    "contacts": "Contacts",
}
ROW_NOUN = {
    "event.dial_in": "Dial-in",
    "event.replay_dial_in": "Replay number",
    "event.speakers": "Speaker",
    "contacts": "Contact",
}

FRIENDLY = {
    "missing": "is required",
    "string_too_short": "is required",
    "url_parsing": "is not a web address (start it with https://)",
    "int_parsing": "must be a whole number",
    "date_from_datetime_parsing": "is not a date such as 2026-11-05",
    "date_parsing": "is not a date such as 2026-11-05",
    "datetime_parsing": "is not a date and time",
    "datetime_from_date_parsing": "is not a date and time",
    "too_short": "needs at least one",
}

Values = dict[str, str]


def phone_for_editing(e164: str | None) -> str:
    """A stored number as a person types it: "+1 866-555-0199"."""
    if not e164:
        return ""
    number = phonenumbers.parse(e164, None)
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL))


def values_of(record: EventRecord) -> Values:
    """The form's fields for ``record``, numbers as people write them, the start in its zone."""
    company = record.company
    local = record.local_start
    values: Values = {
        "company.name": company.name,
        "company.ticker": company.ticker,
        "company.exchange": company.exchange,
        "company.website": company.website or "",
        "company.city": company.city,
        "company.about": company.about,
        "company.accent": company.accent or "",
        "event.title": record.title,
        "event.period": record.period,
        "event.kind": record.kind.value,
        START_DATE: local.date().isoformat(),
        START_TIME: local.strftime("%H:%M"),
        "event.timezone": record.timezone,
        "event.duration_minutes": str(record.duration_minutes),
        "event.announced_on": record.announced_on.isoformat(),
        "event.passcode": record.passcode,
        "event.speaker_passcode": record.speaker_passcode,
        "event.replay_passcode": record.replay_passcode,
        "event.replay_until": record.replay_until.isoformat() if record.replay_until else "",
        "event.webcast_url": record.webcast_url or "",
        "event.registration": record.registration.value,
        "event.phone_requires_registration": str(record.phone_requires_registration).lower(),
        GLOSSARY: "\n".join(record.glossary),
    }
    for i, d in enumerate(record.dial_in):
        values[f"event.dial_in.{i}.label"] = d.label
        values[f"event.dial_in.{i}.number"] = phone_for_editing(d.number)
    for i, d in enumerate(record.replay_dial_in):
        values[f"event.replay_dial_in.{i}.label"] = d.label
        values[f"event.replay_dial_in.{i}.number"] = phone_for_editing(d.number)
    for i, s in enumerate(record.speakers):
        values[f"event.speakers.{i}.name"] = s.name
        values[f"event.speakers.{i}.title"] = s.title or ""
        values[f"event.speakers.{i}.phone"] = phone_for_editing(s.phone)
    for i, c in enumerate(record.contacts):
        values[f"contacts.{i}.group"] = c.group
        values[f"contacts.{i}.name"] = c.name
        values[f"contacts.{i}.title"] = c.title or ""
        values[f"contacts.{i}.organization"] = c.organization or ""
        values[f"contacts.{i}.phone"] = phone_for_editing(c.phone)
        values[f"contacts.{i}.email"] = c.email or ""
    return values


def from_form(items: Iterable[tuple[str, str]]) -> Values:
    """The posted fields the editor knows (others, the CSRF token among them, are dropped)."""
    known = {f"company.{f}" for f in COMPANY_FIELDS} | {f"event.{f}" for f in EVENT_FIELDS}
    known |= {START_DATE, START_TIME, GLOSSARY}
    values: Values = {}
    for key, value in items:
        if key in known or _row_key(key) is not None:
            values[key] = value
    return values


def _row_key(key: str) -> tuple[str, int, str] | None:
    group, _, rest = key.rpartition(".")
    group, _, index = group.rpartition(".")
    columns = ROWS.get(group)
    if columns is None or rest not in columns or not index.isdigit() or len(index) > 3:
        return None
    return group, int(index), rest


def row_indices(values: Mapping[str, str], group: str) -> list[int]:
    """The row numbers of ``group`` present in ``values``, in order."""
    found = {key[1] for key in map(_row_key, values) if key is not None and key[0] == group}
    return sorted(found)[:MAX_ROWS]


@dataclass
class FormData:
    """``EventFile``'s input built from the form, and where each sent row came from."""

    data: dict[str, Any]
    rows: dict[str, list[int]] = field(default_factory=dict)  # group → form index per sent row


def to_data(values: Mapping[str, str]) -> FormData:
    """The document ``EventFile.model_validate`` checks; blank optional fields are left out."""

    def put(target: dict[str, Any], key: str, value: str) -> None:
        if value.strip():
            target[key] = value

    company: dict[str, Any] = {}
    for name in COMPANY_FIELDS:
        put(company, name, values.get(f"company.{name}", ""))
    event: dict[str, Any] = {}
    for name in EVENT_FIELDS:
        put(event, name, values.get(f"event.{name}", ""))
    day, clock = values.get(START_DATE, "").strip(), values.get(START_TIME, "").strip()
    if day or clock:
        event["starts_at"] = f"{day}T{clock}" if day and clock else (day or clock)
    event["glossary"] = [t.strip() for t in values.get(GLOSSARY, "").splitlines() if t.strip()]
    result = FormData({"company": company, "event": event})
    for group, columns in ROWS.items():
        sent: list[dict[str, Any]] = []
        origin: list[int] = []
        for index in row_indices(values, group):
            row: dict[str, Any] = {}
            for column in columns:
                put(row, column, values.get(f"{group}.{index}.{column}", ""))
            if row:  # a row left blank is no row
                sent.append(row)
                origin.append(index)
        result.rows[group] = origin
        if group == "contacts":
            result.data["contacts"] = sent
        else:
            event[group.removeprefix("event.")] = sent
    return result


def field_errors(
    errors: Iterable[Mapping[str, Any]], rows: Mapping[str, list[int]]
) -> dict[str, list[str]]:
    """Each refusal under the form field it belongs to, with the schema's own reason."""
    found: dict[str, list[str]] = {}
    for error in normalise_errors(errors):
        parts = [str(p) for p in error["loc"]]
        key = ".".join(parts)
        for group, origin in rows.items():
            prefix = group.split(".")
            n = len(prefix)
            if parts[:n] == prefix and len(parts) > n and parts[n].isdigit():
                sent = int(parts[n])
                if sent < len(origin):
                    parts[n] = str(origin[sent])
                key = ".".join(parts)
        message = FRIENDLY.get(str(error.get("type", "")), str(error["msg"]))
        found.setdefault(key, []).append(message)
    return found


def validate(values: Mapping[str, str]) -> tuple[EventFile | None, dict[str, list[str]]]:
    """The event the fields describe, or None and the refusals by field."""
    built = to_data(values)
    own: dict[str, list[str]] = {}
    day, clock = values.get(START_DATE, "").strip(), values.get(START_TIME, "").strip()
    if bool(day) != bool(clock):
        # pydantic would read a date alone as midnight: a call nobody meant.
        own[STARTS_AT] = ["give both the date and the time"]
        built.data["event"].pop("starts_at", None)
    try:
        spec = EventFile.model_validate(built.data)
    except ValidationError as exc:
        found = field_errors(exc.errors(), built.rows)
        if STARTS_AT in own:
            found[STARTS_AT] = own[STARTS_AT]
        return None, found
    if own:
        return None, own
    return spec, {}


def label(key: str) -> str:
    """ "Speaker 2 · Phone" for ``event.speakers.1.phone``; the field's label otherwise."""
    if key in LABELS:
        return LABELS[key]
    row = _row_key(key)
    if row is not None:
        group, index, column = row
        return f"{ROW_NOUN[group]} {index + 1} · {column.replace('_', ' ').capitalize()}"
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LABELS:
            rest = " ".join(parts[n:])
            return f"{LABELS[prefix]} {rest}".strip()
    return key


@dataclass(frozen=True)
class Change:
    """One field another editor changed: its label, the value it had, the value it has."""

    key: str
    label: str
    before: str
    after: str


def changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[Change]:
    """What differs between two sets of fields, field by field, in the form's order."""
    order = list(after) + [k for k in before if k not in after]
    result: list[Change] = []
    for key in order:
        old, new = before.get(key, ""), after.get(key, "")
        if old.strip() != new.strip():
            result.append(Change(key, label(key), old, new))
    return result


def _hour(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    return f"{hour}:{moment.minute:02d} {'am' if moment.hour < 12 else 'pm'}"


def local_preview(day: str, clock: str, zone: str) -> str:
    """ "Thu 5 Nov 2026, 4:30 pm EST = 21:30 UTC", or "" when the fields say no time yet.

    The same words ``editor.js`` writes as the operator types.
    """
    try:
        wall = datetime.fromisoformat(f"{day.strip()}T{clock.strip()}")
        tz = ZoneInfo(zone)
    except (ValueError, KeyError):
        return ""
    local = wall.replace(tzinfo=tz)
    utc = local.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != wall:
        return f"{wall:%H:%M} does not exist in {zone} that day (the clocks skip it)"
    said = f"{local:%a} {local.day} {local:%b %Y}, {_hour(local)} {local.tzname()}"
    if utc.date() != local.date():
        return f"{said} = {utc:%a} {utc.day} {utc:%b}, {utc:%H:%M} UTC"
    return f"{said} = {utc:%H:%M} UTC"


def today_in(zone: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(zone)).date()
