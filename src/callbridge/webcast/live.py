"""The live webcast: the conference mix as Low-Latency HLS in a directory.

``LiveWebcast.push`` runs on the event loop every 20 ms and only queues the
frame. A worker thread fills skipped ticks with silence, encodes AAC-LC
(``aac``), cuts the access units into parts and segments (``LiveSegmenter``,
pure) and writes, each atomically and durably (``store.files.write_atomic``):

* ``init.mp4``           the CMAF header (EXT-X-MAP), written once;
* ``part{M}.{N}.m4s``    part N of segment M (EXT-X-PART, INDEPENDENT=YES);
* ``seg{M}.m4s``         segment M, the bytes of its parts back to back;
* ``index.m3u8``         the media playlist, last, once the files it names exist
                         (and from the first complete segment on).

The only file a playlist names before it exists is the next part, in
EXT-X-PRELOAD-HINT: the web layer holds a request for it until it lands
(``blocking.PlaylistWaiter``). A segment and its parts are deleted one whole
window after they leave the playlist's sliding window: a player late by that
much has long reloaded the playlist, and a two-hour call would otherwise
leave some 40,000 small files behind (the replay is made from the recording,
not from these).
"""

from __future__ import annotations

import logging
import math
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np

from callbridge.media import priority
from callbridge.media.mixer import FRAME_MS, FRAME_SAMPLES, Pcm
from callbridge.store.files import private_dir, write_atomic
from callbridge.webcast import fmp4
from callbridge.webcast.aac import AAC_FRAME, AacEncoder
from callbridge.webcast.playlist import (
    FileOut,
    MediaPlaylist,
    Part,
    PartialSegment,
    RenderedPlaylist,
    Segment,
    render,
)

log = logging.getLogger(__name__)

PLAYLIST = "index.m3u8"
# The decode timeline wraps after this many segments (``LiveWebcast._timeline``).
DECODE_WRAP_SEGMENTS = 40_000
INIT = "init.mp4"
_MEDIA_NAME = re.compile(r"(?:seg([0-9]{1,12})|part([0-9]{1,12})\.([0-9]{1,6}))\.m4s")


def part_name(msn: int, index: int) -> str:
    """File name of part ``index`` of segment ``msn``."""
    return f"part{msn}.{index}.m4s"


def segment_name(msn: int) -> str:
    """File name of segment ``msn``."""
    return f"seg{msn}.m4s"


def media_position(name: str) -> tuple[int, int | None] | None:
    """(msn, part index) of a part file name, (msn, None) of a segment's, else None.

    The web layer uses it to hold a request for a file that does not exist
    yet (the preload hint, or a segment in progress): ``await
    waiter.wait_for(msn, part, timeout)``, then serve the file.
    """
    match = _MEDIA_NAME.fullmatch(name)
    if match is None:
        return None
    if match.group(1) is not None:
        return int(match.group(1)), None
    return int(match.group(2)), int(match.group(3))


@dataclass(frozen=True)
class LiveConfig:
    """Settings of the live packager; the defaults give 0.32 s parts, 1.92 s segments.

    ``sample_rate`` is the AAC output rate: 48 kHz plays on every browser's
    decoder (8 kHz AAC does not everywhere). A part holds ``part_units`` AAC
    access units of 1024 samples; at 48 kHz, 15 units are exactly 0.32 s, or
    16 ticks of the mix.
    """

    sample_rate: int = 48_000
    bit_rate: int = 32_000
    part_units: int = 15
    parts_per_segment: int = 6
    # Apple asks for at least three part targets of hold-back; hls.js aims its
    # live position at PART-HOLD-BACK behind the newest part.
    hold_back_parts: float = 3.0
    window_segments: int = 30
    # Ten seconds of mix may wait for the worker; beyond that frames are dropped
    # (and come out as silence) rather than letting the queue grow.
    max_pending_frames: int = 500
    # A longer jump of the frame index is filled with this much silence only;
    # the program date-time still follows the frame index.
    max_gap_frames: int = 500

    @property
    def part_duration(self) -> float:
        return self.part_units * AAC_FRAME / self.sample_rate

    @property
    def segment_duration(self) -> float:
        return self.part_duration * self.parts_per_segment

    @property
    def target_duration(self) -> int:
        return max(1, math.ceil(self.segment_duration - 1e-9))


# --- the pure core ------------------------------------------------------------


@dataclass
class _Building:
    msn: int
    start: int  # decode time of its first sample, in samples
    pdt: datetime
    parts: list[Part] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)


class LiveSegmenter:
    """Cuts AAC access units into LL-HLS parts and segments; no IO, no clock.

    ``add`` takes access units (each ``AAC_FRAME`` samples long) and returns
    the files to write for every part completed; ``finish`` closes the last
    part and segment and ends the playlist. ``playlist()`` is the state to
    publish after writing those files. ``origin`` is the wall-clock time of
    decode time zero; move it forward when the timeline skips input.
    ``first_msn`` numbers the first segment (and so names its files).
    """

    def __init__(
        self, config: LiveConfig, origin: datetime, first_msn: int = 0, decode_offset: int = 0
    ) -> None:
        self.config = config
        self.origin = origin
        # Added to every fragment's decode time (tfdt): the media timeline of the
        # shared clock (``LiveWebcast``), not of this process's first frame.
        self.decode_offset = decode_offset
        self.ended = False
        self._units: list[bytes] = []
        self._decode_time = 0  # of the first unit not yet in a part
        self._sequence = 1  # moof sequence number
        self._segments: deque[Segment] = deque(maxlen=config.window_segments)
        self._first_msn = self.first_msn = first_msn
        self._next_msn = first_msn
        self._building: _Building | None = None
        self._last_part: tuple[int, int] | None = None
        self._expired: list[str] = []

    def take_expired(self) -> list[str]:
        """Files no playlist has named for a whole window: safe to delete (once)."""
        expired, self._expired = self._expired, []
        return expired

    def add(self, units: list[bytes]) -> list[FileOut]:
        """Queue access units; returns the files of the parts (and segments) they complete."""
        if self.ended:
            raise RuntimeError("the webcast has ended")
        self._units.extend(units)
        out: list[FileOut] = []
        while len(self._units) >= self.config.part_units:
            out.extend(self._cut(self.config.part_units))
        return out

    def finish(self, units: list[bytes]) -> list[FileOut]:
        """Add the last access units, close the last part and segment, end the playlist."""
        out = self.add(units)
        if self._units:
            out.extend(self._cut(len(self._units)))
        if self._building is not None and self._building.parts:
            out.append(self._close_segment())
        self._building = None
        self.ended = True
        return out

    def _cut(self, count: int) -> list[FileOut]:
        units, self._units = self._units[:count], self._units[count:]
        if self._building is None:
            self._building = _Building(
                msn=self._next_msn,
                start=self._decode_time,
                pdt=self.origin + timedelta(seconds=self._decode_time / self.config.sample_rate),
            )
        building = self._building
        data = fmp4.media_fragment(
            self._sequence, self.decode_offset + self._decode_time, units, [AAC_FRAME] * len(units)
        )
        self._sequence += 1
        self._decode_time += AAC_FRAME * len(units)
        index = len(building.parts)
        name = part_name(building.msn, index)
        building.parts.append(Part(name, AAC_FRAME * len(units) / self.config.sample_rate))
        building.data.append(data)
        self._last_part = (building.msn, index)
        out = [FileOut(name, data)]
        if len(building.parts) == self.config.parts_per_segment:
            out.append(self._close_segment())
        return out

    def _close_segment(self) -> FileOut:
        building = self._building
        assert building is not None
        duration = (self._decode_time - building.start) / self.config.sample_rate
        name = segment_name(building.msn)
        self._segments.append(Segment(name, duration, tuple(building.parts), building.pdt))
        self._next_msn = building.msn + 1
        self._building = None
        old = building.msn - 2 * self.config.window_segments
        if old >= self._first_msn:
            self._expired.append(segment_name(old))
            self._expired.extend(part_name(old, i) for i in range(self.config.parts_per_segment))
        return FileOut(name, b"".join(building.data))

    def playlist(self) -> MediaPlaylist:
        """The media playlist as of the last part cut."""
        config = self.config
        segments = list(self._segments)
        # rfc8216bis 4.4.4.9: parts older than three target durations from the
        # end of the playlist are dropped from it.
        keep = math.ceil(3 * config.target_duration / config.segment_duration)
        for i in range(max(0, len(segments) - keep)):
            if segments[i].parts:
                s = segments[i]
                segments[i] = Segment(s.uri, s.duration, (), s.program_date_time)
        partial: PartialSegment | None = None
        hint: str | None = None
        if not self.ended:
            if self._building is not None:
                partial = PartialSegment(tuple(self._building.parts), self._building.pdt)
                hint = part_name(self._building.msn, len(self._building.parts))
            else:
                hint = part_name(self._next_msn, 0)
        return MediaPlaylist(
            target_duration=config.target_duration,
            media_sequence=self._next_msn - len(segments),
            segments=tuple(segments),
            map_uri=INIT,
            part_target=config.part_duration,
            part_hold_back=config.hold_back_parts * config.part_duration,
            can_block_reload=True,
            partial=partial,
            preload_hint=hint,
            ended=self.ended,
            last_part=self._last_part,
        )


# --- the threaded packager ------------------------------------------------------


class CaptionTap(Protocol):
    """Gets the mix as the packager encodes it (``webcast.captions.LiveCaptions``).

    Both are called on the packager's thread and must not block.
    """

    def begin(
        self, origin: datetime, first_msn: int, segment_s: float, media_offset_s: float
    ) -> None:
        """The timeline: decode time zero's wall-clock time, the first segment's number and
        the segments' length, and the decode time (s) at which input sample zero plays."""

    def push(self, offset: int, pcm: Pcm, talkers: frozenset[str] = frozenset()) -> None:
        """Samples of the mix from input sample ``offset`` on (silence fills included), and
        the participants ``talkers`` who were loud in them."""


@dataclass
class LiveStats:
    """Counters of the packager, read from any thread (approximate while it runs)."""

    frames: int = 0  # frames encoded, silence fills included
    dropped: int = 0  # pushed while the queue was full, or after close
    late: int = 0  # arrived with an index already past
    filled: int = 0  # silent frames put in for skipped ticks
    parts: int = 0
    segments: int = 0
    worker_cpu_s: float = 0.0  # CPU time of the worker thread (encode + write)


class LiveWebcast:
    """Packages the live mix as LL-HLS into ``directory``, on its own thread.

    Create it when the call starts (the worker starts at once), call
    ``push`` from the media tick, and ``close`` (blocking; call it off the
    event loop, e.g. with ``asyncio.to_thread``) when the call ends.
    ``snapshot()`` gives the latest playlist, or None until the first
    segment is out (about two seconds after the first ``push``); the playlist
    file does not exist until then either. Set ``on_update`` to be told, on
    the worker thread, after each new playlist is published; wrap it with
    ``loop.call_soon_threadsafe`` (see ``PlaylistWaiter.attach``).
    """

    def __init__(
        self,
        directory: Path,
        config: LiveConfig | None = None,
        *,
        wall_clock: Callable[[], float] = time.time,
        on_update: Callable[[], None] | None = None,
        tap: CaptionTap | None = None,
    ) -> None:
        self.directory = Path(directory)
        # The live captions get the mix on this thread, on the encoder's sample clock.
        self.tap = tap
        private_dir(self.directory)
        self.config = config or LiveConfig()
        self.on_update = on_update
        self.stats = LiveStats()
        self.error: BaseException | None = None
        self._wall_clock = wall_clock
        # None asks the worker to finish.
        self._queue: queue.SimpleQueue[tuple[int, Pcm, frozenset[str]] | None] = queue.SimpleQueue()
        self._closed = False
        self._first_wall: float | None = None
        # Frames of silence before the first pushed one, to start on the grid (``_timeline``).
        self.lead_frames = 0
        self._snapshot: RenderedPlaylist | None = None
        self._thread = threading.Thread(target=self._run, name="webcast-live", daemon=True)
        self._thread.start()

    # -- the event loop's side --

    def push(self, frame_index: int, pcm: Pcm, talkers: frozenset[str] = frozenset()) -> None:
        """Queue one 20 ms frame (320 int16 samples at 16 kHz) of the mix. Cheap; never blocks.

        ``frame_index`` comes from the media clock: a jump means ticks were
        skipped and is filled with silence; an index already past is dropped.
        ``talkers``: who was loud in it, for the captions' speaker names.
        """
        if self._closed or self._queue.qsize() >= self.config.max_pending_frames:
            self.stats.dropped += 1
            return
        if self._first_wall is None:
            self._first_wall = self._wall_clock()
        self._queue.put((frame_index, pcm.copy(), talkers))

    def snapshot(self) -> RenderedPlaylist | None:
        """The playlist last published (and its text), or None before the first segment."""
        return self._snapshot

    @property
    def playlist_path(self) -> Path:
        return self.directory / PLAYLIST

    def close(self, timeout: float | None = None) -> None:
        """Encode what is queued, finish the last segment and write EXT-X-ENDLIST.

        Blocks until the worker is done; safe to call twice.
        """
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout)

    # -- the worker's side --

    def _timeline(self, first_wall: float, priming: int) -> tuple[LiveSegmenter, int]:
        """The segmenter on the shared timeline, and how many 20 ms frames of silence lead in.

        Segments and parts are cut on a grid of the wall clock, and numbered
        and timed (msn, program date-time, decode time) by it, not by when this
        process's first frame came: a hot standby origin packaging the same
        call (``cascade.lease``) makes the same segment of the same moment,
        so a cache that fails over from one origin to the other serves a
        playlist that goes on (same media sequence, same parts, decode times
        and date-times that continue). Numbering from the wall clock also
        means a webcast started again never reuses a file name a cache in
        front may still hold for the last run.

        The decode time is the grid's modulo ``DECODE_WRAP_SEGMENTS`` (under a
        day): small enough for the 33-bit 90 kHz timestamps of the captions'
        WebVTT. Two origins started on either side of a wrap (once in 21 h)
        would differ in it.
        """
        config = self.config
        # Decode time zero is the priming frame, before the first input sample.
        raw = first_wall - priming / config.sample_rate
        first_msn = int(raw // config.segment_duration)
        aligned = first_msn * config.segment_duration
        lead = min(round((raw - aligned) * 1000 / FRAME_MS), config.max_gap_frames)
        samples_per_segment = config.part_units * config.parts_per_segment * AAC_FRAME
        decode_offset = (first_msn % DECODE_WRAP_SEGMENTS) * samples_per_segment
        segmenter = LiveSegmenter(
            config, datetime.fromtimestamp(aligned, UTC), first_msn, decode_offset
        )
        return segmenter, lead

    def _run(self) -> None:
        priority.as_media_worker()
        try:
            self._work()
        except Exception as exc:
            self.error = exc
            log.exception("live webcast packager stopped")
        finally:
            self.stats.worker_cpu_s = time.thread_time()

    def _work(self) -> None:
        config = self.config
        encoder = AacEncoder(config.sample_rate, config.bit_rate)
        segmenter: LiveSegmenter | None = None
        init = fmp4.init_segment(
            sample_rate=config.sample_rate,
            channels=1,
            audio_specific_config=encoder.audio_specific_config,
            bit_rate=config.bit_rate,
        )
        write_atomic(self.directory / INIT, init)
        expected: int | None = None
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        while True:
            item = self._queue.get()
            if item is None:
                break
            index, pcm, talkers = item
            if segmenter is None:
                assert self._first_wall is not None
                segmenter, lead = self._timeline(self._first_wall, encoder.priming)
                # The first segment starts on the grid: silence up to the first frame
                # (not counted as filled: no tick was skipped).
                self.lead_frames = lead
                leading = [u for _ in range(lead) for u in encoder.encode(silence)]
                expected = index
                if self.tap is not None:
                    self.tap.begin(
                        segmenter.origin,
                        segmenter.first_msn,
                        config.segment_duration,
                        (encoder.priming + segmenter.decode_offset) / config.sample_rate,
                    )
                    if lead:
                        self.tap.push(0, np.zeros(lead * FRAME_SAMPLES, np.int16))
                self._publish(segmenter.add(leading), segmenter)
            assert expected is not None
            if index < expected:
                self.stats.late += 1
                continue
            units: list[bytes] = []
            gap = index - expected
            if gap:
                filled = min(gap, config.max_gap_frames)
                if gap > filled:
                    segmenter.origin += timedelta(milliseconds=(gap - filled) * FRAME_MS)
                for _ in range(filled):
                    units += encoder.encode(silence)
                if self.tap is not None:
                    self.tap.push(
                        (self.lead_frames + self.stats.frames) * FRAME_SAMPLES,
                        np.zeros(filled * FRAME_SAMPLES, np.int16),
                    )
                self.stats.filled += filled
                self.stats.frames += filled
            units += encoder.encode(pcm)
            if self.tap is not None:
                self.tap.push((self.lead_frames + self.stats.frames) * FRAME_SAMPLES, pcm, talkers)
            self.stats.frames += 1
            expected = index + 1
            self._publish(segmenter.add(units), segmenter)
        if segmenter is not None:
            self._publish(segmenter.finish(encoder.flush()), segmenter, final=True)

    def _publish(self, files: list[FileOut], segmenter: LiveSegmenter, final: bool = False) -> None:
        if not files and not final:
            return
        for out in files:
            write_atomic(self.directory / out.name, out.data)
            if out.name.startswith("part"):
                self.stats.parts += 1
            else:
                self.stats.segments += 1
        playlist = segmenter.playlist()
        if not playlist.segments and not final:
            # hls.js and Chromium's own player give up on a playlist without a
            # whole segment (levelEmptyError): the first one waits for seg0.
            return
        text = render(playlist)
        write_atomic(self.directory / PLAYLIST, text.encode())
        for name in segmenter.take_expired():
            try:
                (self.directory / name).unlink(missing_ok=True)
            except OSError as error:
                log.warning("webcast: could not delete %s: %s", name, error)
        self._snapshot = RenderedPlaylist(playlist, text)
        self.stats.worker_cpu_s = time.thread_time()
        callback = self.on_update
        if callback is not None:
            try:
                callback()
            except Exception:
                log.exception("webcast on_update callback failed")


__all__ = [
    "INIT",
    "PLAYLIST",
    "CaptionTap",
    "FileOut",
    "LiveConfig",
    "LiveSegmenter",
    "LiveStats",
    "LiveWebcast",
    "media_position",
    "part_name",
    "segment_name",
]
