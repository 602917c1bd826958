from __future__ import annotations

import numpy as np
import pytest

from callbridge.rtp import codecs
from callbridge.rtp.g711 import ulaw_encode


def tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def round_trip(name: str, signal: np.ndarray) -> tuple[np.ndarray, set[int]]:
    encoder, decoder = codecs.encoder(name), codecs.decoder(name)
    out, sizes = [], set()
    for i in range(0, len(signal), 320):
        payload = encoder.encode(signal[i : i + 320])
        sizes.add(len(payload))
        frame = decoder.decode(payload)
        assert frame is not None and frame.shape == (320,) and frame.dtype == np.int16
        out.append(frame)
    return np.concatenate(out), sizes


def peak(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.argmax(spectrum) * rate / len(signal))


@pytest.mark.parametrize("name", ["G722", "opus"])
def test_wideband_codecs_carry_a_6_khz_tone(name: str) -> None:
    out, _ = round_trip(name, tone(6000, 16_000))
    steady = out[4000:]
    assert peak(steady, 16_000) == pytest.approx(6000, abs=10)
    assert np.sqrt(np.mean(steady.astype(float) ** 2)) > 8000 / np.sqrt(2) * 0.7


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_g711_carries_the_phone_band_and_drops_what_is_above(name: str) -> None:
    out, sizes = round_trip(name, tone(1000, 16_000))
    assert sizes == {160}
    assert peak(out[4000:], 16_000) == pytest.approx(1000, abs=10)
    high, _ = round_trip(name, tone(6000, 16_000))
    # 6 kHz does not fit 8 kHz sampling: filtered out, not folded to 2 kHz.
    assert np.abs(high[4000:]).max() < 200


def test_g722_payload_is_160_bytes_per_20_ms() -> None:
    _, sizes = round_trip("G722", tone(440, 16_000, 0.2))
    assert sizes == {160}


def test_an_encoder_takes_8_khz_frames_too() -> None:
    # The IVR's prompts are 8 kHz: 160 samples a frame, brought up for G.722.
    encoder, decoder = codecs.encoder("G722"), codecs.decoder("G722")
    narrow = tone(1000, 8000)
    out = np.concatenate(
        [decoder.decode(encoder.encode(narrow[i : i + 160])) for i in range(0, 8000, 160)]
    )
    assert peak(out[4000:], 16_000) == pytest.approx(1000, abs=10)
    # And μ-law of an 8 kHz frame is the table, nothing else.
    assert codecs.encoder("PCMU").encode(narrow[:160]) == ulaw_encode(narrow[:160])
    with pytest.raises(ValueError, match="160 or 320"):
        encoder.encode(np.zeros(100, np.int16))


def test_a_narrowband_decoder_for_the_keypad_tone_detector() -> None:
    encoder, decoder = codecs.encoder("G722"), codecs.decoder("G722", rate=8000)
    frames = [decoder.decode(encoder.encode(f)) for f in tone(1000, 16_000, 0.2).reshape(-1, 320)]
    assert all(f is not None and f.shape == (160,) for f in frames)


def test_bad_payloads_are_a_lost_frame() -> None:
    assert codecs.decoder("PCMU").decode(b"\xff" * 80) is None  # 10 ms where 20 were agreed
    assert codecs.decoder("opus").decode(b"") is None
    decoder = codecs.decoder("G722")
    assert decoder.decode(b"\x00" * 80) is None


def test_formats() -> None:
    assert codecs.by_name("g722").timestamp_step == 160  # RFC 3551: clock 8000 at 16 kHz
    assert codecs.by_name("OPUS").timestamp_step == 960
    assert codecs.by_name("opus").rtpmap() == "opus/48000/2"
    assert codecs.by_name("PCMU").wideband is False and codecs.G722.wideband
    with pytest.raises(ValueError, match="GSM"):
        codecs.by_name("GSM")
