"""The console's view of a call, built from the controller's call and the conference: pure.

``live_parts`` is what ``control.server`` sends the web app for an event's
console: the call's state, its queue (callers and written questions), the
listeners by channel, the guard's alerts on its numbers, and the
participants to show (their rows are encoded there, once per change).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from callbridge.bridge.control import GuardAlertView, LiveView, ParticipantView, QueueEntry
from callbridge.bridge.controller import Call
from callbridge.bridge.queue import Asked
from callbridge.ivr.guard import Alert, Standing
from callbridge.media.conference import Conference, Participant, ParticipantState, Role


def participants(conference: Conference | None, include_left: bool) -> list[ParticipantView]:
    """The conference's participants as the API lists them."""
    if conference is None:
        return []
    return [
        ParticipantView.of(p)
        for p in conference.participants.values()
        if include_left or p.state is not ParticipantState.LEFT
    ]


def live_parts(
    event_id: int,
    call: Call | None,
    conference: Conference | None,
    version: int,
    alerts: list[GuardAlertView],
) -> tuple[LiveView, list[Participant]]:
    """The console's view without its participant rows, and the participants to show.

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
    active = conference.active()
    queue = [queue_entry(call, conference, key, i) for i, key in enumerate(call.queue.order)]
    view = LiveView(
        event_id=event_id,
        state=call.state.value,
        locked=call.locked,
        participants=[],
        queue=queue,
        listeners_by_channel={
            "phone": sum(1 for p in active if p.role is Role.LISTENER),
            "web": 0,
        },
        version=version,
        alerts=alerts,
    )
    return view, active


def queue_entry(call: Call, conference: Conference, key: str, position: int) -> QueueEntry:
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
        )
    p = conference.participants[key]
    return QueueEntry(
        participant_id=key,
        position=position,
        name=", ".join(x for x in (p.name, p.firm) if x) or p.caller_id,
        caller_id=p.caller_id,
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
