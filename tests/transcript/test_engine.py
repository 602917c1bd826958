"""Moonshine's readings: one per piece, or with ``careful`` the surer of two for unsure ones."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from callbridge.transcript.engine import ENGINE_RATE, MoonshineEngine, available_engines, get_engine
from tests.transcript.speech import needs_espeak, speak, through_phone

needs_moonshine = pytest.mark.skipif(
    "moonshine" not in available_engines(), reason="moonshine-cpp and onnxruntime not installed"
)


class ReadingsByPadding(MoonshineEngine):
    """Moonshine's choice among readings, with the readings given (no model loaded)."""

    def __init__(self, readings: dict[float, tuple[str, float]], pads_s: tuple[float, ...]) -> None:
        self.readings = readings
        self.pads_s = pads_s
        self.asked: list[float] = []

    def _greedy(self, audio: npt.NDArray[np.float32], pad_s: float) -> tuple[str, float]:
        self.asked.append(pad_s)
        return self.readings[pad_s]


def test_an_unsure_reading_is_read_again_and_the_surer_kept() -> None:
    readings = {
        0.5: ("for fiscal flinty blounty seven", -0.24),
        1.0: ("for fiscal twenty twenty seven", -0.15),
    }
    audio = np.zeros(ENGINE_RATE, dtype=np.float32)
    careful = ReadingsByPadding(readings, (0.5, 1.0))
    assert careful.decode(audio) == "for fiscal twenty twenty seven"
    assert careful.asked == [0.5, 1.0]
    once = ReadingsByPadding(readings, (0.5,))
    assert once.decode(audio) == "for fiscal flinty blounty seven"
    assert once.asked == [0.5]


def test_a_sure_reading_is_not_read_again() -> None:
    readings = {
        0.5: ("for fiscal twenty twenty seven", -0.05),
        1.0: ("for fiscal twenty twenty", -0.01),
    }
    careful = ReadingsByPadding(readings, (0.5, 1.0))
    assert careful.decode(np.zeros(ENGINE_RATE, dtype=np.float32)) == readings[0.5][0]
    assert careful.asked == [0.5]


def test_of_two_unsure_readings_the_surer_is_kept() -> None:
    readings = {0.5: ("eight hundred seventy", -0.12), 1.0: ("eight hundred seventeen", -0.3)}
    careful = ReadingsByPadding(readings, (0.5, 1.0))
    assert careful.decode(np.zeros(ENGINE_RATE, dtype=np.float32)) == "eight hundred seventy"
    assert careful.asked == [0.5, 1.0]


@needs_moonshine
@needs_espeak
def test_careful_engines_read_unsure_pieces_twice_and_others_once() -> None:
    careful = get_engine("moonshine", careful=True)
    assert isinstance(careful, MoonshineEngine)
    assert careful.pads_s == MoonshineEngine.CAREFUL_PADS_S
    live = get_engine("moonshine")
    assert isinstance(live, MoonshineEngine)
    assert live.pads_s == (MoonshineEngine.PAD_S,)
    said = through_phone(speak("Good afternoon everyone, and welcome to the call."))
    for engine in (careful, live):
        text = " ".join(s.text for s in engine.transcribe(said, 8000)).lower()
        assert "welcome to the call" in text, text
