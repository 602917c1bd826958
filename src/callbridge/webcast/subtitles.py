"""The live captions as a WebVTT subtitle rendition of the LL-HLS webcast, sans IO.

hls.js (and Safari) show a ``TYPE=SUBTITLES`` rendition named in a
multivariant playlist as a text track of the media element, its cues placed
by each segment's ``X-TIMESTAMP-MAP`` on the audio's own timeline. So:

* ``master_playlist`` names the audio (``index.m3u8``) and ``subs.m3u8``;
* the subtitles are cut into segments of ``segment_s`` seconds of the
  audio's decode timeline, starting at decode time zero, so every audio
  segment boundary is a subtitle segment boundary (three to a segment at the
  bridge's settings: short segments mean a short wait before a cue is out);
* a segment is published once the captions' horizon (``LiveCaptioner.horizon``)
  has passed its end, so it holds every cue that overlaps it, or at the latest
  ``wait_s`` after the audio's live edge has: players load subtitle segments
  from their position on, never the past, so a segment held back longer would
  come too late to be loaded at all. A cue that overlaps several segments is
  in each (players drop the repeats);
* a cue is shown from its speech's start until ``hold_s`` after it was made at
  the earliest, so a caption made late (after its segments went out) is in
  the next ones and still shows, from when it arrives;
* a new cue does not wait for its segment's turn: every segment up to the
  audio's live edge goes out with it (``publish_to_edge``), which takes the
  publication's share (up to a segment) out of the captions' delay;
* a settled reading that revises earlier cues (``LiveCue.revises``) takes
  their place only while no segment holding them is out yet (``revise``).
  Once one is, the published text stands: players have loaded it and load no
  segment again, and the revision shown again, beside the cue it replaces,
  would say the words twice. Since each cue publishes the segments up to the
  edge, that is the usual case: a revision reaches the console's live
  transcript and the live text kept at the end (``captions``), seldom players.

Cue times are seconds on the decode timeline (``media_offset_s`` plus the
caption clock's samples at ``rate``), so every segment's ``X-TIMESTAMP-MAP``
is the same ``MPEGTS:0,LOCAL:00:00:00.000`` (decode time zero, in 90 kHz
units): hls.js places WebVTT against fMP4 audio by it. One map for all
segments also gives a cue repeated in several segments the very same times
in the player, down to the last bit, which is how hls.js knows a repeat.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from callbridge.media.mixer import SAMPLE_RATE
from callbridge.transcript.live import LiveCue
from callbridge.transcript.vtt import Cue, escape, format_timestamp, normalise_text, wrap, write_vtt
from callbridge.webcast.playlist import FileOut, MediaPlaylist, Segment, render

MASTER = "master.m3u8"
SUBTITLES = "subs.m3u8"
MPEG_RATE = 90_000


def subtitle_name(msn: int) -> str:
    """File name of subtitle segment ``msn``."""
    return f"sub{msn}.vtt"


def master_playlist(
    audio: str = "index.m3u8", subtitles: str = SUBTITLES, bandwidth: int = 40_000
) -> str:
    """The multivariant playlist: the audio, with the live captions as its subtitle group."""
    return (
        "\n".join(
            [
                "#EXTM3U",
                "#EXT-X-VERSION:6",
                "#EXT-X-INDEPENDENT-SEGMENTS",
                '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English (live captions)",'
                f'LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="{subtitles}"',
                f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS="mp4a.40.2",SUBTITLES="subs"',
                audio,
            ]
        )
        + "\n"
    )


@dataclass(frozen=True)
class SubtitleConfig:
    """The subtitle rendition's segments and how long a late cue stays up."""

    segment_s: float = 0.64
    window_segments: int = 30  # 19 s: the player needs a few; each costs a line to render
    hold_s: float = 3.0
    # The player is about 1.3 s behind the live edge: a segment out this soon after
    # the edge passed it is loaded before the player gets there.
    wait_s: float = 0.8
    rate: int = SAMPLE_RATE  # of the caption clock: the mix's samples


@dataclass(frozen=True)
class TimedCue:
    """A cue on the decode timeline, in seconds, as players get it."""

    start: float
    end: float
    text: str
    speaker: str | None = None


class SubtitleTrack:
    """Builds the subtitle segments and playlist from live cues; no IO, no clock.

    ``add`` each cue the worker sends; ``advance(horizon)`` with its horizon
    (samples on the caption clock) returns the files to write, the playlist
    last; ``finish`` ends the playlist. ``origin`` is the wall-clock time of
    segment 0's start (the audio's program date-time there); ``first_msn`` numbers
    the first segment, as the audio's is numbered from the wall clock.
    """

    def __init__(
        self,
        config: SubtitleConfig,
        origin: datetime,
        first_msn: int = 0,
        media_offset_s: float = 0.0,
    ) -> None:
        self.config = config
        self.origin = origin
        self.first_msn = first_msn
        self.media_offset_s = media_offset_s
        # The decode time where segment 0 starts: the whole segments in the offset. The
        # audio's decode timeline starts on the shared grid (``webcast.live``'s
        # ``_timeline``: hours in, not at zero) and the encoder's priming adds less than
        # a segment; counted from zero, the track once "published" every segment from
        # decode time zero at once, thousands of empty files, and no cue in time.
        self.base_s = math.floor(media_offset_s / config.segment_s + 1e-9) * config.segment_s
        self.cues: list[TimedCue] = []
        self.ended = False
        self._published = 0  # segments out so far
        self._open: list[TimedCue] = []  # cues that may still overlap an unpublished segment

    def timed(self, cue: LiveCue, edge: int = 0) -> TimedCue:
        """``cue`` on the decode timeline, held up at least ``hold_s`` past when it was made
        (``cue.ready``, or the live ``edge`` when it arrived, whichever is later)."""
        rate = self.config.rate
        made = max(cue.ready, edge) / rate
        start = self.media_offset_s + cue.start / rate
        end = self.media_offset_s + max(cue.end / rate, made + self.config.hold_s)
        return TimedCue(round(start, 3), round(max(end, start + 0.5), 3), cue.text, cue.speaker)

    def add(self, cue: LiveCue, edge: int = 0) -> TimedCue:
        """Take a cue from the worker (``edge``: samples fed when it arrived); returns it as
        players will get it. It goes in every segment not yet out that it overlaps."""
        timed = self.timed(cue, edge)
        self.cues.append(timed)
        self._open.append(timed)
        return timed

    def revise(self, cue: LiveCue, replaced: Sequence[TimedCue], edge: int = 0) -> TimedCue | None:
        """Put ``cue`` in place of the ``replaced`` cues (those it revises, as ``add`` returned
        them) if no segment holding any of them is out yet; returns it as players will get
        it, or None where the published text stands (see the module docstring)."""
        if self.ended or not replaced:
            return None
        first = min(c.start for c in replaced)
        if self._segments_to(first, lambda x: math.floor(x + 1e-9)) < self._published:
            return None
        gone = {id(c) for c in replaced}
        self.cues = [c for c in self.cues if id(c) not in gone]
        self._open = [c for c in self._open if id(c) not in gone]
        return self.add(cue, edge)

    def resume(self, published: int) -> None:
        """Go on after ``published`` segments another track wrote (a worker started again):
        the playlist lists them, and the next one out is the first after them."""
        self._published = max(self._published, published)

    def _bounds(self, index: int) -> tuple[float, float]:
        """Segment ``index``'s start and end on the decode timeline."""
        start = self.base_s + index * self.config.segment_s
        return start, start + self.config.segment_s

    def _segments_to(self, seconds: float, rounding: Callable[[float], int]) -> int:
        """How many segments end by decode time ``seconds`` (``rounding``: floor, or ceil
        for a partly filled last one)."""
        return rounding((seconds - self.base_s) / self.config.segment_s)

    def advance(self, horizon: int, edge: int) -> list[FileOut]:
        """Files of the segments the horizon has passed, or the live ``edge`` (samples fed)
        has passed by ``wait_s``; then the playlist (if any segment went out)."""
        if self.ended:
            return []
        rate = self.config.rate
        seconds = max(horizon / rate, edge / rate - self.config.wait_s) + self.media_offset_s
        return self._publish(self._segments_to(seconds, lambda x: math.floor(x + 1e-9)))

    def publish_to_edge(self, edge: int) -> list[FileOut]:
        """Files of every segment the live ``edge`` has passed, at once: call it after
        ``add``, so a new cue goes out with the audio's newest whole segment rather than
        ``wait_s`` later (the cues still to come go in the segments after it)."""
        if self.ended:
            return []
        seconds = edge / self.config.rate + self.media_offset_s
        return self._publish(self._segments_to(seconds, lambda x: math.floor(x + 1e-9)))

    def finish(self, horizon: int) -> list[FileOut]:
        """The last segments (up to ``horizon``, partly filled) and a playlist with ENDLIST."""
        if self.ended:
            return []
        seconds = self.media_offset_s + horizon / self.config.rate
        out = self._publish(self._segments_to(seconds, lambda x: math.ceil(x - 1e-9)), final=True)
        self.ended = True
        return out

    def _publish(self, count: int, final: bool = False) -> list[FileOut]:
        out: list[FileOut] = []
        while self._published < count:
            index = self._published
            start, end = self._bounds(index)
            inside = [c for c in self._open if c.start < end and c.end > start]
            out.append(FileOut(subtitle_name(self.first_msn + index), segment_vtt(start, inside)))
            self._published += 1
            self._open = [c for c in self._open if c.end > end]
        if out or final:
            self.ended = final
            out.append(FileOut(SUBTITLES, self.playlist().encode()))
        return out

    def expired(self, published_before: int) -> list[str]:
        """Names of segments that left the playlist a whole window ago (safe to delete)."""
        old = published_before - 2 * self.config.window_segments
        return [subtitle_name(self.first_msn + old)] if old >= 0 else []

    @property
    def published(self) -> int:
        return self._published

    def playlist(self) -> str:
        """The subtitle media playlist as of the last segment published."""
        config = self.config
        first = max(0, self._published - config.window_segments)
        segments = tuple(
            Segment(
                subtitle_name(self.first_msn + index),
                config.segment_s,
                # ``origin`` is the wall clock at segment 0's start.
                program_date_time=self.origin
                + timedelta(seconds=self._bounds(index)[0] - self.base_s),
            )
            for index in range(first, self._published)
        )
        return render(
            MediaPlaylist(
                target_duration=max(1, math.ceil(config.segment_s - 1e-9)),
                media_sequence=self.first_msn + first,
                segments=segments,
                independent_segments=False,
                ended=self.ended,
            )
        )

    def as_vtt(self, shift_s: float = 0.0) -> str:
        """Every cue so far as one WebVTT file, times moved by ``shift_s`` (the live text)."""
        return write_vtt(
            Cue(max(0.0, c.start + shift_s), max(0.0, c.end + shift_s), c.text, c.speaker)
            for c in self.cues
        )


def segment_vtt(start: float, cues: list[TimedCue]) -> bytes:
    """A WebVTT segment of the decode timeline holding ``cues`` (``start`` is where it begins;
    the cue times, like the map, count from decode time zero)."""
    del start  # the same map for every segment: see the module docstring
    blocks = ["WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000"]
    for cue in cues:
        text = normalise_text(cue.text)
        if not text:
            continue
        payload = "\n".join(escape(line) for line in wrap(text))
        if cue.speaker:
            payload = f"<v {escape(normalise_text(cue.speaker))}>{payload}</v>"
        blocks.append(f"{format_timestamp(cue.start)} --> {format_timestamp(cue.end)}\n{payload}")
    return ("\n\n".join(blocks) + "\n").encode()
