"""The metrics' rendering and the health check, in memory (``web.metrics``).

A real media plane behind the control channel: ``tests/control/test_channel.py``;
a real Prometheus scraping ``serve`` during a call: ``tests/telephony/test_sipp.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from callbridge.bridge.metrics import CallCount, ClockSnapshot, MediaMetrics
from callbridge.media.clock import ClockStats
from callbridge.web.metrics import Scrape, ScrapeCollector, last_caption_delay, metrics_app


def media(**overrides: object) -> MediaMetrics:
    clock = ClockStats()
    for late in (0.0001, 0.003, 0.2):
        clock.observe(late)
    clock.skipped = 4
    values: dict[str, object] = dict(
        node="origin-1",
        role="origin",
        draining=False,
        started_at=1_700_000_000.0,
        calls=[
            CallCount(
                event_id=7,
                state="live",
                members=[
                    ("speaker", "connected", "", 1),
                    ("listener", "connected", "", 3),
                    ("listener", "connected", "edge-1", 5),
                ],
            )
        ],
        lobby_legs={"ivr": 2},
        rtp_ports_in_use=6,
        conference_clock=ClockSnapshot.of(clock),
        lobby_clock=ClockSnapshot.of(ClockStats()),
        rtp_packets_in=100,
        rtp_bad=1,
        rtp_played=90,
        rtp_lost=10,
        rtp_late=2,
        rtp_worst_jitter=0.004,
        rtp_dropped_foreign=3,
        sip_refused_foreign=0,
        sip_responses={100: 9, 200: 9, 503: 1},
        guard_identities={"clear": 0, "watched": 1, "slowed": 0, "refused": 2},
        guard_budgets=[("number", "empty", 1)],
        guard_alerts=[("caller", "refused", 2)],
        webcast_parts=40,
        webcast_segments=4,
        webcast_dropped=0,
        webcast_late=0,
        caption_dropped=0,
        caption_restarts=1,
        caption_queues={7: 12},
        transcripts_running=0,
        cascade={
            "sent": 5,
            "forged": 1,
            "media_received": 50,
            "media_late": 2,
            "lease_active": 1,
            "lease_epoch": 4,
            "lease_takeovers": 1,
            "lease_failed_tries": 0,
        },
        dial_out={"placed": 3, "answered": 2},
        database={"reachable": 0, "waiting": 14, "written": 30, "refused": 0, "outages": 1},
    )
    values.update(overrides)
    return MediaMetrics.model_validate(values)


def samples(scrape: Scrape) -> dict[str, float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScrapeCollector(scrape))
    text = generate_latest(registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def test_a_scrape_renders_the_media_planes_counters_in_the_text_format() -> None:
    scrape = Scrape()
    scrape.media = media()
    scrape.web_listeners = {7: 40}
    scrape.caption_delay = {7: 2.5}
    scrape.reloads = (3, 120, 1)
    got = samples(scrape)
    assert got["callbridge_media_up"] == 1
    assert got['callbridge_listeners{channel="phone",event="7"}'] == 8
    assert got['callbridge_listeners{channel="web",event="7"}'] == 40
    # Callers by role and the node that answered them; "" is the scraped node itself.
    assert got['callbridge_legs{node="origin-1",role="listener",state="connected"}'] == 3
    assert got['callbridge_legs{node="edge-1",role="listener",state="connected"}'] == 5
    assert got['callbridge_calls{state="live"}'] == 1
    assert got['callbridge_lobby_legs{stage="ivr"}'] == 2
    # The histogram is cumulative, with +Inf equal to the count.
    assert got['callbridge_tick_lateness_seconds_bucket{clock="conference",le="0.0005"}'] == 1
    assert got['callbridge_tick_lateness_seconds_bucket{clock="conference",le="0.005"}'] == 2
    assert got['callbridge_tick_lateness_seconds_bucket{clock="conference",le="+Inf"}'] == 3
    assert got['callbridge_tick_lateness_seconds_count{clock="conference"}'] == 3
    assert got['callbridge_ticks_skipped_total{clock="conference"}'] == 4
    assert got['callbridge_sip_responses_total{code="503"}'] == 1
    assert got['callbridge_rtp_frames_lost_total{kind="phone"}'] == 10
    assert got['callbridge_rtp_frames_late_total{kind="cascade"}'] == 2
    assert got['callbridge_guard_identities{standing="refused"}'] == 2
    assert got['callbridge_guard_budgets{kind="number",state="empty"}'] == 1
    assert got['callbridge_guard_alerts_total{standing="refused",subject="caller"}'] == 2
    assert got['callbridge_caption_delay_seconds{event="7"}'] == 2.5
    assert got['callbridge_caption_queue_chunks{event="7"}'] == 12
    assert got['callbridge_cascade_bus_messages_total{outcome="forged"}'] == 1
    assert 'callbridge_cascade_bus_messages_total{outcome="media_received"}' not in got
    # The lease (an origin's): who holds it, and failovers.
    assert got["callbridge_lease_active"] == 1 and got["callbridge_lease_epoch"] == 4
    assert got["callbridge_lease_takeovers_total"] == 1
    assert 'callbridge_cascade_bus_messages_total{outcome="lease_epoch"}' not in got
    assert got['callbridge_dial_out_total{outcome="answered"}'] == 2
    assert got["callbridge_webcast_blocking_reloads_waiting"] == 3
    assert got["callbridge_webcast_blocking_reload_timeouts_total"] == 1
    # The database is away: writes wait in the media plane's journal.
    assert got["callbridge_database_reachable"] == 0
    assert got["callbridge_journal_waiting"] == 14
    assert got["callbridge_journal_written_total"] == 30
    assert got["callbridge_database_outages_total"] == 1


def test_without_the_media_plane_only_its_absence_and_the_web_counters_are_shown() -> None:
    got = samples(Scrape())
    assert got["callbridge_media_up"] == 0
    assert not any(name.startswith("callbridge_legs") for name in got)


def test_the_newest_captions_delay_is_read_from_the_transcripts_end(tmp_path: Path) -> None:
    assert last_caption_delay(tmp_path) is None
    lines = [{"text": f"cue {n}", "delay": n / 10} for n in range(2000)]
    text = "\n".join(json.dumps(line) for line in lines) + '\n{"text": "half a li'
    (tmp_path / "captions.jsonl").write_text(text)
    assert last_caption_delay(tmp_path) == 199.9


def test_health_is_503_without_a_media_plane_on_both_ports(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert (answer.status_code, answer.text) == (503, "no media plane\n")
    assert answer.headers["cache-control"] == "no-store"
    listener = TestClient(metrics_app(SimpleNamespace()))
    assert listener.get("/healthz").status_code == 503
    # The metrics listener serves nothing else.
    assert listener.get("/").status_code == 404
    assert listener.post("/metrics").status_code == 405
