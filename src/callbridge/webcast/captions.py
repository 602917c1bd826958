"""Live captions of a webcast: the caption worker process, fed the mix, and its files.

Two halves, in two processes, so the media plane's process does no caption
work beyond handing the mix on (its event loop shares the GIL with every
thread there, and a thread busy in Python for a few milliseconds is a tick
that many milliseconds late):

* ``LiveCaptions``, in the media plane's process, is the live packager's
  ``CaptionTap``. The packager's thread hands it each frame of the mix with
  its offset on the packager's sample clock (``push``: a queue put, never
  blocking; a full queue drops the frame and counts it) and the timeline once
  the first segment is numbered (``begin``). One feeder thread writes the
  frames to the worker (``caption_worker``, a separate process at low
  priority) over its stdin, a tenth of a second at a time, the timeline
  first, and starts the worker again when it has died (``restarts``), at most
  once a second. A reader thread only drains the worker's stdout (errors).
  With each frame the packager says who was talking in it (participant ids);
  the host holds a talker for ``TALK_HOLD_S`` past their last loud frame and,
  when the set changes or one of them is named (``name``), sends the worker a
  ``SPEAKING`` record of their labels (``transcript.speaking``), so cues carry
  the speaker's name.
* ``CaptionFiles``, in the worker, writes everything the captions make: the
  subtitle segments and playlist (``subtitles.SubtitleTrack``) as the mix
  arrives and as cues are made, and each cue appended to ``captions.jsonl``,
  which the console reads (``read_transcript``). A worker started again
  mid-call goes on from the segments the last one published. A settled
  reading (``LiveCue.revises``) is a line of its own whose ``revises`` lists
  the lines it replaces (their indices in the file) and ``subtitles`` whether
  it replaced them in the subtitle segments too (only where none of theirs
  was out yet: ``SubtitleTrack.revise``); the console shows it in their place.

Files, each written atomically (``store.files.write_atomic``)::

    <event>/live/master.m3u8       the multivariant playlist (audio + subtitles): the host
    <event>/live/subs.m3u8         the subtitle playlist; sub{N}.vtt its segments: the worker
    <event>/captions.jsonl         the live transcript, one cue a line (call seconds): the worker
    <event>/captions.json          the worker's pid, restarts, frames dropped: the host
    <event>/live.vtt               the live text at the end of the call: the host

Both halves are in this one module (over 500 lines) because they share the
pipe's record format and the files' names and layout; the worker's loop is
``caption_worker``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
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

from callbridge.media.mixer import SAMPLE_RATE, Pcm
from callbridge.store.files import private_dir, write_atomic
from callbridge.transcript.live import SKIPPED, LiveCue
from callbridge.transcript.model import query_pattern
from callbridge.transcript.speaking import Talkers, labels_of
from callbridge.transcript.vtt import Cue, write_vtt
from callbridge.webcast.playlist import FileOut
from callbridge.webcast.subtitles import (
    MASTER,
    SUBTITLES,
    SubtitleConfig,
    SubtitleTrack,
    TimedCue,
    master_playlist,
)

log = logging.getLogger(__name__)

TRANSCRIPT = "captions.jsonl"
STATUS = "captions.json"
LIVE_VTT = "live.vtt"
# The worker's niceness (10 unless this says otherwise): below the media plane's.
NICE_VAR = "CALLBRIDGE_CAPTION_NICE"
# The worker's stdin: records of a header (sample offset, count) and then ``count``
# int16 samples; a header whose offset is ``TIMELINE`` is followed by ``count``
# bytes of JSON instead (``timeline_record``), where the worker writes its files.
CHUNK_HEADER = struct.Struct("<qI")
TIMELINE = -1
# A header whose offset is ``SPEAKING`` is followed by ``count`` bytes of JSON:
# {"at": sample, "labels": [...]}, who talked from that sample on (``speaking_record``).
SPEAKING = -2
MAX_SPEAKING = 4 * 1024
# A talker stays talking this long past their last loud frame: the mixer's
# detector flips at every syllable, and a record per syllable says nothing more.
TALK_HOLD_S = 0.5
MAX_TIMELINE = 16 * 1024
MAX_LINE = 64 * 1024
MAX_TRANSCRIPT_CUES = 20_000
MAX_SETTLING = 64  # a worker's newest cues a revision may name (it names the last few)
SPEAKER = "Speaker"  # a cue whose talker nobody has named
MAX_BATCH_FRAMES = 50  # frames in one write to the worker (a second of mix)
BATCH_WAIT_S = 0.1
_SEGMENT_FILE = re.compile(r"^sub(\d+)\.vtt$")


def worker_command(glossary: Sequence[str] = (), engine: str | None = None) -> list[str]:
    """The caption worker's command line, at low priority: it must never compete with media."""
    command = [sys.executable, "-m", "callbridge.webcast.caption_worker"]
    if engine:
        command += ["--engine", engine]
    for term in glossary:
        command += ["--term", term]
    nice = "/usr/bin/nice"
    niceness = os.environ.get(NICE_VAR, "10")
    return [nice, "-n", niceness, *command] if os.path.exists(nice) else command


def timeline_record(
    live_dir: Path,
    config: SubtitleConfig,
    origin: datetime,
    first_msn: int,
    media_offset_s: float,
) -> bytes:
    """The record that tells a worker where its files go and the audio's timeline."""
    payload = json.dumps(
        {
            "live_dir": str(live_dir),
            "origin": origin.isoformat(),
            "first_msn": first_msn,
            "media_offset_s": media_offset_s,
            "subtitles": asdict(config),
        }
    ).encode()
    return CHUNK_HEADER.pack(TIMELINE, len(payload)) + payload


def speaking_record(talkers: Talkers) -> bytes:
    """The record that tells a worker who talked from ``talkers.at`` on."""
    payload = json.dumps({"at": talkers.at, "labels": list(talkers.labels)}).encode()
    return CHUNK_HEADER.pack(SPEAKING, len(payload)) + payload


def read_speaking(payload: bytes) -> Talkers:
    """A ``speaking_record``'s JSON. Raises ValueError on a bad one."""
    try:
        data = json.loads(payload)
        labels = tuple(str(label)[:200] for label in data["labels"][:16])
        return Talkers(int(data["at"]), labels)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"bad speaking record: {error}") from error


@dataclass
class CaptionStats:
    """Counters of the live captions (approximate while running)."""

    pid: int | None = None
    starts: int = 0
    restarts: int = 0
    dropped: int = 0  # frames not handed to a worker (queue full, worker down)
    cues: int = 0  # first readings, counted from the transcript when the call ends
    skips: int = 0
    revisions: int = 0  # settled readings in place of earlier cues


class LiveCaptions:
    """Runs the caption worker for one live call; see the module.

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
        sample_rate: int = SAMPLE_RATE,
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
        self.fed = 0  # samples pushed to the tap (the live edge)
        self.media_offset_s = 0.0
        self._timeline: bytes | None = None
        self._min_restart_s = min_restart_s
        self._queue: queue.Queue[tuple[int, Pcm] | Talkers | None] = queue.Queue(max_queue_frames)
        # Who talks: participant id -> the sample past their last loud frame; the set
        # held now; names the bridge gave (``name``); the last record (a new worker's).
        self._hold = round(TALK_HOLD_S * sample_rate)
        self._heard: dict[str, int] = {}
        self._talking: frozenset[str] = frozenset()
        self._names: dict[str, str] = {}
        self._names_lock = threading.Lock()
        self._last_talkers: Talkers | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._readers: list[threading.Thread] = []
        self._last_start = -1e9
        self._closing = False
        # Each worker appends to the call's transcript: it starts empty here.
        write_atomic(self.event_dir / TRANSCRIPT, b"")
        self._feeder = threading.Thread(target=self._feed, name="captions-feed", daemon=True)
        self._feeder.start()

    # -- the packager's side (its worker thread) --

    def begin(
        self, origin: datetime, first_msn: int, segment_s: float, media_offset_s: float
    ) -> None:
        """The audio's timeline: decode time zero's wall-clock time, its first segment's
        number and length, and where input sample zero plays (the encoder's priming)."""
        per_segment = max(1, round(segment_s / self.config.segment_s))
        self.media_offset_s = media_offset_s
        self._timeline = timeline_record(
            self.live_dir, self.config, origin, first_msn * per_segment, media_offset_s
        )
        write_atomic(self.live_dir / MASTER, master_playlist().encode())

    def queued(self) -> int:
        """Entries waiting for the worker now (chunks of mix, who-talks records; approximate:
        another thread feeds). The deque's length, not ``qsize()``: a scrape takes no lock
        the media tick takes."""
        return len(self._queue.queue)

    def push(self, offset: int, pcm: Pcm, talkers: frozenset[str] = frozenset()) -> None:
        """Queue samples of the mix starting at ``offset``, and who was ``talkers`` in them
        (participant ids). Never blocks; drops when full."""
        self.fed = offset + len(pcm)
        self._track_talkers(offset, offset + len(pcm), talkers)
        try:
            self._queue.put_nowait((offset, pcm))
        except queue.Full:
            self.stats.dropped += 1

    def name(self, participant_id: str, label: str | None) -> None:
        """A participant's name for the captions (None: unnamed). Any thread."""
        with self._names_lock:
            if label:
                self._names[participant_id] = label
            else:
                self._names.pop(participant_id, None)
            talking = self._talking
        if participant_id in talking:
            self._send_talkers(self.fed, talking)

    def _track_talkers(self, start: int, end: int, talkers: frozenset[str]) -> None:
        for participant in talkers:
            self._heard[participant] = end
        if not self._heard:
            return
        talking = frozenset(p for p, until in self._heard.items() if start - until < self._hold)
        if len(talking) < len(self._heard):
            self._heard = {p: self._heard[p] for p in talking}
        if talking != self._talking:
            self._talking = talking
            self._send_talkers(start, talking)

    def _send_talkers(self, at: int, talking: frozenset[str]) -> None:
        with self._names_lock:
            record = Talkers(at, labels_of(sorted(talking), self._names))
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.stats.dropped += 1

    # -- life cycle --

    def close(self, timeout: float = 20.0) -> None:
        """Let the worker finish what it heard (it ends the subtitle playlist). Blocks."""
        if self._closing:
            return
        self._closing = True
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=1.0)
        self._feeder.join(timeout)
        process = self._process
        if process is not None:
            if self._feeder.is_alive():
                # A worker that stopped reading: its last words are lost.
                process.kill()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self._feeder.join(timeout)
        for reader in self._readers:
            reader.join(timeout)
        # A worker killed or stopped before its end left the playlist open.
        end_playlist(self.live_dir)
        cues = transcript_lines(self.event_dir)
        self.stats.revisions = sum(1 for cue in cues if cue.get("revises"))
        self.stats.cues = len(cues) - self.stats.revisions
        self.stats.skips = sum(1 for cue in cues if cue.get("text") == SKIPPED)
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
                write_atomic(directory / LIVE_VTT, text.encode())
            except OSError:
                log.exception("live captions: could not keep %s in %s", LIVE_VTT, directory)

    def live_vtt(self) -> str | None:
        """Every live cue as WebVTT on the call's clock (input sample zero at 0 s), or None
        before the timeline is known."""
        if self._timeline is None:
            return None
        return transcript_vtt(self.event_dir, -self.media_offset_s)

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

    def _send(self, chunks: list[tuple[int, Pcm] | Talkers]) -> None:
        """Write ``chunks`` to the worker, starting one if need be: a bytes copy, no more."""
        for chunk in chunks:
            if isinstance(chunk, Talkers):
                self._last_talkers = chunk
        stdin = self._worker_stdin()
        if stdin is None:
            self.stats.dropped += len(chunks)
            return
        data = b"".join(
            speaking_record(chunk)
            if isinstance(chunk, Talkers)
            else CHUNK_HEADER.pack(chunk[0], len(chunk[1]))
            + np.asarray(chunk[1], dtype="<i2").tobytes()
            for chunk in chunks
        )
        try:
            stdin.write(data)
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.stats.dropped += len(chunks)
            self._reap()

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
        if self._timeline is not None and process.stdin is not None:
            # A new worker learns the timeline, then who is talking now.
            talkers = self._last_talkers
            first = self._timeline + (speaking_record(talkers) if talkers is not None else b"")
            try:
                process.stdin.write(first)
            except (BrokenPipeError, OSError, ValueError):
                self._reap()
                return None
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
        """Drain the worker's stdout; it speaks only to say what went wrong."""
        assert process.stdout is not None
        try:
            for line in iter(lambda: process.stdout.readline(MAX_LINE), b""):  # type: ignore[union-attr]
                if b'"error"' in line:
                    log.warning("live captions: the worker said %r", line[:200])
        except Exception:
            log.exception("live captions: the reader stopped")

    def _write_status(self) -> None:
        try:
            write_atomic(self.event_dir / STATUS, json.dumps(asdict(self.stats)).encode())
        except OSError:
            log.warning("live captions: could not write %s", STATUS)


class CaptionFiles:
    """The caption worker's files: subtitle segments, their playlist and the transcript.

    Made from the host's ``timeline_record`` (``from_record``). ``at_edge``
    as the mix arrives (the reader thread: segments go out ``wait_s`` after
    the edge passes them, whatever the decoder is doing), ``add`` each cue and
    ``advance`` to each horizon (the decoding thread), ``finish`` at the end.
    Thread-safe. ``clock`` stamps each cue's line with when it was made.
    """

    def __init__(
        self,
        live_dir: Path,
        config: SubtitleConfig,
        origin: datetime,
        first_msn: int,
        media_offset_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.live_dir = Path(live_dir)
        self.event_dir = self.live_dir.parent
        self.config = config
        self.track = SubtitleTrack(config, origin, first_msn, media_offset_s)
        # A worker started again goes on after the last segment the one before wrote.
        written = [
            int(match.group(1))
            for name in os.listdir(self.live_dir)
            if (match := _SEGMENT_FILE.match(name)) is not None
        ]
        if written:
            self.track.resume(max(written) - first_msn + 1)
        self.edge = 0  # samples of the mix read so far
        self._horizon = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._lines = 0
        # Lines in the transcript before this worker's (a worker started again appends),
        # and this worker's newest cues by number: their line and how players got them.
        try:
            self._first_line = (self.event_dir / TRANSCRIPT).read_bytes().count(b"\n")
        except OSError:
            self._first_line = 0
        self._made: dict[int, tuple[int, TimedCue]] = {}

    @classmethod
    def from_record(cls, payload: bytes) -> CaptionFiles:
        """The files a ``timeline_record``'s JSON names. Raises ValueError on a bad one."""
        try:
            data = json.loads(payload)
            config = SubtitleConfig(**data["subtitles"])
            return cls(
                Path(data["live_dir"]),
                config,
                datetime.fromisoformat(data["origin"]),
                int(data["first_msn"]),
                float(data["media_offset_s"]),
            )
        except (KeyError, TypeError, OSError) as error:
            raise ValueError(f"bad timeline record: {error}") from error

    def at_edge(self, edge: int) -> None:
        """The mix has been read up to sample ``edge``: publish what that allows."""
        with self._lock:
            self.edge = max(self.edge, edge)
            self._advance()

    def advance(self, horizon: int) -> None:
        """No cue still to come starts before sample ``horizon``: publish what that allows."""
        with self._lock:
            self._horizon = max(self._horizon, min(horizon, self.edge))
            self._advance()

    def add(self, cue: LiveCue, **timing: float) -> None:
        """A cue the worker made: into the segments not yet out, and the transcript
        (with ``timing``, seconds the bench reads: when the piece was cut, its decode).
        A revision replaces the cues it revises (see the module docstring)."""
        with self._lock:
            track = self.track
            if track.ended:
                return
            extra: dict[str, Any] = {}
            if cue.revises:
                replaced = [self._made.get(number) for number in cue.revises]
                if any(found is None for found in replaced):
                    return  # a cue it revises has no line (the transcript was full)
                lines = [found[0] for found in replaced if found is not None]
                olds = [found[1] for found in replaced if found is not None]
                revised = track.revise(cue, olds, self.edge)
                timed = revised or TimedCue(
                    min(c.start for c in olds), max(c.end for c in olds), cue.text, cue.speaker
                )
                msn: int | None = track.first_msn + track.published if revised else None
                # The first reading's delay is the captions' delay: a revision's is apart.
                extra = {
                    "delay": None,
                    "settled_after": round((cue.ready - cue.end) / self.config.rate, 3),
                    "revises": lines,
                    "subtitles": revised is not None,
                }
            else:
                timed = track.add(cue, self.edge)
                msn = track.first_msn + track.published  # the first segment that carries it
            before = track.published
            self._write(track.publish_to_edge(self.edge))
            self._expire(before)
            index = self._first_line + self._lines
            self._lines += 1
            if self._lines > MAX_TRANSCRIPT_CUES:
                return
            if cue.number >= 0:
                self._made[cue.number] = (index, timed)
                for number in cue.revises:
                    self._made.pop(number, None)
                while len(self._made) > MAX_SETTLING:
                    del self._made[next(iter(self._made))]
            line = {
                "start": round(cue.start / self.config.rate, 3),
                "end": round(cue.end / self.config.rate, 3),
                "media_start": timed.start,
                "media_end": timed.end,
                "delay": round((cue.ready - cue.end) / self.config.rate, 3),
                "speaker": None if cue.text == SKIPPED else (cue.speaker or SPEAKER),
                "text": cue.text,
                # The first subtitle segment that carries it, and when it was made.
                "msn": msn,
                "made_at": round(self._clock(), 3),
                **{name: round(value, 3) for name, value in timing.items()},
                **extra,
            }
            # Opened for each cue (about one a second): a worker killed leaves no half line.
            with (self.event_dir / TRANSCRIPT).open("a", encoding="utf-8") as transcript:
                transcript.write(json.dumps(line) + "\n")

    def finish(self) -> None:
        """The mix has ended: the last segments and a playlist with ENDLIST."""
        with self._lock:
            self._write(self.track.finish(self.edge))

    def _advance(self) -> None:
        before = self.track.published
        self._write(self.track.advance(self._horizon, self.edge))
        self._expire(before)

    def _expire(self, before: int) -> None:
        """Delete the segments that left the playlist as segments ``before`` on went out."""
        for index in range(before, self.track.published):
            for name in self.track.expired(index):
                (self.live_dir / name).unlink(missing_ok=True)

    def _write(self, files: Sequence[FileOut]) -> None:
        for out in files:
            write_atomic(self.live_dir / out.name, out.data)


def end_playlist(live_dir: Path) -> bool:
    """End the subtitle playlist in ``live_dir`` if a worker left it open; True if it did."""
    path = Path(live_dir) / SUBTITLES
    try:
        text = path.read_text()
    except OSError:
        return False
    if "#EXT-X-ENDLIST" in text:
        return False
    write_atomic(path, (text.rstrip("\n") + "\n#EXT-X-ENDLIST\n").encode())
    return True


def transcript_lines(event_dir: Path) -> list[dict[str, Any]]:
    """Every whole line of the live transcript (a line still being written is left out)."""
    try:
        data = (Path(event_dir) / TRANSCRIPT).read_bytes()
    except OSError:
        return []
    lines: list[dict[str, Any]] = []
    for line in data.split(b"\n")[:-1][:MAX_TRANSCRIPT_CUES]:
        try:
            cue = json.loads(line)
        except ValueError:
            cue = {}
        lines.append(cue if isinstance(cue, dict) else {})
    return lines


def revised_lines(lines: Sequence[dict[str, Any]]) -> set[int]:
    """Indices of the transcript's lines that a later line revises (its text replaces theirs)."""
    revised: set[int] = set()
    for line in lines:
        found = line.get("revises")
        if isinstance(found, list):
            revised.update(index for index in found if isinstance(index, int))
    return revised


def transcript_vtt(event_dir: Path, shift_s: float = 0.0) -> str:
    """The live transcript as one WebVTT file, settled (each revision in place of the cues
    it revises), on the timeline players got it on, times moved by ``shift_s``."""
    cues = []
    lines = transcript_lines(event_dir)
    revised = revised_lines(lines)
    for index, line in enumerate(lines):
        if index in revised:
            continue
        try:
            start = float(line["media_start"]) + shift_s
            end = float(line["media_end"]) + shift_s
            text = str(line["text"])
        except (KeyError, TypeError, ValueError):
            continue
        speaker = line.get("speaker")
        cues.append(Cue(max(0.0, start), max(0.0, end), text, speaker if speaker else None))
    return write_vtt(cues)


def read_transcript(event_dir: Path, query: str = "", after: int = 0) -> list[dict[str, Any]]:
    """The live transcript's cues from index ``after`` on, those matching ``query`` if given.

    Each is ``{"index", "start", "end", "speaker", "text", "delay", "revises"}``
    (call seconds; ``delay``: how long after the words ended the worker made
    the cue, None for a revision; ``revises``: the indices of the cues a
    settled reading replaces, None for a first reading). A search looks in the
    settled text only: a cue that a later one revises is not found. A line
    still being written (no newline yet) is left for the next read.
    """
    pattern = query_pattern(query) if query.strip() else None
    lines = transcript_lines(event_dir)
    revised = revised_lines(lines) if pattern is not None else set()
    cues: list[dict[str, Any]] = []
    for index, cue in enumerate(lines):
        if index < after or not cue or index in revised:
            continue
        if pattern is not None and not pattern.search(str(cue.get("text", ""))):
            continue
        revises = cue.get("revises")
        cues.append(
            {
                "index": index,
                "start": cue.get("start"),
                "end": cue.get("end"),
                "speaker": cue.get("speaker"),
                "text": cue.get("text"),
                "delay": cue.get("delay"),
                "revises": revises if isinstance(revises, list) else None,
            }
        )
    return cues
