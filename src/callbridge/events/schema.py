"""The event as an investor-relations team writes it, and as callbridge shows it.

``EventFile`` is the contract of ``callbridge event create FILE`` (TOML) and of
``POST /api/events`` (JSON): the same keys, the same validation, the same
messages naming the field at fault. ``EventRecord`` is what the store hands
back: every later part (the announcement, the investor page, the IVR) reads
that and never the ORM rows.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    model_validator,
)

from callbridge.brand.colour import check_accent
from callbridge.events.names import MAX_NAME, plain_name, speaker_label
from callbridge.events.phones import InvalidPhoneNumber, to_e164

MIN_PASSCODE_DIGITS = 4
MAX_PASSCODE_DIGITS = 12  # the IVR collects up to this many (``ivr/machine.py``)
PASSCODE_PATTERN = re.compile(rf"^[0-9]{{{MIN_PASSCODE_DIGITS},{MAX_PASSCODE_DIGITS}}}$")
MAX_DIAL_INS = 20
MAX_CONTACTS = 20
MAX_GLOSSARY = 200
MAX_SPEAKERS = 20


class EventState(enum.StrEnum):
    """Where an event is in its life; only the bridge moves it past SCHEDULED."""

    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"
    ARCHIVED = "archived"


class Registration(enum.StrEnum):
    """Whether the webcast asks for name, firm and email before it plays."""

    REQUIRED = "required"
    OPTIONAL = "optional"
    OFF = "off"


class EventKind(enum.StrEnum):
    EARNINGS = "earnings"
    INVESTOR_DAY = "investor_day"
    CONFERENCE = "conference"
    OTHER = "other"


def _phone(value: str) -> str:
    try:
        return to_e164(value)
    except InvalidPhoneNumber as exc:
        raise ValueError(str(exc)) from None


def _passcode(value: str) -> str:
    if not PASSCODE_PATTERN.match(value):
        raise ValueError(
            f"a passcode is {MIN_PASSCODE_DIGITS} to {MAX_PASSCODE_DIGITS} digits, nothing else"
        )
    return value


# Control characters (CR and LF among them) and the Unicode line and paragraph
# separators: none belongs in a one-line field, and CR/LF in a title would
# break the .ics invite's lines and the CSV export's rows.
_NOT_ONE_LINE = frozenset({"Cc", "Zl", "Zp"})


def _one_line(value: str) -> str:
    for char in value:
        if unicodedata.category(char) in _NOT_ONE_LINE:
            raise ValueError(
                f"must be one line, without control characters (found U+{ord(char):04X})"
            )
    return value


# The calendar every date and time here must stay inside, with room for the
# arithmetic done on it (the end of the call, the replay window, the local
# zone): year 9999 passes a date parser and overflows the first timedelta.
FIRST_YEAR = 1970
LAST_YEAR = 2999


_When = TypeVar("_When", date, datetime)


def _in_calendar(value: _When) -> _When:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must fall between the years {FIRST_YEAR} and {LAST_YEAR}")
    return value


def _zone(value: str) -> str:
    # ZoneInfo accepts file-system paths such as "../etc"; only real IANA keys pass.
    if value not in available_timezones():
        raise ValueError(f"{value!r} is not an IANA time zone such as 'America/New_York'")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone") from None
    return value


PhoneNumber = Annotated[str, AfterValidator(_phone)]
Passcode = Annotated[str, AfterValidator(_passcode)]
ZoneName = Annotated[str, AfterValidator(_zone)]
ShortText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_one_line)]
PeriodText = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_one_line)]
EventDate = Annotated[date, AfterValidator(_in_calendar)]
EventTime = Annotated[datetime, AfterValidator(_in_calendar)]
Accent = Annotated[str, Field(max_length=20), AfterValidator(check_accent)]
GlossaryTerm = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[^\n\r\t]+$")]


class _Strict(BaseModel):
    # Unknown keys are refused so a typo ("pascode") is not silently ignored.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CompanyIn(_Strict):
    name: ShortText
    ticker: Annotated[str, Field(min_length=1, max_length=12, pattern=r"^[A-Za-z0-9.\-]+$")]
    exchange: ShortText
    website: HttpUrl | None = None
    city: ShortText = Field(description="The dateline, e.g. 'CAMBRIDGE, Mass.'")
    about: Annotated[str, Field(min_length=1, max_length=5000)]
    accent: Accent | None = Field(
        default=None,
        description="The brand's colour, #rrggbb, dark enough for white text on it (4.5:1)",
    )


class ContactIn(_Strict):
    group: ShortText = Field(description="Investors, Media, ...; contacts print grouped")
    name: ShortText
    title: ShortText | None = None
    organization: ShortText | None = None
    phone: PhoneNumber | None = None
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = (
        None
    )


# The raw text is bounded first (white space collapses after), then held to plain_name's rule.
SpeakerName = Annotated[str, Field(max_length=4 * MAX_NAME), AfterValidator(plain_name)]


class SpeakerIn(_Strict):
    """Who will speak on the call, named in the console (and the transcript) when they dial in.

    A caller on the speaker passcode whose number (as the trunk asserts it)
    is ``phone`` is named "name, title" as they join.
    """

    name: SpeakerName = Field(description="e.g. 'Mark Chen'")
    title: SpeakerName | None = Field(default=None, description="e.g. 'Chief Financial Officer'")
    phone: PhoneNumber | None = Field(
        default=None, description="The number they will call from; any usual form, kept in E.164"
    )

    @model_validator(mode="after")
    def _fits(self) -> SpeakerIn:
        # The console, the transcript and the captions show "name, title": one name.
        if len(speaker_label(self.name, self.title)) > MAX_NAME:
            raise ValueError(
                f"title: the name and title together are at most {MAX_NAME} characters"
            )
        return self


def _distinct_phones(speakers: list[SpeakerIn]) -> None:
    # A caller from a number listed twice could not be told apart: name them by hand.
    listed: dict[str, str] = {}
    for speaker in speakers:
        if speaker.phone is None:
            continue
        if speaker.phone in listed:
            raise ValueError(
                f"speakers: {speaker.phone} is listed for both {listed[speaker.phone]} and "
                f"{speaker.name}; give it to one of them"
            )
        listed[speaker.phone] = speaker.name


class DialIn(_Strict):
    label: ShortText = Field(description="e.g. 'U.S./Canada toll-free', 'International'")
    number: PhoneNumber


class EventIn(_Strict):
    title: ShortText
    period: PeriodText
    kind: EventKind = EventKind.EARNINGS
    starts_at: EventTime = Field(
        description="Wall-clock start in `timezone` (an offset, if given, is honoured)"
    )
    timezone: ZoneName
    duration_minutes: Annotated[int, Field(ge=5, le=24 * 60)] = 60
    announced_on: EventDate | None = None
    passcode: Passcode | None = None
    speaker_passcode: Passcode | None = None
    replay_until: EventDate | None = Field(
        default=None, description="Last day of the replay, inclusive, in the event's zone"
    )
    replay_passcode: Passcode | None = None
    webcast_url: HttpUrl | None = None
    registration: Registration = Field(
        default=Registration.REQUIRED,
        description="Webcast registration: required, optional or off",
    )
    phone_requires_registration: bool = Field(
        default=False,
        description="Phone callers need their personal PIN (registration); the public "
        "listener passcode opens nothing (the speaker passcode still works). Off by default: "
        "Reg FD wants anyone able to listen, so turn it on only where counsel allows",
    )
    glossary: Annotated[list[GlossaryTerm], Field(max_length=MAX_GLOSSARY)] = Field(
        default=[], description="Names and terms the transcript should get right"
    )
    dial_in: Annotated[list[DialIn], Field(min_length=1, max_length=MAX_DIAL_INS)]
    replay_dial_in: Annotated[list[DialIn], Field(max_length=MAX_DIAL_INS)] = []
    speakers: Annotated[list[SpeakerIn], Field(max_length=MAX_SPEAKERS)] = Field(
        default=[], description="Who will speak; callers from their numbers are named at join"
    )

    @model_validator(mode="after")
    def _consistent(self) -> EventIn:
        zone = ZoneInfo(self.timezone)
        start = self.start_utc()
        wall = self.starts_at.replace(tzinfo=None)
        if self.starts_at.tzinfo is None:
            # A wall-clock time that does not exist (skipped by a spring-forward
            # change) would silently move by an hour; refuse it instead.
            roundtrip = start.astimezone(zone).replace(tzinfo=None)
            if roundtrip != wall:
                raise ValueError(
                    f"starts_at: {wall:%Y-%m-%d %H:%M} does not exist in {self.timezone} "
                    "(the clocks skip it)"
                )
        if self.replay_until is not None and self.replay_until < start.astimezone(zone).date():
            raise ValueError("replay_until: the replay cannot end before the call")
        if (
            self.passcode is not None
            and self.speaker_passcode is not None
            and self.passcode == self.speaker_passcode
        ):
            raise ValueError("speaker_passcode: must differ from the listener passcode")
        # A replay code is printed in the release too: equal to the speaker's,
        # it would hand the floor to anyone with the release.
        if self.replay_passcode is not None:
            if self.replay_passcode == self.speaker_passcode:
                raise ValueError("replay_passcode: must differ from the speaker passcode")
            if self.replay_passcode == self.passcode:
                raise ValueError("replay_passcode: must differ from the listener passcode")
        _distinct_phones(self.speakers)
        if self.phone_requires_registration and self.registration is Registration.OFF:
            # PINs go to webcast registrants: with no registration, nobody could call.
            raise ValueError(
                "phone_requires_registration: needs webcast registration (required or optional)"
            )
        return self

    def start_utc(self) -> datetime:
        """The start as an aware UTC datetime, reading a naive time in `timezone`."""
        if self.starts_at.tzinfo is None:
            return self.starts_at.replace(tzinfo=ZoneInfo(self.timezone)).astimezone(UTC)
        return self.starts_at.astimezone(UTC)


class EventFile(_Strict):
    """One event with its company and contacts: the TOML file and the POST body."""

    company: CompanyIn
    contacts: Annotated[list[ContactIn], Field(max_length=MAX_CONTACTS)] = []
    event: EventIn


class EventPatch(_Strict):
    """Fields an operator may change while the event is still scheduled (speakers: or live)."""

    title: ShortText | None = None
    period: PeriodText | None = None
    starts_at: EventTime | None = None
    timezone: ZoneName | None = None
    duration_minutes: Annotated[int, Field(ge=5, le=24 * 60)] | None = None
    replay_until: EventDate | None = None
    webcast_url: HttpUrl | None = None
    registration: Registration | None = None
    phone_requires_registration: bool | None = None
    glossary: Annotated[list[GlossaryTerm], Field(max_length=MAX_GLOSSARY)] | None = None
    dial_in: Annotated[list[DialIn], Field(min_length=1, max_length=MAX_DIAL_INS)] | None = None
    replay_dial_in: Annotated[list[DialIn], Field(max_length=MAX_DIAL_INS)] | None = None
    speakers: Annotated[list[SpeakerIn], Field(max_length=MAX_SPEAKERS)] | None = None

    @model_validator(mode="after")
    def _speakers_apart(self) -> EventPatch:
        if self.speakers is not None:
            _distinct_phones(self.speakers)
        return self


class LogoInfo(BaseModel):
    """The company's logo as pages link it (the bytes are served by ``web.brand``)."""

    media_type: str
    digest: str
    width: int
    height: int


class Company(BaseModel):
    id: int
    name: str
    ticker: str
    exchange: str
    website: str | None
    city: str
    about: str
    accent: str | None = None
    logo: LogoInfo | None = None


class Contact(BaseModel):
    group: str
    name: str
    title: str | None
    organization: str | None
    phone: str | None
    email: str | None


class Speaker(BaseModel):
    """A listed speaker as stored (``phone`` in E.164)."""

    name: str
    title: str | None = None
    phone: str | None = None

    @property
    def label(self) -> str:
        """How the console names them: "Mark Chen, Chief Financial Officer"."""
        return speaker_label(self.name, self.title)


class EventRecord(BaseModel):
    """An event as stored, with everything a release or a page needs."""

    id: int
    company: Company
    contacts: list[Contact]
    title: str
    period: str
    kind: EventKind
    starts_at: datetime = Field(description="Aware, UTC")
    timezone: str
    duration_minutes: int
    announced_on: date
    passcode: str
    speaker_passcode: str
    replay_until: date | None
    replay_passcode: str
    webcast_url: str | None
    registration: Registration = Registration.REQUIRED
    phone_requires_registration: bool = False
    glossary: list[str] = []
    dial_in: list[DialIn]
    replay_dial_in: list[DialIn]
    speakers: list[Speaker] = []
    state: EventState
    version: int = Field(
        default=1,
        description="Grows by one with every change; send it back (If-Match) so that a "
        "change made meanwhile by someone else is refused, not overwritten",
    )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def local_start(self) -> datetime:
        """The start in the event's own zone."""
        return self.starts_at.astimezone(self.zone)

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)

    def replay_available(self, now: datetime) -> bool:
        """True from the call's end through the last day of the replay window."""
        if self.replay_until is None or self.state not in (EventState.ENDED, EventState.ARCHIVED):
            return False
        return now.astimezone(self.zone).date() <= self.replay_until


class EventSummary(BaseModel):
    id: int
    ticker: str
    title: str
    starts_at: datetime
    timezone: str
    state: EventState
