"""Joining two pieces' readings where the cut between them fell inside speech.

Speech that runs on past a piece's length (20 s with no pause of 0.3 s) is cut
at its best gap between words; when that gap is only a breath, or none, the
words at the cut are at the edge of both pieces, and an engine reads a
piece's edge worst: a clipped word comes back guessed at, or not at all. So
both pieces are decoded ``overlap`` seconds into each other (``pieces``), both
readings hold the words around the cut, and they are joined where they agree:

* the longest run of the same words in the end of the first reading and the
  start of the second, of at least ``MIN_RUN`` words, wins (one differing word
  inside a run is allowed: two readings of one clipped word); of equal runs,
  the one nearest the cut;
* the first reading is kept up to the middle of that run and the second from
  there on: the middle is the furthest point from both pieces' edges;
* with no such run (one reading lost the overlap, or they disagree), each
  reading keeps the words it timed on its own side of the cut.

A word's time is shared out of its segment's time by its length, as the
captions do. Pure: segments in, segments out.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from callbridge.transcript.engine import Segment
from callbridge.transcript.figures import is_figure_word
from callbridge.transcript.spread import LONGEST_SEGMENT_S, SENTENCE_END
from callbridge.transcript.vad import VoiceProfile, quiet_run_at

Span = tuple[int, int]  # (start, end) sample offsets
# Spans of speech decoded as one, in order, joined as ``pieces.joined`` joins them.
Piece = tuple[Span, ...]

MIN_RUN = 2  # words two readings must share to be joined on them
SLACK_S = 1.0  # a word's time is an estimate: the overlap is searched this much wider
WORD_S = 0.3  # about a word's length: what a run's readings may differ in time per word

_NOT_WORD = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True)
class _Word:
    segment: int  # its segment's index in the reading
    text: str
    start: float
    end: float

    @property
    def key(self) -> str:
        """The word as two readings are compared: case and punctuation aside."""
        return _NOT_WORD.sub("", self.text.lower())


def _words(reading: list[Segment]) -> list[_Word]:
    out: list[_Word] = []
    for index, segment in enumerate(reading):
        words = segment.text.split()
        weights = [len(word) + 1 for word in words]
        per = max(segment.end - segment.start, 0.0) / max(1, sum(weights))
        at = segment.start
        for word, weight in zip(words, weights, strict=True):
            out.append(_Word(index, word, at, at + weight * per))
            at += weight * per
    return out


@dataclass(frozen=True)
class _Run:
    first: int  # where it starts in the first reading's words
    second: int  # and in the second's
    length: int  # words, the differing one included
    same: int  # words that are the same


def _runs_from(first: list[_Word], second: list[_Word], i: int, j: int) -> _Run | None:
    """The run of words the same starting at ``first[i]`` and ``second[j]``, if any."""
    if not first[i].key or first[i].key != second[j].key:
        return None
    same, differing, length = 0, 0, 0
    k = 0
    while i + k < len(first) and j + k < len(second):
        a, b = first[i + k].key, second[j + k].key
        if a and a == b:
            same += 1
            length = k + 1  # a run ends on a word the same in both
        else:
            differing += 1
            if differing > 1:
                break
        k += 1
    return _Run(i, j, length, same)


def _best_run(first: list[_Word], second: list[_Word], cut: float, reach: float) -> _Run | None:
    near_first = [i for i, w in enumerate(first) if w.end >= cut - reach]
    near_second = [j for j, w in enumerate(second) if w.start <= cut + reach]
    best: _Run | None = None
    best_score: tuple[float, float] = (0.0, 0.0)
    for i in near_first:
        for j in near_second:
            run = _runs_from(first, second, i, j)
            if run is None or run.same < MIN_RUN:
                continue
            middle = (second[j].start + second[j + run.length - 1].end) / 2
            apart = (
                sum(abs(first[i + k].start - second[j + k].start) for k in range(run.length))
                / run.length
            )
            # Both readings are timed on the same stem: a run whose words were timed
            # apart is a chance likeness ("million dollars" said twice), and it
            # costs a word per WORD_S.
            score = (run.same - apart / WORD_S, -abs(middle - cut))
            if best is None or score > best_score:
                best, best_score = run, score
    return best


def _marker_text(text: str) -> bool:
    """A marker such as "[inaudible]": it stands for a stretch of time, not a word."""
    return text.startswith("[") and text.endswith("]")


def _marker(word: _Word) -> bool:
    return _marker_text(word.text)


def _figure_word(word: _Word) -> bool:
    """A word a figure is said in: a number, in digits or words, or its scale or unit."""
    return is_figure_word(word.key) and not word.text.endswith((",", ".", ";"))


def _surer(first: list[_Word], second: list[_Word], i: int, j: int) -> _Word:
    """Of one word of the run, as ``first[i]`` and as ``second[j]``, the reading further
    from its piece's edge: an engine ends a piece with a stop whether one was said
    or not, and starts the next with a capital."""
    return second[j] if j > len(first) - 1 - i else first[i]


def _join_point(run: _Run, first: list[_Word], second: list[_Word]) -> int:
    """How many of ``run``'s words the first reading keeps (the second keeps the rest):
    of the places that are not inside a figure ("seven hundred | twenty three
    billion" would be two figures), the nearest the run's middle, and a comma or
    a stop before all. The run's ends count: both readings agree on every word of it."""

    def rank(point: int) -> tuple[int, int]:
        at_left, at_right = run.first + point - 1, run.second + point
        if at_left < 0 or at_right >= len(second):
            return (0, abs(point - run.length // 2))
        left = _surer(first, second, at_left, run.second + point - 1) if point else first[at_left]
        right = second[at_right]
        marked = left.text.endswith((",", ".", ";", "?", "!"))
        inside = _figure_word(left) and _figure_word(right)
        return (0 if marked else 1 if not inside else 2, abs(point - run.length // 2))

    return min(range(run.length + 1), key=rank)


def _kept(
    reading: list[Segment], words: list[_Word], keep: list[int], at: float, head: bool
) -> list[Segment]:
    """The segments of ``reading`` with only the words in ``keep``, none past ``at``
    (``head``: none before it)."""
    chosen: dict[int, list[str]] = {}
    for index in keep:
        chosen.setdefault(words[index].segment, []).append(words[index].text)
    out: list[Segment] = []
    for index, segment in enumerate(reading):
        if index not in chosen:
            continue
        text = " ".join(chosen[index])
        if head:
            out.append(Segment(min(max(segment.start, at), segment.end), segment.end, text))
        else:
            out.append(Segment(segment.start, max(min(segment.end, at), segment.start), text))
    return out


def join_readings(
    first: list[Segment], second: list[Segment], cut: float, overlap: float
) -> list[Segment]:
    """``first`` (read up to ``cut`` + ``overlap`` s) and ``second`` (read from ``cut`` -
    ``overlap`` s) as one reading with each word once; see the module."""
    a, b = _words(first), _words(second)
    if not a:
        return list(second)
    if not b:
        return list(first)
    run = _best_run(a, b, cut, overlap + SLACK_S)
    if run is not None:
        middle = _join_point(run, a, b)
        upto, since = run.first + middle, run.second + middle
        at = b[since].start if since < len(b) else a[upto - 1].end
        keep_first, keep_second = list(range(upto)), list(range(since, len(b)))
        if middle:
            a[upto - 1] = dataclasses.replace(
                a[upto - 1], text=_surer(a, b, upto - 1, since - 1).text
            )
    else:
        # Each side's words, by where their middle was timed; a marker keeps its
        # own side's share of its stretch.
        at = cut
        keep_first = [
            i
            for i, w in enumerate(a)
            if (w.start + w.end) / 2 < cut or (_marker(w) and w.start < cut)
        ]
        keep_second = [
            i
            for i, w in enumerate(b)
            if (w.start + w.end) / 2 >= cut or (_marker(w) and w.end > cut)
        ]
    before = _kept(first, a, keep_first, at, head=False)
    after = _kept(second, b, keep_second, at, head=True)
    if before and after and _one_sentence(before[-1], after[0]):
        last, following = before.pop(), after.pop(0)
        before.append(Segment(last.start, following.end, f"{last.text} {following.text}"))
    return before + after


def _one_sentence(last: Segment, following: Segment) -> bool:
    """Whether the segments either side of the junction are one sentence cut in two
    (no stop ends the first), short enough to be one segment."""
    if SENTENCE_END.search(last.text) or _marker_text(last.text) or _marker_text(following.text):
        return False
    return following.end - last.start <= LONGEST_SEGMENT_S


def plan_overlaps(
    profile: VoiceProfile,
    pieces: list[Piece],
    sample_rate: int,
    overlap_s: float = 1.2,
    pause_s: float = 0.3,
) -> list[Piece]:
    """``pieces`` as they are decoded: each read ``overlap_s`` into its neighbour
    where the cut between them falls inside speech (no pause of ``pause_s``).

    Pieces that meet at a pause, or at speech joined from further apart, are
    read as planned: a sentence's end needs no second reading.
    """
    reach = round(overlap_s * sample_rate)
    pause = max(1, round(pause_s * sample_rate / profile.frame))
    spans = [list(piece) for piece in pieces]
    for index in range(len(pieces) - 1):
        (a, cut), (_, b) = pieces[index][-1], pieces[index + 1][0]
        inside = cut == pieces[index + 1][0][0]
        if reach <= 0 or not inside or quiet_run_at(profile.voiced, cut // profile.frame) >= pause:
            continue
        spans[index][-1] = (spans[index][-1][0], min(b, cut + reach))
        spans[index + 1][0] = (max(a, cut - reach), spans[index + 1][0][1])
    return [tuple(piece) for piece in spans]
