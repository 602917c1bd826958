"""A speaker reads a known paragraph on the phone; the webcast page's caption cues as they show.

``speech_stream`` builds the speaker's RTP (the passcode, then espeak-ng
speech of each part of the paragraph, a pause between parts) for sipp's
``play_pcap_audio``; ``side_by_side`` plays it into a call on each of
several servers at once and reads their media clocks; ``COLLECT`` runs in
the page and records every cue of every text track when it first becomes
active, with the page's clock and the player's position, and the player's
position over time (to tell when the words of a cue were heard).
"""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

# A phone sends 8 kHz μ-law, whatever the mix's rate.
from callbridge.media.mixer import PHONE_FRAME_SAMPLES as FRAME_SAMPLES
from callbridge.media.mixer import PHONE_RATE as SAMPLE_RATE
from callbridge.rtp.g711 import ulaw_encode
from callbridge.rtp.packet import RtpPacket
from tests.support.pcap import Timed, passcode_stream
from tests.support.sipp import call_in
from tests.transcript.speech import speak

PARTS = (
    "Good morning, and welcome to our third quarter earnings call. "
    "Revenue grew twelve percent to forty two million dollars.",
    "Operating margin improved to eighteen percent. "
    "We expect next year to be our strongest yet. Now let us open the line for questions.",
)
PARAGRAPH = " ".join(PARTS)

COLLECT = """
() => {
  const media = document.getElementById('media');
  window.__cues = [];
  window.__positions = [];
  const seen = new Set();
  function watch(track) {
    if (track.__collected) return;
    track.__collected = true;
    track.addEventListener('cuechange', () => {
      for (const cue of Array.from(track.activeCues || [])) {
        const key = cue.id + '|' + cue.startTime + '|' + cue.text;
        if (seen.has(key)) continue;
        seen.add(key);
        window.__cues.push({text: cue.text.replace(/<[^>]*>/g, ''), start: cue.startTime,
          end: cue.endTime, shownAt: Date.now(), currentTime: media.currentTime,
          shownText: document.getElementById('captions').textContent});
      }
    });
  }
  for (const track of Array.from(media.textTracks)) watch(track);
  media.textTracks.addEventListener('addtrack', (e) => watch(e.track));
  setInterval(() => {
    if (!media.paused) window.__positions.push([Date.now(), media.currentTime]);
    for (const track of Array.from(media.textTracks)) watch(track);
  }, 50);
}
"""


def speech_stream(
    code: str, gap_s: float = 5.0, parts: tuple[str, ...] = PARTS
) -> tuple[list[Timed], list[tuple[float, float]]]:
    """The speaker's packets, and (start, end) seconds into the stream of each part's speech."""
    packets = passcode_stream([code])
    last = packets[-1]
    seq, ts, at = last.packet.sequence_number + 1, last.packet.timestamp + 160, last.at + 0.02
    silence = ulaw_encode(np.zeros(FRAME_SAMPLES, np.int16))

    def send(payload: bytes) -> None:
        nonlocal seq, ts, at
        packets.append(Timed(at, RtpPacket(0, seq & 0xFFFF, ts, 0x5EED1234, payload)))
        seq, ts, at = seq + 1, ts + 160, at + 0.02

    def pause(seconds: float) -> None:
        for _ in range(int(seconds / 0.02)):
            send(silence)

    spans = []
    pause(2.0)
    for index, text in enumerate(parts):
        samples = speak(text)
        samples = np.concatenate([samples, np.zeros(-len(samples) % FRAME_SAMPLES, np.int16)])
        start = at
        for i in range(0, len(samples), FRAME_SAMPLES):
            send(ulaw_encode(samples[i : i + FRAME_SAMPLES]))
        spans.append((start, start + len(samples) / SAMPLE_RATE))
        pause(gap_s if index < len(parts) - 1 else 3.0)
    return packets, spans


def heard_at(positions: list[list[float]], media_time: float) -> float | None:
    """The page's clock (s) when the player reached ``media_time``, from its position samples."""
    for (wall_a, t_a), (wall_b, t_b) in itertools.pairwise(positions):
        if t_a <= media_time <= t_b and t_b > t_a:
            return (wall_a + (media_time - t_a) / (t_b - t_a) * (wall_b - wall_a)) / 1000
    return None


def side_by_side(
    servers: list[Any], tmp: Path, parts: tuple[str, ...] = PARTS, gap_s: float = 1.0
) -> list[tuple[int, dict[str, Any]]]:
    """A live call on each of ``servers`` (``RunningServer``), a sipp speaker reading
    ``parts`` into all of them at once (the same load on the machine for each); each
    call's event id and its server's ``/api/bridge/stats``, read before the calls end."""
    calls = []
    talk_seconds = 0.0
    for index, server in enumerate(servers):
        event = server.create_event(starts_in=timedelta(minutes=-1), registration="off")
        assert server.api("POST", f"/api/events/{event.id}/start").status_code == 200
        server.wait_for(
            lambda s=server, e=event: s.api("GET", f"/api/events/{e.id}/webcast").json()[
                "live_playlist"
            ],
            timeout=20,
        )
        packets, _ = speech_stream(event.speaker_passcode, gap_s=gap_s, parts=parts)
        folder = tmp / f"side-{index}"
        folder.mkdir()
        talk_seconds = max(talk_seconds, packets[-1].at + 1)
        calls.append((server, event.id, folder, packets))
    results: list[Any] = [None] * len(calls)

    def dial(index: int) -> None:
        server, _, folder, packets = calls[index]
        results[index] = call_in(
            server.sip_target,
            folder,
            packets,
            name="speaker",
            stay_ms=int(talk_seconds * 1000),
            timeout=talk_seconds + 30,
        )

    dialers = [threading.Thread(target=dial, args=(i,)) for i in range(len(calls))]
    for dialer in dialers:
        dialer.start()
    for dialer in dialers:
        dialer.join()
    assert all(r is not None and r.ok for r in results), [r.output[-800:] for r in results if r]
    # Read while the calls are live: a clock's figures go when its call ends.
    stats = [
        (event_id, server.api("GET", "/api/bridge/stats").json()) for server, event_id, *_ in calls
    ]
    for server, event_id, *_ in calls:
        assert server.api("POST", f"/api/events/{event_id}/end").status_code == 200
    return stats
