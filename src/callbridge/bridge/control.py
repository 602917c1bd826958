"""What the web app may ask of the bridge: who is on a call, start it, end it.

The web app sees this interface only. The bridge behind it runs in the media
plane's own process (``callbridge serve``); ``control.client.RemoteBridge``
implements this interface over the control channel to it.
"""

from __future__ import annotations

import enum
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, field_validator

from callbridge.events.names import MAX_NAME, plain_name


# Who a caller is on a call: the call controller's (``bridge.controller.Member``),
# named here because the API shows them.
class Role(enum.StrEnum):
    HOST = "host"
    SPEAKER = "speaker"
    LISTENER = "listener"


class ParticipantState(enum.StrEnum):
    HOLD = "hold"  # joined before the host started the call
    CONNECTED = "connected"
    LEFT = "left"


class ParticipantRow(Protocol):
    """A caller's row as the bridge builds it (``bridge.views.Row``: frozen, hashable)."""

    @property
    def id(self) -> str: ...
    @property
    def role(self) -> Role: ...
    @property
    def caller_id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def joined_at(self) -> datetime: ...
    @property
    def left_at(self) -> datetime | None: ...
    @property
    def state(self) -> ParticipantState: ...
    @property
    def muted(self) -> bool: ...
    @property
    def talking(self) -> bool: ...
    @property
    def line_open(self) -> bool: ...


class ParticipantView(BaseModel):
    """A participant as the API and the console show it."""

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

    @classmethod
    def of(cls, row: ParticipantRow) -> ParticipantView:
        """``row``: anything with these fields (``bridge.views.Row``)."""
        return cls.model_validate(row, from_attributes=True)


class Percentiles(BaseModel):
    count: int
    p50: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, values: list[float]) -> Percentiles:
        if not values:
            return cls(count=0, p50=None, p99=None, max=None)
        ordered = sorted(values)

        def pick(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

        return cls(count=len(ordered), p50=pick(0.5), p99=pick(0.99), max=round(ordered[-1], 3))


class BridgeStats(BaseModel):
    """How the phone side is doing: for operators, monitoring and the benchmarks."""

    legs: int
    legs_in_conferences: int
    conferences: int
    join_latency_ms: Percentiles
    tick_lateness_ms: Percentiles
    lobby_tick_lateness_ms: Percentiles
    ticks_skipped: int
    rtp_ports_in_use: int
    # RTP datagrams from anyone but a leg's negotiated peer, dropped (since start).
    rtp_dropped_foreign: int = 0
    # SIP datagrams and TCP connections from outside the trunk allow-list, refused.
    sip_refused_foreign: int = 0
    # SIP over TLS and SRTP: tls_connections, tls_handshake_failed, srtp_legs,
    # srtp_refused (plain offers where SRTP is required), srtp_auth_failed.
    secure: dict[str, int] = {}
    # Keys heard as tones in the audio (--inband-dtmf), and keys dropped as the
    # in-band copy of an RFC 4733 key or the other way round (since start).
    dtmf_inband: int = 0
    dtmf_merged: int = 0
    # A cascade node's bus (cascade.bus.BusStats): sent, received, and what it
    # refused (unsigned, forged, replayed, stale, unregistered); empty elsewhere.
    bus: dict[str, int] = {}
    # Calls placed (``Bridge.dial``): placed, ringing, answered, failed, auth_failed,
    # failovers, timed_out, registered, registrations_failed; empty without trunks.
    dial_out: dict[str, int] = {}
    # Each registering trunk's state by name (registered, registering, failed).
    registrations: dict[str, str] = {}
    # Outbound call set-up, INVITE to 200 OK (the attempt that was answered).
    dial_setup_ms: Percentiles | None = None
    # RTCP (``MediaPlane.rtcp_counters``): reports sent, received, bad; the peers' view
    # of our streams now (legs_reported, peer_worst_fraction_lost, peer_worst_jitter_ms,
    # peer_lost, worst_rtt_ms).
    rtcp: dict[str, float] = {}


class QueueEntry(BaseModel):
    participant_id: str  # a caller's participant id, or a written question's id ("q17")
    position: int
    name: str  # the registered name and firm when known, else the caller id
    caller_id: str
    kind: Literal["phone", "written"] = "phone"
    text: str | None = None  # a written question's words (shown as text, never markup)
    reading: bool = False  # a written question the moderator is reading out
    asked_at: datetime | None = None  # the *1 or the written question: how long it has waited


class GuardAlertView(BaseModel):
    """A caller slowed or refused for guessing passcodes on this event's numbers, or a budget.

    A number's or trunk's guessing budget running low (``ivr/guard.py``)
    slows every answer on it; its identity is ``number:...`` or ``trunk:...``.
    """

    # The caller as the trunk asserts them ("user:+12125551234"), or the budget.
    identity: str
    standing: Literal["slowed", "refused"]
    failures: int
    at: datetime
    until: datetime | None  # when a refusal ends
    delay_s: float  # the wait before each answer, when slowed


class LostView(BaseModel):
    """A caller who left with the cascade node they were on (it died or was cut off)."""

    participant_id: str
    name: str | None
    caller_id: str
    node: str
    at: datetime


class LiveView(BaseModel):
    """Everything the moderator console shows of one call, at one moment."""

    event_id: int
    state: str  # the conference: waiting, live, ended; "idle" before anyone dialled
    locked: bool
    participants: list[ParticipantView]
    queue: list[QueueEntry]
    listeners_by_channel: dict[str, int]
    version: int
    alerts: list[GuardAlertView] = []
    lost: list[LostView] = []  # the callers lost with a node, as they were lost
    # When the operator started and ended the call (the console's timer); None before.
    started_at: datetime | None = None
    ended_at: datetime | None = None
    # False while the media plane cannot reach the database (``bridge.outage``): the
    # call goes on, callers are admitted on kept codes, and ``writes_waiting`` call
    # log entries and such wait in its journal until the database is back.
    database_reachable: bool = True
    writes_waiting: int = 0


class Action(BaseModel):
    """A moderator's action on a live call."""

    action: Literal[
        "mute",
        "unmute",
        "mute_all",
        "unmute_all",
        "lock",
        "unlock",
        "open_line",
        "close_line",
        "promote",
        "demote",
        "dequeue",
        "move",
        "disconnect",
        "name",
        # written questions, by question_id
        "read_out",
        "answer",
        "dismiss",
        "move_question",
    ]
    participant_id: str | None = None
    question_id: str | None = Field(default=None, max_length=40)
    position: int | None = None
    # "name": how the console, the transcript and the captions call the
    # participant ("Mark Chen, Chief Financial Officer"); shown as text everywhere.
    name: str | None = Field(default=None, max_length=MAX_NAME)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        return None if value is None else plain_name(value)


class BridgeError(Exception):
    """An action the bridge refuses, with the reason for the operator."""


class BridgeUnavailable(Exception):
    """The media plane cannot be reached now (starting, restarting): answer 503."""


class LiveStream(Protocol):
    """Blocking playlist reload for one live webcast (``webcast.blocking.PlaylistWaiter``)."""

    async def wait_for(self, msn: int | None, part: int | None, timeout: float) -> str: ...


class LiveFeed(Protocol):
    """A call's console view as the media plane pushes it (``control.client.LiveWatch``)."""

    @property
    def view(self) -> LiveView | None:
        """The newest view pushed (None until the media plane has answered)."""

    @property
    def version(self) -> int:
        """Counts the views pushed; ``wait`` returns when it moves past ``seen``."""

    async def wait(self, seen: int, timeout: float) -> int:
        """The version once it differs from ``seen``, or after ``timeout`` seconds."""


class BridgeControl(Protocol):
    async def participants(
        self, event_id: int, include_left: bool = False
    ) -> list[ParticipantView]:
        """Everyone on the event's call now (and, if asked, those who left)."""

    async def stats(self) -> BridgeStats:
        """Counts and percentiles of the live bridge."""

    async def live(self, event_id: int) -> LiveView:
        """The console's view of the call now."""

    def live_stream(self, event_id: int) -> LiveStream | None:
        """The event's live playlist to wait on, while its webcast runs."""

    def watch_live(self, event_id: int) -> AbstractAsyncContextManager[LiveFeed]:
        """The call's console view, pushed on every change while the context is open."""

    async def act(self, event_id: int, action: Action, actor: str) -> LiveView:
        """Carry out a moderator's action; BridgeError says why one is refused."""

    async def question_written(
        self, event_id: int, question_id: str, asker: str, text: str
    ) -> None:
        """A stored written question joins the live call's queue; BridgeError if it cannot."""

    async def start_call(self, event_id: int) -> None:
        """The host opens the call: callers on hold are connected, the event goes live."""

    async def end_call(self, event_id: int) -> None:
        """End the call for everyone with a closing prompt; the event is ended."""

    async def dial(self, event_id: int, number: str, as_role: str, actor: str) -> str:
        """Call ``number`` (E.164) through the outbound trunks; on '1' they join as
        ``as_role``. Returns the dial's id; BridgeError says why one is refused."""

    async def call_me(
        self, event_id: int, registrant: dict[str, Any], number: str, source: str
    ) -> dict[str, Any]:
        """A registrant's call-me from client address ``source`` (``bridge.callme_desk``):
        ``{"dial_id", "number"}`` or
        ``{"refused": {"status", "message", "field", "retry_after"}}``."""

    async def call_me_state(self, dial_id: str) -> dict[str, Any] | None:
        """A call-me dial's progress and whose it is; None for no such call-me."""

    async def call_me_switch(self, event_id: int, enabled: bool | None, actor: str) -> bool:
        """Turn call-me on or off for the event (None: only read); returns the setting."""
