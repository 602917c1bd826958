#!/usr/bin/env python3
"""Live webcast packager cost: CPU per second of audio, and the cost of push() on the loop.

Pushes N seconds of mix (a speech-like warble) into a LiveWebcast as fast as
the worker takes it, then reports the worker thread's CPU time (resample,
AAC-LC encode, fMP4 parts and segments, playlist, atomic writes) per second
of audio, and the mean cost of one push() on the caller's side. Also times
the replay packaging (remux of an M4A) when --vod-minutes is given.

    .venv/bin/python bench/webcast_encode_bench.py                 # 120 s of audio
    .venv/bin/python bench/webcast_encode_bench.py --seconds 600 --vod-minutes 60

It prints its figures and the command that reproduces them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from callbridge.media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from callbridge.webcast.live import LiveConfig, LiveWebcast


def frames(count: int) -> list[np.ndarray]:
    t = np.arange(count * FRAME_SAMPLES) / SAMPLE_RATE
    pitch = 180 + 60 * np.sin(2 * np.pi * 3 * t)
    signal = np.sin(2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE) * (0.5 + 0.5 * np.sin(t * 7))
    pcm = (signal * 12_000).astype(np.int16)
    return [pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES] for i in range(count)]


def live(seconds: int, directory: Path) -> None:
    count = seconds * 50
    mix = frames(count)
    webcast = LiveWebcast(directory, LiveConfig(max_pending_frames=count + 1))
    push_time = 0.0
    began = time.perf_counter()
    for n, pcm in enumerate(mix):
        t0 = time.perf_counter()
        webcast.push(n, pcm)
        push_time += time.perf_counter() - t0
    webcast.close()
    wall = time.perf_counter() - began
    stats = webcast.stats
    size = sum(p.stat().st_size for p in directory.glob("seg*.m4s"))
    print(f"live: {seconds} s of audio, {stats.parts} parts, {stats.segments} segments")
    print(
        f"  worker CPU          {stats.worker_cpu_s:.2f} s  "
        f"= {stats.worker_cpu_s / seconds * 1000:.1f} ms per second of audio "
        f"({stats.worker_cpu_s / seconds * 100:.2f} % of a core)"
    )
    print(f"  push() on the loop  {push_time / count * 1e6:.2f} µs per 20 ms frame")
    print(f"  wall (as fast as possible) {wall:.2f} s, {seconds / wall:.0f}× real time")
    print(f"  segments on disk    {size / seconds * 8 / 1000:.1f} kbit/s")


def vod(minutes: int, directory: Path) -> None:
    from callbridge.media import recording
    from callbridge.webcast.vod import package_replay

    wav = directory / "recording.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        block = np.concatenate(frames(50 * 60))
        for _ in range(minutes):
            w.writeframes(block.astype("<i2").tobytes())
    recording._encode_aac(wav, directory / "recording.m4a")
    began = time.perf_counter()
    result = package_replay(wav, directory / "hls")
    took = time.perf_counter() - began
    print(
        f"vod: {minutes} min recording -> {result.segments} segments in {took:.2f} s "
        f"(remuxed: {result.remuxed})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--vod-minutes", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        live(args.seconds, Path(tmp) / "live")
        if args.vod_minutes:
            vod(args.vod_minutes, Path(tmp))
    print("reproduce: .venv/bin/python " + " ".join(sys.argv))


if __name__ == "__main__":
    main()
