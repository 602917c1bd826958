"""A speaker's tone bursts on the phone, heard in a webcast page: the glass-to-glass check.

``hear_live`` opens the live webcast in a Chromium page, dials a sipp speaker
in who keys the speaker passcode and then sends tone bursts, and measures
when the bridge saw each burst (the console's talking indicator) and when
the page heard it (a Web Audio analyser on the media element).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from callbridge.events.schema import EventRecord
from callbridge.rtp.g711 import ulaw_encode
from callbridge.rtp.packet import RtpPacket
from tests.support.pcap import Timed, passcode_stream
from tests.support.sipp import SippResult, call_in
from tests.telephony.conftest import RunningServer

TONE_HZ = 600.0
# Bursts of tone, one second each, this far apart once the speaker has keyed in.
BURST_EVERY = 3.0
BURSTS = 5

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


def talking_onsets(server: RunningServer, event_id: int, stop: threading.Event) -> list[float]:
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


def hear_live(
    server: RunningServer, page: Any, page_url: str, event: EventRecord, tmp_path: Path
) -> tuple[dict[str, Any], float]:
    """Play ``page_url`` (the event's live webcast page) while a speaker talks.

    Returns the report (bridge-to-page delay of the bursts, hls.js latency,
    stalls) and how long the speaker talked; asserts that the page played
    throughout and heard the bursts.
    """
    page.goto(page_url)
    page.wait_for_function("() => document.getElementById('webcast').dataset.playing === 'live'")
    page.evaluate(LISTEN)
    page.wait_for_function(
        "() => document.getElementById('media').currentTime > 0.5", timeout=15_000
    )
    first = page.evaluate("document.getElementById('media').currentTime")

    packets, _ = speaker_stream(event.speaker_passcode)
    talk_seconds = packets[-1].at + 1
    stop = threading.Event()
    server_onsets: list[float] = []
    watcher = threading.Thread(
        target=lambda: server_onsets.extend(talking_onsets(server, event.id, stop))
    )
    watcher.start()
    speaker: list[SippResult] = []
    speaker.append(
        call_in(
            server.sip_target,
            tmp_path,
            packets,
            name="speaker",
            stay_ms=int(talk_seconds * 1000) + 3000,
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
    return report, talk_seconds
