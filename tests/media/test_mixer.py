from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from callbridge.media.mixer import FRAME_SAMPLES, SILENCE, Mixer, limit

frames16 = arrays(np.int16, FRAME_SAMPLES)


def tone(amplitude: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(FRAME_SAMPLES) / 8000
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def test_no_speakers_is_silence() -> None:
    result = Mixer().mix({})
    assert np.array_equal(result.full, SILENCE)
    assert result.minus == {}


def test_each_speaker_hears_everyone_but_themself() -> None:
    a, b, c = tone(1000, 300), tone(2000, 500), tone(3000, 700)
    result = Mixer().mix({"a": a, "b": b, "c": c})
    assert np.array_equal(result.full, a + b + c)
    assert np.array_equal(result.minus["a"], b + c)
    assert np.array_equal(result.minus["b"], a + c)
    assert np.array_equal(result.minus["c"], a + b)


def test_loud_sums_do_not_wrap() -> None:
    loud = np.full(FRAME_SAMPLES, 30000, dtype=np.int16)
    result = Mixer().mix({"a": loud, "b": loud, "c": loud})
    assert result.full.min() > 24000
    assert np.array_equal(result.minus["a"], result.minus["b"])
    assert result.minus["a"].min() > 24000


@given(st.lists(frames16, min_size=1, max_size=10))
def test_limit_keeps_sign_and_range(frames: list[np.ndarray]) -> None:
    total = np.sum(np.stack(frames).astype(np.int32), axis=0)
    out = limit(total)
    assert out.dtype == np.int16
    assert np.all(np.sign(out) == np.sign(total))
    quiet = np.abs(total) <= 24000
    assert np.array_equal(out[quiet], total[quiet])


def test_talkers_are_the_loud_ones() -> None:
    result = Mixer().mix({"loud": tone(5000), "quiet": tone(50)})
    assert result.talkers == frozenset({"loud"})
