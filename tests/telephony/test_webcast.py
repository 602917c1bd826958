"""The webcast end to end: a sipp speaker on the phone, the investor page in real Chromium.

Live: the page plays the call through hls.js in low-latency mode; its
``currentTime`` advances; the speaker's tone bursts are heard in the page
(Web Audio analyser on the media element); the latency behind the live mix
is read from hls.js (EXT-X-PROGRAM-DATE-TIME against the page's clock) and
from the tone onsets (the server sees the speaker talk; the page hears it).
After the call: the page switches to the replay, which plays and seeks;
the replay window over, the media answer 410.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callbridge.rtp.g711 import ulaw_encode
from callbridge.rtp.packet import RtpPacket
from tests.support.chromium import launch
from tests.support.pcap import Timed, passcode_stream, write_pcap
from tests.support.sipp import SCENARIOS, SippResult, run_sipp
from tests.telephony.conftest import RunningServer, need

pytestmark = [pytest.mark.browser, pytest.mark.sipp]

TONE_HZ = 600.0
# Bursts of tone, one second each, this far apart once the speaker has keyed in.
BURST_EVERY = 4.0
BURSTS = 6

# Runs in the page: an analyser on the <audio> element records when sound starts.
LISTEN = """
() => {
  const media = document.getElementById('media');
  const ctx = new AudioContext();
  const source = ctx.createMediaElementSource(media);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  source.connect(analyser);
  analyser.connect(ctx.destination);
  const buf = new Float32Array(analyser.fftSize);
  window.__onsets = [];
  window.__latency = [];
  window.__stalls = 0;
  media.addEventListener('waiting', () => { window.__stalls += 1; });
  let loud = false;
  setInterval(() => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const x of buf) sum += x * x;
    const rms = Math.sqrt(sum / buf.length);
    if (!loud && rms > 0.05) { loud = true; window.__onsets.push(Date.now()); }
    if (loud && rms < 0.01) loud = false;
  }, 10);
}
"""


def tone_frames(seconds: float) -> list[bytes]:
    t = np.arange(int(seconds * 8000)) / 8000
    samples = (9000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
    return [ulaw_encode(samples[i : i + 160]) for i in range(0, len(samples), 160)]


def speaker_stream(code: str) -> tuple[list[Timed], float]:
    """The speaker keys ``code``, then tone bursts; the packets, and the first burst's offset."""
    packets = passcode_stream([code])
    last = packets[-1]
    seq, ts, at = last.packet.sequence_number + 1, last.packet.timestamp + 160, last.at + 0.02
    silence = ulaw_encode(np.zeros(160, np.int16))
    first_burst = at + 2.0

    def send(payload: bytes) -> None:
        nonlocal seq, ts, at
        packets.append(Timed(at, RtpPacket(0, seq & 0xFFFF, ts, 0x5EED1234, payload)))
        seq, ts, at = seq + 1, ts + 160, at + 0.02

    for _ in range(100):
        send(silence)
    for _ in range(BURSTS):
        for frame in tone_frames(1.0):
            send(frame)
        for _ in range(int((BURST_EVERY - 1.0) / 0.02)):
            send(silence)
    return packets, first_burst


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with launch() as browser:
        yield browser.new_page(viewport={"width": 420, "height": 900})


def _talking_onsets(server: RunningServer, event_id: int, stop: threading.Event) -> list[float]:
    """Wall times at which the bridge saw the speaker start talking (the console's indicator)."""
    onsets: list[float] = []
    talking = False
    while not stop.is_set():
        try:
            people = server.participants(event_id)
        except Exception:
            people = []
        now = time.time()
        speaking = any(p["role"] == "speaker" and p["talking"] for p in people)
        if speaking and not talking:
            onsets.append(now)
        talking = speaking
        time.sleep(0.02)
    return onsets


def test_live_webcast_then_replay(server: RunningServer, tmp_path: Path, browser_page: Any) -> None:
    need("sipp")
    page = browser_page
    event = server.create_event(starts_in=timedelta(minutes=-1), registration="off")
    assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
    server.wait_for(
        lambda: server.api("GET", f"/api/events/{event.id}/webcast").json()["live_playlist"],
        timeout=15,
    )

    page.goto(f"{server.http_url}/events/{event.id}/webcast")
    page.wait_for_function("() => document.getElementById('webcast').dataset.playing === 'live'")
    page.evaluate(LISTEN)
    page.wait_for_function(
        "() => document.getElementById('media').currentTime > 0.5", timeout=15_000
    )
    first = page.evaluate("document.getElementById('media').currentTime")

    packets, _ = speaker_stream(event.speaker_passcode)
    pcap = tmp_path / "speaker.pcap"
    write_pcap(pcap, packets)
    talk_seconds = packets[-1].at + 1
    stop = threading.Event()
    server_onsets: list[float] = []
    watcher = threading.Thread(
        target=lambda: server_onsets.extend(_talking_onsets(server, event.id, stop))
    )
    watcher.start()
    speaker: list[SippResult] = []
    speaker.append(
        run_sipp(
            SCENARIOS / "dial_in.xml",
            server.sip_target,
            tmp_path,
            substitutions={"pcap": str(pcap), "stay_ms": str(int(talk_seconds * 1000) + 3000)},
            timeout=talk_seconds + 30,
        )
    )
    time.sleep(2.5)  # the last burst reaches the page
    stop.set()
    watcher.join()
    assert speaker[0].ok, speaker[0].output[-2000:]

    state = page.evaluate(
        """() => ({
            t: document.getElementById('media').currentTime,
            paused: document.getElementById('media').paused,
            onsets: window.__onsets,
            stalls: window.__stalls,
            hlsLatency: document.getElementById('webcast').hlsPlayer.latency,
        })"""
    )
    assert not state["paused"]
    assert state["t"] > first + talk_seconds - 3, state
    page_onsets = [x / 1000 for x in state["onsets"]]
    assert len(server_onsets) >= BURSTS - 1, server_onsets
    # Each burst the bridge saw, the page heard; the delay is glass to glass less the phone leg.
    delays = []
    for onset in server_onsets:
        later = [p - onset for p in page_onsets if 0 <= p - onset < 10]
        if later:
            delays.append(min(later))
    assert len(delays) >= BURSTS - 1, (server_onsets, page_onsets)
    delays.sort()
    report = {
        "bursts": len(delays),
        "bridge_to_page_s_p50": round(delays[len(delays) // 2], 3),
        "bridge_to_page_s_max": round(delays[-1], 3),
        "hls_js_latency_s": round(state["hlsLatency"], 3),
        "stalls": state["stalls"],
    }
    print("\nWEBCAST LATENCY", json.dumps(report))
    (tmp_path / "latency.json").write_text(json.dumps(report))
    assert report["bridge_to_page_s_p50"] < 3.0, report

    # The call ends: the page says so, then switches to the replay when it is packaged.
    ended = time.monotonic()
    assert server.api("POST", f"/api/events/{event.id}/end").status_code == 200
    page.wait_for_function(
        "() => document.getElementById('webcast').dataset.playing === 'replay'", timeout=60_000
    )
    print("REPLAY ON THE PAGE", round(time.monotonic() - ended, 2), "s after the call ended")
    page.wait_for_function(
        "() => Number.isFinite(document.getElementById('media').duration)"
        " && document.getElementById('media').duration > 10",
        timeout=20_000,
    )
    duration = page.evaluate("document.getElementById('media').duration")
    assert duration > talk_seconds - 2
    page.evaluate("document.getElementById('media').currentTime = 12")
    page.wait_for_function(
        "() => document.getElementById('media').currentTime >= 12.5", timeout=15_000
    )
    status = server.api("GET", f"/api/events/{event.id}/webcast").json()
    assert status["replay"] == "ready"
    assert httpx_get(server.http_url + status["replay_download"]).status_code == 200

    # The transcript runs after the replay is packaged; the console sees it finish.
    def transcribed() -> bool:
        response = server.api("GET", f"/api/events/{event.id}/transcript/progress")
        return response.status_code == 200 and response.json()["state"] == "done"

    server.wait_for(transcribed, timeout=120, interval=1.0)
    captions = httpx_get(f"{server.http_url}/webcast/{event.id}/captions.vtt")
    assert captions.status_code == 200 and captions.text.startswith("WEBVTT")


def httpx_get(url: str) -> Any:
    import httpx

    return httpx.get(url, timeout=10)
