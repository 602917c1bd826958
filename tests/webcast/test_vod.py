"""Replay packaging: the recorder's M4A remuxed (or the WAV encoded) into seekable VOD HLS."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from callbridge.media import recording
from callbridge.webcast.playlist import parse
from callbridge.webcast.vod import MARKER, VodError, package_replay
from tests.webcast.conftest import tone

SECONDS = 20
TONE_AT = 13.0  # seconds: lands in the third segment


def make_recording(directory: Path, with_m4a: bool = True) -> Path:
    frames = SECONDS * 50
    start = int(TONE_AT * 50)
    pcm = np.concatenate([tone(n, start, rate=8000) for n in range(frames)])  # recordings: 8 kHz
    wav = directory / "recording.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.astype("<i2").tobytes())
    if with_m4a:
        recording._encode_aac(wav, directory / "recording.m4a")  # what assemble() writes
    return wav


def decode_from(out: Path, first_segment: int, count: int) -> tuple[float, np.ndarray]:
    """Decode init + ``count`` segments from ``first_segment`` on: (start time, samples)."""
    joined = out / "joined.mp4"
    names = [f"seg{n}.m4s" for n in range(first_segment, first_segment + count)]
    joined.write_bytes(b"".join((out / n).read_bytes() for n in ["init.mp4", *names]))
    with av.open(str(joined)) as container:
        stream = container.streams.audio[0]
        frames = list(container.decode(stream))
        start = float(frames[0].pts * stream.time_base)
        return start, np.concatenate([f.to_ndarray()[0] for f in frames])


@pytest.mark.parametrize("with_m4a", [True, False])
def test_package_replay(tmp_path: Path, with_m4a: bool) -> None:
    wav = make_recording(tmp_path, with_m4a)
    out = tmp_path / "hls"
    result = package_replay(wav, out)
    assert result.remuxed is with_m4a
    assert result.sample_rate == 16_000
    # The priming frame stays in the stream: 64 ms more than the recording.
    assert result.duration == pytest.approx(SECONDS + 0.064, abs=0.07)
    playlist = parse((out / "index.m3u8").read_text())
    assert playlist.playlist_type == "VOD" and playlist.ended
    assert playlist.map_uri == "init.mp4"
    assert len(playlist.segments) == result.segments == 4
    assert all(s.duration == pytest.approx(5.952) for s in playlist.segments[:-1])
    assert playlist.duration == pytest.approx(result.duration)
    assert round(max(s.duration for s in playlist.segments)) <= playlist.target_duration
    marker = json.loads((out / MARKER).read_text())
    assert marker["segments"] == 4 and marker["remuxed"] is with_m4a
    # Seekable: segment 2 decodes on its own, at its own time, with the tone where it belongs.
    start, samples = decode_from(out, 2, 1)
    assert start == pytest.approx(2 * 5.952)
    onset = start + int(np.argmax(np.abs(samples) > 0.05)) / 16_000
    assert onset == pytest.approx(TONE_AT + 0.064, abs=0.01)
    # The whole thing decodes to the recording's length (the decoder gives the
    # last access unit whole, where the M4A's last sample duration is shorter).
    _, everything = decode_from(out, 0, 4)
    assert len(everything) / 16_000 == pytest.approx(result.duration, abs=0.065)
    assert not list(out.glob(".*.tmp"))


def test_repackaging_replaces_everything(tmp_path: Path) -> None:
    make_recording(tmp_path)
    out = tmp_path / "hls"
    out.mkdir()
    (out / "seg9.m4s").write_bytes(b"stale")
    (out / "seg4.m4s").write_bytes(b"stale")
    package_replay(tmp_path / "recording.m4a", out)
    assert not (out / "seg4.m4s").exists()
    assert (out / "seg9.m4s").exists()  # not contiguous with ours: left alone
    first = (out / "seg1.m4s").read_bytes()
    package_replay(tmp_path / "recording.m4a", out)
    assert (out / "seg1.m4s").read_bytes() == first


def test_missing_or_unusable_source(tmp_path: Path) -> None:
    with pytest.raises(VodError):
        package_replay(tmp_path / "recording.wav", tmp_path / "hls")
    (tmp_path / "bad.m4a").write_bytes(b"not an mp4 at all")
    with pytest.raises(VodError):
        package_replay(tmp_path / "bad.m4a", tmp_path / "hls")
    assert not (tmp_path / "hls" / MARKER).exists()
