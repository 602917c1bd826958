"""The console's view of a call, built from the controller's call and the conference: pure.

``live_parts`` is what ``control.server`` sends the web app for an event's
console: the call's state, its queue (callers and written questions), the
listeners by channel, the guard's alerts on its numbers, and the callers'
rows (encoded there, once per change). Who a caller is comes from the
controller's ``Member``; the mixer adds only whether they are talking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from callbridge.bridge.control import (
    GuardAlertView,
    LiveView,
    LostView,
    ParticipantState,
    QueueEntry,
    Role,
)
from callbridge.bridge.controller import Call
from callbridge.bridge.queue import Asked
from callbridge.ivr.guard import Alert, Standing
from callbridge.media.conference import Conference

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a caller whose join time nobody told


@dataclass(frozen=True)
class Row:
    """One caller as the console shows them: the controller's record, and whether they talk.

    Frozen and hashable: ``control.server`` keys its encoded rows by the row
    itself, so no field can be left out of the key.
    """

    id: str
    role: Role
    caller_id: str
    name: str | None
    joined_at: datetime
    left_at: datetime | None
    state: ParticipantState
    muted: bool
    talking: bool
    line_open: bool


def rows(call: Call | None, conference: Conference | None, include_left: bool) -> list[Row]:
    """The call's callers, as they joined (with those who left, if ``include_left``)."""
    if call is None:
        return []
    mixed = conference.participants if conference is not None else {}
    return [
        Row(
            id=m.id,
            role=m.role,
            caller_id=m.caller_id,
            name=m.name,
            joined_at=m.joined_at or _EPOCH,
            left_at=m.left_at,
            state=m.state,
            muted=m.muted,
            talking=(p := mixed.get(m.id)) is not None and p.talking,
            line_open=call.line_open(m.id),
        )
        for m in call.members.values()
        if include_left or m.state is not ParticipantState.LEFT
    ]


def live_parts(
    event_id: int,
    call: Call | None,
    conference: Conference | None,
    version: int,
    alerts: list[GuardAlertView],
) -> tuple[LiveView, list[Row]]:
    """The console's view without its participant rows, and the rows to show.

    Building a thousand participants' rows takes tens of milliseconds:
    ``control.server`` encodes each row once and again only when it changes.
    """
    if call is None or conference is None:
        idle = LiveView(
            event_id=event_id,
            state="idle",
            locked=False,
            participants=[],
            queue=[],
            listeners_by_channel={"phone": 0, "web": 0},
            version=version,
            alerts=alerts,
        )
        return idle, []
    active = rows(call, conference, include_left=False)
    queue = [queue_entry(call, key, i) for i, key in enumerate(call.queue.order)]
    view = LiveView(
        event_id=event_id,
        state=call.state.value,
        locked=call.locked,
        participants=[],
        queue=queue,
        listeners_by_channel={
            "phone": sum(1 for r in active if r.role is Role.LISTENER),
            "web": 0,
        },
        version=version,
        alerts=alerts,
        lost=lost(call),
        started_at=call.started_at,
        ended_at=call.ended_at,
    )
    return view, active


def lost(call: Call) -> list[LostView]:
    """The callers who left with their node, in the order they were lost."""
    gone = [
        LostView(participant_id=m.id, name=m.name, caller_id=m.caller_id, node=m.node, at=m.left_at)
        for m in call.members.values()
        if m.lost and m.node is not None and m.left_at is not None
    ]
    return sorted(gone, key=lambda view: view.at)


def queue_entry(call: Call, key: str, position: int) -> QueueEntry:
    """A queued caller (by participant id) or written question (by its "q…" id)."""
    written = call.written.get(key)
    if written is not None:
        return QueueEntry(
            participant_id=key,
            position=position,
            name=written.asker,
            caller_id="",
            kind="written",
            text=written.text,
            reading=call.queue.asked(key) is Asked.READING,
            asked_at=written.asked_at,
        )
    m = call.members[key]
    return QueueEntry(
        participant_id=key,
        position=position,
        name=m.name or m.caller_id,
        caller_id=m.caller_id,
        asked_at=m.queued_at,
    )


def alert_views(alerts: list[Alert], now: float, wall: datetime) -> list[GuardAlertView]:
    """The guard's alerts as the console shows them (``now`` on the alerts' clock)."""
    return [
        GuardAlertView(
            identity=alert.identity,
            standing="refused" if alert.standing is Standing.REFUSED else "slowed",
            failures=alert.failures,
            at=wall - timedelta(seconds=now - alert.at),
            until=None if alert.until is None else wall + timedelta(seconds=alert.until - now),
            delay_s=alert.delay,
        )
        for alert in alerts
    ]
