"""The replay: an assembled recording as on-demand HLS (fMP4 segments, seekable).

The recorder already encodes ``recording.m4a`` (AAC-LC, 16 kHz); its access
units are copied into ~6 s CMAF fragments without decoding them, which takes
about a second for an hour. Only when no M4A is at hand is the WAV encoded.

Output in ``out_dir``: ``init.mp4``, ``seg{N}.m4s``, ``index.m3u8``
(EXT-X-PLAYLIST-TYPE:VOD, EXT-X-ENDLIST) and, written last, ``packaged.json``:
a directory without the marker is an unfinished packaging to redo.
"""

from __future__ import annotations

import json
import math
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from callbridge.media.mixer import PHONE_RATE, SAMPLE_RATE
from callbridge.store.files import write_atomic
from callbridge.webcast import fmp4
from callbridge.webcast.aac import AAC_FRAME, AacEncoder
from callbridge.webcast.live import INIT, PLAYLIST, segment_name
from callbridge.webcast.playlist import MediaPlaylist, Segment, render

MARKER = "packaged.json"
SEGMENT_SECONDS = 6.0
# Used when the WAV has to be encoded: the recorder's own M4A settings.
ENCODE_RATE = 16_000
RECORDING_RATES = (SAMPLE_RATE, PHONE_RATE)
ENCODE_BIT_RATE = 32_000


class VodError(Exception):
    """The recording cannot be packaged (missing, unreadable, not AAC, empty)."""


@dataclass(frozen=True)
class VodResult:
    """What ``package_replay`` wrote."""

    directory: Path
    playlist: Path  # out_dir / "index.m3u8"
    duration: float  # seconds of audio in the playlist (the AAC priming frame included)
    segments: int
    sample_rate: int
    remuxed: bool  # True when the M4A's AAC was copied, False when the WAV was encoded


@dataclass(frozen=True)
class _Track:
    sample_rate: int
    audio_specific_config: bytes
    bit_rate: int
    units: Iterator[tuple[bytes, int]]  # (access unit, duration in samples)


def _m4a_track(path: Path, container: av.container.InputContainer) -> _Track:
    streams = container.streams.audio
    if not streams or streams[0].codec_context.name != "aac":
        raise VodError(f"{path} has no AAC audio")
    stream = streams[0]
    if stream.codec_context.channels != 1:
        raise VodError(f"{path} is not mono")
    config = bytes(stream.codec_context.extradata or b"")
    if not config:
        raise VodError(f"{path} has no AudioSpecificConfig")

    def units() -> Iterator[tuple[bytes, int]]:
        for packet in container.demux(stream):
            if packet.size:
                yield bytes(packet), int(packet.duration or AAC_FRAME)

    return _Track(
        stream.codec_context.sample_rate, config, stream.codec_context.bit_rate or 0, units()
    )


def _wav_track(path: Path) -> _Track:
    with wave.open(str(path), "rb") as wav:
        # A recording is 16 kHz, or 8 kHz if it was made before the mix was wideband.
        rate = wav.getframerate()
        if rate not in RECORDING_RATES or (wav.getsampwidth(), wav.getnchannels()) != (2, 1):
            raise VodError(f"{path} is not 16 or 8 kHz 16-bit mono")
    encoder = AacEncoder(ENCODE_RATE, ENCODE_BIT_RATE, input_rate=rate)

    def units() -> Iterator[tuple[bytes, int]]:
        with wave.open(str(path), "rb") as wav:
            while block := wav.readframes(rate):
                pcm = np.frombuffer(block, dtype="<i2").astype(np.int16)
                for unit in encoder.encode(pcm):
                    yield unit, AAC_FRAME
        for unit in encoder.flush():
            yield unit, AAC_FRAME

    return _Track(ENCODE_RATE, encoder.audio_specific_config, ENCODE_BIT_RATE, units())


def _source_m4a(source: Path) -> Path | None:
    if source.suffix.lower() in (".m4a", ".mp4"):
        return source
    sibling = source.with_suffix(".m4a")
    return sibling if sibling.exists() else None


def package_replay(source_wav_or_m4a: Path, out_dir: Path) -> VodResult:
    """Package a recording as a seekable VOD HLS playlist in ``out_dir``; returns what it wrote.

    Give it ``recording.m4a`` or ``recording.wav`` (then a ``recording.m4a``
    beside it is used if present). Blocking and CPU-bound: run it off the
    event loop. Idempotent: packaging again rewrites every file and the
    marker last. Raises ``VodError`` when the source is missing or unusable.
    """
    source = Path(source_wav_or_m4a)
    out_dir = Path(out_dir)
    if not source.exists():
        raise VodError(f"{source} does not exist")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).unlink(missing_ok=True)
    m4a = _source_m4a(source)
    try:
        if m4a is not None:
            with av.open(str(m4a)) as container:
                result = _package(_m4a_track(m4a, container), out_dir, remuxed=True)
        else:
            result = _package(_wav_track(source), out_dir, remuxed=False)
    except (av.FFmpegError, wave.Error, EOFError) as exc:
        raise VodError(f"cannot read {source}: {exc}") from exc
    marker = {
        "source": source.name,
        "duration": result.duration,
        "segments": result.segments,
        "sample_rate": result.sample_rate,
        "remuxed": result.remuxed,
        "playlist": PLAYLIST,
    }
    write_atomic(out_dir / MARKER, json.dumps(marker, indent=2).encode())
    return result


def _package(track: _Track, out_dir: Path, *, remuxed: bool) -> VodResult:
    rate = track.sample_rate
    per_segment = max(1, math.floor(SEGMENT_SECONDS * rate / AAC_FRAME))
    write_atomic(
        out_dir / INIT,
        fmp4.init_segment(
            sample_rate=rate,
            channels=1,
            audio_specific_config=track.audio_specific_config,
            bit_rate=track.bit_rate,
        ),
    )
    segments: list[Segment] = []
    decode_time = 0
    batch: list[bytes] = []
    durations: list[int] = []

    def flush() -> None:
        nonlocal decode_time
        data = fmp4.media_fragment(len(segments) + 1, decode_time, batch, durations)
        name = segment_name(len(segments))
        write_atomic(out_dir / name, data)
        segments.append(Segment(name, sum(durations) / rate))
        decode_time += sum(durations)
        batch.clear()
        durations.clear()

    for unit, duration in track.units:
        batch.append(unit)
        durations.append(duration)
        if len(batch) == per_segment:
            flush()
    if batch:
        flush()
    if not segments:
        raise VodError("the recording holds no audio")
    # Segments of an earlier, longer packaging would only be clutter.
    stale = len(segments)
    while (out_dir / segment_name(stale)).exists():
        (out_dir / segment_name(stale)).unlink()
        stale += 1
    playlist = MediaPlaylist(
        target_duration=max(1, math.ceil(max(s.duration for s in segments) - 1e-9)),
        segments=tuple(segments),
        map_uri=INIT,
        playlist_type="VOD",
        ended=True,
    )
    write_atomic(out_dir / PLAYLIST, render(playlist).encode())
    return VodResult(
        directory=out_dir,
        playlist=out_dir / PLAYLIST,
        duration=decode_time / rate,
        segments=len(segments),
        sample_rate=rate,
        remuxed=remuxed,
    )
