"""The live caption core: real espeak-ng speech fed frame by frame on a clock the test controls.

The clock is the samples fed: ``LiveCaptioner`` knows no other. A test that
"decodes slowly" simply feeds more samples before calling ``decoded``.
"""

from __future__ import annotations

import io
import itertools
import json
import struct
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from callbridge.media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from callbridge.transcript.engine import available_engines
from callbridge.transcript.live import (
    SKIPPED,
    CaptionConfig,
    LiveCaptioner,
    LiveCue,
    PieceCutter,
    reads_better,
    whole_figures,
)
from callbridge.transcript.transcribe import written
from callbridge.transcript.vad import speech_regions
from callbridge.transcript.wer import word_error_rate
from callbridge.webcast.caption_worker import CHUNK_HEADER, load_engine, run
from callbridge.webcast.captions import CaptionFiles, read_transcript
from callbridge.webcast.subtitles import SubtitleConfig
from tests.transcript.speech import needs_espeak, speak

RATE = SAMPLE_RATE  # the live mix's
FRAME = FRAME_SAMPLES

pytestmark = needs_espeak

FIRST = "Good morning, and welcome to our third quarter earnings call."
SECOND = "Operating margin improved to eighteen percent."


def said(text: str) -> npt.NDArray[np.int16]:
    """``text`` spoken, without espeak-ng's own silence before and after it."""
    samples = speak(text, rate=SAMPLE_RATE)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)
    return samples[loud[0] : loud[-1] + 1]


def silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(round(seconds * RATE), np.int16)


def call(*parts: npt.NDArray[np.int16] | float) -> npt.NDArray[np.int16]:
    """Speech and pauses (seconds) back to back, as the mix carries them."""
    return np.concatenate([silence(p) if isinstance(p, float) else p for p in parts])


def feed(captioner: LiveCaptioner, samples: npt.NDArray[np.int16], start: int = 0) -> None:
    for offset in range(0, len(samples), FRAME):
        captioner.feed(start + offset, samples[offset : offset + FRAME])


def test_pieces_end_at_pauses_and_cover_all_speech() -> None:
    first, second = said(FIRST), said(SECOND)
    mix = call(1.0, first, 1.5, second, 1.0)
    captioner = LiveCaptioner()
    feed(captioner, mix)
    pieces = list(captioner.pending)
    # Every stretch of speech the offline detector finds lies inside a piece: nothing dropped.
    for start, end in speech_regions(mix, RATE):
        covered = sum(max(0, min(end, p.end) - max(start, p.start)) for p in pieces)
        assert covered >= 0.9 * (end - start), (start, end, pieces)
    # The pause between the sentences is a cut: no piece spans it.
    gap_start, gap_end = RATE + len(first), RATE + len(first) + round(1.5 * RATE)
    assert not any(p.start < gap_start + RATE // 4 and p.end > gap_end - RATE // 4 for p in pieces)
    # Pieces are the samples of the mix at their place on the clock.
    for piece in pieces:
        assert np.array_equal(piece.samples, mix[piece.start : piece.end])
        assert piece.end - piece.start <= CaptionConfig().longest_s * RATE + FRAME


def test_a_piece_is_out_as_soon_as_the_pause_is_heard() -> None:
    first = said(FIRST)
    config = CaptionConfig()
    captioner = LiveCaptioner(config)
    feed(captioner, call(0.5, first))
    speech_end = round(0.5 * RATE) + len(first)
    # Long speech was already cut into pieces; the rest waits for the pause.
    waiting = list(captioner.pending)
    feed(captioner, silence(config.pause_s + 0.1), start=speech_end)
    assert len(captioner.pending) > len(waiting)
    assert captioner.pending[-1].end <= speech_end + round((config.pad_s + 0.1) * RATE)
    # The horizon: nothing to come starts before the oldest piece not yet captioned.
    assert captioner.horizon() == captioner.pending[0].start


def test_long_speech_is_cut_within_the_longest_piece() -> None:
    long = np.concatenate([said(FIRST), said(SECOND)])  # no pause worth the name between
    config = CaptionConfig(longest_s=3.0, pause_s=0.6)
    captioner = LiveCaptioner(config)
    feed(captioner, call(0.5, long, 1.0))
    lengths = [(p.end - p.start) / RATE for p in captioner.pending]
    assert len(lengths) >= 3, lengths
    assert max(lengths) <= 3.0 + 0.02, lengths
    # Consecutive pieces of one stretch of speech meet exactly: no sample is lost.
    pieces = list(captioner.pending)
    joined = [(a.end, b.start) for a, b in itertools.pairwise(pieces) if b.start - a.end < RATE]
    assert all(a == b for a, b in joined), joined


def test_times_are_on_the_packagers_clock_from_the_first_offset() -> None:
    # The worker may start mid-call (a restart): offsets are the packager's, not from zero.
    first = said(FIRST)
    start = 123 * RATE
    captioner = LiveCaptioner(first=start)
    feed(captioner, call(0.5, first, 1.0), start=start)
    piece = captioner.next_piece()
    assert piece is not None
    assert start + 0.3 * RATE <= piece.start <= start + 0.5 * RATE
    captioner.decoded("good morning")
    cue = captioner.take_cues()[0]
    assert (cue.start, cue.end) == (piece.start, piece.end)
    assert cue.ready == captioner.fed == start + round(0.5 * RATE) + len(first) + RATE


def test_a_gap_in_the_feed_closes_the_speech_in_progress() -> None:
    first = said(FIRST)
    cutter = PieceCutter()
    half = len(first) // 2 // FRAME * FRAME
    pieces = []
    for offset in range(0, half, FRAME):
        pieces += cutter.feed(offset, first[offset : offset + FRAME])
    # Chunks went missing (the feed dropped them): what was heard is captioned, not joined.
    after = cutter.feed(half + 5 * RATE, silence(0.02))
    assert after and after[-1].end <= half


def test_a_worker_too_far_behind_skips_ahead_and_says_so() -> None:
    first, second = said(FIRST), said(SECOND)
    config = CaptionConfig(max_behind_s=3.0)
    captioner = LiveCaptioner(config)
    feed(captioner, call(0.5, first, 1.0, second, 1.0))
    assert len(captioner.pending) >= 2
    # The engine was busy for 10 s: every piece that ended over 3 s ago is dropped at once.
    fed = captioner.fed
    feed(captioner, silence(10.0), start=fed)
    assert captioner.next_piece() is None
    cues = captioner.take_cues()
    assert [c.text for c in cues] == [SKIPPED]
    assert cues[0].start == 0 or cues[0].start < RATE
    assert captioner.skips == 1 and captioner.skipped_pieces >= 2
    # Captions resume with the next speech.
    feed(captioner, call(first, 1.0), start=captioner.fed)
    piece = captioner.next_piece()
    pad = round(CaptionConfig().pad_s * RATE)
    assert piece is not None and piece.start >= fed + 10 * RATE - pad - FRAME


def test_a_piece_within_the_bound_is_still_decoded() -> None:
    first = said(FIRST)
    captioner = LiveCaptioner(CaptionConfig(max_behind_s=8.0))
    feed(captioner, call(0.5, first, 1.0))
    feed(captioner, silence(3.0), start=captioner.fed)
    piece = captioner.next_piece()
    assert piece is not None
    captioner.decoded("")  # no text: no cue
    assert captioner.take_cues() == []


@pytest.mark.skipif("moonshine" not in available_engines(), reason="needs Moonshine")
def test_the_worker_captions_a_stream_with_figures_and_glossary() -> None:
    text = "Good morning, and welcome to our call. Sales were forty two million dollars."
    mix = call(0.5, said(text), 1.0)
    stream = io.BytesIO()
    for offset in range(0, len(mix), FRAME):
        chunk = mix[offset : offset + FRAME]
        stream.write(CHUNK_HEADER.pack(1000 + offset, len(chunk)) + chunk.astype("<i2").tobytes())
    stream.seek(0)
    out = io.StringIO()
    # A glossary term is written as the glossary writes it, wherever the engine put it.
    assert run(stream, out, glossary=["WELCOME"]) == 0
    messages = [json.loads(line) for line in out.getvalue().splitlines()]
    cues = [m["cue"] for m in messages if "cue" in m]
    words = " ".join(c["text"] for c in cues)
    assert "$42 million" in words, words
    assert "WELCOME" in words, words
    assert word_error_rate(text, words, numbers=True) < 0.5, words
    assert all(c["start"] >= 1000 for c in cues)
    horizons = [m["horizon"] for m in messages if "horizon" in m]
    assert horizons == sorted(horizons) and horizons[-1] == 1000 + len(mix)


def test_the_worker_stops_at_a_broken_stream() -> None:
    stream = io.BytesIO(struct.pack("<qI", 0, 10**9))
    out = io.StringIO()
    assert run(stream, out, engine_name="no-such-engine") == 0
    assert "error" in out.getvalue()


def test_a_short_piece_is_read_with_the_one_waiting_after_it() -> None:
    short, rest = said("Twelve percent."), said(SECOND)
    captioner = LiveCaptioner()
    feed(captioner, call(0.5, short, 0.5, rest, 1.0))
    assert len(captioner.pending) == 2  # the worker was busy: both wait
    piece = captioner.next_piece()
    assert piece is not None and not captioner.pending
    assert piece.start <= 0.5 * RATE and piece.end >= RATE + len(short) + len(rest)


def test_a_short_piece_that_gave_no_text_is_read_again_with_the_next() -> None:
    short, rest = said("Twelve percent."), said(SECOND)
    captioner = LiveCaptioner()
    feed(captioner, call(0.5, short, 0.5))
    piece = captioner.next_piece()
    assert piece is not None and piece.end - piece.start < 2 * RATE
    captioner.decoded("")  # the engine heard nothing in it alone
    # Until the next speech is read, a cue may still come for it.
    assert captioner.horizon() <= piece.start
    at = round(1.0 * RATE) + len(short)
    feed(captioner, call(rest, 1.0), start=at)
    again = captioner.next_piece()
    assert again is not None and again.start == piece.start and again.end > at + len(rest) - RATE
    captioner.decoded("Twelve percent. Operating margin improved to 18%.")
    (cue,) = captioner.take_cues()
    assert cue.start == piece.start and cue.text.startswith("Twelve percent.")


def test_a_short_piece_without_text_is_let_go_when_no_speech_follows() -> None:
    captioner = LiveCaptioner()
    feed(captioner, call(0.5, said("Twelve percent."), 0.5))
    assert captioner.next_piece() is not None
    captioner.decoded("")
    feed(captioner, silence(5.0), start=captioner.fed)
    # The horizon moves on by itself (subtitles stay live), and so does the worker.
    assert captioner.horizon() > 4 * RATE
    assert captioner.next_piece() is None and captioner.take_cues() == []


def test_a_short_piece_without_text_is_let_go_when_the_mix_ends() -> None:
    captioner = LiveCaptioner()
    feed(captioner, call(0.5, said("Twelve percent."), 0.5))
    assert captioner.next_piece() is not None
    captioner.decoded("")
    captioner.flush()
    assert captioner.next_piece() is None
    assert captioner.horizon() == captioner.fed - round(CaptionConfig().pad_s * RATE)


# -- partial cues that settle --

HEAD = "Revenue for the third quarter grew to forty two"  # 2.8 s: short, read alone
TAIL = "million dollars, up twelve percent."


def test_a_joined_reading_wins_where_it_reads_the_stretch_better() -> None:
    config = CaptionConfig()
    # A figure whole where the short readings split it ("dollars" is in the "$").
    assert reads_better(
        ["Revenue grew to 42.", "million dollars."], "Revenue grew to $42 million.", 4.0, config
    )
    # Words the short reading lost.
    assert reads_better(
        ["Revenue grew.", "dollars."], "Revenue grew to $42 million dollars.", 4.0, config
    )
    # As many words, some read differently with the speech around them.
    assert reads_better(["Revenue grew too", "fast."], "Revenue grew so fast.", 3.0, config)
    # Never: the same words (punctuation and case are no reason to churn), words lost,
    # a figure lost, nothing, or more words a second than anyone speaks.
    assert not reads_better(["Good morning.", "Welcome."], "Good morning, welcome.", 3.0, config)
    assert not reads_better(
        ["Revenue grew to 42.", "million dollars."], "Revenue grew.", 4.0, config
    )
    assert not reads_better(["Revenue grew 12%."], "Revenue grew twelve and.", 3.0, config)
    assert not reads_better(["Revenue grew."], "", 3.0, config)
    assert not reads_better(["Thank you."], "Thank you. " * 10, 2.0, config)
    assert whole_figures("$42 million, 12%, 30 basis points and 42 alone") == 3


def _first_readings(
    captioner: LiveCaptioner, head_text: str = "Revenue for the third quarter grew to 42."
) -> tuple[LiveCue, LiveCue]:
    """HEAD, then TAIL after a short pause, each read alone as soon as it is cut."""
    head, tail = said(HEAD), said(TAIL)
    feed(captioner, call(0.5, head, 0.4))
    piece = captioner.next_piece()
    assert piece is not None and not captioner.settling
    captioner.decoded(head_text, "Mark Chen")
    (first,) = captioner.take_cues()
    feed(captioner, call(tail, 1.0), start=captioner.fed)
    piece = captioner.next_piece()
    assert piece is not None and not captioner.settling  # the new piece's first reading
    captioner.decoded("million dollars, up 12%.", "Mark Chen")
    (second,) = captioner.take_cues()
    return first, second


def test_a_short_piece_is_read_again_with_the_next_and_its_cue_settles() -> None:
    captioner = LiveCaptioner()
    first, second = _first_readings(captioner)
    assert (first.number, second.number) == (0, 1) and not first.revises
    # The engine is free: the two are read again as one.
    horizon = captioner.horizon()
    again = captioner.next_piece()
    assert again is not None and captioner.settling
    assert (again.start, again.end) == (first.start, second.end)
    assert not captioner.idle
    # A re-reading holds no subtitle segment back: its cues are out.
    assert captioner.horizon() == horizon
    captioner.decoded("Revenue for the third quarter grew to $42 million, up 12%.", "Mark Chen")
    (revision,) = captioner.take_cues()
    assert revision.revises == (0, 1) and revision.number == 2
    assert (revision.start, revision.end) == (first.start, second.end)
    assert revision.speaker == "Mark Chen" and "$42 million" in revision.text
    assert captioner.idle and captioner.next_piece() is None


def test_a_joined_reading_no_better_revises_nothing() -> None:
    captioner = LiveCaptioner()
    _first_readings(captioner)
    assert captioner.next_piece() is not None and captioner.settling
    captioner.decoded(
        "Revenue for the third quarter grew to 42. Million dollars, up 12%.", "Mark Chen"
    )
    assert captioner.take_cues() == []


def test_a_re_reading_waits_while_a_new_piece_does() -> None:
    captioner = LiveCaptioner()
    first, second = _first_readings(captioner)
    # More speech was cut while the engine read TAIL: its first reading comes first.
    feed(captioner, call(said(SECOND), 1.0), start=captioner.fed)
    piece = captioner.next_piece()
    assert piece is not None and not captioner.settling and piece.start > second.end
    captioner.decoded("Operating margin improved to 18%.", "Mark Chen")
    (third,) = captioner.take_cues()
    # Then the three are read again together: the re-reading of the first two had not
    # had its turn (TAIL was short, and within the pause).
    again = captioner.next_piece()
    assert again is not None and captioner.settling
    assert (again.start, again.end) == (first.start, third.end)
    assert again.end - again.start <= CaptionConfig().settle_longest_s * RATE
    captioner.decoded("Revenue for the third quarter grew to 42.", "Mark Chen")
    # Not better (words lost): nothing revised, nothing read again.
    assert captioner.take_cues() == [] and captioner.next_piece() is None


def test_a_settled_reading_stands_for_its_cues_with_the_next() -> None:
    captioner = LiveCaptioner()
    first, second = _first_readings(captioner)
    assert captioner.next_piece() is not None
    captioner.decoded("Revenue for the third quarter grew to $42 million, up 12%.", "Mark Chen")
    (revision,) = captioner.take_cues()
    assert revision.revises == (first.number, second.number)
    feed(captioner, call(said("Thank you."), 1.0), start=captioner.fed)
    piece = captioner.next_piece()
    assert piece is not None and not captioner.settling
    captioner.decoded("Thank you.", "Mark Chen")
    (thanks,) = captioner.take_cues()
    # The short "Thank you." is read again with the settled stretch before it, once.
    again = captioner.next_piece()
    assert again is not None and (again.start, again.end) == (first.start, thanks.end)
    captioner.decoded(
        "Revenue for the third quarter grew to $42 million, up 12%. Thank you.", "Mark Chen"
    )
    assert captioner.take_cues() == []  # the same words: nothing to revise


def test_cues_of_another_speaker_or_after_a_long_pause_do_not_settle_together() -> None:
    captioner = LiveCaptioner()
    feed(captioner, call(0.5, said(HEAD), 0.4))
    assert captioner.next_piece() is not None
    captioner.decoded("Revenue for the third quarter grew to 42.", "Mark Chen")
    feed(captioner, call(said(TAIL), 1.0), start=captioner.fed)
    assert captioner.next_piece() is not None
    captioner.decoded("million dollars, up 12%.", "Operator")
    assert captioner.next_piece() is None and captioner.idle
    # The same speaker again, but after a pause longer than ``settle_gap_s``.
    feed(captioner, call(2.0, said(HEAD), 1.0), start=captioner.fed)
    assert captioner.next_piece() is not None
    captioner.decoded("Revenue for the third quarter grew to 42.", "Operator")
    assert captioner.next_piece() is None and captioner.idle


def test_a_re_reading_too_far_behind_the_live_edge_is_let_go() -> None:
    captioner = LiveCaptioner(CaptionConfig(max_behind_s=3.0))
    _first_readings(captioner)
    assert not captioner.idle
    feed(captioner, silence(4.0), start=captioner.fed)
    assert captioner.next_piece() is None and captioner.idle
    assert captioner.take_cues() == []


@pytest.mark.skipif("moonshine" not in available_engines(), reason="needs Moonshine")
def test_a_figure_split_across_two_short_pieces_settles_whole_in_the_live_transcript(
    tmp_path: Path,
) -> None:
    """A pause in "forty two | million dollars": each piece is read alone as soon as it is
    cut, the figure in two; read again together, the live transcript gets it whole."""
    engine = load_engine(None, threads=1)
    live = tmp_path / "webcast" / "live"
    live.mkdir(parents=True)
    files = CaptionFiles(live, SubtitleConfig(), datetime(2026, 11, 29, 12, tzinfo=UTC), 0, 0.0)
    captioner = LiveCaptioner()

    def read_next() -> None:
        piece = captioner.next_piece()
        assert piece is not None
        text = " ".join(s.text for s in engine.transcribe(piece.samples, RATE))
        captioner.decoded(written(text) if text.strip() else "", "Speaker")
        for cue in captioner.take_cues():
            files.add(cue)

    feed(captioner, call(0.5, said(HEAD), 0.4))
    read_next()
    feed(captioner, call(said(TAIL), 1.0), start=captioner.fed)
    read_next()
    firsts = read_transcript(live.parent)
    assert [c["revises"] for c in firsts] == [None, None], firsts
    assert "$42 million" not in " ".join(c["text"] for c in firsts), firsts
    read_next()  # the engine is free: the two read again as one
    *_, settled = read_transcript(live.parent)
    assert settled["revises"] == [0, 1], settled
    assert "$42 million" in settled["text"], settled
    # And it reads the stretch better than the two readings it replaces, word for word.
    said_text = f"{HEAD} {TAIL}"
    first_text = " ".join(c["text"] for c in firsts)
    wer_first = word_error_rate(said_text, first_text, numbers=True)
    wer_settled = word_error_rate(said_text, settled["text"], numbers=True)
    assert wer_settled < wer_first, (firsts, settled)


def test_a_re_reading_longer_than_the_budget_at_the_engines_pace_is_let_go() -> None:
    captioner = LiveCaptioner(CaptionConfig(settle_budget_s=1.0))
    head, tail = said(HEAD), said(TAIL)
    feed(captioner, call(0.5, head, 0.4))
    piece = captioner.next_piece()
    assert piece is not None
    # The engine took as long as the piece is (a loaded machine): 1 s of mix a second.
    feed(captioner, silence((piece.end - piece.start) / RATE), start=captioner.fed)
    captioner.decoded("Revenue for the third quarter grew to 42.", "Mark Chen")
    feed(captioner, call(tail, 1.0), start=captioner.fed)
    piece = captioner.next_piece()
    assert piece is not None
    feed(captioner, silence((piece.end - piece.start) / RATE), start=captioner.fed)
    captioner.decoded("million dollars, up 12%.", "Mark Chen")
    assert captioner.pace is not None and captioner.pace > 0.9
    # Reading the two again would keep it over 4 s: new speech would wait that long.
    assert captioner.next_piece() is None and captioner.idle
