"""The live caption worker: ``python -m callbridge.webcast.caption_worker [--term T]...``.

Started per live call by its host, ``captions.LiveCaptions``, beside it in
this package (the worker writes the host's files, so it lives with them, and
``transcript`` stays below ``webcast``). Reads records on stdin
(``CHUNK_HEADER``: sample offset and count, then 16-bit
little-endian samples at 16 kHz (the mix's rate); first, a timeline record naming the live
folder, ``captions.timeline_record``; and, as it changes, who is talking,
``captions.speaking_record``) and writes the captions' files itself
(``captions.CaptionFiles``: subtitle segments and playlist, the transcript),
so the media plane's process does no caption work but the hand-off. Without
a timeline it writes JSON lines on stdout instead:

    {"cue": {"start", "end", "ready", "text"}}   samples on the caption clock; a revision
                                                 also has "number" and "revises" (numbers)
    {"horizon": N}                               no cue to come starts before N
    {"dropped": N}                               chunks it could not keep up reading
    {"error": "..."}                             (with or without a timeline)

A thread reads stdin into a bounded queue, so the host's writes never wait on
a decode, and publishes subtitle segments as the audio passes them; the main
thread cuts and decodes (``live.LiveCaptioner``), writes figures as figures
and applies the glossary (``transcribe.written``), and gives each cue the
name of who spoke longest in it (``speaking.SpeakerTimeline``). When the engine
has nothing new to read, the captioner may hand it a re-reading of the last
cues (``LiveCaptioner.settling``), whose better reading comes back as a cue
that revises them. The engine is loaded first, while the reader thread
queues the mix. At end of input it decodes what it has heard, ends the
subtitle playlist and exits.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
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
from callbridge.transcript.speaking import SpeakerTimeline, Talkers
from callbridge.transcript.transcribe import written
from callbridge.webcast.captions import (
    CHUNK_HEADER,
    MAX_SPEAKING,
    MAX_TIMELINE,
    SPEAKING,
    TIMELINE,
    CaptionFiles,
    read_speaking,
)

MAX_CHUNK = 96_000  # samples in one chunk (six seconds at 16 kHz): larger is a broken stream
MAX_QUEUED = 1500  # chunks waiting (thirty seconds of frames)
HORIZON_STEP = 5120  # samples: 0.32 s at 16 kHz

Chunk = tuple[int, npt.NDArray[np.int16]] | Talkers | None


class Outlet:
    """Where the worker's captions go: ``CaptionFiles`` once the host's timeline has come,
    JSON lines on ``out`` until then (or for a host that sends none)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.files: CaptionFiles | None = None
        self._lock = threading.Lock()

    def say(self, message: dict[str, object]) -> None:
        with self._lock:
            self.out.write(json.dumps(message) + "\n")
            self.out.flush()


def read_chunks(
    stream: IO[bytes], chunks: queue.Queue[Chunk], dropped: list[int], outlet: Outlet | None = None
) -> None:
    """Read records from ``stream`` until end of input (then put None): chunks of the mix
    into ``chunks`` (each moves the files' edge), a timeline into ``outlet``."""
    try:
        while True:
            header = stream.read(CHUNK_HEADER.size)
            if len(header) < CHUNK_HEADER.size:
                break
            offset, count = CHUNK_HEADER.unpack(header)
            if offset == TIMELINE and count <= MAX_TIMELINE:
                payload = stream.read(count)
                if len(payload) < count:
                    break
                if outlet is not None:
                    try:
                        outlet.files = CaptionFiles.from_record(payload)
                    except ValueError as error:
                        outlet.say({"error": str(error)})
                continue
            if offset == SPEAKING and count <= MAX_SPEAKING:
                payload = stream.read(count)
                if len(payload) < count:
                    break
                try:
                    # In order with the chunks: the main thread keeps the timeline.
                    chunks.put(read_speaking(payload), timeout=1.0)
                except ValueError as error:
                    if outlet is not None:
                        outlet.say({"error": str(error)})
                except queue.Full:
                    dropped[0] += 1
                continue
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
            files = outlet.files if outlet is not None else None
            if files is not None:
                # Segments go out as the audio passes them, even while a decode runs.
                files.at_edge(offset + count)
    finally:
        chunks.put(None)


def cue_message(cue: LiveCue) -> str:
    said: dict[str, object] = {"start": cue.start, "end": cue.end, "ready": cue.ready}
    said["text"] = cue.text
    if cue.speaker:
        said["speaker"] = cue.speaker
    if cue.revises:
        said["number"] = cue.number
        said["revises"] = list(cue.revises)
    return json.dumps({"cue": said})


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
    """Caption ``source`` into ``out`` (or the files its timeline names) until end of
    input; returns the exit status."""
    config = config or CaptionConfig()
    chunks: queue.Queue[Chunk] = queue.Queue(MAX_QUEUED)
    dropped = [0]
    outlet = Outlet(out)
    reader = threading.Thread(
        target=read_chunks, args=(source, chunks, dropped, outlet), name="read", daemon=True
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
        outlet.say({"error": str(error)})
        broken = True
    ended = False
    speakers = SpeakerTimeline()
    last_horizon = -1
    last_dropped = 0

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
            if isinstance(item, Talkers):
                speakers.add(item)
                continue
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
                if outlet.files is not None:
                    outlet.files.finish()
                return 0
            continue
        piece = captioner.next_piece()
        timing: dict[str, float] = {}
        if piece is not None:
            if engine is None and not broken:
                try:
                    engine = load_engine(engine_name, threads)
                except EngineUnavailable as error:
                    # No captions, but the horizon still moves: the subtitles stay live.
                    outlet.say({"error": str(error)})
                    broken = True
            text = ""
            began = time.perf_counter()
            if engine is not None:
                segments = engine.transcribe(piece.samples, config.rate, glossary)
                text = " ".join(s.text for s in segments if s.text.strip())
            timing = {
                # How far the edge was past the piece's end when it was cut, and the decode.
                "cut_s": (captioner.fed - piece.end) / config.rate,
                "decode_s": time.perf_counter() - began,
            }
            # What arrived during the decode first: a cue's ``ready`` is the edge now.
            take(block=False)
            said = written(text, glossary) if text else ""
            # Who spoke: a re-reading settles only cues of one speaker (the captioner's).
            captioner.decoded(said, speakers.label(piece.start, piece.end))
        cues = captioner.take_cues()
        files = outlet.files
        for cue in cues:
            if files is not None:
                files.add(cue, **timing)
            else:
                outlet.say(json.loads(cue_message(cue)))
        horizon = captioner.horizon()
        if files is not None:
            files.advance(horizon)
        elif horizon > last_horizon and (cues or horizon - last_horizon >= HORIZON_STEP):
            # A third of a second at least between horizons, unless a cue just went out.
            outlet.say({"horizon": horizon})
            last_horizon = horizon
        if dropped[0] != last_dropped:
            last_dropped = dropped[0]
            outlet.say({"dropped": last_dropped})
        if ended and captioner.idle:
            if files is not None:
                files.finish()
            else:
                outlet.say({"horizon": captioner.fed})
            return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callbridge.webcast.caption_worker")
    parser.add_argument("--term", action="append", default=[], help="a glossary term")
    parser.add_argument("--engine", default=None, help="speech engine (default: the best)")
    parser.add_argument("--threads", type=int, default=1, help="engine threads")
    args = parser.parse_args(argv)
    # One engine thread by default: a live call's captions need a fifth of a
    # core, and the media plane must keep the rest.
    return run(sys.stdin.buffer, sys.stdout, args.term, args.engine, threads=args.threads)


if __name__ == "__main__":
    sys.exit(main())
