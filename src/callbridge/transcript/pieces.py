"""Cutting a speaker's speech into pieces an engine decodes whole, and checking what comes back.

Moonshine reads a figure best with the speech around it: called alone on
one short figure (2-4 s) it returns no text at all about one time in four,
and a piece cut at a 0.3 s pause inside "one hundred thirty two million
dollars" came back as "100." "[inaudible]" "million dollars." (the human
figure reading of ``bench/transcript_bench.py``: recall 0.750 so). Given
the same speech in pieces of up to 20 s it reads 40 figures of 40. So:

* ``plan_joined``: the speech regions of a stem are packed in order into
  pieces of up to ``piece_s``, cut at the longest pauses (a pause between
  regions before one inside a region), none shorter than ``least_s`` where
  the speech allows. Speech further apart than ``join_gap_s`` is joined with
  that much of its silence (``joined``), so even a lone "Thank you." is read
  with its neighbours, minutes apart;
* where a piece must end inside speech (more than ``piece_s`` with no
  pause of ``pause_s``), it is cut at its best gap between words, and the
  pieces on both sides are read ``overlap_s`` into each other
  (``plan_overlaps``): the words at the cut are then read whole by both, and
  the two readings are joined where they agree (``junction``);
* each piece's text is timed sentence by sentence over its speech
  (``spread``), and never spans a joined silence;
* an attention decoder, handed a long stretch of continuous speech, now and
  then ends its text early or skips a sentence and says nothing about it. A
  piece whose text is implausibly short for its voiced time (far fewer words
  per voiced second than anyone speaks, or well under the rate of the same
  speaker's other pieces) is decoded again in parts at its pauses (at most
  ``longest_s``; ``plan_pieces``), and a part still short in two halves, and
  those again, down to ``smallest_s``; the reading with more words wins;
* speech that still gives no text is kept as ``INAUDIBLE`` with its time.

All of it is pure: a ``VoiceProfile`` of the samples and a ``Decode`` callback
(a piece's spans in, timed text out) in, timed segments out.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callbridge.transcript.engine import Segment
from callbridge.transcript.junction import Piece, Span, join_readings, plan_overlaps
from callbridge.transcript.spread import spread, voiced_gaps
from callbridge.transcript.vad import Samples, VoiceProfile, quiet_run_at, runs
from callbridge.transcript.wer import normalise

INAUDIBLE = "[inaudible]"

# A piece in, segments with times in seconds from the start of its joined audio out.
Decode = Callable[[Piece], list[Segment]]
Progress = Callable[[float], None]


@dataclass(frozen=True)
class PieceConfig:
    """How speech is cut before an engine sees it and when its text is checked again."""

    piece_s: float = 20.0  # no joined piece is longer than this (Moonshine takes 30 s at most)
    least_s: float = 5.0  # shorter pieces are joined to a neighbour where the speech allows
    join_gap_s: float = 1.0  # silence between joined speech is shortened to this
    # A piece of this much voiced time or more with under ``slow_share`` of the words per
    # voiced second of the same speaker's other pieces (median) is decoded again in parts.
    slow_voiced_s: float = 6.0
    slow_share: float = 0.6
    longest_s: float = 8.0  # no part of a piece decoded again is longer than this
    pause_s: float = 0.3  # a quiet run this long is a sentence pause: always cut there
    shortest_s: float = 1.2  # shorter pieces are joined to a neighbour (too little context)
    # People speak 2-3 words a second; text at well under half that lost some speech.
    min_words_per_s: float = 1.0
    smallest_s: float = 1.2  # a piece this short is not split again
    min_inaudible_s: float = 0.4  # less voiced time than this without text is a cough
    # Where a cut between two pieces falls inside speech (no pause of ``pause_s``),
    # each piece is read this far into the other and the readings joined (``junction``).
    overlap_s: float = 1.2


def _smoothed(levels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Levels averaged over three frames, so a cut lands in a gap, not a dip inside a word."""
    if len(levels) < 3:
        return levels
    padded = np.concatenate(([levels[0]], levels, [levels[-1]]))
    smooth: npt.NDArray[np.float64] = (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0
    return smooth


def _quietest(smooth: npt.NDArray[np.float64], low: int, high: int) -> int:
    """The quietest frame in ``low..high`` (the latest of equals, for longer pieces)."""
    window = smooth[low:high]
    return low + len(window) - 1 - int(np.argmin(window[::-1]))


def _best_gap(
    voiced: npt.NDArray[np.bool_], smooth: npt.NDArray[np.float64], low: int, high: int
) -> int:
    """Where to cut ``low..high`` when it holds no real pause.

    The middle of its longest gap between words (a breath, a comma), the
    quietest of equals; with no gap at all, its quietest frame.
    """
    gaps = runs(~voiced[low:high])
    if not gaps:
        return _quietest(smooth, low, high)
    a, b = max(gaps, key=lambda g: (g[1] - g[0], -float(np.min(smooth[low + g[0] : low + g[1]]))))
    return low + (a + b) // 2


def plan_pieces(
    profile: VoiceProfile,
    start: int,
    end: int,
    sample_rate: int,
    config: PieceConfig | None = None,
) -> list[tuple[int, int]]:
    """(start, end) sample offsets of the pieces that samples ``start..end`` are decoded in.

    Together they cover ``start..end`` exactly, in order; none is longer than
    ``longest_s`` (unless the whole is shorter than two frames).
    """
    config = config or PieceConfig()
    frame = profile.frame
    frame_s = frame / sample_rate
    first, last = start // frame, min(len(profile.levels), -(-end // frame))
    if last - first < 2:
        return [(start, end)] if end > start else []
    smooth = _smoothed(profile.levels[first:last])
    voiced = profile.voiced[first:last]
    count = last - first
    pause = max(1, round(config.pause_s / frame_s))
    longest = max(2, int(config.longest_s / frame_s))
    shortest = round(config.shortest_s / frame_s)

    # Cut in the middle of every real pause, leaving a little silence to each side.
    cuts = [(a + b) // 2 for a, b in runs(~voiced) if a > 0 and b < count and b - a >= pause]
    bounds = [0, *cuts, count]
    pieces: list[tuple[int, int]] = []
    for a, b in itertools.pairwise(bounds):
        while b - a > longest:
            cut = _best_gap(voiced, smooth, a + longest // 2, a + longest)
            pieces.append((a, cut))
            a = cut
        pieces.append((a, b))
    pieces = _join_short(pieces, shortest, longest)
    edges = [start] + [(first + b) * frame for _, b in pieces[:-1]] + [end]
    return list(itertools.pairwise(edges))


def _join_short(
    pieces: list[tuple[int, int]], shortest: int, longest: int
) -> list[tuple[int, int]]:
    """Pieces under ``shortest`` frames joined to their shorter neighbour, within ``longest``."""
    pieces = list(pieces)
    index = 0
    while index < len(pieces) and len(pieces) > 1:
        a, b = pieces[index]
        if b - a >= shortest:
            index += 1
            continue
        before = pieces[index - 1] if index > 0 else None
        after = pieces[index + 1] if index + 1 < len(pieces) else None
        options = [
            (n[1] - n[0], side)
            for n, side in ((before, -1), (after, 1))
            if n is not None and max(b, n[1]) - min(a, n[0]) <= longest
        ]
        if not options:
            index += 1
            continue
        _, side = min(options)
        other = index + side
        lo, hi = min(index, other), max(index, other)
        pieces[lo : hi + 1] = [(pieces[lo][0], pieces[hi][1])]
        index = lo
    return pieces


def plan_joined(
    profile: VoiceProfile,
    regions: list[Span],
    sample_rate: int,
    config: PieceConfig | None = None,
) -> list[Piece]:
    """The pieces that speech ``regions`` (in order, apart) are decoded in; see the module.

    Each region is cut at its pauses (and a stretch longer than ``piece_s``
    at its best gap, ``plan_pieces``); the parts are packed in order into
    pieces of at most ``piece_s`` of joined audio. Where a piece must end
    before the next part, it ends at the longest pause of its second half,
    leaving what follows at least ``least_s`` where it can. Every sample of
    every region is in exactly one piece.
    """
    config = config or PieceConfig()
    frame = profile.frame
    voiced = profile.voiced
    parts: list[Span] = []
    strength: list[float] = []  # of the pause before each part, in samples
    inner = PieceConfig(longest_s=config.piece_s, pause_s=config.pause_s, shortest_s=0.0)
    for start, end in regions:
        cut = plan_pieces(profile, start, end, sample_rate, inner)
        for index, (a, b) in enumerate(cut):
            if index == 0:
                before = a - parts[-1][1] if parts else 0
                strength.append(float(sample_rate * 3600 + before))  # between regions: best
            else:
                strength.append(float(quiet_run_at(voiced, a // frame) * frame))
            parts.append((a, b))
    gap = round(config.join_gap_s * sample_rate)
    # Running totals, so a call of an hour (thousands of parts) plans in linear time.
    spoken = np.cumsum([0] + [b - a for a, b in parts])
    silent = np.cumsum(
        [0] + [min(gap, parts[k][0] - parts[k - 1][1]) if k else 0 for k in range(len(parts))]
    )

    def length(i: int, j: int) -> int:
        """Joined samples of parts i..j (inclusive)."""
        return int(spoken[j + 1] - spoken[i] + silent[j + 1] - silent[i + 1])

    longest = round(config.piece_s * sample_rate)
    least = round(config.least_s * sample_rate)
    groups: list[tuple[int, int]] = []
    i = 0
    while i < len(parts):
        rest = length(i, len(parts) - 1)
        if rest <= longest:
            groups.append((i, len(parts) - 1))
            break
        fits = [i]
        while fits[-1] + 1 < len(parts) - 1 and length(i, fits[-1] + 1) <= longest:
            fits.append(fits[-1] + 1)
        # Prefer a cut in the second half that leaves enough for the next piece.
        good = (
            [j for j in fits if length(i, j) >= longest // 2 and rest - length(i, j) >= least]
            or [j for j in fits if rest - length(i, j) >= least]
            or fits
        )
        j = max(good, key=lambda k: (strength[k + 1], k))
        groups.append((i, j))
        i = j + 1
    pieces: list[Piece] = []
    for i, j in groups:
        spans: list[Span] = []
        for a, b in parts[i : j + 1]:
            if spans and spans[-1][1] == a:
                spans[-1] = (spans[-1][0], b)
            else:
                spans.append((a, b))
        pieces.append(tuple(spans))
    return pieces


def joined(samples: Samples, piece: Piece, sample_rate: int, join_gap_s: float) -> Samples:
    """The samples a piece is decoded from: its spans, with the silence between two
    spans kept as it is up to ``join_gap_s``, and shortened to that (half from each
    side) when longer."""
    return np.concatenate([samples[a:b] for a, b in _with_gaps(piece, sample_rate, join_gap_s)])


def _with_gaps(piece: Piece, sample_rate: int, join_gap_s: float) -> list[Span]:
    """The stretches of the stem that ``joined`` puts one after another."""
    gap = round(join_gap_s * sample_rate)
    out: list[Span] = []
    for a, b in piece:
        if out:
            end = out[-1][1]
            if a - end <= gap:
                out[-1] = (out[-1][0], a)
                out.append((a, b))
                continue
            out += [(end, end + gap // 2), (a - (gap - gap // 2), a)]
        out.append((a, b))
    return [(a, b) for a, b in out if b > a]


def spoken_words(text: str) -> int:
    """Words as spoken: "$42 million" counts as "forty two million" does; markers count 0."""
    return len(normalise(text.replace(INAUDIBLE, " "), numbers=True))


def _text(segments: list[Segment]) -> str:
    return " ".join(s.text for s in segments if s.text.strip())


class PieceDecoder:
    """Decodes a speaker's regions piece by piece and checks each piece's text; see the module.

    ``decode`` is called with a piece's spans and returns segments timed from
    the start of its joined audio. ``pieces_decoded`` and ``pieces_retried``
    count calls, for benchmarks and tests.
    """

    def __init__(
        self,
        profile: VoiceProfile,
        sample_rate: int,
        decode: Decode,
        config: PieceConfig | None = None,
    ) -> None:
        self.profile = profile
        self.rate = sample_rate
        self.decode = decode
        self.config = config or PieceConfig()
        self.pieces_decoded = 0
        self.pieces_retried = 0

    def regions(self, regions: list[Span], progress: Progress | None = None) -> list[Segment]:
        """Segments (times in seconds from sample 0) for speech ``regions``, in time order."""
        planned = plan_joined(self.profile, regions, self.rate, self.config)
        pieces = plan_overlaps(
            self.profile, planned, self.rate, self.config.overlap_s, self.config.pause_s
        )
        total = max(1, sum(b - a for piece in planned for a, b in piece))
        done = 0
        readings: list[list[Segment]] = []
        for own, piece in zip(planned, pieces, strict=True):
            readings.append(self._decoded(piece))
            done += sum(b - a for a, b in own)
            if progress is not None:
                progress(done / total)
        # The speaker's own pace, from the pieces long enough to show it.
        rates = [
            spoken_words(_text(reading)) / voiced
            for piece, reading in zip(pieces, readings, strict=True)
            if (voiced := self.voiced_s(piece)) >= 3.0 and _text(reading)
        ]
        pace = float(np.median(rates)) if len(rates) >= 3 else 0.0
        found: list[Segment] = []
        for index, (piece, reading) in enumerate(zip(pieces, readings, strict=True)):
            checked = self._checked_piece(piece, reading, pace)
            if index and piece[0][0] < planned[index][0][0]:  # read into the one before
                cut = planned[index][0][0] / self.rate
                found = join_readings(found, checked, cut, self.config.overlap_s)
            else:
                found.extend(checked)
        return sorted(found, key=lambda s: (s.start, s.end))

    def region(self, start: int, end: int, progress: Progress | None = None) -> list[Segment]:
        """Segments (times in seconds from sample 0) for samples ``start..end``."""
        return self.regions([(start, end)] if end > start else [], progress)

    def voiced_s(self, piece: Piece) -> float:
        """Seconds of speech (frames above the threshold) in a piece's spans."""
        frame = self.profile.frame
        voiced = self.profile.voiced
        frames = sum(int(voiced[a // frame : -(-b // frame)].sum()) for a, b in piece)
        return frames * frame / self.rate

    def plausible(self, text: str, piece: Piece, pace: float = 0.0) -> bool:
        """Whether ``text`` has enough words for the speech in ``piece``.

        ``pace``: the speaker's words per voiced second elsewhere (0: unknown).
        """
        voiced = self.voiced_s(piece)
        if not text.strip():
            return voiced < self.config.min_inaudible_s
        words = spoken_words(text)
        # One word of slack: a short piece may hold one long word.
        if words < self.config.min_words_per_s * voiced - 1:
            return False
        slow = pace * self.config.slow_share * voiced
        return voiced < self.config.slow_voiced_s or words >= slow - 1

    def _decoded(self, piece: Piece) -> list[Segment]:
        """The engine's reading of ``piece``, timed on the stem sentence by sentence."""
        self.pieces_decoded += 1
        stretches = _with_gaps(piece, self.rate, self.config.join_gap_s)
        out: list[Segment] = []
        for segment in self.decode(piece):
            text = segment.text.strip()
            if text:
                out += self._timed(piece, stretches, segment, text)
        return out

    def _timed(
        self, piece: Piece, stretches: list[Span], segment: Segment, text: str
    ) -> list[Segment]:
        """``segment`` (timed on the joined audio) as segments timed on the stem."""
        frame = self.profile.frame
        first, last = piece[0][0] // frame, -(-piece[-1][1] // frame)
        inside = np.zeros(max(0, last - first), dtype=np.bool_)
        at = 0  # joined samples so far
        low, high = round(segment.start * self.rate), round(segment.end * self.rate)
        for a, b in stretches:
            # The part of this stretch the segment covers, on the stem.
            s, e = max(a, a + low - at), min(b, a + high - at)
            at += b - a
            for x, y in piece:  # its speech: a shortened silence is no one's
                if min(e, y) > max(s, x):
                    inside[max(s, x) // frame - first : -(-min(e, y) // frame) - first] = True
        voiced = self.profile.voiced[first:last] & inside
        # Spans are apart by a pause between regions (0.6 s or more): a segment ends there.
        joins = {a // frame - first for (_, a) in itertools.pairwise(x for x, _ in piece)}
        frames, gaps = voiced_gaps(voiced, joins)
        if not len(frames):
            span = np.flatnonzero(inside)
            lo, hi = (span[0], span[-1] + 1) if len(span) else (0, len(inside))
            return [
                Segment((first + lo) * frame / self.rate, (first + hi) * frame / self.rate, text)
            ]
        bound = piece[-1][1] / self.rate
        return [
            Segment(
                max(piece[0][0] / self.rate, (first + a) * frame / self.rate),
                min(bound, (first + b) * frame / self.rate),
                words,
            )
            for a, b, words in spread(text, frames, gaps)
        ]

    def _checked_piece(self, piece: Piece, reading: list[Segment], pace: float) -> list[Segment]:
        text = _text(reading)
        if self.plausible(text, piece, pace):
            return reading
        self.pieces_retried += 1
        parts = [
            p for a, b in piece for p in plan_pieces(self.profile, a, b, self.rate, self.config)
        ]
        if len(parts) == 1:
            again = self._halved(*parts[0], text)
        else:
            again = [s for part in parts for s in self._checked(*part)]
        # As many words in parts: theirs, which also say where speech gave none.
        if spoken_words(_text(again)) >= spoken_words(text) and again:
            return again
        if text:
            return reading
        return [
            Segment(a / self.rate, b / self.rate, INAUDIBLE)
            for a, b in piece
            if self.voiced_s(((a, b),)) >= self.config.min_inaudible_s
        ]

    def _checked(self, start: int, end: int) -> list[Segment]:
        segments = self._decoded(((start, end),))
        text = _text(segments)
        if self.plausible(text, ((start, end),)):
            return segments
        parts = self._halved(start, end, text)
        if spoken_words(_text(parts)) > spoken_words(text):
            return parts
        if text:
            return segments
        if self.voiced_s(((start, end),)) >= self.config.min_inaudible_s:
            return [Segment(start / self.rate, end / self.rate, INAUDIBLE)]
        return []

    def _halved(self, start: int, end: int, text: str) -> list[Segment]:
        """Samples ``start..end`` decoded again in two halves (if long enough to halve)."""
        if end - start < 2 * self.config.smallest_s * self.rate:
            return []
        self.pieces_retried += 1
        return [s for half in self._halves(start, end) for s in self._checked(*half)]

    def _halves(self, start: int, end: int) -> list[tuple[int, int]]:
        """Samples ``start..end`` cut in two at the quietest point of its middle third."""
        frame = self.profile.frame
        first, last = start // frame, -(-end // frame)
        smooth = _smoothed(self.profile.levels[first:last])
        count = len(smooth)
        window = smooth[count // 3 : max(count // 3 + 1, count * 2 // 3)]
        # The quietest frame; of equals, the one nearest the middle.
        quietest = np.flatnonzero(window <= window.min())
        middle = len(window) / 2
        best = int(quietest[np.argmin(np.abs(quietest - middle))])
        cut = (first + count // 3 + best) * frame
        cut = min(max(cut, start + frame), end - frame)
        return [(start, cut), (cut, end)]
