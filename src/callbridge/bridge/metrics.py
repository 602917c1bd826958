"""The media plane's counters, read at once for a metrics scrape (``web.metrics`` renders them).

A scrape asks the web app (its metrics listener), which asks the media
plane over the control channel (``control.server``'s ``metrics`` method);
this module answers it. ``read`` takes what the parts keep anyway — the
clocks' lateness buckets (``media.clock.ClockStats``), the legs' RTP and
jitter-buffer counters, the SIP endpoints' responses, the guard's records,
the packager's and caption workers' stats — on the media loop itself:
nothing is locked, nothing is added to the tick, and the scrape never waits
on the media plane's threads. What grows with the call (legs, callers, the
guard's identities) is read a slice at a time with the loop free in between,
so a scrape never holds the media clock for more than one slice
(``callbridge_media_metrics_read_seconds``; ``bench/metrics_bench.py``); the
text format is made in the web process.

Why through the control channel and not a port of the media plane's own:
an HTTP server there would be one more thing on the media loop (parsing,
connections, slow clients), or a thread reading the loop's dicts while the
loop changes them; the control channel is already there, already bounded,
and one address per host serves both processes (the web app's own metrics
beside these, and ``callbridge_media_up`` 0 when the media plane does not
answer).
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from pydantic import BaseModel

from callbridge.bridge.control import ParticipantState
from callbridge.bridge.controller import CallController
from callbridge.bridge.lobby import Lobby
from callbridge.bridge.media_plane import MediaPlane
from callbridge.bridge.outputs import Outputs
from callbridge.bridge.sip_front import SipFront
from callbridge.media.clock import ClockStats
from callbridge.media.conference import ConferenceState


class Metered(Protocol):
    """What a read takes its counters from (``bridge.service.Bridge`` is one)."""

    media: MediaPlane
    lobby: Lobby
    controller: CallController
    outputs: Outputs
    sip: SipFront

    def cascade_counters(self) -> dict[str, int]: ...

    def dial_out_counters(self) -> dict[str, int]: ...

    def database_counters(self) -> dict[str, int]: ...


class ClockSnapshot(BaseModel):
    """A ``ClockStats``: lateness bucket bounds (s), counts per bucket (one more: beyond)."""

    bounds: list[float]
    counts: list[int]
    total: float
    ticks: int
    skipped: int

    @classmethod
    def of(cls, stats: ClockStats) -> ClockSnapshot:
        return cls(
            bounds=list(stats.bounds),
            counts=list(stats.counts),
            total=stats.total,
            ticks=stats.ticks,
            skipped=stats.skipped,
        )


class CallCount(BaseModel):
    """One open call: its state, and who is on it (by role, state and node)."""

    event_id: int
    state: str  # waiting, live
    # (role, participant state, node) → callers; node "" is this node.
    members: list[tuple[str, str, str, int]]


class MediaMetrics(BaseModel):
    """What the media plane counts, at one moment (all counters since its start)."""

    node: str  # the cascade node id; "" for a standalone node
    role: str  # standalone, origin, edge
    draining: bool
    started_at: float  # wall-clock seconds
    calls: list[CallCount]
    lobby_legs: dict[str, int]  # legs outside a call, by stage (ringing, ivr, replay, farewell)
    rtp_ports_in_use: int
    conference_clock: ClockSnapshot
    lobby_clock: ClockSnapshot
    rtp_packets_in: int
    rtp_bad: int
    rtp_played: int
    rtp_lost: int
    rtp_late: int
    rtp_worst_jitter: float
    rtp_dropped_foreign: int
    sip_refused_foreign: int
    sip_responses: dict[int, int]
    guard_identities: dict[str, int]  # standing → identities
    guard_budgets: list[tuple[str, str, int]]  # (number|trunk, slowing|empty, budgets)
    guard_alerts: list[tuple[str, str, int]]  # (caller|budget, slowed|refused, alerts)
    webcast_parts: int
    webcast_segments: int
    webcast_dropped: int
    webcast_late: int
    caption_dropped: int
    caption_restarts: int
    caption_queues: dict[int, int]  # event id → chunks of mix waiting for its worker
    transcripts_running: int
    cascade: dict[str, int]  # the node's bus and media port counters; empty when standalone
    # Calls placed over the outbound trunks, by outcome (``bridge.dialout``); empty without.
    dial_out: dict[str, int] = {}
    # RTCP (``MediaPlane.rtcp_counters``): reports sent/received/bad since start, and the
    # peers' view of our streams now (worst loss fraction, jitter and round trip, lost).
    rtcp: dict[str, float] = {}
    # The media plane's process: CPU seconds (all its threads) and resident memory.
    cpu_seconds: float = 0.0
    resident_bytes: int = 0
    # The longest stretch this read held the media loop (s): what a scrape can make a tick late.
    read_seconds: float = 0.0
    # The link to the database and the journal of writes waiting for it (``bridge.journal``):
    # reachable (0/1), waiting, written (from the journal), refused, outages.
    database: dict[str, int] = {}


# Legs, callers or guard identities read in one stretch of the loop (well under a millisecond).
SLICE = 250


async def _yield() -> None:
    await asyncio.sleep(0)


async def read(
    bridge: Metered,
    node: str,
    role: str,
    draining: bool,
    started_at: float,
    pause: Callable[[], Awaitable[None]] = _yield,
) -> MediaMetrics:
    """Read every counter of ``bridge`` (on the media loop).

    What grows with the call — the legs, the callers, the guard's identities —
    is read ``SLICE`` at a time, with ``pause()`` (a turn of the loop: a tick
    due fires) in between; the rest at once. Counters that move meanwhile are
    read as they are when their slice is read.
    """
    media, lobby = bridge.media, bridge.lobby
    longest, began = 0.0, time.perf_counter()

    async def breathe() -> None:
        nonlocal longest, began
        longest = max(longest, time.perf_counter() - began)
        await pause()
        began = time.perf_counter()

    census = lobby.guard.census(media.now())
    while not census.step(SLICE):
        await breathe()
    legs = list(media.legs.items())
    rtp = media.ended_rtp
    lobby_legs: dict[str, int] = {}
    for first in range(0, len(legs), SLICE):
        if first:
            await breathe()
        chunk = legs[first : first + SLICE]
        rtp = media.rtp_counts((leg for _, leg in chunk), rtp)
        for call_id, _ in chunk:
            stage = lobby.stage(call_id).value
            if stage != "conference":
                lobby_legs[stage] = lobby_legs.get(stage, 0) + 1
    calls = []
    for event_id, call in list(bridge.controller.calls.items()):
        if call.state is ConferenceState.ENDED:
            continue
        members: dict[tuple[str, str, str], int] = {}
        everyone = list(call.members.values())
        for first in range(0, len(everyone), SLICE):
            await breathe()
            for member in everyone[first : first + SLICE]:
                if member.state is ParticipantState.LEFT:
                    continue
                key = (member.role.value, member.state.value, member.node or "")
                members[key] = members.get(key, 0) + 1
        calls.append(
            CallCount(
                event_id=event_id,
                state=call.state.value,
                members=[(*key, n) for key, n in members.items()],
            )
        )
    now = media.now()
    outputs = bridge.outputs.counts()
    found = MediaMetrics(
        node=node,
        role=role,
        draining=draining,
        started_at=started_at,
        calls=calls,
        lobby_legs=lobby_legs,
        rtp_ports_in_use=media.ports.in_use,
        conference_clock=ClockSnapshot.of(media.conference_clocks),
        lobby_clock=ClockSnapshot.of(media.lobby_clocks),
        rtp_packets_in=rtp.packets_in,
        rtp_bad=rtp.bad,
        rtp_played=rtp.played,
        rtp_lost=rtp.lost,
        rtp_late=rtp.late,
        rtp_worst_jitter=rtp.worst_jitter,
        rtp_dropped_foreign=media.dropped_foreign(),
        sip_refused_foreign=bridge.sip.refused_foreign,
        sip_responses=bridge.sip.responses(),
        guard_identities={standing.value: n for standing, n in census.counts.items()},
        guard_budgets=[(*key, n) for key, n in lobby.guard.budgets.draining(now).items()],
        guard_alerts=[
            (kind, standing.value, n) for (kind, standing), n in lobby.alerts.totals.items()
        ],
        webcast_parts=outputs.parts,
        webcast_segments=outputs.segments,
        webcast_dropped=outputs.webcast_dropped,
        webcast_late=outputs.webcast_late,
        caption_dropped=outputs.caption_dropped,
        caption_restarts=outputs.caption_restarts,
        caption_queues=bridge.outputs.caption_queues(),
        transcripts_running=bridge.outputs.transcribing,
        cascade=bridge.cascade_counters(),
        dial_out=bridge.dial_out_counters(),
        rtcp=media.rtcp_counters(),
        database=bridge.database_counters(),
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    found.cpu_seconds = usage.ru_utime + usage.ru_stime
    found.resident_bytes = _resident_bytes()
    found.read_seconds = max(longest, time.perf_counter() - began)
    return found


def _resident_bytes() -> int:
    # /proc/self/statm: sizes in pages, the second resident (Linux; 0 elsewhere).
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except (OSError, IndexError, ValueError):
        return 0
