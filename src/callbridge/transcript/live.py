"""Live captions, sans IO: the conference mix in, speech pieces to decode out, cues back.

The caption worker (``webcast.caption_worker``) feeds ``LiveCaptioner`` the mix as it
arrives, each chunk with its offset on the webcast packager's sample clock
(16 kHz input samples since the webcast began, silence fills included), and
asks it for the next piece to decode whenever the engine is free. Nothing
here knows the time of day: the only clock is the samples fed so far.

* ``PieceCutter`` is a streaming form of ``vad`` and ``pieces``: 20 ms frame
  levels against a threshold above a rolling noise floor. A stretch of speech
  becomes a piece when a pause of ``pause_s`` follows it; speech that runs on
  past ``longest_s`` is cut by ``pieces.plan_pieces`` at its best gap, and
  only the rest waits. Nothing voiced is dropped, except by a skip ahead.
* ``LiveCaptioner`` queues the pieces and never hands the engine a lone short
  piece it can help (issue 26: Moonshine, called alone on one short figure,
  returns no text about one time in four): a piece under ``least_s`` is
  read together with the pieces already waiting after it (close by, within
  ``longest_s``), which costs no delay; and a short piece that came back
  empty is read again together with the next piece, if speech follows
  within ``rejoin_s``. When the engine is free but the oldest
  piece ended more than ``max_behind_s`` before the newest sample, the worker
  has fallen behind: every such piece is dropped and one
  ``SKIPPED`` cue says so, rather than drifting further behind.
* Partial cues settle (issue 26: the same engine reads a figure whole with the
  speech around it). The first, fast reading of each piece goes out as a cue
  at once, as above; then, when the engine has nothing else to read, the
  piece of the same speaker just before it (within ``settle_gap_s``; with
  those before it whose own re-reading has not had its turn, up to
  ``settle_longest_s`` in all) is read again together with it, if one of
  them was short (under ``settle_short_s``) or they meet inside speech (a
  cut of long speech). A settled stretch stands for its cues from then on,
  so the context grows as readings settle. When that reading reads it better
  (``reads_better``: a figure whole where the short readings split it, words
  the short readings lost, no words or figures lost), a cue ``revises`` the
  cues it replaces (their ``number``). A re-reading never holds a first
  one back from starting (it waits while any piece does) nor the horizon;
  one too far behind the live edge (``max_behind_s``), or that would keep
  the engine longer than ``settle_budget_s`` at its pace, is let go.
* ``horizon`` is the sample before which no cue can still come: the subtitle
  rendition publishes a segment once the horizon has passed its end.

Over 500 lines: cutting, queueing, skipping and settling are one schedule of
one engine, over the same pieces; apart, each would have to see the others'
state to decide what the engine reads next.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callbridge.media.mixer import SAMPLE_RATE
from callbridge.transcript.pieces import PieceConfig, plan_pieces
from callbridge.transcript.vad import VoiceProfile, frame_levels, to_float
from callbridge.transcript.wer import normalise

SKIPPED = "[captions skipped ahead]"


@dataclass(frozen=True)
class CaptionConfig:
    """How the live mix is cut and how far captions may fall behind."""

    rate: int = SAMPLE_RATE  # the live mix's: 16 kHz, what the speech models take
    frame_s: float = 0.02
    floor_dbfs: float = -50.0  # below this a frame is silence whatever the noise
    above_noise_db: float = 12.0  # this far above the rolling noise floor is speech
    noise_window_s: float = 30.0  # the noise floor is the 10th percentile of this much
    # A quiet run this long after speech ends a piece. Every 0.1 s here is 0.1 s of
    # the captions' delay; at 0.25 s the paragraph of the tests is cut as at 0.35 s.
    pause_s: float = 0.25
    pad_s: float = 0.15  # kept either side of speech: plosives start quietly
    min_voiced_s: float = 0.15  # less speech than this in a piece is a click: dropped
    # Long speech is cut here, not at the offline 8 s: each piece is decoded
    # only once it ends, so its length is the captions' delay. Not shorter: cut
    # at 2 to 3 s, the test paragraph's word error rate doubles (0.18 to 0.35-0.42)
    # for 0.1-0.2 s less decode.
    longest_s: float = 5.0
    max_behind_s: float = 8.0  # a piece ending further back than this is skipped
    least_s: float = 2.0  # shorter pieces are read with the waiting ones after them
    join_gap_s: float = 1.0  # ...if no further apart than this
    rejoin_s: float = 3.0  # a short piece that gave no text waits this long for the next
    max_pending_s: float = 60.0  # at most this much speech waits (every buffer has a limit)
    # Settling: the cues of pieces of one speaker no further apart than this are read
    # again together with the next, up to ``settle_longest_s`` of audio (one decode of
    # it costs the worker about 1 s at one thread: a re-reading is never longer), when
    # one of them is shorter than ``settle_short_s`` (Moonshine misreads a short figure
    # alone, 2-4 s, about one time in four) or they meet inside speech.
    settle_gap_s: float = 1.0
    settle_short_s: float = 4.0
    settle_longest_s: float = 12.0
    # A re-reading is let go where the engine's pace (mix heard per audio decoded, of
    # the last decodes) says it would take longer than this: a new piece cut meanwhile
    # waits for it, and this is the most that wait adds to the captions' delay.
    settle_budget_s: float = 1.0
    # More words a second than anyone speaks: the decoder ran on (repeats), not a reading.
    max_words_per_s: float = 6.0

    @property
    def frame(self) -> int:
        return max(1, round(self.frame_s * self.rate))


@dataclass(frozen=True)
class Piece:
    """Speech to decode: ``samples`` from ``start`` to ``end`` on the caption clock
    (for pieces read together, with the silence between them shortened)."""

    start: int
    end: int
    samples: npt.NDArray[np.int16]


@dataclass(frozen=True)
class LiveCue:
    """A caption: speech from ``start`` to ``end`` (samples on the caption clock), its text,
    and ``ready``, how many samples had been fed when it was made (the delay's measure).

    ``number`` counts the cues one captioner made, from 0 (-1: made elsewhere);
    ``revises`` names (by number) the cues a settled reading replaces, in order.
    """

    start: int
    end: int
    text: str
    ready: int
    speaker: str | None = None
    number: int = -1
    revises: tuple[int, ...] = ()

    @property
    def skipped(self) -> bool:
        return self.text == SKIPPED


_FIGURE = re.compile(
    r"(?P<currency>(?:[A-Z]{1,2}\$|[$€£¥])\s?)?\d(?:[\d,.]*\d)?"
    r"(?P<unit>%|\s?(?:thousand|million|billion|trillion|bps|basis points)\b)?"
)


def whole_figures(text: str) -> int:
    """Figures written whole in (written) ``text``: a number with its currency, percent
    sign or scale ("$42 million", "12%"); a bare "42" or a lone "million" is not one."""
    return sum(
        1 for match in _FIGURE.finditer(text) if match.group("currency") or match.group("unit")
    )


def reads_better(firsts: Sequence[str], joined: str, seconds: float, config: CaptionConfig) -> bool:
    """Whether ``joined``, one reading of ``seconds`` of speech, reads it better than the
    ``firsts``, the cues read from its pieces one by one (all written text).

    Better: more figures whole with at most one spoken word per figure fewer (a
    "$42 million" says "dollars" no more), or as many figures and more words,
    or as many of both and other words (the longer context reads them; issue 26).
    Never: a figure lost, words lost, or more words a second than anyone speaks.
    """
    before = " ".join(" ".join(firsts).split())
    after = " ".join(joined.split())
    if not after or after == before:
        return False
    spoken_before = normalise(before, numbers=True)
    spoken_after = normalise(after, numbers=True)
    if len(spoken_after) > config.max_words_per_s * max(seconds, 1.0):
        return False
    figures_before = sum(whole_figures(text) for text in firsts)
    gained = whole_figures(after) - figures_before
    if gained > 0:
        return len(spoken_after) >= len(spoken_before) - gained
    if gained < 0 or len(spoken_after) < len(spoken_before):
        return False
    return spoken_after != spoken_before


@dataclass(frozen=True)
class _Read:
    """A cue shown and the audio it was read from, while it may still settle."""

    number: int
    piece: Piece
    text: str
    speaker: str | None
    settled: bool  # read with the speech around it already: not short, whatever its length


class PieceCutter:
    """Cuts a stream of samples into speech pieces at pauses; see the module docstring.

    Call ``feed(offset, samples)`` with consecutive chunks; it returns the
    pieces they complete. A chunk whose offset is not where the last ended
    (the packager restarted, or the feed dropped some) first closes any
    speech in progress.
    """

    def __init__(self, config: CaptionConfig | None = None, first: int = 0) -> None:
        self.config = config or CaptionConfig()
        c = self.config
        self.position = first  # the next sample expected
        self._frame = c.frame
        self._noise: deque[float] = deque(maxlen=max(10, round(c.noise_window_s / c.frame_s)))
        self._threshold = c.floor_dbfs
        self._frames_seen = 0
        # Samples not yet in a whole frame.
        self._tail = np.zeros(0, dtype=np.int16)
        # The speech in progress: its samples (from ``_start``) and frame levels.
        self._start: int | None = None
        self._samples: list[npt.NDArray[np.int16]] = []
        self._levels: list[float] = []
        self._quiet = 0  # frames since the last voiced one
        self._voiced = 0  # voiced frames in the speech in progress
        # A little of what came before speech, so a piece starts ``pad_s`` early.
        self._before: deque[npt.NDArray[np.int16]] = deque(
            maxlen=max(1, round(c.pad_s / c.frame_s))
        )

    @property
    def speech_start(self) -> int | None:
        """Where the speech in progress began (pad included), or None in silence."""
        return self._start

    def feed(self, offset: int, samples: npt.NDArray[np.int16]) -> list[Piece]:
        """Add ``samples`` starting at sample ``offset``; the pieces this completes."""
        pieces: list[Piece] = []
        if offset != self.position:
            pieces.extend(self.flush())
            self._tail = np.zeros(0, dtype=np.int16)
            self._before.clear()
            self.position = offset
        data = np.concatenate([self._tail, samples.astype(np.int16, copy=False)])
        count = len(data) // self._frame
        self._tail = data[count * self._frame :].copy()
        frames = data[: count * self._frame].reshape(count, self._frame) if count else None
        levels = frame_levels(to_float(data[: count * self._frame]), self._frame)
        # The offset of data[0]: the tail from last time comes first.
        at = self.position - (len(data) - len(samples))
        for index in range(count):
            assert frames is not None
            piece = self._frame_in(at + index * self._frame, frames[index], float(levels[index]))
            if piece is not None:
                pieces.extend(piece)
        self.position = offset + len(samples)
        return pieces

    def flush(self) -> list[Piece]:
        """End the speech in progress now (the stream stops or jumps); its pieces."""
        if self._start is None:
            return []
        return self._close(len(self._levels))

    # -- per frame --

    def _frame_in(self, at: int, frame: npt.NDArray[np.int16], level: float) -> list[Piece] | None:
        c = self.config
        self._noise.append(level)
        self._frames_seen += 1
        if self._frames_seen % 25 == 1:
            # The percentile costs more than a frame's worth: twice a second is enough.
            noise = float(np.percentile(np.fromiter(self._noise, float), 10))
            self._threshold = max(c.floor_dbfs, noise + c.above_noise_db)
        voiced = level > self._threshold
        if self._start is None:
            if not voiced:
                self._before.append(frame.copy())
                return None
            # Speech begins: keep the pad that came before it.
            self._samples = list(self._before)
            self._levels = [self._threshold - 1.0] * len(self._samples)
            self._start = at - self._frame * len(self._samples)
            self._before.clear()
            self._quiet = 0
            self._voiced = 0
        self._samples.append(frame.copy())
        self._levels.append(level)
        if voiced:
            self._quiet = 0
            self._voiced += 1
        else:
            self._quiet += 1
        pause = max(1, round(c.pause_s / c.frame_s))
        if self._quiet >= pause:
            # The pause is long enough: the piece ends ``pad_s`` after its last voiced frame.
            pad = round(c.pad_s / c.frame_s)
            keep = len(self._levels) - self._quiet + min(pad, self._quiet)
            return self._close(keep)
        if len(self._levels) * self._frame >= c.longest_s * c.rate:
            return self._cut_long()
        return None

    def _close(self, frames: int) -> list[Piece]:
        """The first ``frames`` of the speech in progress as pieces; the rest is silence."""
        assert self._start is not None
        start = self._start
        voiced = self._voiced
        samples = np.concatenate(self._samples[:frames]) if frames else np.zeros(0, dtype=np.int16)
        rest = self._samples[frames:]
        self._start = None
        self._samples, self._levels = [], []
        self._quiet = self._voiced = 0
        for frame in rest[-(self._before.maxlen or 1) :]:
            self._before.append(frame)
        if voiced * self.config.frame_s < self.config.min_voiced_s or not len(samples):
            return []
        return self._planned(start, samples)

    def _cut_long(self) -> list[Piece]:
        """Speech past ``longest_s``: all but its last planned piece go out now."""
        assert self._start is not None
        samples = np.concatenate(self._samples)
        pieces = self._planned(self._start, samples)
        if len(pieces) < 2:
            return []
        done, last = pieces[:-1], pieces[-1]
        frames = (last.start - self._start) // self._frame
        levels = self._levels[frames:]
        self._samples = self._samples[frames:]
        self._levels = levels
        self._voiced = sum(1 for level in levels if level > self._threshold)
        self._start = last.start
        return done

    def _planned(self, start: int, samples: npt.NDArray[np.int16]) -> list[Piece]:
        """``samples`` (from ``start``) cut by ``pieces.plan_pieces`` at its pauses and gaps."""
        c = self.config
        levels = frame_levels(to_float(samples), self._frame)
        profile = VoiceProfile(levels, self._threshold, self._frame)
        plan = plan_pieces(
            profile,
            0,
            len(samples),
            c.rate,
            PieceConfig(longest_s=c.longest_s, pause_s=c.pause_s, shortest_s=1.0),
        )
        return [Piece(start + a, start + b, samples[a:b]) for a, b in plan if b > a]


class LiveCaptioner:
    """The worker's core: samples in, pieces to decode out, skip-ahead cues; see the module.

    ``feed`` as the mix arrives, ``next_piece`` when the engine is free,
    ``decoded`` with the engine's text (and who spoke) when it is done;
    ``take_cues`` gives the cues to send, in order, revisions among them.
    ``settling`` says whether the piece being decoded is a re-reading.
    """

    def __init__(self, config: CaptionConfig | None = None, first: int = 0) -> None:
        self.config = config or CaptionConfig()
        self.cutter = PieceCutter(self.config, first)
        self.pending: deque[Piece] = deque()
        self.decoding: Piece | None = None
        self.skipped_pieces = 0
        self.skips = 0
        self._unread: Piece | None = None  # short, gave no text: read again with the next
        self._rejoined = False  # the piece being decoded holds an unread one
        self._cues: list[LiveCue] = []
        self._made = 0  # cues numbered so far
        # The newest cues and their audio, while they may settle; the re-reading to do
        # when the engine is free, and the one being decoded.
        self._recent: deque[_Read] = deque()
        self._settle: tuple[_Read, ...] | None = None
        self._settling: tuple[_Read, ...] | None = None
        # The engine's pace: samples fed while it decodes one sample (averaged), and the
        # edge when the piece being decoded was handed out.
        self.pace: float | None = None
        self._handed = 0

    @property
    def fed(self) -> int:
        """The newest sample's offset (plus one): the live edge on the caption clock."""
        return self.cutter.position

    def feed(self, offset: int, samples: npt.NDArray[np.int16]) -> None:
        """Add a chunk of the mix that starts at sample ``offset``."""
        self.pending.extend(self.cutter.feed(offset, samples))
        limit = self.config.max_pending_s * self.config.rate
        while self.pending and sum(p.end - p.start for p in self.pending) > limit:
            self._skip([self.pending.popleft()])

    def flush(self) -> None:
        """The mix has ended: the speech in progress becomes a piece to decode."""
        self.pending.extend(self.cutter.flush())
        if not self.pending:
            self._unread = None  # no speech follows to read it with

    def next_piece(self) -> Piece | None:
        """The next piece to decode, or None; pieces too far behind are skipped first."""
        assert self.decoding is None, "decoded() was not called for the last piece"
        c = self.config
        bound = self.fed - c.max_behind_s * c.rate
        late = []
        while self.pending and self.pending[0].end < bound:
            late.append(self.pending.popleft())
        if late:
            self._skip(late)
        unread, self._unread = self._unread, None
        if not self.pending:
            if unread is not None and self.fed - unread.end <= self.config.rejoin_s * c.rate:
                self._unread = unread  # the next speech may still come
            return self._next_settle(bound)
        piece = self.pending.popleft()
        if unread is not None and piece.start - unread.end <= self.config.rejoin_s * c.rate:
            piece = self._together(unread, piece, gap=self.config.join_gap_s)
            self._rejoined = True
        else:
            self._rejoined = False
        # Short: read with the pieces waiting right after it, as long as they fit.
        while (
            self.pending
            and piece.end - piece.start < self.config.least_s * c.rate
            and self.pending[0].start - piece.end <= self.config.join_gap_s * c.rate
            and self.pending[0].end - piece.start <= self.config.longest_s * c.rate
        ):
            piece = self._together(piece, self.pending.popleft())
        self.decoding = piece
        self._handed = self.fed
        return piece

    def _together(self, first: Piece, then: Piece, gap: float | None = None) -> Piece:
        """Two pieces as one, the silence between them (at most ``gap`` s) as zeros."""
        c = self.config
        pause = then.start - first.end
        if gap is not None:
            pause = min(pause, round(gap * c.rate))
        silence = np.zeros(max(0, pause), dtype=np.int16)
        return Piece(first.start, then.end, np.concatenate([first.samples, silence, then.samples]))

    @property
    def settling(self) -> bool:
        """Whether the piece being decoded is a re-reading (its cues are out already)."""
        return self._settling is not None

    @property
    def idle(self) -> bool:
        """Nothing to decode, now or when the engine is free (the mix may have ended)."""
        return not self.pending and self.decoding is None and self._settle is None

    def decoded(self, text: str, speaker: str | None = None) -> None:
        """The engine's (written) text for the piece ``next_piece`` gave (empty for none),
        and who spoke in it."""
        piece = self.decoding
        assert piece is not None, "no piece is being decoded"
        self.decoding = None
        pace = (self.fed - self._handed) / max(1, len(piece.samples))
        self.pace = pace if self.pace is None else 0.7 * self.pace + 0.3 * pace
        if self._settling is not None:
            reads, self._settling = self._settling, None
            self._settled(reads, piece, text)
            return
        short = piece.end - piece.start < self.config.least_s * self.config.rate
        if not text.strip() and short and not self._rejoined:
            self._unread = piece  # read again with the next speech
            return
        if text.strip():
            cue = self._cue(piece.start, piece.end, " ".join(text.split()), speaker)
            self._read(_Read(cue.number, piece, cue.text, speaker, settled=False))

    def _cue(
        self, start: int, end: int, text: str, speaker: str | None, revises: tuple[int, ...] = ()
    ) -> LiveCue:
        cue = LiveCue(start, end, text, self.fed, speaker, self._made, revises)
        self._made += 1
        self._cues.append(cue)
        return cue

    # -- settling --

    def _read(self, read: _Read) -> None:
        """A first reading went out: plan reading it again with the one just before (a
        settled one stands for those it revised: context grows as readings settle), and
        with those before that too where their re-reading has not had its turn yet."""
        c = self.config
        rate = c.rate
        reach = read.piece.end - round(c.settle_longest_s * rate)
        while self._recent and self._recent[0].piece.start < reach:
            self._recent.popleft()
        before = self._recent[-1] if self._recent else None
        self._recent.append(read)
        if (
            before is None
            or before.piece.start < reach
            or read.piece.start - before.piece.end > c.settle_gap_s * rate
            or before.speaker != read.speaker
        ):
            return

        def short(r: _Read) -> bool:
            return not r.settled and r.piece.end - r.piece.start < c.settle_short_s * rate

        # Worth it where a short piece was read alone, or the two meet inside speech.
        if not (short(read) or short(before) or read.piece.start <= before.piece.end):
            return
        waiting = self._settle
        if waiting is not None and waiting[-1] is before and waiting[0].piece.start >= reach:
            self._settle = (*waiting, read)
        else:
            self._settle = (before, read)

    def _next_settle(self, bound: float) -> Piece | None:
        """The re-reading to decode now (the engine is free, no piece waits), if any."""
        reads, self._settle = self._settle, None
        if reads is None or reads[-1].piece.end < bound:
            return None  # too far behind the live edge to matter any more
        piece = reads[0].piece
        for read in reads[1:]:
            piece = self._together(piece, read.piece, gap=self.config.join_gap_s)
        budget = self.config.settle_budget_s * self.config.rate
        if self.pace is not None and self.pace * len(piece.samples) > budget:
            return None  # the engine is too slow now to read it again in time
        self._settling = reads
        self.decoding = piece
        self._handed = self.fed
        return piece

    def _settled(self, reads: tuple[_Read, ...], piece: Piece, text: str) -> None:
        """The re-reading of ``reads`` as ``piece`` gave ``text``: a revision if it is better."""
        text = " ".join(text.split())
        seconds = (piece.end - piece.start) / self.config.rate
        if not reads_better([r.text for r in reads], text, seconds, self.config):
            return
        numbers = tuple(r.number for r in reads)
        cue = self._cue(piece.start, piece.end, text, reads[-1].speaker, numbers)
        settled = _Read(cue.number, piece, text, cue.speaker, settled=True)
        # The revision stands for the cues it replaces from now on (and may settle again).
        kept = [r for r in self._recent if r.number not in numbers]
        self._recent = deque(sorted([*kept, settled], key=lambda r: r.piece.start))

    def take_cues(self) -> list[LiveCue]:
        """The cues made since the last call, in the order made."""
        cues, self._cues = self._cues, []
        return cues

    def horizon(self) -> int:
        """No cue still to come starts before this sample."""
        candidates = [self.fed]
        if self.decoding is not None and self._settling is None:
            # A re-reading's cues are out: it holds nothing back.
            candidates.append(self.decoding.start)
        if self.pending:
            candidates.append(self.pending[0].start)
        unread = self._unread
        if unread is not None and self.fed - unread.end <= self.config.rejoin_s * self.config.rate:
            candidates.append(unread.start)
        if self.cutter.speech_start is not None:
            candidates.append(self.cutter.speech_start)
        else:
            # Speech starting in the next frame keeps its pad from before it.
            candidates.append(self.fed - round(self.config.pad_s * self.config.rate))
        return max(0, min(candidates))

    def _skip(self, pieces: list[Piece]) -> None:
        self.skips += 1
        self.skipped_pieces += len(pieces)
        # Speech was lost between the cues before and after: they settle apart.
        self._recent.clear()
        self._settle = None
        self._cue(pieces[0].start, pieces[-1].end, SKIPPED, None)
