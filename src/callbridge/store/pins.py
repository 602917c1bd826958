"""Registrants' personal PINs for the phone: drawn, shown again, looked up, revoked.

A registrant of an event's webcast (``store.audience``) gets a PIN of
``PIN_DIGITS`` digits, which they key at the same IVR as a passcode and
which names them on the call. The rules:

- **Unguessable.** A PIN is 10 digits and an event gives at most
  ``PIN_REGISTRANTS`` of them: the space is at least 10⁶ × the registrants,
  so one guess finds somebody's PIN once in a million at worst, and the
  passcode guard (``ivr/guard.py``) slows and refuses a guesser after a few
  wrong codes, PINs and passcodes alike. The randomness is ``secrets``'.
- **Unique**, over every event (a PIN names one registrant of one event; its
  digest is the table's unique key), and never equal to a passcode any event
  holds (``passcode_claim``) when it is drawn. A passcode keyed is matched
  before a PIN, so a code typed later into an event equal to a PIN opens the
  passcode's role, never the registrant.
- **Not stored in clear.** The IVR looks a PIN up on every try, so it is
  kept as a keyed hash: ``digest`` is HMAC-SHA256 of the PIN under the PIN
  key (derived from the server's secret key, never in the database), found
  by an index without the PIN. A copy of the database alone gives no PIN
  and no way to test one offline. The PIN can still be shown again (the
  webcast page on every visit, the confirmation email whenever it is sent):
  it is drawn as the HMAC of a random ``salt`` (``secrets``) under the same
  key, so ``pin_of`` recomputes it from the row. Anyone holding the key and
  the database could recompute every PIN; the key is the server's, as it
  is for the session cookies, and a hash of a 10-digit PIN would not stand
  up to the key's holder anyway (10¹⁰ HMACs take minutes).
- **Once a registrant is gone, the PIN is.** ``revoke`` deletes the row;
  deleting the registrant's listener row cascades to it; a registrant whose
  name was removed (anonymised) is matched by no PIN.

Every node that answers callers derives the same key: a cascade's nodes
share ``CALLBRIDGE_SECRET_KEY``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, select
from sqlalchemy.exc import IntegrityError

from callbridge.store.db import Database
from callbridge.store.events import LIVE, StoreError
from callbridge.store.models import (
    DialInRow,
    EventRow,
    PasscodeClaimRow,
    RegistrantPinRow,
    WebcastListenerRow,
)

log = logging.getLogger(__name__)

PIN_DIGITS = 10
# PINs one event gives out: 10**PIN_DIGITS / PIN_REGISTRANTS = 10**6 PINs of space each.
PIN_REGISTRANTS = 10_000
# Draws before giving up on a free PIN (each collides once in a million at most).
MAX_DRAWS = 8
_ARCHIVED = "archived"


def pin_key(secret_key: str) -> bytes:
    """The PIN key, derived from the server's secret key (the cookies' key is not reused as is)."""
    return hmac.new(secret_key.encode(), b"callbridge personal PIN v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class PinMatch:
    """The registrant a PIN names: their event and what they registered with."""

    event_id: int
    listener_id: int
    name: str
    firm: str | None
    email: str | None


class PinsExhausted(StoreError):
    """The event has given ``PIN_REGISTRANTS`` PINs: more would make them guessable."""

    status = 409


class PinBook:
    """Personal PINs in the database, under one key (``pin_key``). Thread-safe (no state)."""

    def __init__(self, database: Database, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the PIN key is at least 16 bytes")
        self.database = database
        self._key = key

    # -- the PIN from its salt, and its digest ------------------------------------------

    def _pin(self, salt: str) -> str:
        mac = hmac.new(self._key, b"pin:" + salt.encode(), hashlib.sha256).digest()
        # 256 bits modulo 10**10: the bias is far below one part in 10**60.
        return f"{int.from_bytes(mac, 'big') % 10**PIN_DIGITS:0{PIN_DIGITS}d}"

    def digest(self, pin: str) -> str:
        """The PIN's keyed hash, as the table keeps it."""
        return hmac.new(self._key, b"digest:" + pin.encode(), hashlib.sha256).hexdigest()

    # -- writing ------------------------------------------------------------------------------

    def issue(self, event_id: int, listener_id: int, now: datetime) -> str:
        """The registrant's PIN: the one they have, else a new one. Call after registering.

        Raises ``StoreError`` for a listener that is not this event's
        registrant, ``PinsExhausted`` once the event gave ``PIN_REGISTRANTS``.
        """
        existing = self.pin_of(listener_id)
        if existing is not None:
            return existing
        for _ in range(MAX_DRAWS):
            salt = secrets.token_hex(16)
            pin = self._pin(salt)
            try:
                with self.database.session() as session, session.begin():
                    listener = session.get(WebcastListenerRow, listener_id)
                    if listener is None or listener.event_id != event_id or listener.name is None:
                        raise StoreError("not a registrant of this event", field="listener_id")
                    given = session.scalar(
                        select(func.count()).where(RegistrantPinRow.event_id == event_id)
                    )
                    if (given or 0) >= PIN_REGISTRANTS:
                        raise PinsExhausted(
                            f"event {event_id} has given {PIN_REGISTRANTS} personal PINs",
                            field="pin",
                        )
                    if session.get(PasscodeClaimRow, pin) is not None:
                        continue  # an event's passcode: draw again
                    session.add(
                        RegistrantPinRow(
                            listener_id=listener_id,
                            event_id=event_id,
                            salt=salt,
                            digest=self.digest(pin),
                            issued_at=now,
                        )
                    )
                return pin
            except IntegrityError:
                # Another registrant's PIN, or this registrant's, given meanwhile.
                existing = self.pin_of(listener_id)
                if existing is not None:
                    return existing
        raise StoreError("could not draw a free PIN; try again", field="pin")

    def revoke(self, listener_id: int) -> bool:
        """The registrant's PIN opens nothing from now on; False if they had none."""
        with self.database.session() as session, session.begin():
            result = session.execute(
                delete(RegistrantPinRow).where(RegistrantPinRow.listener_id == listener_id)
            )
            return bool(getattr(result, "rowcount", 0))

    # -- reading ------------------------------------------------------------------------------

    def pin_of(self, listener_id: int) -> str | None:
        """The registrant's PIN, to show them (page, API, confirmation email); None if none."""
        with self.database.session() as session:
            salt = session.scalar(
                select(RegistrantPinRow.salt).where(RegistrantPinRow.listener_id == listener_id)
            )
        return None if salt is None else self._pin(salt)

    def match(self, dialled_e164: str | None, pin: str) -> PinMatch | None:
        """The registrant ``pin`` names on the number dialled, or None.

        Their event must not be archived and must have ``dialled_e164`` as a
        live dial-in number (None, a trunk that sends none: any event); the
        registrant must still have a name (not anonymised).
        """
        if len(pin) != PIN_DIGITS or not pin.isascii() or not pin.isdigit():
            return None
        query = (
            select(RegistrantPinRow.event_id, WebcastListenerRow)
            .join(WebcastListenerRow, WebcastListenerRow.id == RegistrantPinRow.listener_id)
            .join(EventRow, EventRow.id == RegistrantPinRow.event_id)
            .where(
                RegistrantPinRow.digest == self.digest(pin),
                EventRow.state != _ARCHIVED,
                WebcastListenerRow.name.is_not(None),
            )
        )
        if dialled_e164 is not None:
            query = query.where(
                exists().where(
                    DialInRow.event_id == EventRow.id,
                    DialInRow.number == dialled_e164,
                    DialInRow.purpose == LIVE,
                )
            )
        with self.database.session() as session:
            found = session.execute(query).first()
            if found is None:
                return None
            event_id, listener = found
            assert listener.name is not None
            return PinMatch(event_id, listener.id, listener.name, listener.firm, listener.email)

    def of_event(self, event_id: int) -> dict[str, PinMatch]:
        """Every PIN of the event that opens (named registrants), by keyed hash: for a
        node that must admit registrants while the database is away (``bridge.outage``)."""
        query = (
            select(RegistrantPinRow.digest, WebcastListenerRow)
            .join(WebcastListenerRow, WebcastListenerRow.id == RegistrantPinRow.listener_id)
            .where(RegistrantPinRow.event_id == event_id, WebcastListenerRow.name.is_not(None))
        )
        with self.database.session() as session:
            return {
                digest: PinMatch(event_id, row.id, row.name or "", row.firm, row.email)
                for digest, row in session.execute(query)
            }

    def events_with_pins(self, event_ids: Collection[int]) -> frozenset[int]:
        """Which of ``event_ids`` have given any PIN (their IVR collects PIN-length codes)."""
        if not event_ids:
            return frozenset()
        with self.database.session() as session:
            rows = session.scalars(
                select(RegistrantPinRow.event_id)
                .where(RegistrantPinRow.event_id.in_(list(event_ids)))
                .distinct()
            )
            return frozenset(rows)
