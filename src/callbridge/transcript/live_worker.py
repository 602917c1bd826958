"""The live caption worker: ``python -m callbridge.transcript.live_worker [--term T]...``.

Started per live call by ``webcast.captions.LiveCaptions``. Reads chunks of
the mix on stdin (``CHUNK_HEADER``: sample offset and count, then 16-bit
little-endian samples at 8 kHz) and writes JSON lines on stdout:

    {"cue": {"start", "end", "ready", "text"}}   samples on the caption clock
    {"horizon": N}                               no cue to come starts before N
    {"dropped": N}                               chunks it could not keep up reading

A thread reads stdin into a bounded queue, so the host's writes never wait on
a decode; the main thread cuts and decodes (``live.LiveCaptioner``), writes
figures as figures and applies the glossary (``transcribe.written``). The
engine is loaded first, while the reader thread queues the mix.
At end of input it decodes what it has heard and exits.
"""

from __future__ import annotations

import argparse
import json
import queue
import struct
import sys
import threading
from collections.abc import Sequence
from typing import IO

import numpy as np
import numpy.typing as npt

from callbridge.transcript.engine import (
    EngineUnavailable,
    MoonshineEngine,
    SpeechEngine,
    available_engines,
    get_engine,
)
from callbridge.transcript.live import CaptionConfig, LiveCaptioner, LiveCue
from callbridge.transcript.transcribe import written

CHUNK_HEADER = struct.Struct("<qI")
MAX_CHUNK = 48_000  # samples in one chunk (six seconds): larger is a broken stream
MAX_QUEUED = 1500  # chunks waiting (thirty seconds of frames)
HORIZON_STEP = 2560  # samples: 0.32 s at 8 kHz

Chunk = tuple[int, npt.NDArray[np.int16]] | None


def read_chunks(stream: IO[bytes], chunks: queue.Queue[Chunk], dropped: list[int]) -> None:
    """Read chunks from ``stream`` into ``chunks`` until end of input (then put None)."""
    try:
        while True:
            header = stream.read(CHUNK_HEADER.size)
            if len(header) < CHUNK_HEADER.size:
                break
            offset, count = CHUNK_HEADER.unpack(header)
            if count > MAX_CHUNK or offset < 0:
                break
            data = stream.read(count * 2)
            if len(data) < count * 2:
                break
            samples = np.frombuffer(data, dtype="<i2").astype(np.int16)
            try:
                chunks.put_nowait((offset, samples))
            except queue.Full:
                dropped[0] += 1
    finally:
        chunks.put(None)


def cue_message(cue: LiveCue) -> str:
    return json.dumps(
        {"cue": {"start": cue.start, "end": cue.end, "ready": cue.ready, "text": cue.text}}
    )


def load_engine(name: str | None, threads: int) -> SpeechEngine:
    """The engine ``name`` (None: the best installed), Moonshine on ``threads`` threads."""
    if name in (None, "moonshine") and "moonshine" in available_engines():
        return MoonshineEngine(threads=threads)
    return get_engine(name)


def run(
    source: IO[bytes],
    out: IO[str],
    glossary: Sequence[str] = (),
    engine_name: str | None = None,
    config: CaptionConfig | None = None,
    threads: int = 1,
) -> int:
    """Caption ``source`` into ``out`` until end of input; returns the exit status."""
    config = config or CaptionConfig()
    chunks: queue.Queue[Chunk] = queue.Queue(MAX_QUEUED)
    dropped = [0]
    reader = threading.Thread(
        target=read_chunks, args=(source, chunks, dropped), name="read", daemon=True
    )
    reader.start()
    captioner: LiveCaptioner | None = None
    engine: SpeechEngine | None = None
    broken = False
    try:
        # Loaded before the first words, not at them: a worker started again
        # mid-call captions the next sentence without a load's delay.
        engine = load_engine(engine_name, threads)
    except EngineUnavailable as error:
        out.write(json.dumps({"error": str(error)}) + "\n")
        out.flush()
        broken = True
    ended = False
    last_horizon = -1
    last_dropped = 0

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    def take(block: bool) -> None:
        """Feed the captioner everything that has arrived (waiting a little if ``block``)."""
        nonlocal captioner, ended
        while not ended:
            try:
                item = chunks.get(timeout=0.1) if block else chunks.get_nowait()
            except queue.Empty:
                return
            block = False
            if item is None:
                ended = True
                if captioner is not None:
                    captioner.flush()
                return
            offset, samples = item
            if captioner is None:
                captioner = LiveCaptioner(config, first=offset)
            captioner.feed(offset, samples)

    while True:
        # Everything that has arrived is fed before the next decode: the
        # captioner decides what is too late from the newest sample.
        take(block=captioner is None or not captioner.pending)
        if captioner is None:
            if ended:
                return 0
            continue
        piece = captioner.next_piece()
        if piece is not None:
            if engine is None and not broken:
                try:
                    engine = load_engine(engine_name, threads)
                except EngineUnavailable as error:
                    # No captions, but the horizon still moves: the subtitles stay live.
                    say(json.dumps({"error": str(error)}))
                    broken = True
            text = ""
            if engine is not None:
                segments = engine.transcribe(piece.samples, config.rate, glossary)
                text = " ".join(s.text for s in segments if s.text.strip())
            # What arrived during the decode first: a cue's ``ready`` is the edge now.
            take(block=False)
            captioner.decoded(written(text, glossary) if text else "")
        cues = captioner.take_cues()
        for cue in cues:
            say(cue_message(cue))
        horizon = captioner.horizon()
        # A third of a second at least between horizons (each wakes a thread in the
        # media plane's process), unless a cue just went out.
        if horizon > last_horizon and (cues or horizon - last_horizon >= HORIZON_STEP):
            say(json.dumps({"horizon": horizon}))
            last_horizon = horizon
        if dropped[0] != last_dropped:
            last_dropped = dropped[0]
            say(json.dumps({"dropped": last_dropped}))
        if ended and not captioner.pending and captioner.decoding is None:
            say(json.dumps({"horizon": captioner.fed}))
            return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callbridge.transcript.live_worker")
    parser.add_argument("--term", action="append", default=[], help="a glossary term")
    parser.add_argument("--engine", default=None, help="speech engine (default: the best)")
    parser.add_argument("--threads", type=int, default=1, help="engine threads")
    args = parser.parse_args(argv)
    # One engine thread by default: a live call's captions need a fifth of a
    # core, and the media plane must keep the rest.
    return run(sys.stdin.buffer, sys.stdout, args.term, args.engine, threads=args.threads)


if __name__ == "__main__":
    sys.exit(main())
