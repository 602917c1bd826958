"""Real SIP calls from sipp into a running `callbridge serve`."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from callbridge.store import layout
from callbridge.store.models import CallLogRow
from tests.support.baresip import read_wav, tone_power
from tests.support.pcap import passcode_stream
from tests.support.prometheus import (
    dashboard_exprs,
    exposed_series,
    metric_names,
    monitoring_exprs,
    running_prometheus,
)
from tests.support.sipp import SCENARIOS, call_in, run_sipp
from tests.support.wait import wait_until
from tests.telephony.conftest import RunningServer, need

pytestmark = pytest.mark.sipp


@pytest.fixture(autouse=True)
def _sipp() -> None:
    need("sipp")


def test_listener_keys_the_passcode_and_joins(server: RunningServer, tmp_path: Path) -> None:
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    result = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([event.passcode + "#"]),
        stay_ms=9000,
        timeout=40,
        background_check=lambda: server.participants(event.id),
    )
    assert result.ok, result.report
    seen = result.background
    assert seen, "the caller never appeared in the participant list"
    assert seen[0]["role"] == "listener"
    assert seen[0]["state"] == "connected"
    assert seen[0]["caller_id"] == "Analyst 1"
    # After the BYE the caller is gone, and the log has both ends.
    server.wait_for(lambda: not server.participants(event.id))
    left = server.participants(event.id, include_left=True)
    assert left[0]["state"] == "left"
    audit = server.api("GET", f"/api/events/{event.id}/audit").json()
    assert [e["kind"] for e in audit if e["kind"] in ("join", "leave")] == ["join", "leave"]


def test_speaker_passcode_joins_as_speaker(server: RunningServer, tmp_path: Path) -> None:
    event = server.create_event()
    result = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([event.speaker_passcode]),  # no '#': seven digits are the whole code
        stay_ms=9000,
        timeout=40,
        background_check=lambda: server.participants(event.id),
    )
    assert result.ok, result.report
    assert result.background[0]["role"] == "speaker"
    # Before the host starts the call, early callers wait on hold.
    assert result.background[0]["state"] == "hold"


def test_wrong_code_three_times_then_goodbye(server: RunningServer, tmp_path: Path) -> None:
    event = server.create_event()
    wrong = "1" if not event.passcode.startswith("1") else "2"
    result = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([wrong * 7] * 3, between_codes=2.0),
        timeout=45,
    )
    assert result.ok, result.report
    assert server.participants(event.id, include_left=True) == []
    # Each wrong code is on the record, with where it came from.
    with server.database.session() as session:
        failed = session.scalars(
            select(CallLogRow).where(CallLogRow.kind == "passcode_failed")
        ).all()
    assert len(failed) >= 3
    assert '"source": "127.0.0.1"' in failed[-1].detail
    assert '"dialled": "+19135550123"' in failed[-1].detail


def test_cancel_before_answer(server: RunningServer, tmp_path: Path) -> None:
    result = run_sipp(SCENARIOS / "cancel.xml", server.sip_target, tmp_path, timeout=20)
    assert result.ok, result.report


def test_options_ping(server: RunningServer, tmp_path: Path) -> None:
    result = run_sipp(SCENARIOS / "options.xml", server.sip_target, tmp_path, calls=5, rate=10)
    assert result.ok, result.report


def test_ending_the_call_says_goodbye_and_hangs_up(server: RunningServer, tmp_path: Path) -> None:
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    ended: list[int] = []

    def end_when_joined() -> bool:
        if server.participants(event.id) and not ended:
            ended.append(server.api("POST", f"/api/events/{event.id}/end").status_code)
        return bool(ended)

    result = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([event.passcode + "#"]),
        timeout=45,
        background_check=end_when_joined,
    )
    assert ended == [200]
    assert result.ok, result.report
    assert (
        server.api(
            "GET",
            f"/api/events/{event.id}",
        ).json()["state"]
        == "ended"
    )
    again = server.api("POST", f"/api/events/{event.id}/end")
    assert again.status_code == 409


def test_a_silent_caller_is_dropped_after_the_media_timeout(
    server: RunningServer, tmp_path: Path
) -> None:
    result = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([], lead_in=0.1),
        timeout=45,
    )
    assert result.ok, result.report
    assert "no RTP for" in server.log()


def test_a_burst_of_callers(server: RunningServer, tmp_path: Path) -> None:
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    peak: list[int] = []

    def count() -> bool:
        peak.append(len(server.participants(event.id)))
        return False

    result = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([event.passcode + "#"]),
        stay_ms=8000,
        calls=20,
        rate=10,
        timeout=60,
        background_check=count,
    )
    assert result.ok, result.report
    assert max(peak) >= 15
    attendance = server.api("GET", f"/api/events/{event.id}/attendance.csv").text
    assert len(attendance.strip().splitlines()) == 21


def test_bridge_stats_report_join_latency(server: RunningServer) -> None:
    stats = server.api("GET", "/api/bridge/stats")
    assert stats.status_code == 200
    body = stats.json()
    assert body["join_latency_ms"]["count"] >= 1
    # Keys to call audio: a store lookup and a tick, well under the 300 ms target.
    assert body["join_latency_ms"]["p50"] < 300


def test_the_call_is_recorded_and_assembled_when_it_ends(
    server: RunningServer, tmp_path: Path
) -> None:
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    t = np.arange(160) / 8000
    tone = (8000 * np.sin(2 * np.pi * 600 * t)).astype(np.int16)
    result = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([event.speaker_passcode], tone=tone, talk_after=6),
        stay_ms=8000,
        timeout=40,
    )
    assert result.ok, result.report
    assert server.api("POST", f"/api/events/{event.id}/end").status_code == 200
    folder = layout.event_recordings(server.data_dir, event.id)
    done = server.wait_for(lambda: list(folder.glob("*/assembled.json")), timeout=20)
    recording = done[0].parent
    heard, rate = read_wav(recording / "recording.wav")
    assert rate == 16_000  # the mix's rate
    assert len(heard) > 3 * rate
    assert tone_power(heard, rate, 600) > 0.5
    assert (recording / "recording.m4a").stat().st_size > 1000
    stems = list((recording / "stems").glob("*.wav"))
    assert len(stems) == 1


def test_sip_over_tcp(server: RunningServer, tmp_path: Path) -> None:
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    ping = run_sipp(SCENARIOS / "options.xml", server.sip_target, tmp_path, transport="t1")
    assert ping.ok, ping.report
    call = call_in(
        server.sip_target,
        tmp_path,
        passcode_stream([event.passcode + "#"]),
        stay_ms=6000,
        transport="t1",
        timeout=30,
        background_check=lambda: server.participants(event.id),
    )
    assert call.ok, call.report
    assert call.background and call.background[0]["role"] == "listener"


def test_moderating_an_ended_call_is_refused_clearly(server: RunningServer) -> None:
    event = server.create_event()
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    locked = server.api("POST", f"/api/events/{event.id}/actions", json={"action": "lock"})
    assert locked.status_code == 200 and locked.json()["locked"] is True
    missing = server.api(
        "POST", f"/api/events/{event.id}/actions", json={"action": "mute", "participant_id": "p0"}
    )
    assert missing.status_code == 409
    assert "not on the call" in missing.json()["detail"]
    assert server.api("POST", f"/api/events/{event.id}/end").status_code == 200
    refused = server.api("POST", f"/api/events/{event.id}/actions", json={"action": "unlock"})
    assert refused.status_code == 409
    assert refused.json()["detail"] == "the call has ended; there is nothing to moderate"
    bad = server.api("POST", f"/api/events/{event.id}/actions", json={"action": "explode"})
    assert bad.status_code == 422


def test_prometheus_scrapes_the_call(server: RunningServer, tmp_path: Path) -> None:
    """A real Prometheus scrapes ``serve --metrics-listen`` during two sipp listeners' call:
    its own API shows the listeners, the callers by role, and the SIP responses the call got;
    every metric the alert rules and the dashboard name is in the scrape."""
    need("prometheus")
    target = server.metrics_url.removeprefix("http://")
    # Started first: Prometheus hands a new target to its scraper only after about 5 s.
    with running_prometheus(tmp_path / "prometheus", [target]) as prometheus:
        assert httpx.get(server.metrics_url + "/healthz", timeout=5).text == "ok\n"
        assert httpx.get(server.http_url + "/healthz", timeout=5).status_code == 200
        # The web port (which the cache tier passes to the public) has no metrics.
        assert httpx.get(server.http_url + "/metrics", timeout=5).status_code == 404
        event = server.create_event()
        assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200

        def sent(code: int) -> float:
            return prometheus.value(f'callbridge_sip_responses_total{{code="{code}"}}') or 0.0

        # Before the call, as a scrape of our own reads them (Prometheus may not have
        # scraped yet); after it, as Prometheus does.
        first = httpx.get(server.metrics_url + "/metrics", timeout=5).text
        before = {
            code: sample(first, f'callbridge_sip_responses_total{{code="{code}"}}')
            for code in (100, 180, 200)
        }
        listeners = f'callbridge_listeners{{event="{event.id}",channel="phone"}}'
        scraped: dict[str, str] = {}

        def both_in() -> dict[str, float] | None:
            seen = {
                "phone": prometheus.value(listeners),
                "web": prometheus.value(
                    f'callbridge_listeners{{event="{event.id}",channel="web"}}'
                ),
                "legs": prometheus.value(
                    'sum(callbridge_legs{role="listener",state="connected",node="local"})'
                ),
                "calls": prometheus.value('callbridge_calls{state="live"}'),
            }
            if seen["phone"] != 2 or seen["legs"] != 2:
                return None
            # A scrape of our own while the call is on: every family is in it.
            scraped["text"] = httpx.get(server.metrics_url + "/metrics", timeout=5).text
            return {key: value for key, value in seen.items() if value is not None}

        result = call_in(
            server.sip_target,
            tmp_path,
            passcode_stream([event.passcode + "#"]),
            stay_ms=6000,
            calls=2,
            rate=10,
            timeout=40,
            background_check=both_in,
        )
        assert result.ok, result.report
        # (Calls of the module's earlier tests may still be open on this server.)
        assert result.background.pop("calls") >= 1
        assert result.background == {"phone": 2, "web": 0, "legs": 2}
        # Each call: 100 Trying, 180 Ringing, 200 to the INVITE and 200 to the BYE.
        expected = {100: before[100] + 2, 180: before[180] + 2, 200: before[200] + 4}
        wait_until(
            lambda: {code: sent(code) for code in expected} == expected,
            10,
            "the call's SIP responses in Prometheus",
            lambda: str({code: sent(code) for code in expected}),
        )
        wait_until(lambda: prometheus.value(listeners) == 0, 10, "the listeners gone")
        # Every metric the rules and the dashboard name is in a real scrape, and
        # Prometheus accepts every dashboard query.
        exposed = exposed_series(scraped["text"]) | prometheus.names()
        for expr in monitoring_exprs():
            names = metric_names(expr)
            assert names <= exposed, (expr, names - exposed)
        for expr in dashboard_exprs():
            prometheus.query(expr.replace("$instance", ".*"))
    # A wedged media plane (stopped, as a process stuck in the kernel would be): the
    # health check says 503, a scrape says callbridge_media_up 0; then all is back.
    media = int(re.findall(r"the media process is pid (\d+)", server.log())[-1])
    os.kill(media, signal.SIGSTOP)
    try:
        answer = httpx.get(
            server.http_url + "/healthz", timeout=5
        )  # the metrics port's is the same
        assert (answer.status_code, answer.text) == (503, "the media plane is not reachable\n")
        scrape = httpx.get(server.metrics_url + "/metrics", timeout=10).text
        assert "callbridge_media_up 0.0" in scrape
        assert "callbridge_legs" not in scrape
    finally:
        os.kill(media, signal.SIGCONT)
    server.wait_for(lambda: httpx.get(server.metrics_url + "/healthz", timeout=5).text == "ok\n")


def sample(text: str, series: str) -> float:
    """A series' value in a scrape's text (0 when the scrape has none)."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
