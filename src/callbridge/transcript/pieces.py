"""Cutting a speech region into pieces an engine decodes whole, and checking what comes back.

An attention decoder such as Moonshine, handed ten seconds or more of
continuous speech, now and then ends its text early or skips a sentence, and
says nothing about it. So speech reaches an engine only in pieces:

* a region is cut at every real pause (a sentence's end), and a stretch still
  longer than ``longest_s`` is cut at the quietest point near that limit;
* a piece whose text is implausibly short for its voiced time (far fewer
  words per voiced second than anyone speaks) is decoded again in two halves,
  and those again, down to ``smallest_s``;
* speech that still gives no text is kept as ``INAUDIBLE`` with its time.

All of it is pure: a ``VoiceProfile`` of the samples and a ``Decode`` callback
(samples in, timed text out) in, timed segments out.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callbridge.transcript.engine import Segment
from callbridge.transcript.vad import VoiceProfile, runs
from callbridge.transcript.wer import normalise

INAUDIBLE = "[inaudible]"

# (start, end) sample offsets in, segments with times in seconds from ``start`` out.
Decode = Callable[[int, int], list[Segment]]
Progress = Callable[[float], None]


@dataclass(frozen=True)
class PieceConfig:
    """How speech is cut before an engine sees it and when its text is checked again."""

    longest_s: float = 8.0  # no piece is longer than this
    pause_s: float = 0.3  # a quiet run this long is a sentence pause: always cut there
    shortest_s: float = 1.2  # shorter pieces are joined to a neighbour (too little context)
    # People speak 2-3 words a second; text at well under half that lost some speech.
    min_words_per_s: float = 1.0
    smallest_s: float = 1.2  # a piece this short is not split again
    min_inaudible_s: float = 0.4  # less voiced time than this without text is a cough


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


def spoken_words(text: str) -> int:
    """Words as spoken: "$42 million" counts as "forty two million" does; markers count 0."""
    return len(normalise(text.replace(INAUDIBLE, " "), numbers=True))


def _text(segments: list[Segment]) -> str:
    return " ".join(s.text for s in segments if s.text.strip())


class PieceDecoder:
    """Decodes regions piece by piece and checks each piece's text; see the module docstring.

    ``decode`` is called with sample offsets and returns segments timed from
    the piece's start. ``pieces_decoded`` and ``pieces_retried`` count calls,
    for benchmarks and tests.
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

    def region(self, start: int, end: int, progress: Progress | None = None) -> list[Segment]:
        """Segments (times in seconds from sample 0) for samples ``start..end``, in time order."""
        found: list[Segment] = []
        pieces = plan_pieces(self.profile, start, end, self.rate, self.config)
        total = max(1, end - start)
        for a, b in pieces:
            found.extend(self._checked(a, b))
            if progress is not None:
                progress((b - start) / total)
        return found

    def voiced_s(self, start: int, end: int) -> float:
        """Seconds of speech (frames above the threshold) in samples ``start..end``."""
        frame = self.profile.frame
        frames = int(self.profile.voiced[start // frame : -(-end // frame)].sum())
        return frames * frame / self.rate

    def plausible(self, text: str, start: int, end: int) -> bool:
        """Whether ``text`` has enough words for the speech in samples ``start..end``."""
        voiced = self.voiced_s(start, end)
        if not text.strip():
            return voiced < self.config.min_inaudible_s
        # One word of slack: a short piece may hold one long word.
        return spoken_words(text) >= self.config.min_words_per_s * voiced - 1

    def _decoded(self, start: int, end: int) -> list[Segment]:
        self.pieces_decoded += 1
        offset = start / self.rate
        return [
            Segment(offset + s.start, offset + s.end, s.text.strip())
            for s in self.decode(start, end)
            if s.text.strip()
        ]

    def _checked(self, start: int, end: int) -> list[Segment]:
        segments = self._decoded(start, end)
        text = _text(segments)
        if self.plausible(text, start, end):
            return segments
        if end - start >= 2 * self.config.smallest_s * self.rate:
            self.pieces_retried += 1
            parts = [s for half in self._halves(start, end) for s in self._checked(*half)]
            if spoken_words(_text(parts)) > spoken_words(text):
                return parts
        if text:
            return segments
        if self.voiced_s(start, end) >= self.config.min_inaudible_s:
            return [Segment(start / self.rate, end / self.rate, INAUDIBLE)]
        return []

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
