"""The webcast's audience: who registered, and how long each browser listened.

A browser that registers gets a random token in a signed cookie; one that
plays a webcast whose registration is not required gets such a token (a
browser id) with its first beacon. Only the token's SHA-256 is stored, and an
anonymous browser gets its row with its first beacon. While the player
plays, the page sends a beacon every ``BEACON_INTERVAL`` seconds. Time is
counted on the server, from the gap since the listener's previous beacon and
never more than ``MAX_CREDIT``, so a page that claims hours, or one left
paused, earns nothing it did not spend listening (the page's first beacon
after a pause says ``resumed`` and credits nothing); a beacon sooner than
``MIN_BEACON_GAP`` after the last one counted is refused (``BeaconTooSoon``)
and counts nothing, so one id cannot be replayed to look like many.

Beacons are counted in memory (``BeaconBook``) and written in batches: ten
thousand listeners send about 670 beacons a second, and a transaction for
each would be most of the web process's work. A listener's first beacon in
this process reads (or makes) its row; after that its beacons touch only
memory, and ``Audience.flush`` writes every listener heard since the last
flush in one transaction, as increments. The web app flushes every
``FLUSH_INTERVAL`` seconds from a thread (``BeaconFlusher``) and once more
when it stops, so a crash loses at most one interval's beacons; the readers
(``listeners``, ``count_listening``) flush first, so reports and the console
see every beacon counted.

Over 500 lines because the pure ``BeaconBook`` lives beside the store that
locks and writes it: both share the listener's types and the rules above.
Moving the book (with ``WebListener`` and the errors) to a module of its own
is the next step if either grows.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import secrets
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from callbridge.store.db import Database
from callbridge.store.events import StoreError
from callbridge.store.models import EventRow, WebcastListenerRow

log = logging.getLogger(__name__)

BEACON_INTERVAL = 15
# A beacon credits at most this many seconds: two intervals (one beacon lost on the
# way, or its tick skipped by a busy page) and a late timer's slack. At exactly two
# intervals a single lost beacon landed a few milliseconds past the cap and cost
# the listener both intervals.
MAX_CREDIT = 2 * BEACON_INTERVAL + 5
# The page sends one beacon when it starts playing and then one per interval,
# so two may come a moment apart; anything faster is not a page.
MIN_BEACON_GAP = 2.0
# How often the web app writes the beacons it holds: what a crash can lose.
FLUSH_INTERVAL = 2.0
# An erased registrant's token digest begins so: no token's SHA-256 does (hex only).
ERASED = "erased-"
# Listeners held in memory at once; more new ones are refused until some go quiet.
HELD_LIMIT = 100_000
# A listener written and quiet this long is dropped from memory; its next beacon reads its row.
HELD_QUIET = timedelta(seconds=2 * MAX_CREDIT)


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


class AudienceFull(StoreError):
    """``HELD_LIMIT`` listeners are beaconing already; a new one is refused, nothing counted."""

    status = 503


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


# -- counting in memory ------------------------------------------------------------------------

# A listener in the book: the event and the SHA-256 of its token.
Key = tuple[int, str]


@dataclass
class _Tally:
    """One listener as the book counts it: its row as read, plus what was counted since."""

    listener: WebListener  # live/replay seconds and heard times are the counted totals
    written: WebListener  # what the database holds (as far as this process wrote it)
    mode: ListenMode | None = None  # the last beacon's, while held


@dataclass(frozen=True)
class Due:
    """One listener's counting not yet in the database: a row of the next flush."""

    key: Key
    row_id: int
    live_seconds: int  # to add
    replay_seconds: int  # to add
    first_heard_at: datetime | None
    last_heard_at: datetime | None
    counted: WebListener  # the totals this flush brings the row to


class BeaconBook:
    """Beacons counted in memory, by the same rules as the database; no IO, ``now`` given.

    ``credit`` counts a beacon of a listener the book holds (``hold`` adds
    one, from its row); ``due`` lists what the next flush writes and
    ``written`` marks it done; ``forget_quiet`` drops listeners written and
    quiet since ``HELD_QUIET``. Not thread-safe: ``Audience`` locks it.
    """

    def __init__(self, limit: int = HELD_LIMIT) -> None:
        self.limit = limit
        self._tallies: dict[Key, _Tally] = {}
        self._latest: datetime | None = None

    def __len__(self) -> int:
        return len(self._tallies)

    def holds(self, key: Key) -> bool:
        return key in self._tallies

    def hold(self, key: Key, row: WebListener) -> None:
        """Start counting a listener from its row as read; raises ``AudienceFull`` at the limit."""
        if key in self._tallies:
            return
        if len(self._tallies) >= self.limit:
            raise AudienceFull("too many web listeners at once; try again shortly")
        self._tallies[key] = _Tally(listener=row, written=row)

    def credit(
        self, key: Key, mode: ListenMode, now: datetime, *, resumed: bool = False
    ) -> WebListener:
        """Count one beacon of a held listener; returns its totals. Raises ``BeaconTooSoon``.

        The first beacon a listener ever sends credits nothing; later ones
        credit the gap since the previous one, rounded, or nothing past
        ``MAX_CREDIT``. The first beacon in another mode than the last one
        (a live listener who then plays the replay) credits nothing either:
        the gap was spent in neither; nor does a ``resumed`` one, the first
        after the listener paused (the gap was the pause). A refused beacon
        changes nothing.
        """
        tally = self._tallies[key]
        heard = tally.listener
        live, replay = heard.live_seconds, heard.replay_seconds
        first = heard.first_heard_at
        if first is None:
            first = now
        elif heard.last_heard_at is not None:
            gap = (now - heard.last_heard_at).total_seconds()
            if gap < MIN_BEACON_GAP:
                raise BeaconTooSoon(f"one beacon per {MIN_BEACON_GAP:g} s at most", field="beacon")
            switched = tally.mode is not None and tally.mode is not mode
            credited = gap <= MAX_CREDIT and not switched and not resumed
            credit = round(gap) if credited else 0
            if mode is ListenMode.LIVE:
                live += credit
            else:
                replay += credit
        tally.listener = replace(
            heard,
            first_heard_at=first,
            last_heard_at=now,
            live_seconds=live,
            replay_seconds=replay,
        )
        tally.mode = mode
        if self._latest is None or now > self._latest:
            self._latest = now
        return tally.listener

    def renamed(self, key: Key, row: WebListener) -> WebListener:
        """A held listener registered: its new name, with the time the book counted."""
        tally = self._tallies.get(key)
        if tally is None:
            return row
        tally.listener = replace(tally.listener, name=row.name, firm=row.firm, email=row.email)
        tally.written = replace(tally.written, name=row.name, firm=row.firm, email=row.email)
        return tally.listener

    def due(self) -> list[Due]:
        """What the database lacks, one ``Due`` per listener heard since it was last written."""
        rows = []
        for key, tally in self._tallies.items():
            counted, written = tally.listener, tally.written
            if counted.last_heard_at == written.last_heard_at:
                continue  # no beacon counted since
            rows.append(
                Due(
                    key=key,
                    row_id=counted.id,
                    live_seconds=counted.live_seconds - written.live_seconds,
                    replay_seconds=counted.replay_seconds - written.replay_seconds,
                    first_heard_at=counted.first_heard_at,
                    last_heard_at=counted.last_heard_at,
                    counted=counted,
                )
            )
        return rows

    def written(self, rows: list[Due]) -> None:
        """Mark what a flush wrote; beacons counted while it ran stay due."""
        for row in rows:
            tally = self._tallies.get(row.key)
            if tally is not None:
                tally.written = row.counted

    def drop(self, key: Key) -> None:
        """Forget a listener (erased): its token opens nothing any more."""
        self._tallies.pop(key, None)

    def forget_quiet(self) -> int:
        """Drop listeners written and not heard for ``HELD_QUIET``; returns how many."""
        if self._latest is None:
            return 0
        before = self._latest - HELD_QUIET
        quiet = [
            key
            for key, tally in self._tallies.items()
            if tally.written.last_heard_at == tally.listener.last_heard_at
            and tally.listener.last_heard_at is not None
            and tally.listener.last_heard_at < before
        ]
        for key in quiet:
            del self._tallies[key]
        return len(quiet)


# -- the database ------------------------------------------------------------------------------

# Listened: a later beacon credited time. The first beacon (sent when the audio
# starts) credits nothing, so one page load and one request are not a listener.
LISTENED = (WebcastListenerRow.live_seconds + WebcastListenerRow.replay_seconds) > 0
# Registered with something to show for it (a name, a firm or an email).
GAVE_DETAILS = (
    WebcastListenerRow.name.is_not(None)
    | WebcastListenerRow.firm.is_not(None)
    | WebcastListenerRow.email.is_not(None)
)

# One flush: an executemany of this, increments so that nothing else's writes are lost.
_Row = WebcastListenerRow
_WRITE = (
    update(_Row)
    .where(_Row.id == bindparam("row_id"))
    .values(
        live_seconds=_Row.live_seconds + bindparam("add_live"),
        replay_seconds=_Row.replay_seconds + bindparam("add_replay"),
        first_heard_at=func.coalesce(
            _Row.first_heard_at, bindparam("first", type_=_Row.first_heard_at.type)
        ),
        last_heard_at=bindparam("last", type_=_Row.last_heard_at.type),
    )
)


class Audience:
    """Registrations and listening time for every event's webcast.

    Safe to call from several threads: the book has a lock, flushes run one
    at a time, and two first beacons of one browser make one row (the
    token's digest is unique; the loser of the insert reads the winner's).
    """

    def __init__(self, database: Database, *, limit: int = HELD_LIMIT) -> None:
        self.database = database
        self._book = BeaconBook(limit)
        self._lock = threading.Lock()  # the book
        self._flushing = threading.Lock()  # flushes

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
                    view = _view(row)
                    with self._lock:
                        return browser, self._book.renamed((event_id, _digest(browser)), view)
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

    def erase(self, event_id: int, listener_id: int) -> WebListener | None:
        """Erase a registrant: name, firm and email gone, the token replaced so their
        cookie names nobody; the listening time stays, as an anonymous row. None if the
        event has no such listener. Beacons held in memory are written first."""
        self.flush()
        with self.database.session() as session, session.begin():
            row = session.get(WebcastListenerRow, listener_id)
            if row is None or row.event_id != event_id or row.token_sha256.startswith(ERASED):
                return None
            old = (event_id, row.token_sha256)
            row.name = row.firm = row.email = None
            # A digest no token has: the cookie's beacons and registration find nothing.
            row.token_sha256 = ERASED + secrets.token_hex(28)
            session.flush()
            view = _view(row)
        with self._lock:
            self._book.drop(old)
        return view

    def identify(self, event_id: int, token: str | None) -> WebListener | None:
        """The listener behind a cookie token, if it was issued for this event.

        Its seconds are the database's: up to one flush behind the beacons.
        """
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

    def heard_held(
        self, event_id: int, token: str, mode: ListenMode, now: datetime, *, resumed: bool = False
    ) -> WebListener | None:
        """Count a beacon of a listener already in memory, without IO; None if it is not.

        Cheap enough for the event loop; on None, call ``heard`` (in a thread).
        Raises ``BeaconTooSoon`` as ``heard`` does.
        """
        key = (event_id, _digest(token))
        with self._lock:
            if not self._book.holds(key):
                return None
            return self._book.credit(key, mode, now, resumed=resumed)

    def heard(
        self,
        event_id: int,
        token: str,
        mode: ListenMode,
        now: datetime,
        *,
        anonymous: bool = False,
        resumed: bool = False,
    ) -> WebListener:
        """Credit a beacon: the time since the previous one, capped; the first credits nothing.

        ``token`` must come from a cookie the server signed. With ``anonymous``
        (registration is not required) a token seen for the first time gets
        its listener row here; otherwise it must have registered. Raises
        ``StoreError`` for an unknown token, ``BeaconTooSoon`` for a beacon
        too close to the last one counted and ``AudienceFull`` past
        ``HELD_LIMIT``; none of them changes anything. The first beacon in
        this process reads the row; the time counted reaches the database
        with the next ``flush``.
        """
        key = (event_id, _digest(token))
        with self._lock:
            if self._book.holds(key):
                return self._book.credit(key, mode, now, resumed=resumed)
        # Outside the lock, so that first beacons read rows side by side. Two
        # of one browser both read (the second insert finds the first's row);
        # the book holds the first read, and the second beacon is too soon.
        row = self._row(event_id, key[1], now, anonymous=anonymous)
        with self._lock:
            self._book.hold(key, row)
            return self._book.credit(key, mode, now, resumed=resumed)

    def _row(self, event_id: int, digest: str, now: datetime, *, anonymous: bool) -> WebListener:
        found = self._read(event_id, digest)
        if found is not None:
            return found
        if not anonymous:
            raise StoreError("not a listener of this webcast; register first", field="token")
        try:
            with self.database.session() as session, session.begin():
                row = WebcastListenerRow(
                    event_id=event_id,
                    token_sha256=digest,
                    registered_at=now,
                    live_seconds=0,
                    replay_seconds=0,
                )
                session.add(row)
                session.flush()
                return _view(row)
        except IntegrityError:
            # Another process made the row first (or the token is another event's).
            found = self._read(event_id, digest)
            if found is None:
                raise StoreError("not a listener of this webcast", field="token") from None
            return found

    def _read(self, event_id: int, digest: str) -> WebListener | None:
        with self.database.session() as session:
            row = session.scalar(
                select(WebcastListenerRow).where(
                    WebcastListenerRow.token_sha256 == digest,
                    WebcastListenerRow.event_id == event_id,
                )
            )
            return None if row is None else _view(row)

    def flush(self) -> int:
        """Write every beacon counted since the last flush, in one transaction; returns rows.

        Call it every ``FLUSH_INTERVAL`` (``BeaconFlusher`` does) and when
        the app stops. On a database error nothing is marked written: the
        next flush carries it.
        """
        with self._flushing:
            with self._lock:
                rows = self._book.due()
            if rows:
                params: list[dict[str, Any]] = [
                    {
                        "row_id": row.row_id,
                        "add_live": row.live_seconds,
                        "add_replay": row.replay_seconds,
                        "first": row.first_heard_at,
                        "last": row.last_heard_at,
                    }
                    for row in rows
                ]
                with self.database.engine.begin() as connection:
                    connection.execute(_WRITE, params)
            with self._lock:
                self._book.written(rows)
                self._book.forget_quiet()
            return len(rows)

    def listeners(self, event_id: int) -> list[WebListener]:
        """Every listener of the event with its time heard, the beacons held in memory included.

        A listener is a browser that registered (``GAVE_DETAILS``) or that
        has been credited listening time (``LISTENED``); an anonymous browser
        whose first beacon is all there is has not listened yet, and is not one.
        """
        self.flush()
        with self.database.session() as session:
            rows = session.scalars(
                select(WebcastListenerRow)
                .where(
                    WebcastListenerRow.event_id == event_id,
                    GAVE_DETAILS | LISTENED,
                )
                .order_by(WebcastListenerRow.registered_at, WebcastListenerRow.id)
            ).all()
            return [_view(row) for row in rows]

    def count_listening(self, event_id: int, since: datetime) -> int:
        """Browsers that have listened (``LISTENED``) and were heard from after ``since``.

        The console's web-listener count: a page load or a lone first beacon
        is not a listener.
        """
        self.flush()
        with self.database.session() as session:
            return int(
                session.scalar(
                    select(func.count(WebcastListenerRow.id)).where(
                        WebcastListenerRow.event_id == event_id,
                        WebcastListenerRow.last_heard_at >= since,
                        LISTENED,
                    )
                )
                or 0
            )


class BeaconFlusher:
    """A thread that flushes an ``Audience`` every ``interval`` s; ``stop`` flushes a last time.

    Start it when the web app starts and stop it when the app stops (its
    lifespan); ``stop`` blocks for one flush, so call it from a thread.
    """

    def __init__(self, audience: Audience, interval: float = FLUSH_INTERVAL) -> None:
        self.audience = audience
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="beacon-flush", daemon=True)

    def start(self) -> BeaconFlusher:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._flush()

    def _flush(self) -> None:
        try:
            self.audience.flush()
        except Exception:
            # The database is away: the beacons stay held and the next flush retries.
            log.exception("writing the webcast's beacons failed; retrying")

    def stop(self) -> None:
        """End the thread and write what is held (nothing is lost on a clean stop)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.audience.flush()
