"""Cutting speech into pieces and checking their text: pure, with made-up levels and decoders."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from callbridge.transcript.engine import Segment
from callbridge.transcript.junction import plan_overlaps
from callbridge.transcript.pieces import (
    INAUDIBLE,
    PieceConfig,
    PieceDecoder,
    joined,
    plan_joined,
    plan_pieces,
    spoken_words,
)
from callbridge.transcript.spread import spread, voiced_gaps
from callbridge.transcript.vad import VoiceProfile, runs

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

    def __call__(self, piece: tuple[tuple[int, int], ...]) -> list[Segment]:
        a, b = piece[0][0] / RATE, piece[-1][1] / RATE
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
    assert PieceDecoder(voice, RATE, lambda piece: []).region(0, len(voice.levels) * FRAME) == []


def test_spoken_words_count_figures_as_said() -> None:
    assert spoken_words("Revenue grew to 42 million dollars.") == 7
    assert spoken_words("up 12%") == 3
    assert spoken_words(f"{INAUDIBLE} and") == 1


def regions_of(voice: VoiceProfile) -> list[tuple[int, int]]:
    """The voiced runs of ``voice`` as sample offsets: its speech regions."""
    return [(a * FRAME, b * FRAME) for a, b in runs(voice.voiced)]


def joined_length(piece: tuple[tuple[int, int], ...]) -> int:
    """Samples the engine hears for ``piece``: silences between its spans at most 1 s."""
    gaps = sum(min(RATE, b[0] - a[1]) for a, b in itertools.pairwise(piece))
    return sum(b - a for a, b in piece) + gaps


def test_short_regions_are_read_together_up_to_twenty_seconds() -> None:
    # Ten figures of 2.5 s, 0.8 s apart: alone, each is a lone short piece.
    voice = profile(*[part for _ in range(10) for part in ((2.5, LOUD), (0.8, SILENT))])
    regions = regions_of(voice)
    pieces = plan_joined(voice, regions, RATE)
    assert [span for piece in pieces for span in piece] == regions
    joined_s = [joined_length(piece) / RATE for piece in pieces]
    assert len(pieces) == 2 and all(10.0 <= s <= 20.0 for s in joined_s)


def test_a_piece_ends_at_the_longest_pause_and_leaves_no_lone_short_piece() -> None:
    # 12 s, a 2 s pause, 6 s, a 0.7 s pause, 3 s: the long pause is the cut, not the 0.7 s.
    voice = profile((12.0, LOUD), (2.0, SILENT), (6.0, LOUD), (0.7, SILENT), (3.0, LOUD))
    pieces = plan_joined(voice, regions_of(voice), RATE)
    assert [seconds(list(piece)) for piece in pieces] == [
        [(0.0, 12.0)],
        [(14.0, 20.0), (20.7, 23.7)],
    ]


def test_speech_minutes_apart_is_read_together_and_timed_where_it_was_said() -> None:
    voice = profile((2.0, LOUD), (120.0, SILENT), (1.5, LOUD), (1.0, SILENT))
    heard: list[tuple[tuple[int, int], ...]] = []

    def engine(piece: tuple[tuple[int, int], ...]) -> list[Segment]:
        heard.append(piece)
        return [Segment(0.0, 4.5, "Thank you, operator. Goodbye.")]

    found = PieceDecoder(voice, RATE, engine).regions(regions_of(voice))
    # One piece of two spans: the engine never hears a lone 1.5 s "Goodbye."
    assert heard == [((0, 2 * RATE), (122 * RATE, round(123.5 * RATE)))]
    assert [s.text for s in found] == ["Thank you, operator.", "Goodbye."]
    assert found[0].start < 0.2 and 1.8 <= found[0].end <= 2.2
    assert 121.8 <= found[1].start <= 122.0 and found[1].end <= 123.7


def test_joined_audio_shortens_long_silences_and_keeps_short_ones() -> None:
    samples = np.arange(40 * RATE, dtype=np.int16)
    piece = ((0, RATE), (RATE + 4000, 2 * RATE), (30 * RATE, 31 * RATE))
    audio = joined(samples, piece, RATE, 1.0)
    # 1 s + 0.5 s gap as it is + 0.5 s + 1 s gap (shortened) + 1 s.
    assert len(audio) == 4 * RATE
    assert audio[0] == 0 and audio[-1] == samples[31 * RATE - 1]
    assert audio[2 * RATE + RATE // 2] == samples[30 * RATE - RATE // 2]


def test_sentences_are_timed_at_the_pauses_nearest_where_they_fall() -> None:
    # Three sentences over 3 s, 2 s and 1 s of speech, with pauses of 0.4 s.
    voice = profile((3.0, LOUD), (0.4, GAP), (2.0, LOUD), (0.4, GAP), (1.0, LOUD))
    frames, gaps = voiced_gaps(voice.voiced)
    text = "Revenue grew twelve percent this year. Margin held steady. Thank you."
    timed = spread(text, frames, gaps)
    assert [t for _, _, t in timed] == [
        "Revenue grew twelve percent this year.",
        "Margin held steady.",
        "Thank you.",
    ]
    starts = [round(a * 0.02, 1) for a, _, _ in timed]
    ends = [round(b * 0.02, 1) for _, b, _ in timed]
    assert starts[0] == 0.0 and 3.0 <= ends[0] <= 3.2
    assert 3.2 <= starts[1] <= 3.4 and 5.4 <= ends[1] <= 5.6
    assert 5.6 <= starts[2] <= 5.8 and ends[2] >= 6.8


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.1, 8.0), st.floats(0.3, 30.0)), min_size=1, max_size=12),
)
def test_joined_pieces_cover_every_region_once_within_the_limit(
    parts: list[tuple[float, float]],
) -> None:
    voice = profile((0.1, SILENT), *[p for s, g in parts for p in ((s, LOUD), (g, SILENT))])
    regions = regions_of(voice)
    pieces = plan_joined(voice, regions, RATE)
    assert [span for piece in pieces for span in piece] == regions
    assert all(joined_length(piece) <= 20 * RATE or len(piece) == 1 for piece in pieces)


class Clipping:
    """An engine that reads a word whole only when it hears all of it: a word the piece's
    edge cuts comes back as a wrong word. Word k is said over 0.5 s from k / 2 s."""

    def __call__(self, piece: tuple[tuple[int, int], ...]) -> list[Segment]:
        ((a, b),) = piece
        start, end = a / RATE, b / RATE
        words = []
        for k in range(int(end * 2) + 1):
            low, high = k / 2, (k + 1) / 2
            if start <= low and high <= end:
                words.append(f"w{k}")
            elif high > start and low < end:
                words.append("uh")
        return [Segment(0.0, end - start, " ".join(words))]


def test_a_cut_inside_speech_is_read_from_both_sides_and_loses_no_word() -> None:
    # 45 s of speech without a gap: cut twice inside words, wherever the limit falls.
    voice = profile((45.0, LOUD))
    said = [f"w{k}" for k in range(90)]

    def read(config: PieceConfig) -> list[str]:
        found = PieceDecoder(voice, RATE, Clipping(), config).regions([(0, 45 * RATE)])
        return " ".join(s.text for s in found).split()

    assert "uh" in read(PieceConfig(overlap_s=0.0))  # as it was: the cut's words are lost
    assert read(PieceConfig()) == said
    planned = plan_joined(voice, [(0, 45 * RATE)], RATE)
    read_as = plan_overlaps(voice, planned, RATE)
    assert len(planned) == 3
    for (before, _), (wide_before, wide_after) in zip(
        itertools.pairwise(planned), itertools.pairwise(read_as), strict=True
    ):
        cut = before[-1][1]
        assert wide_before[-1][1] == cut + round(1.2 * RATE)
        assert wide_after[0][0] == cut - round(1.2 * RATE)


def test_pieces_that_meet_at_a_pause_are_read_as_planned() -> None:
    voice = profile(*[part for _ in range(5) for part in ((6.0, LOUD), (0.4, SILENT))])
    planned = plan_joined(voice, [(0, len(voice.levels) * FRAME)], RATE)
    assert len(planned) >= 2
    assert plan_overlaps(voice, planned, RATE) == planned


def test_a_long_run_of_words_with_no_stop_is_cut_at_its_best_pause() -> None:
    # 20 s of words, no full stop in the text; a breath (0.2 s) after the eleventh word.
    parts: list[tuple[float, float]] = []
    for index in range(40):
        parts += [(0.44, LOUD), (0.2 if index == 10 else 0.04, GAP)]
    voice = profile(*parts)
    frames, gaps = voiced_gaps(voice.voiced)
    text = " ".join(f"word{k}" for k in range(40))
    timed = spread(text, frames, gaps)
    assert all((b - a) * 0.02 <= 8.0 + 0.3 for a, b, _ in timed)
    assert " ".join(t for _, _, t in timed) == text
    assert len(timed) >= 3
    # The breath (5.24-5.44 s) is a cut; the words' own times are estimates.
    assert any(5.24 <= b * 0.02 <= 5.44 for _, b, _ in timed)
