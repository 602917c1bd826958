from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from callbridge.media.mixer import PHONE_FRAME_SAMPLES as FRAME_SAMPLES
from callbridge.replay.phone import RecordingError, ReplayPlayback, load_recording, load_replay
from tests.replay.test_phone import FakePrompts, label

RATE = 8000


def write_wav(
    path: Path,
    samples: np.ndarray,
    rate: int = RATE,
    channels: int = 1,
    width: int = 2,
) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


def riff(*chunks: tuple[bytes, bytes], declared: dict[bytes, int] | None = None) -> bytes:
    """A RIFF/WAVE file of these chunks, each padded to an even length."""
    body = b"WAVE"
    for kind, data in chunks:
        size = (declared or {}).get(kind, len(data))
        body += kind + struct.pack("<I", size) + data + (b"\x00" if len(data) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt(tag: int = 1, channels: int = 1, rate: int = RATE, bits: int = 16) -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def test_a_real_wav_is_mapped_not_read(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    samples = rng.integers(-32768, 32767, size=RATE * 3 + 17, dtype=np.int16)
    path = write_wav(tmp_path / "recording.wav", samples)
    loaded = load_recording(path)
    assert isinstance(loaded, np.memmap)
    assert loaded.dtype == np.int16 and loaded.shape == samples.shape
    np.testing.assert_array_equal(loaded, samples)
    assert not loaded.flags.writeable


def test_playback_from_a_loaded_wav(tmp_path: Path) -> None:
    frames = 30
    samples = np.repeat(np.arange(1, frames + 1, dtype=np.int16), FRAME_SAMPLES)
    p = ReplayPlayback(load_recording(write_wav(tmp_path / "r.wav", samples)), FakePrompts())
    assert [label(p.next_frame(0.0)) for _ in range(frames)] == list(range(frames))
    p.press("1", 0.0)
    assert label(p.next_frame(0.0)) == 0


def test_a_long_call_loads_at_once(tmp_path: Path) -> None:
    # 60 minutes of 8 kHz: 57.6 MB on disk, nothing of it read up front.
    path = tmp_path / "long.wav"
    samples = 60 * 60 * RATE
    with open(path, "wb") as f:
        f.write(riff((b"fmt ", fmt()), (b"data", b""), declared={b"data": samples * 2}))
        f.truncate(f.tell() + samples * 2)
    loaded = load_recording(path)
    assert len(loaded) == samples
    assert not loaded[-FRAME_SAMPLES:].any()


def test_chunks_before_the_data_are_skipped(tmp_path: Path) -> None:
    data = np.arange(100, dtype="<i2").tobytes()
    path = tmp_path / "r.wav"
    path.write_bytes(
        riff((b"LIST", b"odd"), (b"fmt ", fmt()), (b"fact", b"\x00" * 4), (b"data", data))
    )
    np.testing.assert_array_equal(load_recording(path), np.arange(100))


def test_wave_format_extensible_pcm_is_accepted(tmp_path: Path) -> None:
    guid = struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    extensible = fmt(tag=0xFFFE) + struct.pack("<HHI", 22, 16, 4) + guid
    path = tmp_path / "r.wav"
    path.write_bytes(riff((b"fmt ", extensible), (b"data", b"\x01\x00\x02\x00")))
    np.testing.assert_array_equal(load_recording(path), [1, 2])


def test_a_data_size_larger_than_the_file_is_cut_to_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "r.wav"
    header = riff((b"fmt ", fmt()), (b"data", b""), declared={b"data": 0xFFFFFFFF})
    path.write_bytes(header + b"\x01\x00\x02\x00\x03")  # a crash mid-sample
    np.testing.assert_array_equal(load_recording(path), [1, 2])


def test_an_empty_recording_loads_as_no_samples(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "r.wav", np.zeros(0, dtype=np.int16))
    loaded = load_recording(path)
    assert loaded.shape == (0,) and loaded.dtype == np.int16


@pytest.mark.parametrize(
    ("rate", "channels", "width", "message"),
    [
        (11025, 1, 2, "11025 Hz"),
        (8000, 2, 2, "2 channel"),
        (8000, 1, 1, "8 bit"),
    ],
)
def test_a_wrong_format_is_refused(
    tmp_path: Path, rate: int, channels: int, width: int, message: str
) -> None:
    path = tmp_path / "r.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(b"\x00" * 64)
    with pytest.raises(RecordingError, match=message):
        load_recording(path)


def test_a_float_wav_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.wav"
    path.write_bytes(riff((b"fmt ", fmt(tag=3, bits=32)), (b"data", b"\x00" * 8)))
    with pytest.raises(RecordingError, match="format 0x3"):
        load_recording(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "too short"),
        (b"RIFF\x00\x00\x00\x00AVI ", "not a RIFF/WAVE"),
        (b"ID3\x04" + b"\x00" * 40, "not a RIFF/WAVE"),
        (riff((b"fmt ", fmt())), "no data chunk"),
        (riff((b"data", b"\x00\x00"), (b"fmt ", fmt())), "data chunk before the fmt"),
        (riff((b"fmt ", fmt()[:10]), (b"data", b"")), "fmt chunk of 10 bytes"),
        (riff((b"fmt ", fmt()), declared={b"fmt ": 4000}), "cut short"),
        (riff(*[(b"junk", b"")] * 70, (b"fmt ", fmt()), (b"data", b"")), "first 64 chunks"),
    ],
)
def test_what_is_not_a_recording_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "r.wav"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=message):
        load_recording(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"r\.wav: No such file"):
        load_recording(tmp_path / "r.wav")


@pytest.mark.parametrize("rate", [16_000, 8000])
def test_a_recording_plays_at_its_own_rate(tmp_path: Path, rate: int) -> None:
    # Recordings are 16 kHz since the mix is; those made before are 8 kHz.
    size = rate // 50
    samples = np.repeat(np.arange(1, 11, dtype=np.int16), size)
    audio = load_replay(write_wav(tmp_path / "r.wav", samples, rate=rate))
    assert audio.rate == rate
    p = ReplayPlayback(audio.samples, FakePrompts(), rate=audio.rate)
    frames = [p.next_frame(0.0) for _ in range(10)]
    assert all(len(f) == size for f in frames) and [int(f[0]) for f in frames] == list(range(1, 11))
    assert p.duration_s == pytest.approx(0.2)
