"""The webcast's audience: who registered, and how long each browser listened.

A browser that registers gets a random token in a signed cookie; one that
opens a webcast whose registration is not required gets such a token (a
browser id) with the page. Only the token's SHA-256 is stored, and an
anonymous browser gets its row with its first beacon. While the player
plays, the page sends a beacon every ``BEACON_INTERVAL`` seconds. Time is
counted on the server, from the gap since the listener's previous beacon and
never more than ``MAX_CREDIT``, so a page that claims hours, or one left
paused, earns nothing it did not spend listening; a beacon sooner than
``MIN_BEACON_GAP`` after the last one counted is refused (``BeaconTooSoon``)
and counts nothing, so one id cannot be replayed to look like many.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from callbridge.store.db import Database
from callbridge.store.events import StoreError
from callbridge.store.models import EventRow, WebcastListenerRow

BEACON_INTERVAL = 15
# A beacon credits at most this many seconds: one interval, a late timer, some slack.
MAX_CREDIT = 2 * BEACON_INTERVAL
# The page sends one beacon when it starts playing and then one per interval,
# so two may come a moment apart; anything faster is not a page.
MIN_BEACON_GAP = 2.0


class ListenMode(enum.StrEnum):
    LIVE = "live"
    REPLAY = "replay"


@dataclass(frozen=True)
class WebListener:
    id: int
    event_id: int
    name: str | None
    firm: str | None
    email: str | None
    registered_at: datetime
    first_heard_at: datetime | None
    last_heard_at: datetime | None
    live_seconds: int
    replay_seconds: int

    @property
    def registered(self) -> bool:
        return self.name is not None


class BeaconTooSoon(StoreError):
    """A beacon within ``MIN_BEACON_GAP`` of the listener's last one; nothing was counted."""

    status = 429


def new_token() -> str:
    """A fresh listener token (a browser id) for a cookie; unguessable, stored only hashed."""
    return "wl_" + secrets.token_urlsafe(24)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _view(row: WebcastListenerRow) -> WebListener:
    return WebListener(
        id=row.id,
        event_id=row.event_id,
        name=row.name,
        firm=row.firm,
        email=row.email,
        registered_at=row.registered_at,
        first_heard_at=row.first_heard_at,
        last_heard_at=row.last_heard_at,
        live_seconds=row.live_seconds,
        replay_seconds=row.replay_seconds,
    )


class Audience:
    """Registrations and listening time for every event's webcast."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def register(
        self,
        event_id: int,
        *,
        name: str | None,
        firm: str | None,
        email: str | None,
        now: datetime,
        browser: str | None = None,
    ) -> tuple[str, WebListener]:
        """A new listener for ``event_id``; returns the cookie token (shown once) and the row.

        ``browser`` is the signed browser id the page gave (registration
        optional): if it has listened anonymously, that row gets the name, so
        one browser stays one listener.
        """
        with self.database.session() as session, session.begin():
            if session.get(EventRow, event_id) is None:
                raise StoreError(f"no event {event_id}", field="event_id")
            if browser is not None:
                row = session.scalar(
                    select(WebcastListenerRow)
                    .where(
                        WebcastListenerRow.token_sha256 == _digest(browser),
                        WebcastListenerRow.event_id == event_id,
                    )
                    .with_for_update()
                )
                if row is not None and row.name is None:
                    row.name, row.firm, row.email = name, firm, email
                    session.flush()
                    return browser, _view(row)
            token = new_token()
            row = WebcastListenerRow(
                event_id=event_id,
                token_sha256=_digest(token),
                name=name,
                firm=firm,
                email=email,
                registered_at=now,
                live_seconds=0,
                replay_seconds=0,
            )
            session.add(row)
            session.flush()
            return token, _view(row)

    def identify(self, event_id: int, token: str | None) -> WebListener | None:
        """The listener behind a cookie token, if it was issued for this event."""
        if not token:
            return None
        with self.database.session() as session:
            row = session.scalar(
                select(WebcastListenerRow).where(
                    WebcastListenerRow.token_sha256 == _digest(token),
                    WebcastListenerRow.event_id == event_id,
                )
            )
            return None if row is None else _view(row)

    def heard(
        self,
        event_id: int,
        token: str,
        mode: ListenMode,
        now: datetime,
        *,
        anonymous: bool = False,
    ) -> WebListener:
        """Credit a beacon: the time since the previous one, capped; the first credits nothing.

        ``token`` must come from a cookie the server signed. With ``anonymous``
        (registration is not required) a token seen for the first time gets
        its listener row here; otherwise it must have registered. Raises
        ``StoreError`` for an unknown token and ``BeaconTooSoon`` for a
        beacon too close to the last one counted; neither changes anything.
        """
        try:
            return self._heard(event_id, token, mode, now, anonymous=anonymous)
        except IntegrityError:
            # Two first beacons of one browser raced to create its row: the
            # loser finds the winner's row and is refused as too soon.
            return self._heard(event_id, token, mode, now, anonymous=False)

    def _heard(
        self, event_id: int, token: str, mode: ListenMode, now: datetime, *, anonymous: bool
    ) -> WebListener:
        with self.database.session() as session, session.begin():
            row = session.scalar(
                select(WebcastListenerRow)
                .where(
                    WebcastListenerRow.token_sha256 == _digest(token),
                    WebcastListenerRow.event_id == event_id,
                )
                .with_for_update()
            )
            if row is None:
                if not anonymous:
                    raise StoreError(
                        "not a listener of this webcast; register first", field="token"
                    )
                row = WebcastListenerRow(
                    event_id=event_id,
                    token_sha256=_digest(token),
                    registered_at=now,
                    live_seconds=0,
                    replay_seconds=0,
                )
                session.add(row)
            if row.first_heard_at is None:
                row.first_heard_at = now
            elif row.last_heard_at is not None:
                gap = (now - row.last_heard_at).total_seconds()
                if gap < MIN_BEACON_GAP:
                    raise BeaconTooSoon(
                        f"one beacon per {MIN_BEACON_GAP:g} s at most", field="beacon"
                    )
                credit = round(gap) if gap <= MAX_CREDIT else 0
                if mode is ListenMode.LIVE:
                    row.live_seconds += credit
                else:
                    row.replay_seconds += credit
            row.last_heard_at = now
            session.flush()
            return _view(row)

    def listeners(self, event_id: int) -> list[WebListener]:
        with self.database.session() as session:
            rows = session.scalars(
                select(WebcastListenerRow)
                .where(WebcastListenerRow.event_id == event_id)
                .order_by(WebcastListenerRow.registered_at, WebcastListenerRow.id)
            ).all()
            return [_view(row) for row in rows]

    def count_listening(self, event_id: int, since: datetime) -> int:
        """Browsers whose last beacon came after ``since``: the console's web-listener count."""
        with self.database.session() as session:
            return int(
                session.scalar(
                    select(func.count(WebcastListenerRow.id)).where(
                        WebcastListenerRow.event_id == event_id,
                        WebcastListenerRow.last_heard_at >= since,
                    )
                )
                or 0
            )
