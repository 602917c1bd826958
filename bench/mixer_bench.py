#!/usr/bin/env python3
"""Mixing cost per 20 ms tick for 2, 5 and 10 speakers, and the encode-once fan-out.

Pure CPU: the real Mixer (N-1 in int32, soft knee) and the real G.711 tables,
with the real Conference fanning one encoded payload out to many listener
legs (their send is a no-op here, so this is the bridge's own work without
the system calls; bench/dialin_bench.py measures those with real calls).

    .venv/bin/python bench/mixer_bench.py
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callbridge.media.conference import Conference
from callbridge.media.mixer import FRAME_SAMPLES, Mixer, Pcm
from callbridge.rtp.codecs import encoder

NOW = datetime.now(UTC)


class Leg:
    codec_name = "PCMU"

    def __init__(self, frame: Pcm | None) -> None:
        self.frame = frame
        self.sent = 0

    def pull_frame(self, now: float) -> Pcm | None:
        return self.frame

    def send_payload(self, payload: bytes, now: float) -> None:
        self.sent += 1


def speech(seed: int) -> Pcm:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(FRAME_SAMPLES) * 4000).astype(np.int16)


def per_tick(function: object, ticks: int) -> tuple[float, float]:
    times = []
    for _ in range(ticks):
        start = time.perf_counter()
        function()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1e6, times[int(len(times) * 0.99)] * 1e6


def main() -> int:
    print("callbridge mixer benchmark (µs per 20 ms tick; budget 20,000)")
    mixer = Mixer()
    for speakers in (2, 5, 10):
        frames = {f"s{i}": speech(i) for i in range(speakers)}
        p50, p99 = per_tick(lambda frames=frames: mixer.mix(frames), 3000)
        print(f"  mix only, {speakers:>2} speakers: p50 {p50:6.1f}  p99 {p99:6.1f}")
    for speakers, listeners in ((5, 100), (5, 1000), (5, 3000), (10, 1000)):
        conference = Conference(1, encoder, max_participants=listeners + speakers)
        conference.start()
        for i in range(speakers):
            conference.join(Leg(speech(i)), may_talk=True)
        for _ in range(listeners):
            conference.join(Leg(None), may_talk=False)
        p50, p99 = per_tick(lambda c=conference: c.tick(0.0), 500)
        share = p50 / 20_000 * 100
        print(
            f"  full tick, {speakers} speakers + {listeners:>4} listeners: p50 {p50:7.1f}  "
            f"p99 {p99:7.1f}  ({share:.1f} % of a core; {conference.stats.encodes // 500} "
            "encodes per tick)"
        )
    print("  reproduce: .venv/bin/python bench/mixer_bench.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
