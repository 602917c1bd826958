"""Timing the text of a long piece: which stretch of its speech each sentence was.

An engine such as Moonshine gives one text for a whole piece of up to 20 s
(several sentences, or several bits of speech joined across silences) and no
times within it. The transcript needs a segment per sentence, with times
good enough for captions and for a replay link: a sentence should start
within a word or so of where it was said.

The text's words are laid over the piece's voiced frames in proportion to
their length (speech runs at a fairly even rate of characters per voiced
second), and each cut is then moved to the pause nearest where it fell:

* after every sentence ("." "?" "!"), to the best pause within
  ``reach_s``: the longer and the nearer, the better;
* after a comma only where a real pause (``pause_s`` or longer) is near,
  so a table of figures read out one by one is timed figure by figure;
* wherever the piece joins two speech regions (a pause of 0.6 s or more,
  or speech minutes apart; a segment never spans one): at the word boundary
  that falls nearest it, a sentence's end or a comma if one is near.

Pure: voiced-frame offsets and gaps in, (start, end, text) out.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callbridge.transcript.figures import continues_figure

# A word that ends a sentence ("quarter." "growth?" "said.)").
SENTENCE_END = re.compile(r"[.?!][\"')\]]*$")
_CLAUSE_END = re.compile(r"[,;:][\"')\]]*$")


# No segment is longer than this where it can be helped (a run of words with no stop an
# engine marked is cut again at its best pause): a replay link, a caption and an
# editor's row each point at a few seconds, not at a whole piece.
LONGEST_SEGMENT_S = 8.0


@dataclass(frozen=True)
class Gap:
    """A quiet run between voiced frames: ``before`` voiced frames precede it; ``frames`` long."""

    before: int
    frames: int
    joined: bool = False  # between two speech regions joined in one piece: always a cut


@dataclass(frozen=True)
class SpreadConfig:
    frame_s: float = 0.02
    reach_s: float = 1.5  # a sentence's cut moves at most this far (in voiced time)
    pause_s: float = 0.3  # a comma is a cut only at a pause this long
    pad_frames: int = 7  # kept either side of a segment's voiced frames: 0.14 s
    longest_s: float = LONGEST_SEGMENT_S


def voiced_gaps(
    voiced: npt.NDArray[np.bool_], joined_at: set[int] | frozenset[int] = frozenset()
) -> tuple[npt.NDArray[np.int64], list[Gap]]:
    """The offsets of the voiced frames in ``voiced``, and the quiet runs between them.

    ``joined_at``: frame offsets where speech from further apart was joined; a
    gap that holds one is ``joined``.
    """
    frames = np.flatnonzero(voiced).astype(np.int64)
    gaps: list[Gap] = []
    for index in range(1, len(frames)):
        length = int(frames[index] - frames[index - 1] - 1)
        if length <= 0:
            continue
        joined = any(frames[index - 1] < at <= frames[index] for at in joined_at)
        gaps.append(Gap(index, length, joined))
    return frames, gaps


def spread(
    text: str,
    frames: npt.NDArray[np.int64],
    gaps: list[Gap],
    config: SpreadConfig | None = None,
) -> list[tuple[int, int, str]]:
    """``text`` cut into segments over the voiced ``frames`` (frame offsets, ascending).

    Returns (first frame, end frame, text) for each, frames padded by
    ``pad_frames`` but never into the neighbouring segment's speech. With no
    voiced frame, the whole text gets (0, 0).
    """
    config = config or SpreadConfig()
    words = text.split()
    if not words:
        return []
    if not len(frames):
        return [(0, 0, " ".join(words))]
    count = len(frames)
    weights = np.cumsum([0] + [len(word) + 1 for word in words]).astype(np.float64)
    # Where each word boundary k (before word k) falls, in voiced frames.
    at = weights / weights[-1] * count
    reach = config.reach_s / config.frame_s
    pause = config.pause_s / config.frame_s
    # Boundary k -> voiced-frame index of the cut.
    cuts: dict[int, int] = {}
    if len(words) > 1:
        for gap in (g for g in gaps if g.joined):
            cuts[_nearest_word(at, words, gap.before)] = gap.before
    taken = set(cuts.values())
    # Sentences' ends first, then commas at the pauses left.
    for wanted in (SENTENCE_END, _CLAUSE_END):
        for k in range(1, len(words)):
            if k in cuts or wanted.search(words[k - 1]) is None:
                continue
            near = [g for g in gaps if abs(g.before - at[k]) <= reach and g.before not in taken]
            if wanted is _CLAUSE_END:
                near = [g for g in near if g.frames >= pause and abs(g.before - at[k]) <= reach / 2]
            if near:
                best = max(
                    near, key=lambda g: min(g.frames, 50) / 50 - abs(g.before - at[k]) / reach
                )
                cuts[k] = best.before
                taken.add(best.before)
            elif wanted is SENTENCE_END:
                cuts[k] = round(at[k])
    # Keep cuts in order both ways, each leaving voiced frames to both sides.
    ordered: list[tuple[int, int]] = []
    for k in sorted(cuts):
        index = cuts[k]
        if 0 < index < count and (not ordered or index > ordered[-1][1]):
            ordered.append((k, index))
    bounds = [(0, 0), *ordered, (len(words), count)]
    longest = config.longest_s / config.frame_s
    split = [bounds[0]]
    for (k0, i0), (k1, i1) in itertools.pairwise(bounds):
        split += _shortened(k0, i0, k1, i1, at, words, frames, gaps, longest)
    bounds = split
    out: list[tuple[int, int, str]] = []
    for (k0, i0), (k1, i1) in itertools.pairwise(bounds):
        first, last = int(frames[i0]), int(frames[i1 - 1]) + 1
        low = int(frames[i0 - 1]) + 1 if i0 > 0 else first - config.pad_frames
        high = int(frames[i1]) if i1 < count else last + config.pad_frames
        start = max(first - config.pad_frames, (low + first) // 2 if i0 > 0 else low)
        end = min(last + config.pad_frames, (last + high) // 2 if i1 < count else high)
        if k1 > k0:
            out.append((max(0, start), end, " ".join(words[k0:k1])))
    return out


def _shortened(
    k0: int,
    i0: int,
    k1: int,
    i1: int,
    at: npt.NDArray[np.float64],
    words: list[str],
    frames: npt.NDArray[np.int64],
    gaps: list[Gap],
    longest: float,
) -> list[tuple[int, int]]:
    """The bounds after (k0, i0) up to (k1, i1): that segment cut in two, and each
    half again, until none spans more than ``longest`` frames or holds one word.

    The cut is the longest gap between voiced frames in the segment's middle
    half, moved to the word boundary nearest it (a comma wins, as for joins);
    with no gap there, the word boundary nearest the middle.
    """
    if k1 - k0 < 2 or i1 - i0 < 2 or frames[i1 - 1] - frames[i0] + 1 <= longest:
        return [(k1, i1)]
    quarter = (i1 - i0) / 4
    inside = [g for g in gaps if i0 + quarter <= g.before <= i1 - quarter]
    if inside:
        index = max(inside, key=lambda g: (g.frames, -abs(g.before - (i0 + i1) / 2))).before
        k = k0 + _nearest_word(at[k0 : k1 + 1] - at[k0], words[k0:k1], round(index - at[k0]))
    else:
        index = round((i0 + i1) / 2)
        k = min(range(k0 + 1, k1), key=lambda n: abs(at[n] - index))
    if _splits_figure(words, k):
        # "two hundred" | "eighteen million": the nearest boundary outside a figure, if any.
        whole = [n for n in range(k0 + 1, k1) if not _splits_figure(words, n)]
        if whole:
            k = min(whole, key=lambda n: abs(at[n] - index))
            inside = []
    if not inside:
        index = round(at[k])
    index = min(max(index, i0 + 1), i1 - 1)
    return [
        *_shortened(k0, i0, k, index, at, words, frames, gaps, longest),
        *_shortened(k, index, k1, i1, at, words, frames, gaps, longest),
    ]


def _splits_figure(words: list[str], k: int) -> bool:
    """Whether a cut before word ``k`` falls inside a figure ("was 31" | "cents")."""
    return continues_figure(words[k - 1], " ".join(words[k : k + 4]))


def _nearest_word(at: npt.NDArray[np.float64], words: list[str], index: int) -> int:
    """The word boundary nearest voiced frame ``index``: a sentence's end or a comma
    wins over a plain boundary up to two words nearer."""
    best, score = 1, float("inf")
    span = at[-1] / max(1, len(words))  # a word's frames, on average
    for k in range(1, len(words)):
        bonus = 0.0
        if SENTENCE_END.search(words[k - 1]):
            bonus = 2.0 * span
        elif _CLAUSE_END.search(words[k - 1]):
            bonus = 1.0 * span
        value = abs(at[k] - index) - bonus
        if value < score:
            best, score = k, value
    return best
