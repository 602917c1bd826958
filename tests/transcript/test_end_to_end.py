"""The real engines on a two-speaker recording of espeak-ng speech (8 kHz, like a call)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.transcript.engine import PocketSphinxEngine, apply_glossary, available_engines
from callbridge.transcript.model import search
from callbridge.transcript.transcribe import CAPTIONS, transcribe_recording
from callbridge.transcript.vtt import parse_vtt
from callbridge.transcript.wer import word_error_rate
from tests.transcript.speech import Line, build_recording, needs_espeak

SCRIPT = [
    Line("host", 0.5, "Good morning and welcome to the Northwind third quarter earnings call."),
    Line("cfo", 6.0, "Thank you. Our subscriber numbers rose again this quarter."),
    Line("host", 11.0, "Our cloud platform now serves two thousand customers."),
    Line("cfo", 16.0, "We expect margins to improve next year, and we will now take questions."),
]
NAMES: dict[str, str | None] = {"host": None, "cfo": "Jane Roe"}
# Moonshine base measured 0.17 on this script; espeak at 8 kHz is hard for any model.
MOONSHINE_WER_BOUND = 0.3

needs_moonshine = pytest.mark.skipif(
    "moonshine" not in available_engines(), reason="moonshine-cpp and onnxruntime not installed"
)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("earnings")
    build_recording(directory, SCRIPT, NAMES)
    return directory


@needs_espeak
@needs_moonshine
def test_moonshine_transcript(recording: Path) -> None:
    transcript = transcribe_recording(recording, glossary=["NorthWind"])
    assert transcript.engine == "moonshine"
    for line in SCRIPT:
        said = [s for s in transcript.segments if line.at - 0.5 <= s.start <= line.at + 0.5]
        assert len(said) == 1, (line, transcript.segments)
        expected = NAMES[line.participant] or "Speaker 1"
        assert said[0].speaker == expected
        line_wer = word_error_rate(line.text, said[0].text, numbers=True)
        print(f"{line_wer:.2f}  {said[0].text!r}")
    reference = " ".join(line.text for line in SCRIPT)
    wer = word_error_rate(reference, transcript.text, numbers=True)
    print(f"moonshine WER {wer:.3f}, real-time factor {transcript.real_time_factor:.3f}")
    assert wer < MOONSHINE_WER_BOUND
    assert transcript.real_time_factor < 1.0
    # The glossary writes the term its way; search finds it whatever the case.
    assert "NorthWind" in transcript.text
    assert [hit.segment for hit in search(transcript, "northwind")] == [0]
    cues = parse_vtt((recording / CAPTIONS).read_text())
    assert {cue.voice for cue in cues} == {"Speaker 1", "Jane Roe"}


@needs_espeak
def test_pocketsphinx_runs_as_the_floor(tmp_path: Path) -> None:
    build_recording(tmp_path, SCRIPT[:2], NAMES)
    transcript = transcribe_recording(tmp_path, engine="pocketsphinx")
    reference = " ".join(line.text for line in SCRIPT[:2])
    wer = word_error_rate(reference, transcript.text, numbers=True)
    print(f"pocketsphinx WER {wer:.3f}, real-time factor {transcript.real_time_factor:.3f}")
    assert transcript.engine == "pocketsphinx"
    assert {s.speaker for s in transcript.segments} <= {"Speaker 1", "Jane Roe"}
    assert transcript.segments and wer < 1.5  # it hears speech; most words are wrong


def test_glossary_terms_are_written_as_given() -> None:
    glossary = ["ARPU", "T-DM1", "DM1", "NorthWind"]
    text = "arpu rose, t dm1 and TDM1 and T.D.M.1 sold; northwind and dm1 too. Harpu stays."
    assert apply_glossary(text, glossary) == (
        "ARPU rose, T-DM1 and T-DM1 and T-DM1 sold; NorthWind and DM1 too. Harpu stays."
    )


def test_pocketsphinx_learns_glossary_words() -> None:
    engine = PocketSphinxEngine()
    decoder = engine._decoder
    assert decoder.lookup_word("arpu") is None
    engine._add_glossary(["ARPU", "T-DM1"])
    assert decoder.lookup_word("arpu") == "EY AA R P IY Y UW"
    assert decoder.lookup_word("dm1") == "D IY EH M W AH N"
