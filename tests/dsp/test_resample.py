from __future__ import annotations

import numpy as np
import pytest

from callbridge.dsp.resample import Resampler, resample


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 10_000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def by_frames(resampler: Resampler, signal: np.ndarray, rate: int) -> np.ndarray:
    step = rate // 50
    return np.concatenate(
        [resampler.process(signal[i : i + step]) for i in range(0, len(signal), step)]
    )


def level_at(signal: np.ndarray, rate: int, freq: float) -> float:
    """Amplitude of the ``freq`` component (Hann-windowed, so leakage stays local)."""
    window = np.hanning(len(signal))
    spectrum = np.abs(np.fft.rfft(signal * window)) * 2 / window.sum()
    bin_ = round(freq * len(signal) / rate)
    return float(spectrum[max(bin_ - 2, 0) : bin_ + 3].max())


@pytest.mark.parametrize(
    ("rate_in", "rate_out", "freq"),
    [(8000, 16_000, 1000), (8000, 16_000, 3400), (16_000, 8000, 1000), (48_000, 16_000, 6000)],
)
def test_a_tone_in_the_passband_keeps_its_pitch_and_level(
    rate_in: int, rate_out: int, freq: float
) -> None:
    out = by_frames(Resampler(rate_in, rate_out), tone(freq, rate_in), rate_in)
    assert len(out) == rate_out
    steady = out[rate_out // 4 :]
    assert level_at(steady, rate_out, freq) == pytest.approx(10_000, rel=0.05)


def test_frames_join_without_a_click() -> None:
    # Frame by frame equals the whole signal at once: the history carries across edges.
    signal = tone(1000, 8000)
    whole = Resampler(8000, 16_000).process(signal)
    framed = by_frames(Resampler(8000, 16_000), signal, 8000)
    assert np.abs(whole.astype(int) - framed.astype(int)).max() <= 1


def test_downsampling_removes_what_8_khz_cannot_hold() -> None:
    # 6 kHz at 16 kHz would fold to 2 kHz at 8 kHz: the filter takes it out instead.
    out = by_frames(Resampler(16_000, 8000), tone(6000, 16_000), 16_000)[2000:]
    assert level_at(out, 8000, 2000) < 10  # over 60 dB down


def test_upsampling_leaves_no_image_above_4_khz() -> None:
    out = by_frames(Resampler(8000, 16_000), tone(1000, 8000), 8000)[4000:]
    assert level_at(out, 16_000, 7000) < 10


def test_48_to_16_khz_in_frames_of_960() -> None:
    resampler = Resampler(48_000, 16_000)
    assert len(resampler.process(np.zeros(960, np.int16))) == 320


def test_rates_that_are_not_an_integer_ratio_are_refused() -> None:
    with pytest.raises(ValueError, match="integer ratio"):
        Resampler(44_100, 16_000)
    with pytest.raises(ValueError, match="equal"):
        resample(np.zeros(160, np.int16), 8000, 8000)


def test_loud_input_is_clipped_not_wrapped() -> None:
    square = np.tile(np.array([32767] * 10 + [-32768] * 10, np.int16), 8)
    out = Resampler(8000, 16_000).process(square)
    # Overshoot (Gibbs) saturates at the rails; a wrap would flip the sign mid-run.
    assert out.max() == 32767 and out.min() == -32768
    assert not np.any((out[:-1] > 30_000) & (out[1:] < -30_000))
