"""Live captions of a webcast: the caption worker process, fed the mix, and its files.

``LiveCaptions`` is the live packager's ``CaptionTap``: the packager's thread
hands it each frame of the mix with its offset on the packager's sample clock
(``push``, which never blocks: a full queue drops the frame and counts it),
and tells it the timeline once the first segment is numbered (``begin``).

Two threads of its own do the rest, so nothing here can stall the media clock
or the packager:

* the feeder writes the frames to the worker (``transcript.live_worker``, a
  separate process at low priority) over its stdin, and starts the worker
  again when it has died (``restarts``), at most once a second;
* the reader takes the worker's cues and horizons (JSON lines on its stdout),
  writes the subtitle segments and playlist (``subtitles.SubtitleTrack``), and
  appends each cue to ``captions.jsonl`` beside the live folder, which the
  console reads (``read_transcript``).

Files, each written atomically (``live.write_atomic``)::

    <event>/live/master.m3u8       the multivariant playlist (audio + subtitles)
    <event>/live/subs.m3u8         the subtitle playlist; sub{N}.vtt its segments
    <event>/captions.jsonl         the live transcript, one cue a line (call seconds)
    <event>/captions.json          the worker's pid, restarts, frames dropped, skips
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from callbridge.media.mixer import Pcm
from callbridge.store.files import private_dir
from callbridge.transcript.live import SKIPPED, LiveCue
from callbridge.webcast.live import write_atomic
from callbridge.webcast.subtitles import MASTER, SubtitleConfig, SubtitleTrack, master_playlist

log = logging.getLogger(__name__)

TRANSCRIPT = "captions.jsonl"
STATUS = "captions.json"
LIVE_VTT = "live.vtt"
# The worker's niceness (10 unless this says otherwise): below the media plane's.
NICE_VAR = "CALLBRIDGE_CAPTION_NICE"
CHUNK_HEADER = struct.Struct("<qI")  # sample offset, sample count; then int16 samples
MAX_LINE = 64 * 1024
MAX_TRANSCRIPT_CUES = 20_000
SPEAKER = "Speaker"  # the mix says nothing of who speaks
MAX_BATCH_FRAMES = 50  # frames in one write to the worker (a second of mix)
BATCH_WAIT_S = 0.1


def worker_command(glossary: Sequence[str] = (), engine: str | None = None) -> list[str]:
    """The caption worker's command line, at low priority: it must never compete with media."""
    command = [sys.executable, "-m", "callbridge.transcript.live_worker"]
    if engine:
        command += ["--engine", engine]
    for term in glossary:
        command += ["--term", term]
    nice = "/usr/bin/nice"
    niceness = os.environ.get(NICE_VAR, "10")
    return [nice, "-n", niceness, *command] if os.path.exists(nice) else command


@dataclass
class CaptionStats:
    """Counters of the live captions (approximate while running)."""

    pid: int | None = None
    starts: int = 0
    restarts: int = 0
    dropped: int = 0  # frames not handed to a worker (queue full, worker down)
    cues: int = 0
    skips: int = 0


class LiveCaptions:
    """Runs the caption worker for one live call and writes what it says; see the module.

    Create it before the live packager (whose ``tap`` it is), ``close`` it
    after the packager has closed (blocking: call it off the event loop).
    ``command`` starts a worker; ``sample_rate`` is the mix's.
    """

    def __init__(
        self,
        live_dir: Path,
        command: Callable[[], list[str]],
        *,
        config: SubtitleConfig | None = None,
        sample_rate: int = 8000,
        max_queue_frames: int = 250,
        min_restart_s: float = 1.0,
    ) -> None:
        self.live_dir = Path(live_dir)
        self.event_dir = self.live_dir.parent
        private_dir(self.live_dir)
        self.command = command
        self.config = config or SubtitleConfig(rate=sample_rate)
        self.rate = sample_rate
        self.stats = CaptionStats()
        self.track: SubtitleTrack | None = None
        self.fed = 0  # samples pushed to the tap (the live edge)
        self._horizon = 0  # the worker's: no cue to come starts before it
        self._min_restart_s = min_restart_s
        self._queue: queue.Queue[tuple[int, Pcm] | None] = queue.Queue(max_queue_frames)
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._readers: list[threading.Thread] = []
        self._last_start = -1e9
        self._closing = False
        self._transcript = (self.event_dir / TRANSCRIPT).open("w", encoding="utf-8")
        self._feeder = threading.Thread(target=self._feed, name="captions-feed", daemon=True)
        self._feeder.start()

    # -- the packager's side (its worker thread) --

    def begin(
        self, origin: datetime, first_msn: int, segment_s: float, media_offset_s: float
    ) -> None:
        """The audio's timeline: decode time zero's wall-clock time, its first segment's
        number and length, and where input sample zero plays (the encoder's priming)."""
        per_segment = max(1, round(segment_s / self.config.segment_s))
        with self._lock:
            self.track = SubtitleTrack(self.config, origin, first_msn * per_segment, media_offset_s)
            write_atomic(self.live_dir / MASTER, master_playlist().encode())

    def push(self, offset: int, pcm: Pcm) -> None:
        """Queue samples of the mix starting at ``offset``. Never blocks; drops when full."""
        self.fed = offset + len(pcm)
        try:
            self._queue.put_nowait((offset, pcm))
        except queue.Full:
            self.stats.dropped += 1

    # -- life cycle --

    def close(self, timeout: float = 20.0) -> None:
        """Let the worker finish what it heard, end the subtitle playlist. Blocks."""
        if self._closing:
            return
        self._closing = True
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=1.0)
        self._feeder.join(timeout)
        process = self._process
        if process is not None and (self._feeder.is_alive() or process.poll() is None):
            # A worker that stopped reading, or will not finish: its last words are lost.
            for reader in self._readers:
                reader.join(0 if self._feeder.is_alive() else timeout)
            if process.poll() is None:
                process.kill()
            process.wait()
            self._feeder.join(timeout)
        for reader in self._readers:
            reader.join(timeout)
        with self._lock:
            if self.track is not None:
                self._write(self.track.finish(self.fed))
            self._transcript.close()
        self._write_status()

    def close_and_keep(self, recording: Path | None) -> None:
        """``close``, then write the live text as ``live.vtt`` beside the live folder and,
        given one, in the call's recording folder (where the offline pass puts its own)."""
        self.close()
        text = self.live_vtt()
        if text is None:
            return
        for directory in (self.event_dir, recording):
            if directory is None:
                continue
            try:
                write_atomic(directory / LIVE_VTT, text.encode(), durable=True)
            except OSError:
                log.exception("live captions: could not keep %s in %s", LIVE_VTT, directory)

    def live_vtt(self) -> str | None:
        """Every live cue as WebVTT on the call's clock (input sample zero at 0 s)."""
        with self._lock:
            if self.track is None:
                return None
            return self.track.as_vtt(-self.track.media_offset_s)

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    # -- the feeder thread --

    def _feed(self) -> None:
        try:
            done = False
            while not done:
                try:
                    batch = [self._queue.get(timeout=0.2)]
                except queue.Empty:
                    if self._closing:
                        break
                    continue
                # Frames go in batches of a tenth of a second: fewer wake-ups of this
                # thread in the media plane's process, whose loop shares the GIL.
                time.sleep(BATCH_WAIT_S)
                while len(batch) < MAX_BATCH_FRAMES:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if None in batch:
                    batch = batch[: batch.index(None)]
                    done = True
                chunks = [item for item in batch if item is not None]
                if chunks:
                    self._send(chunks)
        except Exception:
            log.exception("live captions: the feeder stopped")
        finally:
            process = self._process
            if process is not None and process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()

    def _send(self, chunks: list[tuple[int, Pcm]]) -> None:
        """Write ``chunks`` to the worker (starting one if need be), then publish subtitles."""
        stdin = self._worker_stdin()
        if stdin is None:
            self.stats.dropped += len(chunks)
        else:
            data = b"".join(
                CHUNK_HEADER.pack(offset, len(pcm)) + np.asarray(pcm, dtype="<i2").tobytes()
                for offset, pcm in chunks
            )
            try:
                stdin.write(data)
                stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.stats.dropped += len(chunks)
                self._reap()
        # The subtitles keep up with the audio while the worker is busy or down.
        with self._lock:
            if self.track is not None and not self.track.ended:
                self._advance(self.track)

    def _worker_stdin(self) -> IO[bytes] | None:
        """The running worker's stdin, starting one if none runs (at most once a second)."""
        process = self._process
        if process is not None and process.poll() is None and process.stdin is not None:
            return process.stdin
        if process is not None:
            self._reap()
        if self._closing:
            return None
        now = time.monotonic()
        if now - self._last_start < self._min_restart_s:
            return None
        self._last_start = now
        try:
            process = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,
                close_fds=True,
            )
        except OSError:
            log.exception("live captions: the worker could not start")
            return None
        self._process = process
        if self.stats.starts:
            self.stats.restarts += 1
            log.warning("live captions: worker restarted (pid %d)", process.pid)
        self.stats.starts += 1
        self.stats.pid = process.pid
        reader = threading.Thread(
            target=self._read, args=(process,), name="captions-read", daemon=True
        )
        self._readers = [r for r in self._readers if r.is_alive()] + [reader]
        reader.start()
        self._write_status()
        return process.stdin

    def _reap(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        log.warning("live captions: worker %d exited (%s)", process.pid, process.returncode)

    # -- the reader thread --

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        try:
            for line in iter(lambda: process.stdout.readline(MAX_LINE), b""):  # type: ignore[union-attr]
                try:
                    message = json.loads(line)
                except ValueError:
                    log.warning("live captions: the worker said %r", line[:200])
                    continue
                if isinstance(message, dict):
                    self._heard(message)
        except Exception:
            log.exception("live captions: the reader stopped")

    def _heard(self, message: dict[str, Any]) -> None:
        with self._lock:
            track = self.track
            if track is None or track.ended:
                return
            cue_data = message.get("cue")
            if isinstance(cue_data, dict):
                cue = LiveCue(
                    int(cue_data["start"]),
                    int(cue_data["end"]),
                    str(cue_data["text"]),
                    int(cue_data["ready"]),
                )
                timed = track.add(cue, self.fed)
                self.stats.cues += 1
                if cue.text == SKIPPED:
                    self.stats.skips += 1
                if self.stats.cues <= MAX_TRANSCRIPT_CUES:
                    line = {
                        "start": round(cue.start / self.rate, 3),
                        "end": round(cue.end / self.rate, 3),
                        "media_start": timed.start,
                        "media_end": timed.end,
                        "delay": round((cue.ready - cue.end) / self.rate, 3),
                        "speaker": None if cue.text == SKIPPED else SPEAKER,
                        "text": cue.text,
                    }
                    self._transcript.write(json.dumps(line) + "\n")
                    self._transcript.flush()
            horizon = message.get("horizon")
            if isinstance(horizon, int):
                self._horizon = max(self._horizon, min(horizon, self.fed))
                self._advance(track)

    def _advance(self, track: SubtitleTrack) -> None:
        """Publish what the horizon or the live edge allows (with the lock held)."""
        before = track.published
        self._write(track.advance(self._horizon, self.fed))
        for index in range(before, track.published):
            for name in track.expired(index):
                (self.live_dir / name).unlink(missing_ok=True)

    def _write(self, files: Sequence[Any]) -> None:
        for out in files:
            write_atomic(self.live_dir / out.name, out.data)

    def _write_status(self) -> None:
        try:
            write_atomic(self.event_dir / STATUS, json.dumps(asdict(self.stats)).encode())
        except OSError:
            log.warning("live captions: could not write %s", STATUS)


def read_transcript(event_dir: Path, query: str = "", after: int = 0) -> list[dict[str, Any]]:
    """The live transcript's cues from index ``after`` on, those matching ``query`` if given.

    Each is ``{"index", "start", "end", "speaker", "text", "delay"}`` (call seconds;
    ``delay``: how long after the words ended the worker made the cue). A line
    still being written (no newline yet) is left for the next read.
    """
    from callbridge.transcript.transcribe import query_pattern

    path = Path(event_dir) / TRANSCRIPT
    try:
        data = path.read_bytes()
    except OSError:
        return []
    pattern = query_pattern(query) if query.strip() else None
    cues: list[dict[str, Any]] = []
    for index, line in enumerate(data.split(b"\n")[:-1][:MAX_TRANSCRIPT_CUES]):
        if index < after:
            continue
        try:
            cue = json.loads(line)
        except ValueError:
            continue
        if pattern is not None and not pattern.search(str(cue.get("text", ""))):
            continue
        cues.append(
            {
                "index": index,
                "start": cue.get("start"),
                "end": cue.get("end"),
                "speaker": cue.get("speaker"),
                "text": cue.get("text"),
                "delay": cue.get("delay"),
            }
        )
    return cues
