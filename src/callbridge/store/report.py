"""The engagement report: who was on the call, by channel, live and on the replay.

Per event: how many registered for the webcast; how many listened live and
to the replay, by phone and on the web, and for how many minutes; how many
questions were asked. Phone figures come from the call log (a caller's time
is from their join to their leave; a caller whose leave was never written,
the node having stopped, counts until the call's end, or nothing); web
figures from the webcast's beacons (``store.audience``: time the page spent
playing, counted on the server). Speakers are counted apart from listeners:
they talk rather than hear. Questions are the keypad's ``*1`` (``queue`` in
the log) and the web's written questions (``question_written``).

``engagement`` is pure (rows in, figures out); ``EngagementReport`` reads the
rows from the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from callbridge.store.audience import Audience, WebListener
from callbridge.store.calllog import Attendance, CallLog, LogEntry, LogKind
from callbridge.store.db import Database

PHONE = "phone"
WEB = "web"
REPLAY_ROLE = "replay"
SPEAKER_ROLES = frozenset({"host", "speaker"})


@dataclass(frozen=True)
class Heard:
    """Listeners on one channel in one mode, and the seconds they heard together."""

    listeners: int = 0
    seconds: int = 0

    @property
    def minutes(self) -> float:
        return self.seconds / 60


@dataclass(frozen=True)
class Engagement:
    """One event's figures; ``written_questions`` is None while none are collected."""

    event_id: int
    registrations: int
    live_phone: Heard
    live_web: Heard
    replay_phone: Heard
    replay_web: Heard
    speakers: int
    phone_questions: int
    written_questions: int | None = None
    # Listeners counted both live and on the replay: a browser that heard both,
    # a number heard on both (callers whose number the trunk asserted).
    both_phone: int = 0
    both_web: int = 0
    # Questions taken: phone lines opened (one a caller) and written questions answered.
    questions_answered: int = 0
    # The most listeners on the live call at one moment, phone and web together.
    peak_live: int = 0

    @property
    def average_live_minutes(self) -> float:
        """Minutes heard live per live listener (0 with none)."""
        live = self.live
        return live.minutes / live.listeners if live.listeners else 0.0

    @property
    def both(self) -> int:
        return self.both_phone + self.both_web

    @property
    def live(self) -> Heard:
        return _sum(self.live_phone, self.live_web)

    @property
    def replay(self) -> Heard:
        return _sum(self.replay_phone, self.replay_web)

    @property
    def questions(self) -> int:
        return self.phone_questions + (self.written_questions or 0)


def _sum(*parts: Heard) -> Heard:
    return Heard(sum(p.listeners for p in parts), sum(p.seconds for p in parts))


def _seconds(row: Attendance, ended_at: datetime | None) -> int:
    left = row.left_at or ended_at
    if left is None or left < row.joined_at:
        return 0
    return round((left - row.joined_at).total_seconds())


def engagement(
    event_id: int,
    attendance: Iterable[Attendance],
    entries: Iterable[LogEntry],
    web: Iterable[WebListener],
) -> Engagement:
    """The figures of one event from its attendance, its call log and its web listeners.

    A web listener counts live if the server credited it live seconds, on
    the replay if replay seconds, both if both (``both_web``: the replay the
    listener chose to play; the page never starts it by itself); one who
    opened the player and left before a second beacon heard nothing and
    counts in neither. A phone number heard live and on the replay is
    ``both_phone``.
    """
    log = list(entries)
    ends = [e.at for e in log if e.kind is LogKind.END]
    ended_at = max(ends) if ends else None
    live = [0, 0]
    replay = [0, 0]
    speakers = 0
    # The part each caller joined in: an analyst whose line was opened for a
    # question still came to listen (the attendance report shows them as speaking).
    joined_as = {e.participant_id: e.role for e in log if e.kind is LogKind.JOIN}
    numbers: dict[str, set[str]] = {"live": set(), REPLAY_ROLE: set()}
    for e in log:
        number = str(e.detail.get("number") or "") if e.kind is LogKind.JOIN else ""
        if number and e.role not in SPEAKER_ROLES:
            numbers[REPLAY_ROLE if e.role == REPLAY_ROLE else "live"].add(number)
    attendance_rows = list(attendance)
    for row in attendance_rows:
        if row.channel == WEB:
            continue  # the web's listeners are the beacons' (below), not the log's
        seconds = _seconds(row, ended_at)
        role = joined_as.get(row.participant_id, row.role)
        if role == REPLAY_ROLE:
            replay[0] += 1
            replay[1] += seconds
        elif role in SPEAKER_ROLES:
            speakers += 1
        else:
            live[0] += 1
            live[1] += seconds
    listeners = list(web)
    return Engagement(
        event_id=event_id,
        registrations=sum(1 for w in listeners if w.registered),
        live_phone=Heard(live[0], live[1]),
        live_web=Heard(
            sum(1 for w in listeners if w.live_seconds > 0),
            sum(w.live_seconds for w in listeners),
        ),
        replay_phone=Heard(replay[0], replay[1]),
        replay_web=Heard(
            sum(1 for w in listeners if w.replay_seconds > 0),
            sum(w.replay_seconds for w in listeners),
        ),
        speakers=speakers,
        phone_questions=sum(1 for e in log if e.kind is LogKind.QUEUE),
        written_questions=sum(1 for e in log if e.kind is LogKind.QUESTION_WRITTEN),
        both_phone=len(numbers["live"] & numbers[REPLAY_ROLE]),
        both_web=sum(1 for w in listeners if w.live_seconds > 0 and w.replay_seconds > 0),
        questions_answered=len({e.participant_id for e in log if e.kind is LogKind.LINE_OPEN})
        + sum(1 for e in log if e.kind is LogKind.QUESTION_ANSWERED),
        peak_live=peak(_live_spans(attendance_rows, joined_as, listeners, ended_at)),
    )


def _live_spans(
    attendance: Iterable[Attendance],
    joined_as: dict[str | None, str | None],
    web: Iterable[WebListener],
    ended_at: datetime | None,
) -> list[tuple[datetime, datetime]]:
    """When each live listener was on: a phone caller from join to leave (or the end); a web
    listener from their first beacon to their last, cut at the call's end (after it, the
    replay). Speakers and replay callers are not listeners of the live call."""
    spans = []
    for row in attendance:
        role = joined_as.get(row.participant_id, row.role)
        if row.channel == WEB or role == REPLAY_ROLE or role in SPEAKER_ROLES:
            continue
        left = row.left_at or ended_at
        if left is not None and left > row.joined_at:
            spans.append((row.joined_at, left))
    for w in web:
        if w.live_seconds <= 0 or w.first_heard_at is None or w.last_heard_at is None:
            continue
        last = min(w.last_heard_at, ended_at) if ended_at is not None else w.last_heard_at
        if last > w.first_heard_at:
            spans.append((w.first_heard_at, last))
    return spans


def peak(spans: Iterable[tuple[datetime, datetime]]) -> int:
    """The most spans open at one moment (one ending as another starts: not together)."""
    edges = sorted(
        [(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans],
        key=lambda edge: (edge[0], edge[1]),
    )
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


class EngagementReport:
    """Reads an event's figures from the call log and the webcast's audience."""

    def __init__(
        self, database: Database, call_log: CallLog | None = None, audience: Audience | None = None
    ) -> None:
        self.call_log = call_log or CallLog(database)
        self.audience = audience or Audience(database)

    def of(self, event_id: int) -> Engagement:
        """The event's figures now (the web's beacons held in memory are flushed first)."""
        entries = self.call_log.entries(event_id)
        return engagement(
            event_id,
            self.call_log.attendance(event_id),
            entries,
            self.audience.listeners(event_id),
        )
