"""Cutting speech into pieces and checking their text: pure, with made-up levels and decoders."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.transcript.engine import Segment
from callbridge.transcript.pieces import (
    INAUDIBLE,
    PieceDecoder,
    plan_pieces,
    spoken_words,
)
from callbridge.transcript.vad import VoiceProfile

RATE = 8000
FRAME = 160  # 20 ms
LOUD, GAP, SILENT = -20.0, -45.0, -90.0


def profile(*parts: tuple[float, float]) -> VoiceProfile:
    """Levels made of (seconds, dBFS) parts; frames above -40 dBFS are speech."""
    levels = np.concatenate([np.full(round(seconds / 0.02), level) for seconds, level in parts])
    return VoiceProfile(levels.astype(np.float64), -40.0, FRAME)


def seconds(pieces: list[tuple[int, int]]) -> list[tuple[float, float]]:
    return [(round(a / RATE, 2), round(b / RATE, 2)) for a, b in pieces]


def test_every_sentence_pause_is_a_cut() -> None:
    # Three sentences (3.6 s, 2.8 s, 2.4 s) with pauses of 0.4 s: about the 11 s.
    voice = profile((3.6, LOUD), (0.4, SILENT), (2.8, LOUD), (0.4, SILENT), (2.4, LOUD))
    end = len(voice.levels) * FRAME
    pieces = plan_pieces(voice, 0, end, RATE)
    assert seconds(pieces) == [(0.0, 3.8), (3.8, 7.0), (7.0, 9.6)]


def test_a_breathless_run_is_cut_near_the_limit_at_its_longest_gap() -> None:
    # 20 s of speech; the only gaps between words are 40-100 ms long.
    parts: list[tuple[float, float]] = []
    for index in range(40):
        parts += [(0.44, LOUD), (0.1 if index % 7 == 6 else 0.04, GAP)]
    voice = profile(*parts)
    end = len(voice.levels) * FRAME
    pieces = plan_pieces(voice, 0, end, RATE)
    assert all(b - a <= 8.0 * RATE for a, b in pieces)
    assert len(pieces) == 3
    for start, cut in pieces[:-1]:
        # Half-way or more to the limit, in a 0.1 s gap (one follows every seventh word):
        # the middle frame of five quiet ones, not a 40 ms gap inside a figure.
        assert cut - start >= 4.0 * RATE
        frame = cut // FRAME
        assert list(voice.levels[frame - 2 : frame + 3]) == [GAP] * 5


def test_a_short_sentence_joins_its_neighbour() -> None:
    voice = profile((3.0, LOUD), (0.4, SILENT), (0.5, LOUD), (0.4, SILENT), (5.0, LOUD))
    pieces = plan_pieces(voice, 0, len(voice.levels) * FRAME, RATE)
    # The first sentence is the shorter neighbour, so the short one joins it.
    assert seconds(pieces) == [(0.0, 4.1), (4.1, 9.3)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.02, 12.0), st.sampled_from([LOUD, GAP, SILENT])), max_size=12),
    st.integers(0, 400),
    st.integers(0, 400),
)
def test_pieces_cover_the_region_and_none_is_too_long(
    parts: list[tuple[float, float]], head: int, tail: int
) -> None:
    voice = profile((0.02, SILENT), *parts)
    length = len(voice.levels) * FRAME
    start, end = min(head, length), max(min(head, length), length - tail)
    pieces = plan_pieces(voice, start, end, RATE)
    if end > start:
        assert pieces[0][0] == start and pieces[-1][1] == end
    assert all(a < b for a, b in pieces)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert all(b - a <= 8.0 * RATE + FRAME for a, b in pieces)


WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
]


class Forgetful:
    """An engine that, like an attention decoder, gives up on pieces longer than ``attention_s``.

    Each second of speech it hears is the word for that second (``WORDS[3]`` for
    the fourth), so the test can tell which speech came back.
    """

    def __init__(self, attention_s: float, deaf: tuple[float, float] = (0.0, 0.0)) -> None:
        self.attention_s = attention_s
        self.deaf = deaf  # seconds of the audio it hears nothing in at all
        self.calls: list[tuple[float, float]] = []

    def __call__(self, start: int, end: int) -> list[Segment]:
        a, b = start / RATE, end / RATE
        self.calls.append((a, b))
        # The word of each second whose middle is in the piece, so halves share none.
        heard = [s for s in range(int(b) + 1) if a <= s + 0.5 < b]
        if b - a > self.attention_s:
            heard = heard[:1]
        words = [WORDS[s] for s in heard if not self.deaf[0] <= s < self.deaf[1]]
        return [Segment(0.0, b - a, " ".join(words))] if words else []


def test_implausibly_short_text_is_decoded_again_in_halves() -> None:
    # 6 s without a pause; the engine says one word for it unless the piece is under 2 s.
    voice = profile((6.0, LOUD))
    engine = Forgetful(attention_s=2.0)
    decoder = PieceDecoder(voice, RATE, engine)
    found = decoder.region(0, 6 * RATE)
    said = " ".join(s.text for s in found)
    assert said.split() == WORDS[:6]
    assert decoder.pieces_retried >= 1 and engine.calls[0] == (0.0, 6.0)
    assert all(s.start < s.end for s in found)
    assert [s.start for s in found] == sorted(s.start for s in found)


def test_speech_that_gives_no_text_is_kept_as_inaudible_with_its_time() -> None:
    voice = profile((2.0, LOUD), (0.5, SILENT), (4.0, LOUD), (0.5, SILENT), (2.0, LOUD))
    engine = Forgetful(attention_s=10.0, deaf=(2.0, 7.0))
    found = PieceDecoder(voice, RATE, engine).region(0, 9 * RATE)
    texts = [s.text for s in found]
    assert INAUDIBLE in texts
    gone = [s for s in found if s.text == INAUDIBLE]
    assert gone[0].start >= 2.0 and gone[-1].end <= 7.0
    assert sum(s.end - s.start for s in gone) >= 3.0
    assert texts[0].startswith("alpha") and texts[-1].endswith("india")


def test_a_cough_without_text_is_not_inaudible_speech() -> None:
    voice = profile((0.3, LOUD), (1.0, SILENT))
    assert PieceDecoder(voice, RATE, lambda a, b: []).region(0, len(voice.levels) * FRAME) == []


def test_spoken_words_count_figures_as_said() -> None:
    assert spoken_words("Revenue grew to 42 million dollars.") == 7
    assert spoken_words("up 12%") == 3
    assert spoken_words(f"{INAUDIBLE} and") == 1
