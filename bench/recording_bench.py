"""What recording costs the 20 ms media tick, and what assembly costs after the call.

    .venv/bin/python bench/recording_bench.py [--seconds 60] [--dir /var/lib/...]

Feeds ``CallRecorder`` as fast as it will go (no pacing: the cost per call is
what matters; the background writer is drained, untimed, after each chunk
boundary, as 2 s of real time would) with one mix and K speaker stems per tick, for the synchronous
writer and for ``ChunkWriterThread``, and reports the cost of a tick that
only buffers and of a tick that also finishes chunks (fsync on the sync
writer). Then times ``assemble`` of the result. Use ``--dir`` on the disk the
server records to: fsync cost is a property of the disk.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from callbridge.media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from callbridge.media.recording import CallRecorder, ChunkSink, ChunkWriterThread, assemble


def frames(count: int) -> np.ndarray:
    n = np.arange(count * FRAME_SAMPLES)
    tone = 8000 * np.sin(2 * np.pi * 440 * n / SAMPLE_RATE)
    return tone.astype(np.int16).reshape(count, FRAME_SAMPLES)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(root: Path, label: str, stems: int, ticks: int, writer: ChunkSink | None) -> Path:
    directory = root / f"{label}-{stems}"
    pcm = frames(ticks)
    recorder = CallRecorder(directory, 1, chunk_seconds=2.0, writer=writer)
    speakers = [f"p1-{i}" for i in range(stems)]
    plain: list[float] = []
    flushing: list[float] = []
    for n in range(ticks):
        crossing = n % recorder.chunk_frames == 0 and n > 0
        started = time.perf_counter()
        recorder.write_mix(n, pcm[n])
        for speaker in speakers:
            recorder.write_stem(speaker, n, pcm[n])
        elapsed = (time.perf_counter() - started) * 1e6
        (flushing if crossing else plain).append(elapsed)
        if crossing:
            # In a real call the writer has 2 s until the next batch: let it catch up,
            # untimed, instead of piling 60 s of chunks into its bounded queue.
            recorder.writer.drain()
    started = time.perf_counter()
    recorder.close()
    closing = (time.perf_counter() - started) * 1e3
    print(
        f"{label:>6} {stems:>5} | buffer-only tick µs p50 {statistics.median(plain):6.1f}"
        f" p99 {pct(plain, 0.99):7.1f} | flushing tick µs p50 {statistics.median(flushing):8.1f}"
        f" p99 {pct(flushing, 0.99):8.1f} max {max(flushing):8.1f} | close {closing:6.1f} ms"
    )
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per run")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: /tmp)")
    args = parser.parse_args()
    ticks = int(args.seconds * 50)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        print(f"{ticks} ticks ({args.seconds:.0f} s), chunks of 2 s, 1 mix + K stems per tick")
        print("writer stems |")
        last = root
        for stems in (0, 4, 10):
            run(root, "sync", stems, ticks, None)
            writer = ChunkWriterThread()
            try:
                last = run(root, "thread", stems, ticks, writer)
            finally:
                writer.close()
        started = time.perf_counter()
        result = assemble(last)
        print(
            f"assemble {result.duration_s:.0f} s with {len(result.stems)} stems:"
            f" {time.perf_counter() - started:.2f} s (WAV + stems + AAC)"
        )


if __name__ == "__main__":
    main()
