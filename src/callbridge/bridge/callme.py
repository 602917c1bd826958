"""Call me: may the bridge call this registrant's number now? (the pure core)

A registered webcast listener asks for a call to their own number; the
bridge pays for that call, so every request passes the toll-fraud checks
here before a single INVITE leaves (``bridge.service.Bridge.call_me`` is the
glue, ``bridge.dialout`` places the call):

- the operator has not switched call-me off for the event (409);
- the number is valid E.164 in an allowed country code (the ``countries``
  configured, else the country codes of the event's own dial-in numbers),
  and a fixed line or a mobile: never premium-rate, shared-cost, toll-free,
  VoIP, personal, pager, UAN, voicemail or short (422, naming ``number``);
- at most one call pending per registrant, ``per_registrant`` calls per
  registrant per event, ``per_address_minute`` from one client address (a
  script registering afresh gets a new registrant, not a new address),
  ``per_event_minute`` per event in any minute and ``global_minute`` in all
  (429 with the seconds to wait).

Time is a parameter (``now``, seconds on any monotonic clock); nothing here
reads a clock, a socket or the store. Every state it holds is bounded: the
minute windows keep one timestamp a call, at most the cap; the per-registrant
counts live as long as the process (an event has a bounded number of
registrants, and ``MAX_REGISTRANTS`` caps them all).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers import PhoneNumberType

WINDOW = 60.0  # seconds: the "per minute" of the rates
MAX_REGISTRANTS = 100_000  # per-registrant counts kept; past it the oldest are forgotten

# What a person answers: anything else costs the bridge's owner or reaches no one.
ALLOWED_TYPES = frozenset(
    {PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
)
_TYPE_NAMES = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.VOIP: "a VoIP number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal (forwarding) number",
    PhoneNumberType.PAGER: "a pager",
    PhoneNumberType.UAN: "a non-geographic (UAN) number",
    PhoneNumberType.VOICEMAIL: "a voicemail access number",
}


@dataclass(frozen=True)
class CallMeRules:
    """The limits; ``countries`` empty: the country codes of the event's dial-in numbers."""

    countries: tuple[int, ...] = ()
    per_registrant: int = 3
    per_address_minute: int = 6
    per_event_minute: int = 20
    global_minute: int = 60


class Reason(enum.StrEnum):
    """Why a request was refused (the audit trail's ``reason``)."""

    OFF = "off"
    UNAVAILABLE = "unavailable"  # the call is over, or no trunk could take the call
    BAD_NUMBER = "bad_number"
    COUNTRY = "country"
    NUMBER_TYPE = "number_type"
    PENDING = "pending"
    REGISTRANT_LIMIT = "registrant_limit"
    ADDRESS_RATE = "address_rate"
    EVENT_RATE = "event_rate"
    GLOBAL_RATE = "global_rate"


_STATUS = {
    Reason.OFF: 409,
    Reason.UNAVAILABLE: 409,
    Reason.BAD_NUMBER: 422,
    Reason.COUNTRY: 422,
    Reason.NUMBER_TYPE: 422,
    Reason.PENDING: 429,
    Reason.REGISTRANT_LIMIT: 429,
    Reason.ADDRESS_RATE: 429,
    Reason.EVENT_RATE: 429,
    Reason.GLOBAL_RATE: 429,
}


@dataclass(frozen=True)
class Refused:
    """A refused request: the HTTP status to answer with, the message for the page."""

    reason: Reason
    message: str
    retry_after: int | None = None  # seconds (429 only)

    @property
    def status(self) -> int:
        return _STATUS[self.reason]

    @property
    def field(self) -> str | None:
        """The form field the refusal is about (a 422's), else None."""
        return "number" if self.status == 422 else None


@dataclass(frozen=True)
class Allowed:
    """The request may be placed: ``number`` in E.164."""

    number: str


def check_number(number: str, countries: Iterable[int]) -> Allowed | Refused:
    """``number`` as E.164 if a person in an allowed country answers it; the refusal else."""
    shown = number[:32]
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return Refused(Reason.BAD_NUMBER, f"{shown!r} is not a number in +<country><number> form")
    if not phonenumbers.is_valid_number(parsed):
        return Refused(Reason.BAD_NUMBER, f"{shown!r} is not a valid (complete) phone number")
    allowed = sorted(set(countries))
    if parsed.country_code not in allowed:
        listed = ", ".join(f"+{c}" for c in allowed) or "none"
        return Refused(
            Reason.COUNTRY,
            f"calls to +{parsed.country_code} are not offered for this event (only {listed})",
        )
    kind = phonenumbers.number_type(parsed)
    if kind not in ALLOWED_TYPES:
        what = _TYPE_NAMES.get(kind, "not a fixed line or a mobile")
        return Refused(Reason.NUMBER_TYPE, f"we call fixed lines and mobiles only, not {what}")
    return Allowed(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def country_codes(numbers: Iterable[str]) -> tuple[int, ...]:
    """The country codes of E.164 numbers (an event's dial-in numbers); unparsable ones skipped."""
    codes: set[int] = set()
    for number in numbers:
        try:
            code = phonenumbers.parse(number, None).country_code
        except phonenumbers.NumberParseException:
            continue
        if code is not None:
            codes.add(code)
    return tuple(sorted(codes))


def _wait(window: deque[float], now: float) -> int:
    """Whole seconds until the oldest call in a full window leaves it (at least 1)."""
    return max(1, math.ceil(window[0] + WINDOW - now))


@dataclass
class CallMeGuard:
    """Decides each request, and remembers the calls it let through until they settle.

    ``request`` says yes (and counts the call) or no; ``placed`` ties the
    dial id to the registrant once the bridge has placed it; ``settled``
    frees the registrant's pending slot when the dial has failed or ended
    (``DialOut.on_state``); ``switch`` turns call-me off or on for an event.
    """

    rules: CallMeRules = field(default_factory=CallMeRules)
    off: set[int] = field(default_factory=set)  # events the operator switched off
    _global: deque[float] = field(default_factory=deque)
    _events: dict[int, deque[float]] = field(default_factory=dict)
    _sources: dict[str, deque[float]] = field(default_factory=dict)  # client address -> calls
    _counts: dict[tuple[int, int], int] = field(default_factory=dict)  # (event, registrant)
    _pending: dict[tuple[int, int], str] = field(default_factory=dict)  # -> dial id
    _dials: dict[str, tuple[int, int]] = field(default_factory=dict)  # dial id -> key

    def enabled(self, event_id: int) -> bool:
        return event_id not in self.off

    def switch(self, event_id: int, enabled: bool) -> None:
        """The operator's switch: off refuses every new request (a call placed goes on)."""
        if enabled:
            self.off.discard(event_id)
        else:
            self.off.add(event_id)

    def request(
        self,
        event_id: int,
        registrant: int,
        number: str,
        dial_in: Iterable[str],
        now: float,
        source: str = "",
    ) -> Allowed | Refused:
        """May ``registrant`` have the bridge call ``number`` for ``event_id`` now?

        ``dial_in`` are the event's dial-in numbers (the countries when none
        are configured); ``source`` is the client's address key. An
        ``Allowed`` is counted against every limit at once.
        """
        if event_id in self.off:
            return Refused(Reason.OFF, "call-me is switched off for this event; dial in instead")
        countries = self.rules.countries or country_codes(dial_in)
        checked = check_number(number, countries)
        if isinstance(checked, Refused):
            return checked
        key = (event_id, registrant)
        if key in self._pending:
            return Refused(Reason.PENDING, "a call to you is in progress already", 10)
        if self._counts.get(key, 0) >= self.rules.per_registrant:
            return Refused(
                Reason.REGISTRANT_LIMIT,
                f"you have asked for {self.rules.per_registrant} calls already; dial in instead",
                3600,
            )
        address = self._window(self._sources.get(source, deque()), now)
        if len(address) >= self.rules.per_address_minute:
            return Refused(
                Reason.ADDRESS_RATE,
                "too many calls were asked for from your network just now",
                _wait(address, now),
            )
        window = self._window(self._events.setdefault(event_id, deque()), now)
        if len(window) >= self.rules.per_event_minute:
            return Refused(
                Reason.EVENT_RATE,
                "too many calls are being placed for this call",
                _wait(window, now),
            )
        everyone = self._window(self._global, now)
        if len(everyone) >= self.rules.global_minute:
            return Refused(
                Reason.GLOBAL_RATE, "too many calls are being placed now", _wait(everyone, now)
            )
        window.append(now)
        everyone.append(now)
        address.append(now)
        self._sources.pop(source, None)  # the newest last: the oldest go first past the bound
        self._sources[source] = address
        if len(self._sources) > MAX_REGISTRANTS:
            del self._sources[next(iter(self._sources))]
        if len(self._counts) >= MAX_REGISTRANTS:
            del self._counts[next(iter(self._counts))]
        self._counts[key] = self._counts.get(key, 0) + 1
        self._pending[key] = ""  # held until ``placed`` names the dial, or ``given_back``
        return checked

    def placed(self, event_id: int, registrant: int, dial_id: str) -> None:
        """The bridge placed the allowed call as ``dial_id``: pending until it settles."""
        key = (event_id, registrant)
        self._pending[key] = dial_id
        self._dials[dial_id] = key

    def given_back(self, event_id: int, registrant: int) -> None:
        """An allowed call the bridge could not place: not pending (it still counts)."""
        self._pending.pop((event_id, registrant), None)

    def owner(self, dial_id: str) -> tuple[int, int] | None:
        """(event, registrant) of a call-me dial; None for a dial that is no call-me."""
        return self._dials.get(dial_id)

    def settled(self, dial_id: str, state: str) -> None:
        """A dial's state changed (``DialOut.on_state``): failed or ended frees the registrant.

        An answered call stays pending while it lasts: one call-me line per
        registrant at a time (their personal PIN is refused meanwhile too).
        """
        if state != "ended" and not state.startswith("failed"):
            return
        key = self._dials.get(dial_id)
        if key is not None and self._pending.get(key) == dial_id:
            del self._pending[key]
        if len(self._dials) > MAX_REGISTRANTS:
            del self._dials[next(iter(self._dials))]

    @staticmethod
    def _window(window: deque[float], now: float) -> deque[float]:
        while window and window[0] <= now - WINDOW:
            window.popleft()
        return window
