"""Prometheus metrics and the health check of one ``callbridge serve`` node.

``GET /metrics`` (the Prometheus text format, ``prometheus-client``) is served
on a listener of its own, ``serve --metrics-listen HOST:PORT``, never on the
web app's port: everything on that port is reachable through the cache tier
(Varnish passes what it does not cache to the origin) and so from the public,
and the counters name events and show the load. Bind it to a private
address (or 127.0.0.1 with a Prometheus on the host) and let the firewall
keep it there, as for any exporter. It answers nothing but ``/metrics`` and
``/healthz``.

``GET /healthz`` is on both the metrics listener and the web app (a load
balancer or Varnish probes the port it sends traffic to): 200 "ok" while the
media plane answers, 503 when it does not (starting, restarting, wedged) or
is draining (stopping its calls). It says nothing else, so it may be public.

What a scrape reads, all at scrape time (custom collectors, nothing counted
on any hot path here): the media plane's counters in one pass over the
control channel (``bridge.metrics``), the web listeners of each open call
from the database, the newest live caption's delay from the caption
worker's transcript file, this process's blocking playlist reloads, and its
own CPU and memory (``process_*``). A media plane that does not answer in
``MEDIA_TIMEOUT`` seconds shows as ``callbridge_media_up 0`` and its series
are left out, rather than the scrape failing.

A little over the house's ~500 lines: most of it is the catalogue itself,
each family's name, labels and help text beside the value it shows; split
up, the names an operator greps for would be in several places.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.routing import Route

from callbridge.bridge.control import BridgeUnavailable
from callbridge.bridge.metrics import ClockSnapshot, MediaMetrics
from callbridge.store import layout
from callbridge.store.audience import Audience
from callbridge.webcast.captions import TRANSCRIPT

log = logging.getLogger(__name__)

# A media plane slower than this to hand over its counters is taken as down.
MEDIA_TIMEOUT = 2.0
# A health check waits this long for the media plane's answer.
HEALTH_TIMEOUT = 1.0
# The newest caption is in the last few lines of the transcript: read this much of its end.
CAPTION_TAIL = 16 * 1024


@runtime_checkable
class MediaLink(Protocol):
    """The web process's link to its media plane (``control.client.RemoteBridge``)."""

    async def metrics(self) -> dict[str, Any]: ...

    async def health(self) -> dict[str, Any]: ...

    def reload_counts(self) -> tuple[int, int, int]: ...


class Scrape:
    """What one scrape read; ``ScrapeCollector`` turns it into metric families."""

    def __init__(self) -> None:
        self.media: MediaMetrics | None = None
        self.web_listeners: dict[int, int] = {}
        self.caption_delay: dict[int, float] = {}
        self.reloads = (0, 0, 0)  # waiting now, waits begun, timed out


async def read_scrape(
    remote: MediaLink | None, audience: Audience, data_dir: Path, listening_since: datetime
) -> Scrape:
    """Everything a scrape shows, read now (the media plane's part over the control channel)."""
    scrape = Scrape()
    if remote is None:
        return scrape
    scrape.reloads = remote.reload_counts()
    try:
        raw = await asyncio.wait_for(remote.metrics(), MEDIA_TIMEOUT)
        scrape.media = MediaMetrics.model_validate(raw)
    except (BridgeUnavailable, TimeoutError, RuntimeError) as error:
        log.info("metrics: the media plane did not answer: %s", error)
        return scrape
    events = [call.event_id for call in scrape.media.calls]
    captioned = list(scrape.media.caption_queues)

    def from_disk() -> tuple[dict[int, int], dict[int, float]]:
        listeners = {e: audience.count_listening(e, listening_since) for e in events}
        delays = {
            e: delay
            for e in captioned
            if (delay := last_caption_delay(layout.event_webcast(data_dir, e))) is not None
        }
        return listeners, delays

    scrape.web_listeners, scrape.caption_delay = await asyncio.to_thread(from_disk)
    return scrape


def last_caption_delay(event_dir: Path) -> float | None:
    """The newest live caption's delay (s): its audio's end to the cue being made.

    The caption worker appends a JSON line per cue (``webcast.captions``);
    only the file's end is read. None before the first cue.
    """
    path = event_dir / TRANSCRIPT
    try:
        with path.open("rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - CAPTION_TAIL))
            tail = file.read(CAPTION_TAIL)
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            delay = json.loads(line).get("delay")
            if isinstance(delay, int | float):
                return float(delay)
    return None


class ScrapeCollector(Collector):
    """The families of one ``Scrape`` (registered in a registry made for that scrape)."""

    def __init__(self, scrape: Scrape) -> None:
        self.scrape = scrape

    def collect(self) -> Iterable[Metric]:
        scrape = self.scrape
        media = scrape.media
        yield _gauge("callbridge_media_up", "1 while the media plane answers", 1 if media else 0)
        waiting, waits, timeouts = scrape.reloads
        yield _gauge(
            "callbridge_webcast_blocking_reloads_waiting",
            "LL-HLS blocking playlist reloads held in this web process now",
            waiting,
        )
        yield _counter(
            "callbridge_webcast_blocking_reload_waits",
            "Waits begun by blocking playlist reloads for a part not yet made",
            waits,
        )
        yield _counter(
            "callbridge_webcast_blocking_reload_timeouts",
            "Blocking playlist reloads whose part did not come in time (503)",
            timeouts,
        )
        if media is None:
            return
        yield from _media_families(media, scrape)


def _media_families(media: MediaMetrics, scrape: Scrape) -> Iterator[Metric]:
    here = media.node or "local"
    yield _gauge(
        "callbridge_media_draining", "1 while the media plane stops its calls", media.draining
    )
    yield _counter(
        "callbridge_media_cpu_seconds",
        "CPU time of the media plane's process (all its threads), since it started",
        media.cpu_seconds,
    )
    yield _gauge(
        "callbridge_media_resident_memory_bytes",
        "Resident memory of the media plane's process",
        media.resident_bytes,
    )
    yield _gauge(
        "callbridge_media_metrics_read_seconds",
        "How long the media plane took to read its counters for this scrape (on its loop)",
        media.read_seconds,
    )
    yield from _database_families(media.database)
    yield _gauge(
        "callbridge_media_start_time_seconds",
        "When the media plane started (Unix time): a restart drops its calls",
        media.started_at,
    )
    info = GaugeMetricFamily(
        "callbridge_node_info", "The node's name and role in a cascade", labels=["node", "role"]
    )
    info.add_metric([here, media.role], 1)
    yield info
    calls = GaugeMetricFamily(
        "callbridge_calls", "Open calls by state (waiting, live)", labels=["state"]
    )
    for state in ("waiting", "live"):
        calls.add_metric([state], sum(1 for c in media.calls if c.state == state))
    yield calls
    legs = GaugeMetricFamily(
        "callbridge_legs",
        "Callers on open calls by role, state (hold, connected) and the node that answered them",
        labels=["role", "state", "node"],
    )
    listeners = GaugeMetricFamily(
        "callbridge_listeners",
        "Listeners of each open call: phone (listener role) and web (browsers listening)",
        labels=["event", "channel"],
    )
    by_key: dict[tuple[str, str, str], int] = {}
    for call in media.calls:
        phone = 0
        for role, state, node, count in call.members:
            key = (role, state, node or here)
            by_key[key] = by_key.get(key, 0) + count
            if role == "listener":
                phone += count
        listeners.add_metric([str(call.event_id), "phone"], phone)
        listeners.add_metric(
            [str(call.event_id), "web"], scrape.web_listeners.get(call.event_id, 0)
        )
    for (role, state, node), count in sorted(by_key.items()):
        legs.add_metric([role, state, node], count)
    yield legs
    yield listeners
    lobby = GaugeMetricFamily(
        "callbridge_lobby_legs",
        "Legs outside a call by stage (ringing, ivr, replay, farewell)",
        labels=["stage"],
    )
    for stage in ("ringing", "ivr", "replay", "farewell"):
        lobby.add_metric([stage], media.lobby_legs.get(stage, 0))
    yield lobby
    yield _gauge("callbridge_rtp_ports_in_use", "RTP ports held by legs", media.rtp_ports_in_use)
    yield from _clock_families(media.conference_clock, media.lobby_clock)
    yield from _rtp_families(media)
    responses = CounterMetricFamily(
        "callbridge_sip_responses", "SIP responses sent, by status code", labels=["code"]
    )
    for code, count in sorted(media.sip_responses.items()):
        responses.add_metric([str(code)], count)
    yield responses
    yield _counter(
        "callbridge_sip_refused_foreign",
        "SIP datagrams and TCP connections from outside the trunk networks, refused",
        media.sip_refused_foreign,
    )
    yield from _guard_families(media)
    yield from _output_families(media, scrape)
    yield from _cascade_families(media.cascade)
    yield from _lease_families(media.cascade)
    if media.dial_out:
        dials = CounterMetricFamily(
            "callbridge_dial_out",
            "Calls placed over the outbound trunks: placed, answered, failed and why",
            labels=["outcome"],
        )
        for outcome, count in sorted(media.dial_out.items()):
            dials.add_metric([outcome], count)
        yield dials


def _clock_families(conference: ClockSnapshot, lobby: ClockSnapshot) -> Iterator[Metric]:
    lateness = HistogramMetricFamily(
        "callbridge_tick_lateness_seconds",
        "How late each 20 ms media tick fired (conference clocks, the lobby clock)",
        labels=["clock"],
    )
    skipped = CounterMetricFamily(
        "callbridge_ticks_skipped",
        "Media ticks skipped because the loop was more than 100 ms behind",
        labels=["clock"],
    )
    for name, clock in (("conference", conference), ("lobby", lobby)):
        running, buckets = 0, []
        for bound, count in zip([*clock.bounds, float("inf")], clock.counts, strict=True):
            running += count
            buckets.append((_bound(bound), running))
        lateness.add_metric([name], buckets, sum_value=clock.total)
        skipped.add_metric([name], clock.skipped)
    yield lateness
    yield skipped


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


def _rtp_families(media: MediaMetrics) -> Iterator[Metric]:
    cascade = media.cascade
    received = CounterMetricFamily(
        "callbridge_rtp_packets_received",
        "RTP packets taken in, by leg kind (phone legs; the cascade's media port)",
        labels=["kind"],
    )
    received.add_metric(["phone"], media.rtp_packets_in)
    lost = CounterMetricFamily(
        "callbridge_rtp_frames_lost",
        "Frames of mixed audio missing at their turn (phone: talkers' jitter buffers)",
        labels=["kind"],
    )
    lost.add_metric(["phone"], media.rtp_lost)
    played = CounterMetricFamily(
        "callbridge_rtp_frames_played",
        "Frames of mixed audio played at their turn (phone: talkers' jitter buffers)",
        labels=["kind"],
    )
    played.add_metric(["phone"], media.rtp_played)
    late = CounterMetricFamily(
        "callbridge_rtp_frames_late",
        "Frames that came after their turn (or repeated: cascade), dropped",
        labels=["kind"],
    )
    late.add_metric(["phone"], media.rtp_late)
    foreign = CounterMetricFamily(
        "callbridge_rtp_foreign_dropped",
        "RTP from an address that is not the leg's negotiated peer (or no known node), dropped",
        labels=["kind"],
    )
    foreign.add_metric(["phone"], media.rtp_dropped_foreign)
    if cascade:
        received.add_metric(["cascade"], cascade.get("media_received", 0))
        late.add_metric(["cascade"], cascade.get("media_late", 0))
        foreign.add_metric(["cascade"], cascade.get("media_foreign", 0))
    yield received
    yield played
    yield lost
    yield late
    yield foreign
    yield _counter("callbridge_rtp_bad_packets", "Unreadable RTP packets, dropped", media.rtp_bad)
    jitter = GaugeMetricFamily(
        "callbridge_rtp_jitter_seconds",
        "The highest interarrival jitter (RFC 3550) among the legs mixed now",
        labels=["kind"],
    )
    jitter.add_metric(["phone"], media.rtp_worst_jitter)
    yield jitter
    rtcp = media.rtcp
    reports = CounterMetricFamily(
        "callbridge_rtcp_reports",
        "RTCP compound packets (RFC 3550) sent to and read from phone legs, and unreadable",
        labels=["direction"],
    )
    for direction in ("sent", "received", "bad"):
        reports.add_metric([direction], rtcp.get(direction, 0))
    yield reports
    peer = GaugeMetricFamily(
        "callbridge_rtcp_peer_worst",
        "What the peers' latest RTCP reports say of our streams, the worst leg: fraction "
        "lost (0..1), jitter and round trip (seconds)",
        labels=["measure"],
    )
    peer.add_metric(["fraction_lost"], rtcp.get("peer_worst_fraction_lost", 0.0))
    peer.add_metric(["jitter_seconds"], rtcp.get("peer_worst_jitter_ms", 0.0) / 1000)
    peer.add_metric(["round_trip_seconds"], rtcp.get("worst_rtt_ms", 0.0) / 1000)
    yield peer


def _guard_families(media: MediaMetrics) -> Iterator[Metric]:
    identities = GaugeMetricFamily(
        "callbridge_guard_identities",
        "Caller identities the passcode guard holds, by standing",
        labels=["standing"],
    )
    for standing, count in sorted(media.guard_identities.items()):
        identities.add_metric([standing], count)
    yield identities
    budgets = GaugeMetricFamily(
        "callbridge_guard_budgets",
        "Guessing budgets slowing every answer (slowing) or answering one per interval (empty)",
        labels=["kind", "state"],
    )
    for kind, state, count in media.guard_budgets:
        budgets.add_metric([kind, state], count)
    yield budgets
    alerts = CounterMetricFamily(
        "callbridge_guard_alerts",
        "Guard alerts raised: a caller or a budget, slowed or refused",
        labels=["subject", "standing"],
    )
    for subject in ("caller", "budget"):
        for standing in ("slowed", "refused"):
            found = [n for s, t, n in media.guard_alerts if s == subject and t == standing]
            alerts.add_metric([subject, standing], sum(found))
    yield alerts


def _output_families(media: MediaMetrics, scrape: Scrape) -> Iterator[Metric]:
    yield _counter("callbridge_webcast_parts", "LL-HLS parts made", media.webcast_parts)
    yield _counter("callbridge_webcast_segments", "LL-HLS segments made", media.webcast_segments)
    yield _counter(
        "callbridge_webcast_frames_dropped",
        "Frames of mix the packager dropped (its queue full)",
        media.webcast_dropped,
    )
    yield _counter(
        "callbridge_webcast_frames_late",
        "Frames of mix that reached the packager after their place",
        media.webcast_late,
    )
    delay = GaugeMetricFamily(
        "callbridge_caption_delay_seconds",
        "The newest live caption's delay: from the end of its audio to the cue",
        labels=["event"],
    )
    for event_id, seconds in sorted(scrape.caption_delay.items()):
        delay.add_metric([str(event_id)], seconds)
    yield delay
    queue = GaugeMetricFamily(
        "callbridge_caption_queue_chunks",
        "Chunks of a live call's mix waiting for its caption worker (250 at most)",
        labels=["event"],
    )
    for event_id, chunks in sorted(media.caption_queues.items()):
        queue.add_metric([str(event_id)], chunks)
    yield queue
    yield _counter(
        "callbridge_caption_chunks_dropped",
        "Chunks of mix not handed to a caption worker (queue full, worker down)",
        media.caption_dropped,
    )
    yield _counter(
        "callbridge_caption_worker_restarts",
        "Caption workers started again",
        media.caption_restarts,
    )
    yield _gauge(
        "callbridge_transcripts_running",
        "Transcripts of ended calls being made now (a child process each)",
        media.transcripts_running,
    )


def _cascade_families(cascade: dict[str, int]) -> Iterator[Metric]:
    if not cascade:
        return
    bus = CounterMetricFamily(
        "callbridge_cascade_bus_messages",
        "The cascade bus's messages: sent, received, and each reason one was refused",
        labels=["outcome"],
    )
    for name, count in sorted(cascade.items()):
        if not name.startswith(("media_", "lease_")):
            bus.add_metric([name], count)
    yield bus


def _lease_families(cascade: dict[str, int]) -> Iterator[Metric]:
    """The active origin's lease (``cascade.lease``). Every node shows them, 0 where there
    is no lease (a single node, an edge), so the alert rules read the same names everywhere."""
    yield _gauge(
        "callbridge_lease_active",
        "1 while this origin holds the active origin's lease (or lapsed holding it)",
        cascade.get("lease_active", 0),
    )
    yield _gauge(
        "callbridge_lease_epoch",
        "The lease's epoch this origin holds or last heard of (one more at each failover)",
        cascade.get("lease_epoch", 0),
    )
    yield _counter(
        "callbridge_lease_takeovers",
        "Times this origin took the lease over from another (failovers to it)",
        cascade.get("lease_takeovers", 0),
    )
    yield _counter(
        "callbridge_lease_failed_tries",
        "Tries on the lease's row that did not reach the store in time",
        cascade.get("lease_failed_tries", 0),
    )


def _database_families(database: dict[str, int]) -> Iterator[Metric]:
    """The media plane's link to the database and its journal (``bridge.journal``)."""
    if not database:
        return
    yield _gauge(
        "callbridge_database_reachable",
        "1 while the media plane reaches the database; 0 during an outage (calls go on)",
        database.get("reachable", 1),
    )
    yield _gauge(
        "callbridge_journal_waiting",
        "The media plane's writes (call log, question states) waiting for the database",
        database.get("waiting", 0),
    )
    yield _counter(
        "callbridge_journal_written",
        "Journalled writes the database took, since the media plane started",
        database.get("written", 0),
    )
    yield _counter(
        "callbridge_journal_refused",
        "Journalled writes the database refused (logged in full, then dropped)",
        database.get("refused", 0),
    )
    yield _counter(
        "callbridge_database_outages",
        "Times the media plane lost the database, since it started",
        database.get("outages", 0),
    )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=float(value))


# -- serving ---------------------------------------------------------------------------------


async def render(state: Any) -> bytes:
    """The text a scrape gets, from the web app's ``state`` (its bridge, audience, settings)."""
    from callbridge.web.webcast import listening_since

    remote = getattr(state, "bridge", None)
    scrape = await read_scrape(
        remote if isinstance(remote, MediaLink) else None,
        state.audience,
        state.settings.data_dir,
        listening_since(datetime.now(UTC)),
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScrapeCollector(scrape))
    ProcessCollector(registry=registry)
    return generate_latest(registry)


async def healthy(state: Any) -> tuple[bool, str]:
    """Whether this node should be sent traffic, and why not."""
    remote = getattr(state, "bridge", None)
    if not isinstance(remote, MediaLink):
        return False, "no media plane"
    try:
        answer = await asyncio.wait_for(remote.health(), HEALTH_TIMEOUT)
    except (BridgeUnavailable, TimeoutError, RuntimeError):
        return False, "the media plane is not reachable"
    if answer.get("draining"):
        return False, "draining"
    return True, "ok"


async def _health_response(state: Any) -> Response:
    ok, why = await healthy(state)
    return PlainTextResponse(
        why + "\n", status_code=200 if ok else 503, headers={"Cache-Control": "no-store"}
    )


router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz(request: Request) -> Response:
    """200 while this node serves calls; 503 when its media plane is away or draining."""
    return await _health_response(request.app.state)


def metrics_app(state: Any) -> Starlette:
    """The metrics listener's app (``serve --metrics-listen``): /metrics and /healthz only.

    ``state`` is the web app's (``app.state``): the same bridge link, store and settings.
    """

    async def metrics(request: Any) -> Response:
        body = await render(state)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    async def health(request: Any) -> Response:
        return await _health_response(state)

    return Starlette(
        routes=[
            Route("/metrics", metrics, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )
