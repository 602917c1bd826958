"""Transcribing a recording directory, with a fake engine: labels, merging, files, progress."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from callbridge.transcript.cli import ProgressBar, run
from callbridge.transcript.engine import Segment
from callbridge.transcript.model import Transcript, TranscriptSegment
from callbridge.transcript.transcribe import (
    CAPTIONS,
    TRANSCRIPT,
    TranscriptError,
    caption_cues,
    load_transcript,
    transcribe_recording,
    whole_figures,
    written,
)
from callbridge.transcript.vad import Samples, speech_regions, to_float
from callbridge.transcript.vtt import parse_vtt
from tests.transcript.speech import Line, build_recording, needs_espeak


class FakeEngine:
    """Says how long each piece of audio it is given is, so tests can check where it came from."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[float] = []

    def transcribe(
        self,
        samples: Samples,
        sample_rate: int,
        glossary: Sequence[str] = (),
        progress: Callable[[float], None] | None = None,
    ) -> list[Segment]:
        seconds = len(samples) / sample_rate
        self.calls.append(seconds)
        if progress is not None:
            progress(0.5)
            progress(1.0)
        return [Segment(0.0, seconds, f"piece {len(self.calls)}")]


LINES = [
    Line("bob", 1.0, "Thank you operator."),
    Line("carol", 3.5, "Good morning everyone."),
    Line("dave", 6.0, "Next question please."),
    Line("bob", 8.5, "Goodbye."),
]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("call")
    build_recording(directory, LINES, {"dave": "Dave Chief", "carol": None, "bob": None})
    return directory


def test_vad_finds_speech_and_skips_silence() -> None:
    rate = 8000
    rng = np.random.default_rng(1)
    audio = (rng.normal(0, 30, rate * 6)).astype(np.int16)  # faint line noise
    tone = (8000 * np.sin(np.arange(rate) * 2 * np.pi * 300 / rate)).astype(np.int16)
    audio[rate : 2 * rate] += tone
    audio[4 * rate : 5 * rate] += tone
    regions = speech_regions(audio, rate)
    assert len(regions) == 2
    for (start, end), expected in zip(regions, (1.0, 4.0), strict=True):
        assert abs(start / rate - (expected - 0.15)) < 0.05
        assert abs(end / rate - (expected + 1.15)) < 0.05
    assert speech_regions(np.zeros(rate, dtype=np.int16), rate) == []
    assert to_float(np.array([-32768], dtype=np.int16))[0] == -1.0


@needs_espeak
def test_speakers_are_labelled_and_merged_by_time(recording: Path) -> None:
    engine = FakeEngine()
    seen: list[float] = []
    transcript = transcribe_recording(recording, engine=engine, progress=seen.append)
    speakers = [segment.speaker for segment in transcript.segments]
    # bob spoke first: Speaker 1; carol next: Speaker 2; dave has a display name.
    assert speakers == ["Speaker 1", "Speaker 2", "Dave Chief", "Speaker 1"]
    starts = [segment.start for segment in transcript.segments]
    for start, line in zip(starts, LINES, strict=True):
        assert line.at - 0.3 <= start <= line.at + 0.1
    # The engine heard speech only, never the silence between lines: bob's two lines,
    # 7 s apart, in one piece with a second of silence between them (never a lone
    # short piece), yet his segments stay where he said them.
    assert len(engine.calls) == 3 and sum(engine.calls) < 8.0
    assert seen == sorted(seen) and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    assert transcript.engine == "fake" and transcript.duration_s > 9.0


@needs_espeak
def test_names_given_by_the_caller_win(recording: Path) -> None:
    transcript = transcribe_recording(
        recording,
        engine=FakeEngine(),
        # By participant id, or by stem name (stems are numbered as speakers were annotated).
        speaker_names={"carol": "Carol CFO", "s003": "Bob CEO", "dave": "David"},
    )
    speakers = [segment.speaker for segment in transcript.segments]
    assert speakers == ["Bob CEO", "Carol CFO", "David", "Bob CEO"]


@needs_espeak
def test_files_are_written_and_load_back(recording: Path) -> None:
    transcript = transcribe_recording(recording, engine=FakeEngine())
    data = json.loads((recording / TRANSCRIPT).read_text())
    assert data["engine"] == "fake" and data["real_time_factor"] >= 0
    assert [s["speaker"] for s in data["segments"]][:2] == ["Speaker 1", "Speaker 2"]
    assert load_transcript(recording) == Transcript.from_json(data)
    assert load_transcript(recording).segments == transcript.segments  # type: ignore[union-attr]
    cues = parse_vtt((recording / CAPTIONS).read_text())
    assert [cue.voice for cue in cues] == [s.speaker for s in transcript.segments]
    assert not list(recording.glob(".*.tmp"))
    text = (recording / "transcript.txt").read_text()
    assert text.startswith("Transcript\n") and "[0:00] Speaker 1\npiece" in text
    assert "] Dave Chief\npiece " in text
    assert "Dave Chief" in (recording / "transcript.html").read_text()


@needs_espeak
def test_without_stems_the_mix_is_transcribed(tmp_path: Path) -> None:
    build_recording(tmp_path, LINES[:2], {}, stems=False)
    transcript = transcribe_recording(tmp_path, engine=FakeEngine())
    assert len(transcript.segments) == 2
    assert {segment.speaker for segment in transcript.segments} == {None}
    assert "<v " not in (tmp_path / CAPTIONS).read_text()


def test_nothing_to_transcribe(tmp_path: Path) -> None:
    with pytest.raises(TranscriptError):
        transcribe_recording(tmp_path, engine=FakeEngine())
    assert load_transcript(tmp_path) is None
    (tmp_path / TRANSCRIPT).write_text("{not json")
    assert load_transcript(tmp_path) is None


def test_long_segments_become_short_cues() -> None:
    words = " ".join(f"word{i}" for i in range(60))
    transcript = Transcript([TranscriptSegment(10.0, 40.0, "A", words)], "fake", 40.0, 1.0)
    cues = caption_cues(transcript)
    assert len(cues) > 4
    assert " ".join(cue.text for cue in cues) == words
    for cue in cues:
        assert cue.end - cue.start <= 7.0 + 1e-6 and len(cue.text) <= 84
        assert cue.voice == "A"
    assert cues[0].start == 10.0 and cues[-1].end == pytest.approx(40.0)
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(cues))


def test_cli_reports_a_directory_without_audio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "pocketsphinx", []) == 1
    assert "no recording.wav and no stems" in capsys.readouterr().err


def test_progress_bar_redraws_in_place() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream)
    for fraction in (0.0, 0.5, 1.0):
        bar(fraction)
    bar.close()
    drawn = stream.getvalue()
    assert drawn.startswith("\rtranscribing [") and drawn.endswith("100.0%\n")
    assert "\n" not in drawn[:-1]


def test_a_figure_the_engine_gave_in_pieces_is_one_segment() -> None:
    """ "Six hundred." "Seventy seven." "Million dollars.": one figure, one segment."""
    parts = [
        Segment(0.0, 0.6, "Six hundred."),
        Segment(0.7, 1.3, "Seventy seven."),
        Segment(1.35, 2.0, "Million dollars."),
        Segment(2.6, 3.5, "Up twelve percent."),
        Segment(6.0, 6.5, "Million dollars."),  # too far after: another thing said
    ]
    joined = whole_figures(parts)
    assert joined == [
        Segment(0.0, 2.0, "Six hundred Seventy seven Million dollars."),
        Segment(2.6, 3.5, "Up twelve percent."),
        Segment(6.0, 6.5, "Million dollars."),
    ]


def test_a_figure_split_between_long_segments_moves_to_the_second() -> None:
    parts = [
        Segment(
            0.0, 6.0, "Operating expenses were ninety four million and net loss was thirty one"
        ),
        Segment(6.0, 12.0, "cents and we ended the quarter with cash of four hundred million"),
    ]
    first, second = whole_figures(parts)
    assert first.text == "Operating expenses were ninety four million and net loss was"
    assert (
        second.text == "thirty one cents and we ended the quarter with cash of four hundred million"
    )
    assert first.start == 0.0 and second.end == 12.0
    assert 5.0 < first.end == second.start < 6.0
    assert written(second.text).startswith("$0.31 and we ended")
